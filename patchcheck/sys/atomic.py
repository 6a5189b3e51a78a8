"""Atomic file writes: every cache file is written here, so a killed or failed run never
leaves half a file where a later run would trust it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_file(path: Path, prefix: str = ".tmp-") -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` (via rename) only when the block ends cleanly;
    on any failure the temp file is removed and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes, prefix: str = ".tmp-") -> None:
    with atomic_file(path, prefix) as f:
        f.write(data)
