"""``patchcheck cache verify`` for stored selections: a warm run builds its Series from them
without b4, so each one still trusted (same format, same thread bytes) must be exactly what its
thread gives. Stale ones (another patchcheck, a re-fetched thread) are ignored and rewritten
on use, so they are no problem; unreadable ones and ones that differ from the thread are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patchcheck.errors import SeriesError
from patchcheck.fetch import cache
from patchcheck.fetch.fetcher import Fetcher
from patchcheck.fetch.http import one_line
from patchcheck.fetch.mail import mboxrd
from patchcheck.fetch.select import Selection
from patchcheck.model import Fix

_REBUILT = "; delete it and the next run rebuilds it from thread.mbox"


def verify_selections(fetcher: Fetcher) -> tuple[int, list[tuple[str, str]]]:
    """(selections checked, [(entry/file, problem)]) over the series cache of ``fetcher``
    (an offline one: the threads come from the cache). Entries that are themselves unsound
    are left to ``cache.verify_cache``."""
    sdir = cache.series_dir(fetcher.cache_dir)
    checked = 0
    problems: list[tuple[str, str]] = []
    if not sdir.is_dir():
        return checked, problems
    for entry in sorted(sdir.iterdir()):
        if entry.name.startswith(cache.TMP_PREFIX) or not entry.is_dir():
            continue
        files = sorted(entry.glob("sel-*.json"))
        res = cache.check_entry(entry, None) if files else "no selections"
        if isinstance(res, str) or not isinstance(res[1].get("msgid"), str):
            continue
        for path in files:
            checked += 1
            why = _check(fetcher, path, res[1])
            if why is not None:
                problems.append((f"{entry.name}/{path.name}", why))
    return checked, problems


def _check(fetcher: Fetcher, path: Path, meta: dict[str, Any]) -> str | None:
    try:
        payload = cache.unseal(path.read_bytes())
        if payload is None:
            return f"damaged selection (its checksum does not match){_REBUILT}"
        doc = json.loads(payload)
        key = doc["key"]
        numbers = key["patches"]
        fix = Fix(
            msgid=meta["msgid"],
            revision=None if key["revision"] is None else int(key["revision"]),
            patches=tuple(int(n) for n in numbers) if numbers else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"unreadable selection ({one_line(e)}){_REBUILT}"
    if cache.selection_name(fix) != path.name:
        return f"holds the selection of {cache.selection_name(fix)}, not its own{_REBUILT}"
    if key != cache.selection_key(fix) or doc.get("sha256") != meta.get("sha256"):
        return None  # stale: never read, rewritten on use
    stored = cache.read_selection(fetcher.cache_dir, fix)
    if stored is None:
        am = path.parent / str(doc.get("am_mbox"))
        return None if not am.is_file() else f"damaged selection (cannot be read back){_REBUILT}"
    try:
        fresh = fetcher.derive(fix)
    except SeriesError as e:
        return f"its thread gives no such selection now ({e}){_REBUILT}"
    why = _differs(stored, fresh)
    if why is None:
        try:
            am_ok = stored.am_mbox.read_bytes() == mboxrd(fresh.raws)
        except OSError as e:
            return f"{stored.am_mbox.name} unreadable ({e.strerror or e})"
        why = None if am_ok else f"{stored.am_mbox.name} differs"
    return None if why is None else f"does not match thread.mbox: {why}{_REBUILT}"


def _differs(stored: cache.StoredSelection, fresh: Selection) -> str | None:
    for what, a, b in (
        ("revision", stored.revision, fresh.revision),
        ("subject", stored.subject, fresh.subject),
        ("note", stored.note, fresh.note),
        ("number of patches", len(stored.patches), len(fresh.patches)),
    ):
        if a != b:
            return f"{what} {a!r} where the thread gives {b!r}"
    for i, (p, q) in enumerate(zip(stored.patches, fresh.patches, strict=True), 1):
        for field in (
            "msgid",
            "subject",
            "author",
            "counter",
            "expected",
            "diff",
            "upstream",
            "fixes",
            "links",
            "cves",
        ):
            if getattr(p, field) != getattr(q, field):
                return f"patch {i} ({q.msgid}): its {field} differs"
    return None
