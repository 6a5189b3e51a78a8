"""The one place that runs subprocesses: timeouts, clean errors, neutral environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchcheck.errors import ToolError

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
        raise ToolError(f"{argv[0]}: command not found (is it installed?)") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"{' '.join(argv[:3])}: timed out after {timeout:.0f}s") from e
    except OSError as e:
        raise ToolError(f"{argv[0]}: {e.strerror or e}") from e
    res = Result(argv, cp.returncode, cp.stdout or b"", cp.stderr or b"")
    if check and not res.ok:
        msg = res.err().strip().splitlines()
        raise ToolError(f"{' '.join(argv[:3])} failed: {msg[-1] if msg else f'exit {res.returncode}'}")
    return res
