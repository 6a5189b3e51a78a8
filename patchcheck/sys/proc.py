"""The one place that runs subprocesses: timeouts, clean errors, neutral environment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from patchcheck.errors import ToolError
from patchcheck.sys.tools import missing_message

DEFAULT_TIMEOUT = 120.0

# Results must not depend on the user's git config (apply.whitespace, core.autocrlf...),
# nor on their locale: GNU patch's messages are parsed.
_NEUTRAL_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
    "LANG": "C",
}


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


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> Result:
    """Run a command; never raises CalledProcessError or a bare OSError.

    With ``check`` a non-zero exit raises ``ToolError`` naming the command and its stderr.
    """
    argv = tuple(str(a) for a in args)
    full_env = {**os.environ, **_NEUTRAL_ENV, **(env or {})}
    try:
        cp = subprocess.run(
            argv,
            cwd=None if cwd is None else Path(cwd),
            input=input,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise ToolError(missing_message(argv[0])) from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"{' '.join(argv[:3])}: timed out after {timeout:.0f}s") from e
    except OSError as e:
        raise ToolError(f"{argv[0]}: {e.strerror or e}") from e
    res = Result(argv, cp.returncode, cp.stdout or b"", cp.stderr or b"")
    if check and not res.ok:
        msg = res.err().strip().splitlines()
        raise ToolError(f"{' '.join(argv[:3])} failed: {msg[-1] if msg else f'exit {res.returncode}'}")
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
            self._p.kill()

    def _expire(self) -> None:
        self.timed_out = True
        self.kill()

    def err_tail(self) -> str:
        """The last line of stderr, for a one-line error."""
        self._err.seek(0)
        lines = self._err.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit {self._p.returncode}"


@contextlib.contextmanager
def stream(
    args: Sequence[str | os.PathLike[str]],
    *,
    feed: IO[bytes] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Stream]:
    """Run a command whose output is too large to buffer (a kernel's git log, a 1 GB
    decompressed tarball): read ``Stream.stdout`` as it arrives.

    ``feed`` is copied to the command's stdin from a thread. After ``timeout`` seconds the
    command is killed and ``timed_out`` set. Leaving the block kills a command still running
    (a reader may stop early on purpose) and reaps it.
    """
    argv = [str(a) for a in args]
    with tempfile.TemporaryFile() as err:
        try:
            p = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, **_NEUTRAL_ENV, **(env or {})},
            )
        except FileNotFoundError as e:
            raise ToolError(missing_message(argv[0])) from e
        except OSError as e:
            raise ToolError(f"{argv[0]}: {e.strerror or e}") from e
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
            p.wait()
            if feeder:
                feeder.join()
            with contextlib.suppress(OSError):
                s.stdout.close()
