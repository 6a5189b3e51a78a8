"""`patchcheck bugs list | show ID | validate`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from tabulate import tabulate

from patchcheck.bugs.load import BugFileErrors, BugSet, scan_bugs
from patchcheck.commands import common
from patchcheck.commands.common import Sources
from patchcheck.errors import EXIT_BAD_INPUT, EXIT_OK, BugFileError
from patchcheck.model import Bug
from patchcheck.report._common import plural


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


def _missing_mboxes(bugs: BugSet) -> list[BugFileError]:
    """``mbox = ...`` must name a file that is there (loading alone does not look)."""
    out = []
    for b in bugs.all():
        for i, f in enumerate(b.fixes, 1):
            if f.mbox is None or f.mbox.is_file():
                continue
            why = "not a regular file" if f.mbox.exists() else "no such file"
            out.append(
                BugFileError(
                    b.path, f"fix[{i}].mbox", f"{f.mbox}: {why} (expected an mbox file, relative to the bug file)"
                )
            )
    return out


def validate(src: Sources) -> int:
    """Every error of every bug file, one line each on stderr; exit 2 if there is any."""
    bugs, bad_files = scan_bugs(src.bugs_dirs)
    problems = [p for e in bad_files for p in (e.problems if isinstance(e, BugFileErrors) else [e])]
    problems += _missing_mboxes(bugs)
    for p in problems:
        print(f"patchcheck: error: {p}", file=sys.stderr)
    folders = ", ".join(str(d) for d in src.bugs_dirs)
    if problems:
        files = len({p.path for p in problems})
        if len(problems) > 1:
            print(f"patchcheck: {plural(len(problems), 'error')} in {plural(files, 'file')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{plural(len(bugs.bugs), 'known-bug file')} in {folders}: all valid")
    return EXIT_OK


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
    if opts.action == "validate":
        return validate(opts.sources)
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
    return 0
