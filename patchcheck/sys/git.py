"""Every git invocation goes through here (on top of proc.run)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from patchcheck.sys import proc


def git(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    git_dir: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    timeout: float = proc.DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
    check: bool = False,
) -> proc.Result:
    pre: list[str | os.PathLike[str]] = ["git", "-c", "core.quotepath=off", "-c", "apply.whitespace=nowarn"]
    if git_dir is not None:
        pre += ["--git-dir", str(git_dir)]
    return proc.run([*pre, *args], cwd=cwd, input=input, timeout=timeout, env=env, check=check)


def is_git_checkout(path: str | os.PathLike[str]) -> bool:
    return os.path.exists(os.path.join(path, ".git"))
