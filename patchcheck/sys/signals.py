"""The ending signals (Ctrl-C, SIGTERM, SIGHUP) held back over the few lines that must run
whole: a fork and the bookkeeping of its worker, the reaping of workers."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Mask = set[int | signal.Signals]
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@contextlib.contextmanager
def held() -> Iterator[Mask]:
    """Within: no ending signal interrupts this thread; one that arrives is delivered when
    the block ends (its handler runs then: Ctrl-C raises there). Yields the thread's signal
    mask as it was (a process forked within inherits the held one: it lets go itself).

    The mask alone is not enough: a signal sent to the process goes to any thread that
    does not hold it, and Python then runs the handler in the main thread, wherever that
    is. So in the main thread the handlers only take note meanwhile."""
    noted: list[int] = []
    old: dict[int, _Handler] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in ENDING:
                old[sig] = signal.signal(sig, lambda signum, _frame: noted.append(signum))
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
    except BaseException:  # a signal already pending, delivered by the calls above
        _restore(old)
        raise
    try:
        yield mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what was held arrives: noted
        _restore(old)
        for signum in dict.fromkeys(noted):
            _deliver(signum, old[signum])


def whole(fn: Callable[[], object]) -> None:
    """``fn`` run to its end with the ending signals held, even when one is already pending
    as the hold begins (its handler raises there): the hold begins again. The first
    exception, ``fn``'s or a signal's, is raised after."""
    first: BaseException | None = None
    ran = False
    while not ran:
        try:
            with held():
                try:
                    fn()
                finally:
                    ran = True
        except BaseException as e:  # noqa: BLE001 - raised below, after the work is done
            first = first or e
    if first is not None:
        raise first


def _restore(old: dict[int, _Handler]) -> None:
    for sig, handler in old.items():
        if handler is not None:
            signal.signal(sig, handler)


def _deliver(signum: int, handler: _Handler) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # its default action: the process ends
