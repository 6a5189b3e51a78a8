"""Forked worker processes for CPU-bound work (Python runs one thread at a time).

The workers are forked, so they inherit what the caller set up (trees, series, contexts,
the items themselves) as it is, read-only, instead of receiving it pickled; only each
item's index and its answer cross a pipe. Where fork is not offered, callers do the work
in-process.

Plain ``os.fork`` and pipes, not ``ProcessPoolExecutor``: the pool hands items out and
takes answers in through threads of this process, which wait for the interpreter lock
while this process works on items of its own (~30 ms per map of a release audit).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")

GC_THRESHOLD = 20_000  # allocations between two collections of the youngest generation, in a worker
# what the forked workers inherit: the caller's shared data, set just before they are forked
_SHARED: Any = None

_INDEX = struct.Struct("<I")  # an item's index, as queued for whoever takes it next
_FRAME = struct.Struct("<IBI")  # an answer's item index, kind and length, before its pickle
_ANSWER, _ERROR = 0, 1
MAX_ITEMS = 16_384  # a pipe's default 64 KiB holds this many queued indices
_PIPE_BYTES = 1 << 20  # a worker's answer pipe: room for its answers while this process works


class WorkerLost(RuntimeError):
    """A worker ended (killed, out of memory) without answering every item it took."""


class WorkerTraceback(Exception):
    """Where a worker's error was raised: attached as the cause of the error raised here."""


def can_fork() -> bool:
    return hasattr(os, "fork")


def shared() -> Any:
    """In ``fork_map``'s ``fn``: the ``shared`` value of that map."""
    assert _SHARED is not None, "only in a worker of fork_map"
    return _SHARED


def fork_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    shared: Any,
    jobs: int,
    done: Callable[[R], None] = lambda _r: None,
    start: Callable[[], None] | None = None,
    stop: Callable[[], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[R]:
    """``fn`` over ``items`` in ``jobs`` processes: this one and ``jobs - 1`` forked workers,
    which see ``shared`` through ``shared()``, first run ``start`` and last ``stop``;
    answers in item order, each passed to ``done`` as it arrives. A worker's exception is
    raised here. Every process takes the next item in order: cut work into chunks whose
    sizes fall (``chunks``), so that the last ones taken are small.

    This process runs ``meanwhile`` (its own work that need not wait for the answers) once
    the workers are started, then takes items like them: it would otherwise sit waiting
    (one more process than cores), and its own answers need no pickling."""
    global _SHARED
    if len(items) > MAX_ITEMS:
        raise ValueError(f"fork_map: {len(items)} items (expected at most {MAX_ITEMS}: pass chunks)")
    out: list[Any] = [None] * len(items)
    answered = 0
    # the queue of item indices: every process reads the next 4 bytes (one read each, so
    # no two take the same item); closed for writing, an empty queue reads as the end
    queue, feed = os.pipe()
    try:
        os.write(feed, b"".join(_INDEX.pack(k) for k in range(len(items))))
    finally:
        os.close(feed)
    kids: list[_Worker] = []
    _SHARED = shared
    # what the workers inherit is never garbage: kept out of the collector's sight, its
    # pages are not copied into each worker when the collector would walk them
    gc.freeze()
    threshold = gc.get_threshold()
    try:
        for _ in range(min(jobs, len(items)) - 1):
            kids.append(_fork(fn, items, queue, start, stop, [k.fd for k in kids]))
        gc.set_threshold(GC_THRESHOLD, *threshold[1:])  # see _start
        if meanwhile is not None:
            meanwhile()
        while (k := _take(queue)) is not None:
            got = out[k] = fn(items[k])
            done(got)
            answered += 1 + _collect(kids, out, done)
        while answered < len(items):
            live = [w.fd for w in kids if w.open]
            if not live:
                raise WorkerLost(f"a worker process ended without answering ({_statuses(kids)})")
            select.select(live, [], [])
            answered += _collect(kids, out, done)
    except BaseException:
        # Ctrl-C, a signal, an error here or a worker's: the workers are ended as
        # patchcheck is (SIGTERM unwinds them like this process: their downloads cut,
        # their scratch folders removed)
        for w in kids:
            w.end()
        raise
    finally:
        os.close(queue)
        for w in kids:
            w.reap()
        _SHARED = None
        gc.set_threshold(*threshold)
        gc.unfreeze()
    return out


class _Worker:
    """A forked worker, as this process sees it: its pid and its answer pipe."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.buf = bytearray()
        self.open = True
        self.status: int | None = None

    def frames(self) -> list[tuple[int, int, bytes]]:
        """The whole answers the pipe holds now (it never blocks)."""
        while self.open:
            try:
                data = os.read(self.fd, _PIPE_BYTES)
            except BlockingIOError:
                break
            if not data:
                self.open = False
            self.buf += data
        got: list[tuple[int, int, bytes]] = []
        pos = 0
        while len(self.buf) - pos >= _FRAME.size:
            k, kind, n = _FRAME.unpack_from(self.buf, pos)
            body = pos + _FRAME.size
            if len(self.buf) - body < n:
                break
            got.append((k, kind, bytes(self.buf[body : body + n])))
            pos = body + n
        del self.buf[:pos]
        return got

    def end(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def reap(self) -> None:
        os.close(self.fd)  # a worker still writing gets EPIPE: it ends
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]


def _statuses(kids: list[_Worker]) -> str:
    how: list[str] = []
    for w in kids:
        if w.status is None:
            w.status = os.waitpid(w.pid, 0)[1]
        how.append(f"pid {w.pid}: {_how(w.status)}")
    return ", ".join(how)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _collect(kids: list[_Worker], out: list[Any], done: Callable[[Any], None]) -> int:
    """The workers' answers that have arrived, into ``out``; how many. A worker's error is
    raised here."""
    n = 0
    for w in kids:
        for k, kind, body in w.frames():
            got = pickle.loads(body)
            if kind == _ERROR:
                err, where = got
                raise err from WorkerTraceback(where)
            out[k] = got
            done(got)
            n += 1
    return n


def _take(queue: int) -> int | None:
    raw = os.read(queue, _INDEX.size)
    return _INDEX.unpack(raw)[0] if raw else None


def _fork(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    queue: int,
    start: Callable[[], None] | None,
    stop: Callable[[], None] | None,
    inherited: list[int],
) -> _Worker:
    read, write = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # a smaller pipe: the worker waits for this process to read, nothing worse
    sys.stdout.flush()  # nothing buffered here is written twice
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        for fd in inherited:  # the answer pipes of the workers forked before this one
            os.close(fd)
        _work(fn, items, queue, write, start, stop)
    os.close(write)
    os.set_blocking(read, False)
    return _Worker(pid, read)


def _work(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    queue: int,
    answers: int,
    start: Callable[[], None] | None,
    stop: Callable[[], None] | None,
) -> NoReturn:
    """A worker's life: items from the queue until it is empty, each answer (or the first
    error) pickled into the answer pipe; never returns into the caller's code."""
    code = 0
    try:
        _start(start)
        while (k := _take(queue)) is not None:
            try:
                kind, body = _ANSWER, pickle.dumps(fn(items[k]), pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # noqa: BLE001 - raised again in the caller
                kind, body = _ERROR, _pickled_error(e)
            _send(answers, _FRAME.pack(k, kind, len(body)) + body)
            if kind == _ERROR:
                break
    except SystemExit as e:  # SIGTERM or SIGHUP (_leave)
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - e.g. the caller gone (EPIPE): end quietly
        code = 1
    finally:
        try:
            if stop is not None:
                stop()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):  # the worker is ending either way
                    stream.flush()
            os._exit(code)


def _pickled_error(e: Exception) -> bytes:
    import traceback  # here: every run imports this module, few have a worker's error

    where = "".join(traceback.format_exception(e))
    try:
        return pickle.dumps((e, where), pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an error that does not pickle: its words do
        return pickle.dumps((RuntimeError(f"{type(e).__name__}: {e}"), where), pickle.HIGHEST_PROTOCOL)


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    """``items`` cut into about ``jobs * per_job`` consecutive chunks for ``fork_map``,
    falling in size: the processes take the big ones first and the small ones last, so that
    whoever finishes first waits little for the others."""
    if jobs <= 1:
        return [items] if items else []
    out: list[Sequence[T]] = []
    start = 0
    for size in _falling(len(items), per_job * jobs):
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
