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
The first is filtered always (records from orbax's files); the others only once a failed
save has been reported in this process (`note_reported_failure`), and only for exceptions
raised in orbax or asyncio code; anything else goes to the previous hook unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading

_reported = threading.Event()  # set once Checkpoints has reported a failed save


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
        return not (_reported.is_set() and _from_save_machinery(exc))


def _install() -> None:
    logging.getLogger("absl").addFilter(_OrbaxErrorsReportedHere())
    logging.getLogger("asyncio").addFilter(_AsyncioNoiseAfterFailure())
    previous_unraisable, previous_thread = sys.unraisablehook, threading.excepthook
    previous_except = sys.excepthook

    def unraisable(info):
        if _reported.is_set() and _from_save_machinery(info.exc_value, info.object):
            return
        previous_unraisable(info)

    def thread(args):
        if _reported.is_set() and _from_save_machinery(args.exc_value):
            return
        previous_thread(args)

    def printed(kind, value, tb):  # PyErr_Print from C: tensorstore's future callbacks
        if _reported.is_set() and _from_save_machinery(value):
            return
        previous_except(kind, value, tb)

    sys.unraisablehook, threading.excepthook, sys.excepthook = unraisable, thread, printed


def note_reported_failure() -> None:
    """Called when a failed save has been reported to the user in one line."""
    _reported.set()


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
