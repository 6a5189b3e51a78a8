"""Where things live: options first, then environment variables, then defaults."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from patchcheck.bugs.load import default_bugs_dir
from patchcheck.errors import BadInput
from patchcheck.text.units import parse_size

DEFAULT_LORE_URL = "https://lore.kernel.org"


def _env_path(name: str) -> Path | None:
    v = os.environ.get(name)
    return Path(v) if v else None


def bugs_dirs(opts: Sequence[Path] | None, shipped: bool = True) -> tuple[Path, ...]:
    """The bug folders of a run: the shipped known_bugs/ (unless ``shipped`` is false), then
    each --bugs-dir, or else each folder of PATCHCHECK_BUGS_DIR (``os.pathsep``-separated).
    A folder named twice counts once."""
    given = list(opts or [])
    if not given:
        given = [Path(p) for p in os.environ.get("PATCHCHECK_BUGS_DIR", "").split(os.pathsep) if p]
    if not shipped and not given:
        raise BadInput("--no-shipped-bugs leaves no known bugs: give --bugs-dir DIR (or PATCHCHECK_BUGS_DIR)")
    dirs = [default_bugs_dir(), *given] if shipped else given
    seen: set[Path] = set()
    out: list[Path] = []
    for d in dirs:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return tuple(out)


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


def max_member_bytes(opt: str | None) -> int | None:
    """--max-member-bytes, else PATCHCHECK_MAX_MEMBER_BYTES, else None (the trees' default):
    bytes, or with a K/M/G/T suffix (powers of 1024; "512M", "2GiB")."""
    raw = opt or os.environ.get("PATCHCHECK_MAX_MEMBER_BYTES")
    if not raw:
        return None
    where = "--max-member-bytes" if opt else "PATCHCHECK_MAX_MEMBER_BYTES"
    try:
        return parse_size(raw)
    except ValueError as e:
        raise BadInput(f"{where}: {e}") from None


def log_dir() -> Path:
    """Where internal-error logs go: ``$XDG_STATE_HOME/patchcheck/logs`` (~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "patchcheck" / "logs"


def shipped_bugs(no_shipped: bool) -> bool:
    """Whether the shipped known bugs take part: not with --no-shipped-bugs, nor with
    PATCHCHECK_NO_SHIPPED_BUGS=1 (a packaging repository's CI that checks its own bugs only)."""
    env = os.environ.get("PATCHCHECK_NO_SHIPPED_BUGS", "").strip().lower()
    return not (no_shipped or env in ("1", "yes", "true"))
