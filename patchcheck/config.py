"""Where things live: options first, then environment variables, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

from patchcheck.bugs.load import default_bugs_dir
from patchcheck.errors import BadInput

DEFAULT_LORE_URL = "https://lore.kernel.org"


def _env_path(name: str) -> Path | None:
    v = os.environ.get(name)
    return Path(v) if v else None


def bugs_dir(opt: Path | None) -> Path:
    return opt or _env_path("PATCHCHECK_BUGS_DIR") or default_bugs_dir()


def cache_dir(opt: Path | None) -> Path:
    """``cache/`` of the current checkout if there is one, else the XDG cache."""
    explicit = opt or _env_path("PATCHCHECK_CACHE_DIR")
    if explicit:
        return explicit
    here = Path.cwd() / "cache"
    if here.is_dir():
        return here
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "patchcheck"


def lore_url(opt: str | None) -> str:
    return (opt or os.environ.get("PATCHCHECK_LORE_URL") or DEFAULT_LORE_URL).rstrip("/")


def trees_file(opt: Path | None) -> Path | None:
    return opt or _env_path("PATCHCHECK_TREES")


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def max_member_bytes(opt: str | None) -> int | None:
    """--max-member-bytes, else PATCHCHECK_MAX_MEMBER_BYTES, else None (the trees' default):
    bytes, or with a K/M/G/T suffix (powers of 1024; "512M", "2GiB")."""
    raw = opt or os.environ.get("PATCHCHECK_MAX_MEMBER_BYTES")
    if not raw:
        return None
    where = "--max-member-bytes" if opt else "PATCHCHECK_MAX_MEMBER_BYTES"
    text = raw.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    number = text[: len(text) - len(unit)].strip()
    if not number.isdigit() or int(number) == 0:
        raise BadInput(f"{where}: {raw!r} is not a size; expected bytes, or a number with K, M or G (e.g. 512M)")
    return int(number) * _SIZE_UNITS[unit]
