"""A per-call CPU-time limit, for library code that can spin on pathological input.

Why a signal and not a thread or a subprocess: a Python thread cannot be stopped, and a
subprocess per document would copy every page across a pipe and double the processes on
the worker. Ray runs a task, like the methods of a plain (synchronous) actor, on the
worker's main thread (checked by tests/test_extract.py through the real runner), so a timer
signal interrupts the extractor between two Python bytecodes and leaves the worker usable.

Why CPU time (`ITIMER_VIRTUAL`) and not wall time: when workers share cores, wall time
depends on the neighbours, and a document would be kept in one run and timed out in the
next. CPU time keeps the outcome a property of the document.

Limits: a single C call that never returns to Python (one giant regex, one lxml parse) is
only interrupted when it does return; size limits before the call bound that case. Off the
main thread (threaded actors, user threads) signals are unavailable and the call runs
without a limit.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_log = logging.getLogger(__name__)
_warned_off_main_thread = False


class TimeLimitExceeded(BaseException):
    """The guarded call used more CPU seconds than allowed. A BaseException, like
    KeyboardInterrupt, so that a library's `except Exception:` cannot swallow it."""


def _on_timer(_signum, _frame):
    raise TimeLimitExceeded()


@contextmanager
def cpu_time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `TimeLimitExceeded` inside the block once it has used `seconds` of CPU time."""
    global _warned_off_main_thread
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        if not _warned_off_main_thread:
            _log.warning("cpu_time_limit: not on the main thread; running without a limit")
            _warned_off_main_thread = True
        yield
        return
    previous = signal.signal(signal.SIGVTALRM, _on_timer)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        remaining, _ = signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)
    # The timer ran out but its exception got lost: raised inside a garbage-collector
    # callback or a __del__, where Python prints "Exception ignored" and carries on (seen
    # in the test process, where hypothesis registers a gc callback). The limit still holds.
    if remaining == 0:
        raise TimeLimitExceeded()
