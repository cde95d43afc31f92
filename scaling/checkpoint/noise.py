"""orbax's own output after a failed save, held back: `Checkpoints` reports the failure in one
line (docs/reliability.md row 8), so the tracebacks orbax and asyncio print for the same
failure are dropped instead of reaching the user's terminal.

Five channels carry them:
- orbax logs the failed async save with a traceback (absl logging, level ERROR);
- the background thread that ran the save can end on the exception (`threading.excepthook`);
- after the save's event loop has closed, a coroutine or transport finalized later (often at
  interpreter exit) raises "Event loop is closed", which Python reports as "Exception
  ignored in ..." with a traceback (`sys.unraisablehook`);
- tensorstore's future callbacks call the closed loop's `call_soon_threadsafe` from C and
  print the error with `PyErr_Print` (`sys.excepthook`), a bare "Traceback ...";
- asyncio logs the save's tasks that died with their loop ("Task exception was never
  retrieved", logger `asyncio`).
The first is filtered always (records from orbax's files). The others concern only exceptions
raised in orbax, asyncio or tensorstore code (anything else goes to the previous hook
unchanged), and they race the report: the save's loop closes, and tensorstore prints, on the
save thread before the main thread learns of the failure. So while a save is in flight
(`save_started`) such output is held; when the save is known to have committed
(`save_committed`) it is printed after all, and once a failure has been reported
(`note_reported_failure`) it is dropped, then and for the rest of the process. Whatever is
still held at exit is printed.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading

_reported = threading.Event()  # set once Checkpoints has reported a failed save
_in_flight = threading.Event()  # set while an async save may still fail
_held: list = []  # (previous hook, its arguments) held while a save is in flight
_held_lock = threading.Lock()
_MAX_HELD = 200  # beyond this, held output is printed rather than kept


def _route(previous, *args) -> None:
    """Drop, hold or print one piece of save-machinery output."""
    if _reported.is_set():
        return
    with _held_lock:
        if _in_flight.is_set() and len(_held) < _MAX_HELD:
            _held.append((previous, args))
            return
    previous(*args)


def _release() -> None:
    """Print what was held (the save it raced did not fail)."""
    with _held_lock:
        held, _held[:] = list(_held), []
    for previous, args in held:
        previous(*args)


class _OrbaxErrorsReportedHere(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


def _from_save_machinery(exc: BaseException | None, obj=None) -> bool:
    """Whether `exc` (or the finalized object `obj`) belongs to orbax's async save."""
    if exc is None:
        return False
    if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc):
        return True
    files = []
    tb = exc.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    files.append(repr(obj))
    return any("orbax" in f or "asyncio" in f or "tensorstore" in f for f in files)


class _AsyncioNoiseAfterFailure(logging.Filter):
    """asyncio logs "Task exception was never retrieved" (with a traceback) for the save's
    tasks that died with the loop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not _from_save_machinery(exc) or getattr(record, "_released", False):
            return True
        record._released = True  # printed through the logger again if released
        _route(logging.getLogger(record.name).handle, record)
        return False


def _install() -> None:
    logging.getLogger("absl").addFilter(_OrbaxErrorsReportedHere())
    logging.getLogger("asyncio").addFilter(_AsyncioNoiseAfterFailure())
    previous_unraisable, previous_thread = sys.unraisablehook, threading.excepthook
    previous_except = sys.excepthook

    def unraisable(info):
        if _from_save_machinery(info.exc_value, info.object):
            _route(previous_unraisable, info)
        else:
            previous_unraisable(info)

    def thread(args):
        if _from_save_machinery(args.exc_value):
            _route(previous_thread, args)
        else:
            previous_thread(args)

    def printed(kind, value, tb):  # PyErr_Print from C: tensorstore's future callbacks
        if _from_save_machinery(value):
            _route(previous_except, kind, value, tb)
        else:
            previous_except(kind, value, tb)

    sys.unraisablehook, threading.excepthook, sys.excepthook = unraisable, thread, printed
    atexit.register(_release)


def save_started() -> None:
    """Called when an async save starts: its machinery's output is held until it ends."""
    _in_flight.set()


def save_committed() -> None:
    """Called when every started save has committed: what was held is printed after all."""
    _in_flight.clear()
    _release()


def note_reported_failure() -> None:
    """Called when a failed save has been reported to the user in one line: the output its
    machinery printed, or will print, is dropped."""
    _reported.set()
    _in_flight.clear()
    with _held_lock:
        _held.clear()


_install()


@contextlib.contextmanager
def absl_warnings_held():
    """Within: absl/orbax warnings (read-only mode notes, unread items) are not printed;
    the absl logger's level is restored after, so later work logs as before."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)
