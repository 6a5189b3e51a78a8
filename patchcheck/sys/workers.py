"""Forked worker processes for CPU-bound work (Python runs one thread at a time).

The workers are forked, so they inherit what the caller set up (trees, series, contexts)
as it is, read-only, instead of receiving it pickled; only each work item and its answer
cross the pipe. Where fork is not offered, callers do the work in-process.
"""

from __future__ import annotations

import functools
import gc
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GC_THRESHOLD = 20_000  # allocations between two collections of the youngest generation, in a worker
# what the forked workers inherit: the caller's shared data, set just before they are forked
_SHARED: Any = None


def can_fork() -> bool:
    import multiprocessing  # here: a one-bug check does not pay for importing it

    return "fork" in multiprocessing.get_all_start_methods()


def shared() -> Any:
    """In a worker: the ``shared`` value of the ``fork_map`` that forked it."""
    assert _SHARED is not None, "only in a worker of fork_map"
    return _SHARED


def fork_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    shared: Any,
    jobs: int,
    done: Callable[[R], None] = lambda _r: None,
    start: Callable[[], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[R]:
    """``fn`` over ``items`` in ``jobs`` processes: this one and ``jobs - 1`` forked workers,
    which see ``shared`` through ``shared()`` and first run ``start``; answers in item
    order, each passed to ``done`` as it arrives. A worker's exception is raised here.

    The workers take items from the front, this process from the back (after running
    ``meanwhile``, its own work that need not wait for the answers): it would otherwise sit
    waiting for them (one more process than cores), and its own answers need no pickling."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _SHARED
    out: list[Any] = [None] * len(items)
    _SHARED = shared
    # what the workers inherit is never garbage: kept out of the collector's sight, its
    # pages are not copied into each worker when the collector would walk them
    gc.freeze()
    threshold = gc.get_threshold()
    try:
        ctx = multiprocessing.get_context("fork")
        init = functools.partial(_start, start)
        with ProcessPoolExecutor(max_workers=max(1, jobs - 1), mp_context=ctx, initializer=init) as pool:
            futures = {pool.submit(fn, item): k for k, item in enumerate(items)}
            gc.set_threshold(GC_THRESHOLD, *threshold[1:])  # after the fork: see _start
            try:
                if meanwhile is not None:
                    meanwhile()
                theirs = list(futures)
                if jobs > 1:
                    theirs = []
                    for f, k in reversed(futures.items()):
                        if f.cancel():  # not yet handed to a worker: this process's to do
                            got = out[k] = fn(items[k])
                            done(got)
                        else:
                            theirs.append(f)
                for f in as_completed(theirs):
                    got = out[futures[f]] = f.result()
                    done(got)
            except BaseException:
                # Ctrl-C, a signal, a worker's error: nothing queued runs any more, and the
                # workers are ended as patchcheck is (SIGTERM unwinds them like the parent:
                # their downloads cut, their scratch folders removed). The pool is then shut
                # down waiting for its manager thread: one still running at exit races
                # Python's own exit hook for the pool's pipe ("Bad file descriptor").
                for f in futures:
                    f.cancel()
                for child in multiprocessing.active_children():
                    child.terminate()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        _SHARED = None
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return out


def _start(then: Callable[[], None] | None) -> None:
    # the work makes many short-lived objects and few cycles: the default threshold (700)
    # runs the collector thousands of times for nothing (~8% of a worker's time)
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    # Ctrl-C is the parent's to handle (it then ends the workers); ended by a signal, a
    # worker leaves quietly (no traceback of its own), running its exit-time cleanups
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _leave)
    if then is not None:
        then()


def _leave(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def chunks(items: Sequence[T], jobs: int, per_job: int) -> list[Sequence[T]]:
    """``items`` cut into about ``jobs * per_job`` consecutive chunks for ``fork_map``: the
    workers' share at the front, this process's at the back, each share's chunks shrinking
    toward where the two meet, so that whoever finishes first waits little for the other
    (a worker may hold one chunk more than it runs)."""
    if jobs <= 1:
        return [items] if items else []
    front = len(items) * (jobs - 1) // jobs
    sizes = _falling(front, per_job * (jobs - 1)) + _falling(len(items) - front, per_job)[::-1]
    out: list[Sequence[T]] = []
    start = 0
    for size in sizes:
        out.append(items[start : start + size])
        start += size
    return out


def _falling(n: int, count: int) -> list[int]:
    # ``n`` cut into at most ``count`` sizes, falling in steps (none empty)
    weights = range(count, 0, -1)
    total = sum(weights)
    sizes: list[int] = []
    left = n
    for w in weights:
        size = min(left, max(1, round(n * w / total)))
        if size:
            sizes.append(size)
        left -= size
    if left:  # rounding's remainder: on the largest, so the sizes still fall
        sizes[0] += left
    return sizes
