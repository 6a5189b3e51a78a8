"""What to do when series could not be obtained: hint lines that name the bugs and the exact
command, printed by the verbs after the report (the errors themselves stay one line each)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from patchcheck.errors import SeriesError


def fetch_command(bug_ids: Sequence[str], options: Sequence[str]) -> str:
    """``patchcheck fetch --bug A --bug B`` with the options that pick the same bugs and cache."""
    return shlex.join(["patchcheck", "fetch", *(a for b in bug_ids for a in ("--bug", b)), *options])


def series_hints(failed: Iterable[tuple[str, SeriesError]], options: Sequence[str], lore_url: str) -> list[str]:
    """One line each (without the ``hint: `` prefix), for the (bug id, error) pairs whose
    ``reason`` a user can act on."""
    by_reason: dict[str | None, dict[str, None]] = {}
    for bug_id, err in failed:
        by_reason.setdefault(err.reason, {})[bug_id] = None
    out: list[str] = []
    missing = list(by_reason.get(SeriesError.NOT_CACHED, {}))
    if missing:
        out.append(f"fetch while online, then run again: {fetch_command(missing, options)}")
    gone = list(by_reason.get(SeriesError.UNREACHABLE, {}))
    if gone:
        out.append(
            f"{lore_url} did not answer: fill the cache while online ({fetch_command(gone, options)}) and add "
            '--offline, point --lore-url at a mirror, or give the bug file mbox = "FILE" with the series'
        )
    return out
