"""Helpers shared by the verbs: resolving options into the pipeline's objects."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck import config
from patchcheck.bugs.load import SEVERITY_RANK, BugSet, load_bugs
from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch.hints import series_hints
from patchcheck.model import Bug

if TYPE_CHECKING:
    from patchcheck.fetch.fetcher import Fetcher


def bugset(args: argparse.Namespace) -> BugSet:
    return load_bugs(config.bugs_dir(args.bugs_dir))


def cache_dir(args: argparse.Namespace) -> Path:
    return config.cache_dir(args.cache_dir)


def tree_cache(args: argparse.Namespace) -> Path:
    return config.tree_cache(args.tree_cache)


def fetch_options(args: argparse.Namespace) -> list[str]:
    """The options given that a ``patchcheck fetch`` of the same bugs into the same cache repeats."""
    out: list[str] = []
    for opt, value in (
        ("--bugs-dir", args.bugs_dir),
        ("--cache-dir", args.cache_dir),
        ("--lore-url", args.lore_url),
    ):
        if value:
            out += [opt, str(value)]
    return out


def print_series_hints(args: argparse.Namespace, failed: list[tuple[str, SeriesError]]) -> None:
    """After the report, on stderr: what to do about series that could not be obtained."""
    for line in series_hints(failed, fetch_options(args), config.lore_url(args.lore_url)):
        print(f"hint: {line}", file=sys.stderr)


def select_bugs(args: argparse.Namespace, bugs: BugSet) -> list[Bug]:
    """--bug / --all, then the --subsystem / --severity / --cve filters."""
    ids: list[str] = args.bug
    if ids and args.all:
        raise BadInput("give either --bug ID ... or --all, not both")
    if ids:
        chosen = bugs.select(dict.fromkeys(ids))
    elif args.all or not args.need_selection or args.subsystem or args.severity or args.cve:
        chosen = bugs.all()
    else:
        raise BadInput("which bugs? give --bug ID (repeatable) or --all")
    if args.subsystem:
        chosen = [b for b in chosen if b.subsystem in args.subsystem]
    if args.severity:
        chosen = [b for b in chosen if b.severity in args.severity]
    if args.cve:
        want = {c.upper() for c in args.cve}
        chosen = [b for b in chosen if want & set(b.cves)]
    if not chosen:
        raise BadInput("no known bug matches the given filters")
    return chosen


def at_least(bug: Bug, min_severity: str) -> bool:
    return SEVERITY_RANK[bug.severity] >= SEVERITY_RANK[min_severity]


def make_fetcher(args: argparse.Namespace) -> Fetcher:
    from patchcheck.fetch.fetcher import Fetcher
    from patchcheck.fetch.limits import Limits

    a = args
    limits = Limits.resolve(a.max_answer_bytes, a.max_thread_bytes, a.max_thread_mails, a.max_mbox_bytes)
    return Fetcher(
        cache_dir(args), config.lore_url(args.lore_url), offline=args.offline, timeout=args.timeout, limits=limits
    )
