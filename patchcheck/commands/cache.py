"""`patchcheck cache verify | prune`: the series cache, and the tree cache beside it.

The tree cache (``--tree-cache``) holds ``<kind>-<sha256>/`` folders of members read out of
archives, ``keys/`` (an archive's sha256 by path, size and mtime) and ``history/<head>.json``
(git history indexes). Prune touches only names of that shape: a ``--tree-cache`` pointed at
a folder of other things loses none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from patchcheck.commands.common import bugset, cache_dir, make_fetcher, tree_cache
from patchcheck.errors import EXIT_NO_SERIES, EXIT_OK
from patchcheck.sys.lastuse import last_used
from patchcheck.sys.progress import human_size

_ENTRY = re.compile(r"[a-z]+-[0-9a-f]{64}")
_KEY = re.compile(r"[0-9a-f]{64}")
_HISTORY = re.compile(r"[0-9a-f]{40,64}(-shallow-[0-9a-f]{12})?\.json")
_LEFTOVER = re.compile(r"\.tmp-.*")
# a key or temp file younger than this may belong to a run that is writing next to it
_GRACE_SECONDS = 60.0
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``; a bare number is days. In seconds."""
    m = _AGE.fullmatch(text.strip().lower())
    if m is None:
        raise ValueError(f"expected an age like 30d, 12h, 90m or 2w, got {text!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "d"]


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.0f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.0f} hours"


def disk_size(path: Path) -> int:
    """Bytes of the files under ``path`` (or of the file), symlinks not followed, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    paths = [path] if not path.is_dir() or path.is_symlink() else []
    if not paths:
        for root, _dirs, files in os.walk(path):
            paths += [Path(root, n) for n in files]
    for p in paths:
        try:
            st = p.lstat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


@dataclass
class Freed:
    bytes: int = 0
    series: int = 0
    entries: int = 0
    histories: int = 0

    def remove(self, path: Path) -> None:
        self.bytes += disk_size(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def prune_tree_cache(
    root: Path, older_than: float | None, freed: Freed, now: float, moved_to: Path | None = None
) -> list[str]:
    """Entries and history indexes unused for ``older_than`` seconds (none when None), keys
    to archives no entry is left for, and stale temp files; what was removed, in words.

    ``moved_to``: ``root`` is where tree data lived before it had a cache of its own (inside
    the series cache); all of it goes, whatever its age."""
    said: list[str] = []
    if not root.is_dir():
        return said
    if moved_to is not None:
        older_than = 0.0

    def why(idle: float) -> str:
        return f"tree data now lives in {moved_to}" if moved_to is not None else f"unused for {_days(idle)}"

    for p in sorted(root.iterdir()):
        idle = now - last_used(p)
        if older_than is not None and _ENTRY.fullmatch(p.name) and p.is_dir() and idle > older_than:
            freed.remove(p)
            freed.entries += 1
            said.append(f"removed tree cache entry {p.name} ({why(idle)})")
    kept = {p.name.rsplit("-", 1)[1] for p in root.iterdir() if _ENTRY.fullmatch(p.name)}
    history = root / "history"
    for p in sorted(history.iterdir()) if history.is_dir() else []:
        idle = now - last_used(p)
        if older_than is not None and _HISTORY.fullmatch(p.name) and idle > older_than:
            freed.remove(p)
            freed.histories += 1
            said.append(f"removed history index {p.name} ({why(idle)})")
        elif _LEFTOVER.fullmatch(p.name) and idle > _GRACE_SECONDS:
            freed.remove(p)
    keys = root / "keys"
    for p in sorted(keys.iterdir()) if keys.is_dir() else []:
        if (now - last_used(p) <= _GRACE_SECONDS and moved_to is None) or not (
            _KEY.fullmatch(p.name) or _LEFTOVER.fullmatch(p.name)
        ):
            continue
        try:
            orphan = p.read_text("ascii").strip() not in kept
        except (OSError, UnicodeDecodeError):
            orphan = True
        if orphan:
            freed.remove(p)
    if moved_to is not None:
        for d in (keys, history):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: what is not ours stays, and so does its folder
    return said


def _moved_out(cdir: Path, tcache: Path) -> list[Path]:
    """Where a series cache held tree data before the tree cache: ``trees/`` (entries, keys)
    and itself (``history/``); never the tree cache in use."""
    t = tcache.resolve()
    return [d for d in (cdir / "trees", cdir) if d.is_dir() and d.resolve() != t]


def run(args: argparse.Namespace) -> int:
    from patchcheck.fetch.cache import prune_cache, series_dir, verify_cache
    from patchcheck.fetch.verify import verify_selections

    cdir = cache_dir(args)
    if args.cache_verb == "verify":
        problems = verify_cache(cdir)
        _, sel_problems = verify_selections(make_fetcher(argparse.Namespace(**{**vars(args), "offline": True})))
        for entry, why in problems + sel_problems:
            print(f"{entry}: {why}")
        if not problems and not sel_problems:
            print(f"{cdir}: cache is sound")
        return EXIT_NO_SERIES if problems or sel_problems else EXIT_OK
    # entries are keyed by msgid; a fix with a local mbox has none
    keep = {f.msgid for b in bugset(args).all() for f in b.fixes if f.mbox is None and f.msgid}
    freed = Freed()
    sizes = {e.name: disk_size(e) for e in series_dir(cdir).iterdir()} if series_dir(cdir).is_dir() else {}
    for entry in prune_cache(cdir, keep):
        freed.series += 1
        freed.bytes += sizes.get(entry, 0)
        print(f"removed {entry}")
    tcache, now = tree_cache(args), time.time()
    for old in _moved_out(cdir, tcache):
        for line in prune_tree_cache(old, None, freed, now, moved_to=tcache):
            print(line)
        if old != cdir:
            with contextlib.suppress(OSError):
                old.rmdir()
    for line in prune_tree_cache(tcache, args.older_than, freed, now):
        print(line)
    print(
        f"freed {human_size(freed.bytes)}: {freed.series} series, {freed.entries} tree cache entries, "
        f"{freed.histories} history indexes"
    )
    if args.older_than is None and tcache.is_dir():
        print(
            f"kept the tree cache {tcache} ({human_size(disk_size(tcache))}); "
            "--older-than AGE drops what is unused"
        )
    return EXIT_OK
