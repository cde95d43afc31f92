"""One job per run directory: an exclusive `fcntl` lock on `<workdir>/.lock`, held by
process 0 for the job's life (docs/reliability.md).

The kernel drops the lock when its process dies, so a lock left by a killed job is simply
taken over; the file then still names the dead holder, which is rewritten. A second
`scaling train`, `sweep`, `finetune` or `convert` on a locked directory stops at once,
naming the holder's host and PID.

Object storage (`--workdir gs://...`) has no kernel lock: there `<workdir>/.lock` is an
object naming the holder plus a heartbeat the holder rewrites every HEARTBEAT_S seconds
(`ObjectLock`). A lock whose heartbeat is older than STALE_S belongs to a dead job and is
taken over, so after a kill -9 or a lost host a rerun is refused for at most STALE_S (a job
that ends, SIGTERM included, deletes its lock). Taking it
is check-then-write, then a re-read after SETTLE_S that must still show our token: of two
jobs started together, the later writer wins and the other stops. This is best effort
(no compare-and-swap through epath; host clocks are assumed within a few seconds).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid

from scaling import storage
from scaling.errors import UserError

LOCK_NAME = ".lock"
HEARTBEAT_S = 30.0  # an object lock's holder rewrites it this often
STALE_S = 120.0  # an object lock not rewritten for this long belongs to a dead job
SETTLE_S = 1.0  # after writing an object lock, wait this long and check we still hold it


def RunLock(workdir: str, command: str):  # noqa: N802 - a class to its callers
    """`with RunLock(workdir, "train"):` — or acquire() / release(). A kernel lock on a local
    run directory, a heartbeat object on object storage."""
    if storage.is_remote(workdir):
        return ObjectLock(workdir, command)
    return FileLock(workdir, command)


def _in_use(where: str, holder: dict, extra: str = "") -> UserError:
    return UserError(
        f"run directory {where} is in use by `scaling {holder.get('command', '?')}` on host "
        f"{holder.get('host', '?')}, PID {holder.get('pid', '?')} (since "
        f"{holder.get('since', '?')}){extra}; wait for it to finish, stop it, or use another "
        f"--workdir")


class FileLock:
    """An exclusive `fcntl` lock on `<workdir>/.lock` (a local or network file system)."""

    def __init__(self, workdir: str, command: str):
        self.path = os.path.join(workdir, LOCK_NAME)
        self.command, self._fd = command, None

    def acquire(self) -> FileLock:
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot lock run directory {os.path.dirname(self.path)}: "
                            f"{e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise _in_use(os.path.dirname(self.path), holder) from None
        info = {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class ObjectLock:
    """`<workdir>/.lock` on object storage: the holder's host, PID, command and a heartbeat
    (wall-clock seconds) rewritten every HEARTBEAT_S by a daemon thread (module docstring)."""

    def __init__(self, workdir: str, command: str):
        self.workdir, self.path = workdir, storage.join(workdir, LOCK_NAME)
        self.command, self.token = command, uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict:
        try:
            info = json.loads(storage.read_text(self.path))
            return info if isinstance(info, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {"heartbeat": 0.0}  # unreadable: treated as stale

    def _write(self, since: str) -> None:
        info = {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                "since": since, "heartbeat": time.time(), "token": self.token}
        storage.write_atomic(self.path, json.dumps(info))

    def acquire(self) -> ObjectLock:
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            holder = self._read()
            age = time.time() - float(holder.get("heartbeat", 0.0))
            if holder and age < STALE_S:
                raise _in_use(self.workdir, holder, f", heartbeat {age:.0f} s ago (a lock not "
                              f"renewed for {STALE_S:.0f} s is taken over)")
            self._write(since)
            time.sleep(SETTLE_S)
            holder = self._read()
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - any storage error is one line
            raise UserError(f"cannot lock run directory {self.workdir}: "
                            f"{storage.error_text(e)}") from None
        if holder.get("token") != self.token:  # a job started at the same moment won
            raise _in_use(self.workdir, holder)
        self._thread = threading.Thread(target=self._beat, args=(since,), daemon=True,
                                        name="scaling-run-lock")
        self._thread.start()
        return self

    def _beat(self, since: str) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if self._read().get("token") != self.token:
                    return  # taken over (we were presumed dead): stop claiming it
                self._write(since)
            except Exception:  # noqa: BLE001, S110 - a missed beat is retried next period
                pass

    def release(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            if self._read().get("token") == self.token:
                storage.path(self.path).unlink(missing_ok=True)
        except Exception:  # noqa: BLE001 - a lock left behind expires after STALE_S
            pass

    def __enter__(self) -> ObjectLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode("utf-8")) if data else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}
