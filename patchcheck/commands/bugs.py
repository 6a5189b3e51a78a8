"""`patchcheck bugs list | show ID | validate`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tabulate import tabulate

from patchcheck.bugs.load import BugSet
from patchcheck.commands import common
from patchcheck.commands.common import Sources
from patchcheck.errors import BugFileError
from patchcheck.model import Bug


def _show(b: Bug) -> str:
    lines = [
        f"{b.id}: {b.title}",
        f"  severity:   {b.severity}",
        f"  subsystem:  {b.subsystem or '-'}",
        f"  cves:       {', '.join(b.cves) or '-'}",
        f"  affects:    {', '.join(b.affects) or '-'}",
        f"  file:       {b.path}",
    ]
    for r in b.references:
        lines.append(f"  reference:  {r}")
    if b.signature:
        lines.append(
            f"  signature:  {' <- '.join(b.signature.functions) or '-'}"
            + (f" / {b.signature.message!r}" if b.signature.message else "")
        )
    for i, f in enumerate(b.fixes, 1):
        kind = "optional" if f.optional else "required"
        lines.append(f"  fix {i} ({kind}): {f.label}")
        if f.patches:
            lines.append(f"      patches:  {', '.join(map(str, f.patches))}")
        if f.revision:
            lines.append(f"      revision: v{f.revision}")
        if f.upstream:
            lines.append(f"      upstream: {', '.join(f.upstream)}")
        if f.introduced_by:
            lines.append(f"      introduced_by: {', '.join(f.introduced_by)}")
        if f.note:
            lines.append(f"      note:     {f.note}")
    return "\n".join(lines)


def _check_local_mboxes(bugs: BugSet) -> None:
    """``mbox = ...`` must name a file that is there (loading alone does not look)."""
    for b in bugs.all():
        for i, f in enumerate(b.fixes, 1):
            if f.mbox is None or f.mbox.is_file():
                continue
            why = "not a regular file" if f.mbox.exists() else "no such file"
            raise BugFileError(
                b.path, f"fix[{i}].mbox", f"{f.mbox}: {why} (expected an mbox file, relative to the bug file)"
            )


@dataclass(frozen=True)
class BugsOptions:
    action: str  # list | show | validate
    bug_id: str | None
    sources: Sources


def options(args: argparse.Namespace) -> BugsOptions:
    return BugsOptions(args.bugs_verb, getattr(args, "id", None), common.sources(args))


def run(args: argparse.Namespace) -> int:
    return execute(options(args))


def execute(opts: BugsOptions) -> int:
    bugs = common.known_bugs(opts.sources)  # loading validates strictly: the first bad file raises (exit 2)
    if opts.action == "list":
        rows = [
            (
                b.id,
                b.severity,
                b.subsystem,
                ", ".join(b.cves) or "-",
                f"{len(b.required_fixes)}+{len(b.fixes) - len(b.required_fixes)}",
                b.title,
            )
            for b in bugs.all()
        ]
        print(tabulate(rows, headers=["id", "severity", "subsystem", "cves", "fixes", "title"]))
    elif opts.action == "show":
        assert opts.bug_id is not None  # argparse requires it
        print(_show(bugs.get(opts.bug_id)))
    else:
        _check_local_mboxes(bugs)
        print(f"{len(bugs.bugs)} known-bug file(s) in {bugs.directory}: all valid")
    return 0
