"""The one git helper of the tests: build real repositories with a neutral git.

Neutral: no user or system configuration (a maintainer's commit signing, hooks, templates or
default branch must not change what a test builds), a fixed identity, and none of the GIT_*
variables a caller may have set (run from a git hook, GIT_DIR would point every command at the
outer repository).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from testing.kfixtures import write_tree

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.org",
}


def neutral_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C", **IDENTITY}


def git(repo: Path, *args: str, input: str | None = None) -> str:
    """Run ``git ARGS`` in ``repo``; its standard output without the trailing newline.

    A failing command raises CalledProcessError (its stderr is captured on the exception)."""
    cp = subprocess.run(
        ["git", *args], cwd=repo, env=neutral_env(), input=input, text=True, capture_output=True, check=True
    )
    return cp.stdout.strip()


def commit(repo: Path, message: str, files: Mapping[str, str | bytes] | None = None) -> str:
    """Write ``files`` (relative path -> content) and commit exactly them, or with no ``files``
    everything in the work tree; the new commit's sha."""
    if files:
        write_tree(repo, files)
        git(repo, "add", "--", *files)
    else:
        git(repo, "add", "-A")
    git(repo, "commit", "-q", "-F", "-", input=message)
    return git(repo, "rev-parse", "HEAD")


def init(repo: Path, files: Mapping[str, str | bytes] | None = None, message: str = "base") -> str:
    """A new repository at ``repo`` on branch ``main`` with one commit of ``files`` (or of what
    is already there); that commit's sha."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    return commit(repo, message, files)
