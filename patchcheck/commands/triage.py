"""``patchcheck triage FILE|-``: which known bugs does this oops look like?

With ``--tree`` the matched bugs go on to be checked on that tree, through the pipeline.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from patchcheck.commands import common
from patchcheck.commands.common import Output, Sources, TreeRequest
from patchcheck.errors import EXIT_OK, BadInput


@dataclass(frozen=True)
class TriageOptions:
    log: str  # a file name, or "-" for standard input
    threshold: float
    top: int
    sources: Sources
    output: Output
    tree: TreeRequest | None  # go on to check the matches there


def options(args: argparse.Namespace) -> TriageOptions:
    return TriageOptions(
        log=str(args.file),
        threshold=args.threshold,
        top=args.top,
        sources=common.sources(args),
        output=common.output(args),
        tree=TreeRequest((args.tree,), rev=args.rev, upstream_repo=args.upstream_repo) if args.tree else None,
    )


def run(args: argparse.Namespace) -> int:
    return execute(options(args))


def read_log(name: str) -> str:
    """The log's text; '-' is standard input. Undecodable bytes become U+FFFD."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as e:
        raise BadInput(f"{name}: cannot read crash log: {e.strerror or e}") from None
    # vmcore-dmesg output may hold stray bytes from a torn ring buffer: keep going.
    return data.decode("utf-8", errors="replace")


def execute(opts: TriageOptions) -> int:
    from patchcheck.report import render, render_triage
    from patchcheck.report.model import TriageReport
    from patchcheck.triage.score import triage_text

    known = common.known_bugs(opts.sources)
    oops, matches = triage_text(read_log(opts.log), known.all(), opts.threshold)
    matches = matches[: opts.top]
    out = opts.output
    # the triage summary has a table and a JSON form only
    fmt = out.format if out.format in ("table", "json") else "table"
    if oops is None:
        text = "no oops found\n"
    else:
        text = render_triage(TriageReport(oops, tuple(matches), opts.threshold), fmt)
    if opts.tree is None:
        common.emit(text, out.path)
        return EXIT_OK
    # -o belongs to the check's report then; on stdout a JSON report must stay one
    # document, so the triage summary goes to stderr.
    stream = sys.stderr if fmt == "json" and out.path is None else sys.stdout
    stream.write(text)
    stream.flush()
    if not matches:
        return EXIT_OK
    bugs = known.select(m.bug for m in matches)
    rep = common.check_report(bugs, opts.tree, opts.sources)
    common.emit(render(rep, out.format, color=out.color), out.path)
    common.summarise_errors(rep.results)
    return common.exit_code(rep.results, out.fail_on, out.min_severity)
