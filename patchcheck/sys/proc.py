"""The one place that runs subprocesses: timeouts, bounded output, clean errors, neutral
environment, and no child outliving patchcheck.

Each command runs in its own process group (a session), so a timeout or the end of the run
stops the command *and* whatever it started; a group is asked with SIGTERM first and
killed with SIGKILL when it does not go within ``GRACE`` seconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from patchcheck.errors import ToolError
from patchcheck.sys import workers
from patchcheck.sys.tools import missing_message

DEFAULT_TIMEOUT = 120.0
GRACE = 1.0  # seconds between SIGTERM and SIGKILL
DEFAULT_MAX_OUTPUT = 1 << 30  # stdout held in memory; more is an error, not an OOM
_ERR_KEEP = 64 << 10  # stderr is only ever shown as its last lines: keep its tail
_CHUNK = 1 << 16

# Results must not depend on the user's locale: GNU patch's messages are parsed.
# (git's own neutral config and environment are sys/git.py's business.)
_NEUTRAL_ENV = {"LC_ALL": "C", "LANG": "C"}

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = False


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def _environment(env: Mapping[str, str] | None, inherit_env: bool) -> dict[str, str]:
    base = dict(os.environ) if inherit_env else {}
    return {**base, **_NEUTRAL_ENV, **(env or {})}


def _label(argv: Sequence[str]) -> str:
    return " ".join(argv[:3])


def _start(
    argv: list[str],
    *,
    cwd: str | os.PathLike[str] | None,
    stdin: int,
    stderr: int | IO[bytes],
    env: dict[str, str],
    here: bool = False,
) -> subprocess.Popen[bytes]:
    """Popen in a new session, registered so that ``terminate_all`` can reach it. ``here``:
    a short command this thread is about to wait for; while a fork_map keeps every core
    busy, it starts on this thread's CPU.

    Left free then, the scheduler may start it on another core, busy with a process of
    ours, while this one sits idle waiting for it (measured: 2.3 ms per git apply instead
    of 0.3 in a release audit with -j 2). The command inherits the narrowed mask as it
    starts; then the thread and the command's first thread get the whole mask back."""
    with _live_lock:
        if _stopping:
            raise ToolError(f"{_label(argv)}: not started, patchcheck is stopping")
        mask = _hold_cpu() if here and workers.busy() else None
        try:
            p = subprocess.Popen(
                argv,
                cwd=None if cwd is None else Path(cwd),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise ToolError(missing_message(argv[0])) from e
        except OSError as e:
            raise ToolError(f"{argv[0]}: {e.strerror or e}") from e
        finally:
            if mask is not None:
                _set_mask(0, mask)
        _live.add(p)
    if mask is not None:
        _set_mask(p.pid, mask)
    return p


def _hold_cpu() -> set[int] | None:
    """This thread held to the CPU it runs on; its mask before (None: not held, as on a
    system without /proc or CPU masks)."""
    try:
        with open("/proc/thread-self/stat", "rb") as fh:
            cpu = int(fh.read().rsplit(b")", 1)[1].split()[36])  # field 39, "processor"
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    return mask


def _set_mask(pid: int, mask: set[int]) -> None:
    # a command may have ended already, a CPU set may have changed: nothing to undo then
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, mask)


def _signal_group(p: subprocess.Popen[bytes], sig: int) -> None:
    # the child leads its own session: its pid is its process group id
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)


def _stop(p: subprocess.Popen[bytes], grace: float = GRACE) -> None:
    """End ``p`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    try:
        if p.poll() is None:
            _signal_group(p, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(grace)
        # the leader may be gone while what it started still runs in the group
        _signal_group(p, signal.SIGKILL)
        p.wait()
    finally:
        with _live_lock:
            _live.discard(p)


def request_stop() -> None:
    """From a signal handler: refuse new commands and ask every running one to end.
    Takes no lock (the interrupted main thread may hold it); ``terminate_all`` finishes."""
    global _stopping
    _stopping = True
    for p in list(_live):  # one C call under the GIL: no concurrent change seen
        _signal_group(p, signal.SIGTERM)


def terminate_all() -> None:
    """Stop every command still running and refuse new ones: the run is ending (a signal,
    Ctrl-C). Worker threads waiting on a command get its failure and wind down."""
    global _stopping
    with _live_lock:
        _stopping = True
        live = list(_live)
    for p in live:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    for p in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
    for p in live:
        _signal_group(p, signal.SIGKILL)


def resume() -> None:
    """Accept commands again (after ``main`` returned: a caller may run it once more)."""
    global _stopping
    _stopping = False


class _Timeout(Exception):
    pass


class _TooBig(Exception):
    pass


def _communicate(
    p: subprocess.Popen[bytes], data: bytes | None, deadline: float, max_output: int | None
) -> tuple[bytes, bytes]:
    """Feed ``data``, collect stdout (at most ``max_output`` bytes) and the tail of stderr,
    until both pipes close; raises _Timeout past ``deadline`` and _TooBig past the cap."""
    assert p.stdout is not None and p.stderr is not None
    out, err = bytearray(), bytearray()
    view = memoryview(data or b"")
    pos = 0
    with selectors.DefaultSelector() as sel:
        if p.stdin is not None:
            if view:
                os.set_blocking(p.stdin.fileno(), False)
                sel.register(p.stdin, selectors.EVENT_WRITE)
            else:
                p.stdin.close()
        sel.register(p.stdout, selectors.EVENT_READ)
        sel.register(p.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            for key, _ in sel.select(left):
                f = key.fileobj
                if f is p.stdin:
                    try:
                        pos += os.write(p.stdin.fileno(), view[pos : pos + _CHUNK])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pos = len(view)  # the command stopped reading: not our error
                    if pos >= len(view):
                        sel.unregister(p.stdin)
                        with contextlib.suppress(BrokenPipeError):
                            p.stdin.close()
                    continue
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(f)
                    continue
                if f is p.stdout:
                    out += chunk
                    if max_output is not None and len(out) > max_output:
                        raise _TooBig
                else:
                    err += chunk
                    if len(err) > 2 * _ERR_KEEP:
                        del err[:-_ERR_KEEP]
    return bytes(out), bytes(err)


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (None: not Linux, too old a kernel), opened before another thread
    (terminate_all) could reap it and its pid be reused."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait_exit(p: subprocess.Popen[bytes], pidfd: int | None, deadline: float) -> None:
    """Wait until ``p``, whose pipes have closed, has ended (TimeoutExpired past
    ``deadline``). Popen.wait's timed wait polls, sleeping in growing steps: it wakes up to
    several ms after the end, most often when every core is busy (a release audit's
    workers) and the command ends late. Its pidfd wakes us at the end."""
    left = max(0.0, deadline - time.monotonic())
    if pidfd is None:
        p.wait(left)
        return
    poll = select.poll()  # not select(): a run with many files open has fds >= 1024
    poll.register(pidfd, select.POLLIN)
    if not poll.poll(math.ceil(left * 1000)):
        raise subprocess.TimeoutExpired(p.args, left)
    p.wait()  # it has ended: this only reaps it


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    max_output: int | None = DEFAULT_MAX_OUTPUT,
    inherit_env: bool = True,
) -> Result:
    """Run a command; never raises CalledProcessError or a bare OSError.

    A command still running after ``timeout`` seconds, or writing more than ``max_output``
    bytes to stdout, is stopped (with what it started) and raises ``ToolError``. Without
    ``inherit_env`` the command sees only ``env`` (plus the neutral locale).
    With ``check`` a non-zero exit raises ``ToolError`` naming the command and its stderr.
    """
    argv = [str(a) for a in args]
    p = _start(
        argv,
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_environment(env, inherit_env),
        here=True,
    )
    pidfd: int | None = None
    try:
        pidfd = _pidfd(p.pid)
        deadline = time.monotonic() + timeout
        stdout, stderr = _communicate(p, input, deadline, max_output)
        _wait_exit(p, pidfd, deadline)
    except (_Timeout, subprocess.TimeoutExpired):
        raise ToolError(f"{_label(argv)}: timed out after {timeout:g}s") from None
    except _TooBig:
        raise ToolError(f"{_label(argv)}: more than {max_output} bytes of output; refused") from None
    finally:
        # also on Ctrl-C / SIGTERM unwinding through here: the command must not outlive us
        if pidfd is not None:
            os.close(pidfd)
        _stop(p)
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
    res = Result(tuple(argv), p.returncode, stdout, stderr)
    if check and not res.ok:
        msg = res.err().strip().splitlines()
        raise ToolError(f"{_label(argv)} failed: {msg[-1] if msg else f'exit {res.returncode}'}")
    return res


class Stream:
    """A running command whose output is read as it comes (see ``stream``)."""

    def __init__(self, popen: subprocess.Popen[bytes], err: IO[bytes]) -> None:
        self._p = popen
        self._err = err
        self.timed_out = False
        assert popen.stdout is not None
        self.stdout: IO[bytes] = popen.stdout

    def wait(self) -> int:
        return self._p.wait()

    def kill(self) -> None:
        if self._p.poll() is None:
            _signal_group(self._p, signal.SIGKILL)

    def _expire(self) -> None:
        self.timed_out = True
        self.kill()

    def err_tail(self) -> str:
        """The last line of stderr, for a one-line error."""
        self._err.seek(0, os.SEEK_END)
        self._err.seek(max(0, self._err.tell() - _ERR_KEEP))
        lines = self._err.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit {self._p.returncode}"


@contextlib.contextmanager
def stream(
    args: Sequence[str | os.PathLike[str]],
    *,
    feed: IO[bytes] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    inherit_env: bool = True,
) -> Iterator[Stream]:
    """Run a command whose output is too large to buffer (a kernel's git log, a 1 GB
    decompressed tarball): read ``Stream.stdout`` as it arrives.

    ``feed`` is copied to the command's stdin from a thread. After ``timeout`` seconds the
    command is killed and ``timed_out`` set. Leaving the block kills a command still running
    (a reader may stop early on purpose) and reaps it.
    """
    argv = [str(a) for a in args]
    with tempfile.TemporaryFile() as err:
        p = _start(
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stderr=err,
            env=_environment(env, inherit_env),
        )
        s = Stream(p, err)
        feeder: threading.Thread | None = None
        if feed is not None:
            stdin = p.stdin
            assert stdin is not None

            def copy() -> None:
                try:
                    while chunk := feed.read(1 << 20):
                        stdin.write(chunk)
                except (BrokenPipeError, ValueError, OSError):
                    pass  # the command stopped early (its reader had enough) or failed
                finally:
                    with contextlib.suppress(OSError):
                        stdin.close()

            feeder = threading.Thread(target=copy, daemon=True)
            feeder.start()
        timer = threading.Timer(timeout, s._expire) if timeout else None
        if timer:
            timer.start()
        try:
            yield s
        finally:
            if timer:
                timer.cancel()
            s.kill()
            _stop(p, grace=0)
            if feeder:
                feeder.join()
            with contextlib.suppress(OSError):
                s.stdout.close()
