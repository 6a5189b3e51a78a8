"""Sizes as users write them in options and environment variables: ``64M``, ``2GiB``."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", re.I)


def parse_size(text: str) -> int:
    """``1048576``, ``64M``, ``64MiB``, ``2G`` -> bytes (binary units). ValueError if not one."""
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise ValueError(f"expected a size such as 1048576, 64M or 2G, got {text!r}")
    n = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if n < 1:
        raise ValueError(f"expected a size of at least 1 byte, got {text!r}")
    return n


def format_size(n: int) -> str:
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} bytes"
