"""``patchcheck triage FILE|-``: which known bugs does this oops look like?

With ``--tree`` the matched bugs go on to be checked on that tree, through the pipeline.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from patchcheck import __version__
from patchcheck.commands import common
from patchcheck.commands.common import Output, Sources, TreeRequest
from patchcheck.errors import EXIT_OK, BadInput, SeriesError


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
    from patchcheck.report import render_triage
    from patchcheck.report.model import TriageReport
    from patchcheck.triage.score import triage_text

    known = common.known_bugs(opts.sources)
    oops, matches = triage_text(read_log(opts.log), known.all(), opts.threshold)
    if oops is None:
        where = "standard input" if opts.log == "-" else opts.log
        raise BadInput(
            f"{where}: no oops found (expected a kernel BUG, Oops, WARNING, panic or KASAN report, "
            "or a crash(8) bt)"
        )
    matches = matches[: opts.top]
    bugs = {m.bug: known.get(m.bug) for m in matches}
    check = None
    failed: list[tuple[str, SeriesError]] = []
    code = EXIT_OK
    if opts.tree is not None and matches:
        check, failed = common.check_report(list(bugs.values()), opts.tree, opts.sources)
        code = common.exit_code(check.results, opts.output.fail_on, opts.output.min_severity)
    tri = TriageReport(oops, tuple(matches), opts.threshold, __version__, common.now(), bugs, check)
    out = opts.output
    common.emit(render_triage(tri, out.format, color=out.color, verbose=out.verbose, width=out.width), out.path)
    if check is not None:
        common.summarise_errors(check.results)
        common.show_series_hints(opts.sources, failed)
    return code
