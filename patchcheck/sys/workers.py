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

import atexit
import contextlib
import gc
import os
import pickle
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from patchcheck.sys import signals

T = TypeVar("T")
R = TypeVar("R")

GC_THRESHOLD = 20_000  # allocations between two collections of the youngest generation, in a worker
# what the forked workers inherit: the caller's shared data, set just before they are forked
_SHARED: Any = None
_BUSY = False  # see busy()

_INDEX = struct.Struct("<I")  # an item's index, as queued for whoever takes it next
_FRAME = struct.Struct("<IBQ")  # an answer's item index, kind and length, before its pickle
_ANSWER, _ERROR = 0, 1
_NO_ITEM = 0xFFFFFFFF  # the index of an error raised before any item (in ``start``)
_REAPED = -1  # a worker's status once reaped by a wait whose answer an interrupt lost
# a pipe holds at least one page even when the user's pipe quota is spent: so many indices
MAX_ITEMS = 1024
_PIPE_BYTES = 1 << 20  # a worker's answer pipe: room for its answers while this process works
GRACE = 5.0  # seconds a worker told to end (SIGTERM) has before SIGKILL


class WorkerLost(RuntimeError):
    """A worker ended otherwise than by finishing (killed, out of memory, a signal)."""


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
    which see ``shared`` through ``shared()``, first run ``start`` and, if it ran, ``stop``
    last; answers in item order, each passed to ``done`` as it arrives. A worker's exception
    is raised here, and so is WorkerLost when a worker ends otherwise. Every process takes
    the next item in order: cut work into chunks whose sizes fall (``chunks``), so that the
    last ones taken are small.

    This process runs ``meanwhile`` (its own work that need not wait for the answers) once
    the workers are started, then takes items like them: it would otherwise sit waiting
    (one more process than cores), and its own answers need no pickling."""
    global _SHARED, _BUSY
    if len(items) > MAX_ITEMS:
        raise ValueError(f"fork_map: {len(items)} items (expected at most {MAX_ITEMS}: pass chunks)")
    _finish_cut_short()
    out: list[Any] = [None] * len(items)
    answered = 0
    m = _Map(gc.get_threshold())
    _OPEN.append(m)
    try:
        # no signal between a fork and its worker's own handlers (the caller's would raise
        # in the worker, and unwind it into the caller's code), nor between a fork and
        # this process knowing the worker (to end it)
        with signals.held() as mask:
            m.queue = _queue(len(items))
            _SHARED = shared
            # what the workers inherit is never garbage: kept out of the collector's sight,
            # its pages are not copied into each worker when the collector would walk them
            gc.freeze()
            for _ in range(min(jobs, len(items)) - 1):
                m.kids.append(_fork(fn, items, m.queue, start, stop, [k.fd for k in m.kids], mask))
            _BUSY = bool(m.kids)
        gc.set_threshold(GC_THRESHOLD, *m.threshold[1:])  # see _work
        if meanwhile is not None:
            meanwhile()
        while (k := _take(m.queue)) is not None:
            got = out[k] = fn(items[k])
            done(got)
            answered += 1 + _collect(m.kids, out, done)
        # every worker's pipe to its end: an error still in one is raised, not lost
        while any(w.open for w in m.kids):
            poll = select.poll()  # not select(): a run with many files open has fds >= 1024
            for w in m.kids:
                if w.open:
                    poll.register(w.fd, select.POLLIN)
            poll.poll()
            answered += _collect(m.kids, out, done)
        if answered < len(items):
            raise WorkerLost(f"workers ended with {len(items) - answered} of {len(items)} items unanswered")
    finally:
        signals.whole(m.finish)  # a second Ctrl-C waits until every worker is reaped
    return out


class _Map:
    """What a fork_map changes and must undo: its queue, its workers, the collector."""

    def __init__(self, threshold: tuple[int, int, int]) -> None:
        self.threshold = threshold
        self.queue = -1
        self.kids: list[_Worker] = []

    def finish(self) -> None:
        """Undo it all (again: a no-op). A signal may cut a map's own finish short before
        it began (between two lines of Python): the next map, or the exit, finishes it."""
        global _SHARED, _BUSY
        if self not in _OPEN:
            return
        _SHARED, _BUSY = None, False
        gc.set_threshold(*self.threshold)
        gc.unfreeze()
        queue, self.queue = self.queue, -1
        if queue >= 0:
            os.close(queue)
        for w in self.kids:
            # after Ctrl-C, a signal, an error here or a worker's, workers still running are
            # ended as patchcheck is (SIGTERM unwinds them like this process: their
            # downloads cut, their scratch folders removed); a reaped one is left alone
            w.end()
            w.reap(GRACE)
        _OPEN.remove(self)


_OPEN: list[_Map] = []  # maps not yet finished


@atexit.register
def _finish_cut_short() -> None:
    for m in list(_OPEN):
        signals.whole(m.finish)


def busy() -> bool:
    """True in a fork_map's processes while it runs: every core it asked for is taken."""
    return _BUSY


def _queue(n: int) -> int:
    """A pipe holding the indices 0..n-1, closed for writing: every process reads the next
    4 bytes (one read each, so no two take the same item); empty, it reads as the end."""
    read, feed = os.pipe()
    try:
        data = b"".join(_INDEX.pack(k) for k in range(n))
        if os.write(feed, data) != len(data):  # MAX_ITEMS: one write, never blocking
            raise OSError(f"fork_map: could not queue {n} items")
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(feed)
    return read


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

    def reap(self, grace: float | None) -> None:
        """Wait for the worker's end; with ``grace``, SIGKILL it when that much time has
        passed (it was told to end and has not). Safe to call again (interrupted)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)  # a worker still writing gets EPIPE: it ends
        try:
            if self.status is None and grace is not None:
                deadline = time.monotonic() + grace
                while (got := os.waitpid(self.pid, os.WNOHANG))[0] == 0:
                    if time.monotonic() > deadline:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(self.pid, signal.SIGKILL)
                        break
                    time.sleep(0.005)
                else:
                    self.status = got[1]
            if self.status is None:
                self.status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:  # reaped by a wait that an interrupt cut short
            self.status = _REAPED

    def check(self) -> None:
        """WorkerLost unless the (reaped) worker ended by finishing its work."""
        assert self.status is not None
        if self.status != _REAPED and os.waitstatus_to_exitcode(self.status) != 0:
            raise WorkerLost(f"a worker process ended early (pid {self.pid}: {_how(self.status)})")


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _collect(kids: list[_Worker], out: list[Any], done: Callable[[Any], None]) -> int:
    """The workers' answers that have arrived, into ``out``; how many. A worker's error is
    raised here, and WorkerLost for a worker that ended without finishing."""
    n = 0
    for w in kids:
        for k, kind, body in w.frames():
            try:
                got = pickle.loads(body)
            except Exception as e:
                raise RuntimeError(f"a worker's answer could not be read back: {type(e).__name__}: {e}") from e
            if kind == _ERROR:
                err, where = got
                raise err from WorkerTraceback(where)
            out[k] = got
            done(got)
            n += 1
        if not w.open and w.status is None:  # its pipe closed: it has ended, or is ending
            w.reap(None)
            w.check()
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
    mask: signals.Mask,
) -> _Worker:
    read, write = os.pipe()
    try:
        try:
            import fcntl

            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except (ImportError, AttributeError, OSError):
            pass  # a smaller pipe: the worker waits for this process to read, nothing worse
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here is written twice
            if stream is not None:
                stream.flush()
        pid = os.fork()
    except BaseException:
        os.close(read)
        os.close(write)
        raise
    if pid == 0:
        code = 1
        try:  # whatever happens, the worker ends here: it never returns into the caller
            os.close(read)
            for fd in inherited:  # the answer pipes of the workers forked before this one
                os.close(fd)
            code = _work(fn, items, queue, write, start, stop, mask)
        finally:
            os._exit(code)
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
    mask: signals.Mask,
) -> int:
    """A worker's life: ``start``, then items from the queue until it is empty, each answer
    (or the first error) pickled into the answer pipe, then ``stop``; its exit status."""
    global _BUSY
    _BUSY = True
    started = False
    try:
        # Ctrl-C is the parent's to handle (it then ends the workers); ended by a signal, a
        # worker leaves quietly (no traceback of its own), running its exit-time cleanups
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _leave)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # held since before the fork
        try:
            # the work makes many short-lived objects and few cycles: the default threshold
            # (700) runs the collector thousands of times for nothing (~8% of a worker's time)
            gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
            if start is not None:
                start()
            started = True
            while (k := _take(queue)) is not None:
                try:
                    body = pickle.dumps(fn(items[k]), pickle.HIGHEST_PROTOCOL)
                except Exception as e:  # noqa: BLE001 - raised again in the caller
                    _send(answers, _ERROR, k, _pickled_error(e))
                    return 1
                _send(answers, _ANSWER, k, body)
        except Exception as e:  # noqa: BLE001 - from ``start``: raised in the caller
            _send(answers, _ERROR, _NO_ITEM, _pickled_error(e))
            return 1
        return 0
    except SystemExit as e:  # SIGTERM or SIGHUP (_leave)
        return e.code if isinstance(e.code, int) and 0 < e.code < 256 else 1
    except BaseException:  # noqa: BLE001 - e.g. the caller gone (EPIPE): end quietly
        return 1
    finally:
        # the cleanup runs to its end (a signal already caught would raise here, once)
        with contextlib.suppress(BaseException):
            signal.pthread_sigmask(signal.SIG_BLOCK, signals.ENDING)
        if started and stop is not None:
            with contextlib.suppress(BaseException):
                stop()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()


def _pickled_error(e: Exception) -> bytes:
    import traceback  # here: every run imports this module, few have a worker's error

    where = "".join(traceback.format_exception(e))
    try:
        body = pickle.dumps((e, where), pickle.HIGHEST_PROTOCOL)
        pickle.loads(body)  # an error whose class does not rebuild from its pickle...
        return body
    except Exception:  # noqa: BLE001 - ... or does not pickle: its words do
        return pickle.dumps((RuntimeError(f"{type(e).__name__}: {e}"), where), pickle.HIGHEST_PROTOCOL)


def _send(fd: int, kind: int, k: int, body: bytes) -> None:
    view = memoryview(_FRAME.pack(k, kind, len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


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
    for size in _falling(len(items), min(per_job * jobs, MAX_ITEMS)):
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
