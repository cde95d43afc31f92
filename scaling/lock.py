"""One job per run directory: an exclusive `fcntl` lock on `<workdir>/.lock`, held by
process 0 for the job's life (docs/reliability.md).

The kernel drops the lock when its process dies, so a lock left by a killed job is simply
taken over; the file then still names the dead holder, which is rewritten. A second
`scaling train`, `sweep`, `finetune` or `convert` on a locked directory stops at once,
naming the holder's host and PID.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from scaling.errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    """`with RunLock(workdir, "train"):` — or acquire() / release()."""

    def __init__(self, workdir: str, command: str):
        self.path = os.path.join(workdir, LOCK_NAME)
        self.command, self._fd = command, None

    def acquire(self) -> RunLock:
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
            raise UserError(
                f"run directory {os.path.dirname(self.path)} is in use by `scaling "
                f"{holder.get('command', '?')}` on host {holder.get('host', '?')}, PID "
                f"{holder.get('pid', '?')} (since {holder.get('since', '?')}); wait for it to "
                f"finish, stop it, or use another --workdir") from None
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

    def __enter__(self) -> RunLock:
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
