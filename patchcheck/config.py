"""Where things live: options first, then environment variables, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

from patchcheck.bugs.load import default_bugs_dir

DEFAULT_LORE_URL = "https://lore.kernel.org"


def _env_path(name: str) -> Path | None:
    v = os.environ.get(name)
    return Path(v) if v else None


def bugs_dir(opt: Path | None) -> Path:
    return opt or _env_path("PATCHCHECK_BUGS_DIR") or default_bugs_dir()


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patchcheck"


def cache_dir(opt: Path | None) -> Path:
    """Where fetched series are kept: ``cache/`` of the current checkout if there is one (it
    may be committed, so it holds series only), else the XDG cache."""
    explicit = opt or _env_path("PATCHCHECK_CACHE_DIR")
    if explicit:
        return explicit
    here = Path.cwd() / "cache"
    if here.is_dir():
        return here
    return _user_cache()


def tree_cache(opt: Path | None) -> Path:
    """Where what is derived from trees is kept (archive members, applied patch queues, git
    history indexes): hundreds of MB per kernel, never in a committable ``cache/``."""
    return opt or _env_path("PATCHCHECK_TREE_CACHE") or _user_cache() / "trees"


def lore_url(opt: str | None) -> str:
    return (opt or os.environ.get("PATCHCHECK_LORE_URL") or DEFAULT_LORE_URL).rstrip("/")


def trees_file(opt: Path | None) -> Path | None:
    return opt or _env_path("PATCHCHECK_TREES")
