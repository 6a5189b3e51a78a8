"""When a cache entry was last used, for ``patchcheck cache prune --older-than``.

A use is stamped on the entry's modification time, at most once an hour: access times are
refreshed by anything that lists or reads the cache (du, backups, prune itself), and a warm
run still writes nothing within the hour.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PRECISION_SECONDS = 3600.0


def mark_used(path: Path) -> None:
    """Stamp ``path`` (a cache folder or file) as used now, unless it was within the hour; a
    cache that cannot be written only loses the stamp."""
    with contextlib.suppress(OSError):
        if time.time() - os.stat(path).st_mtime > PRECISION_SECONDS:
            os.utime(path)


def last_used(path: Path) -> float:
    """Seconds since the epoch of the last use (or write) of ``path``; 0 when it is gone."""
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0
