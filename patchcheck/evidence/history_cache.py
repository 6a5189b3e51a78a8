"""The on-disk cache of a history index: ``<tree cache>/history/<head>.json``.

Shas are written once: the other tables point into the sorted ``commits`` list by position.
A damaged or foreign file reads as absent (the index is rebuilt); a cache folder that cannot
be written only costs time.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchcheck.sys.atomic import atomic_file
from patchcheck.sys.lastuse import mark_used

CACHE_FORMAT = 3  # 2: reverts found by subject too; 3: CVE lines


@dataclass(frozen=True)
class Tables:
    """One HEAD's history index."""

    commits: list[str]  # every commit reachable from HEAD, sorted
    subjects: dict[str, str]  # normalised subject -> newest commit with it
    backports: dict[str, tuple[str, str]]  # upstream sha -> (local commit, trailer form)
    reverted: dict[str, str]  # reverted commit -> the commit that reverted it
    cves: dict[str, str]  # CVE id a line of its own names -> newest commit naming it


def cache_path(cache_dir: Path, git_dir: Path, head: str) -> Path:
    # A sha names its whole history, except in a shallow clone, where history stops at the
    # commits its "shallow" file lists: such an index must not serve a full clone.
    try:
        shallow = (git_dir / "shallow").read_bytes()
    except OSError:
        return cache_dir / "history" / f"{head}.json"
    digest = hashlib.sha1(shallow).hexdigest()[:12]
    return cache_dir / "history" / f"{head}-shallow-{digest}.json"


def write(path: Path, head: str, t: Tables) -> None:
    pos = {sha: i for i, sha in enumerate(t.commits)}
    doc = {
        "format": CACHE_FORMAT,
        "head": head,
        "commits": t.commits,
        "subjects": {s: pos[c] for s, c in t.subjects.items()},
        "backports": {u: [pos[c], f] for u, (c, f) in t.backports.items()},
        "reverted": {r: pos[c] for r, c in t.reverted.items()},
        "cves": {v: pos[c] for v, c in t.cves.items()},
    }
    try:
        # readers see the old file or the whole new one; streamed, the index can be large
        with atomic_file(path) as fb:
            fh = io.TextIOWrapper(fb, encoding="utf-8")
            json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            fh.detach()  # atomic_file closes the underlying file
    except OSError:
        pass  # the cache only saves time; a read-only cache dir must not fail the run


def read(path: Path, head: str) -> Tables | None:
    try:
        with open(path, encoding="utf-8") as fh:
            doc: Any = json.load(fh)
        if doc.get("format") != CACHE_FORMAT or doc.get("head") != head:
            return None
        commits: list[str] = doc["commits"]
        tables = Tables(
            commits,
            subjects={s: commits[i] for s, i in doc["subjects"].items()},
            backports={u: (commits[i], f) for u, (i, f) in doc["backports"].items()},
            reverted={r: commits[i] for r, i in doc["reverted"].items()},
            cves={v: commits[i] for v, i in doc["cves"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None  # missing or damaged: rebuild
    mark_used(path)  # for cache prune --older-than
    return tables
