"""orbax's own output after a failed save, held back: `Checkpoints` reports the failure in one
line (docs/reliability.md row 8), so the tracebacks orbax and asyncio print for the same
failure are dropped instead of reaching the user's terminal.

Three channels carry them:
- orbax logs the failed async save with a traceback (absl logging, level ERROR);
- the background thread that ran the save can end on the exception (`threading.excepthook`);
- after the save's event loop has closed, a coroutine or transport finalized later (often at
  interpreter exit) raises "Event loop is closed", which Python reports as "Exception
  ignored in ..." with a traceback (`sys.unraisablehook`).
The first is filtered always (records from orbax's files); the other two only once a failed
save has been reported in this process (`note_reported_failure`), and only for exceptions
raised in orbax or asyncio code; anything else goes to the previous hook unchanged.
"""

from __future__ import annotations

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


def _install() -> None:
    logging.getLogger("absl").addFilter(_OrbaxErrorsReportedHere())
    previous_unraisable, previous_thread = sys.unraisablehook, threading.excepthook

    def unraisable(info):
        if _reported.is_set() and _from_save_machinery(info.exc_value, info.object):
            return
        previous_unraisable(info)

    def thread(args):
        if _reported.is_set() and _from_save_machinery(args.exc_value):
            return
        previous_thread(args)

    sys.unraisablehook, threading.excepthook = unraisable, thread


def note_reported_failure() -> None:
    """Called when a failed save has been reported to the user in one line."""
    _reported.set()


_install()
