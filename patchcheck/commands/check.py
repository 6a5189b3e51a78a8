"""`patchcheck check` (one tree) and `patchcheck audit` (bugs x trees)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from patchcheck.bugs.select import Selection, Shard, select_bugs
from patchcheck.commands import common
from patchcheck.commands.common import Output, Sources, TreeRequest


@dataclass(frozen=True)
class CheckOptions:
    sources: Sources
    selection: Selection
    output: Output
    trees: TreeRequest
    shard: Shard | None


def options(args: argparse.Namespace) -> CheckOptions:
    specs = (args.tree,) if isinstance(args.tree, str) else tuple(args.tree)
    return CheckOptions(
        sources=common.sources(args),
        selection=common.selection(args),
        output=common.output(args),
        trees=TreeRequest(
            specs,
            rev=args.rev,
            upstream_repo=args.upstream_repo,
            prereqs=common.prereq_limits(args),
            with_prereqs=args.with_prereqs,
        ),
        shard=args.shard,
    )


def run(args: argparse.Namespace) -> int:
    return execute(options(args))


def execute(opts: CheckOptions) -> int:
    bugs = select_bugs(common.known_bugs(opts.sources, common.load_check_modules), opts.selection)
    rep, failed = common.check_report(bugs, opts.trees, opts.sources, opts.shard, opts.output.encoder())
    common.emit(opts.output.render(rep), opts.output.path)
    common.summarise_errors(rep.results)
    common.show_series_hints(opts.sources, failed)
    return common.exit_code(rep.results, opts.output.fail_on, opts.output.min_severity)
