"""No test reaches lore.kernel.org: the archive every run talks to is the test's own
public-inbox server on 127.0.0.1, or this address, where nothing listens (port 9, discard),
so a run that forgets ``--lore-url`` fails fast with "connection refused" instead of going
to the real archive (patchcheck's default)."""

from __future__ import annotations

import os

NO_LORE = "http://127.0.0.1:9"


def child_env(drop: tuple[str, ...] = ("PATCHCHECK_",), **extra: str) -> dict[str, str]:
    """This process's environment without the variables that start with ``drop``, the lore
    guard put back, then ``extra``: for a patchcheck started by a test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "PATCHCHECK_LORE_URL": NO_LORE, **extra}
