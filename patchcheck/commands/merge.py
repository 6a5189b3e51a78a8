"""``patchcheck merge A.json B.json ...``: JSON reports (e.g. CI shards) as one report, in
any format, with the exit code the whole run would have had."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchcheck.commands import common
from patchcheck.commands.common import Output
from patchcheck.errors import BadInput
from patchcheck.model import Bug, BugResult, TreeInfo

if TYPE_CHECKING:
    from patchcheck.report.model import Report


@dataclass(frozen=True)
class MergeOptions:
    reports: tuple[Path, ...]
    output: Output


def options(args: argparse.Namespace) -> MergeOptions:
    return MergeOptions(tuple(args.reports), common.output(args))


def run(args: argparse.Namespace) -> int:
    return execute(options(args))


def combine(parts: list[tuple[Path, Report]]) -> Report:
    """One report of several: same patchcheck version, no cell twice; rows and columns in
    the order they first appear, cells in a single run's (tree, bug) order."""
    from patchcheck.report.model import Report

    first_path, first = parts[0]
    for path, rep in parts[1:]:
        if rep.version != first.version:
            raise BadInput(
                f"{path}: made by patchcheck {rep.version}, {first_path} by patchcheck {first.version} "
                "(expected reports of one patchcheck version)"
            )
    trees: dict[str, TreeInfo] = {}
    bugs: dict[str, Bug] = {}
    cells: dict[tuple[str, str], tuple[Path, BugResult]] = {}
    for path, rep in parts:
        for t in rep.trees:
            trees.setdefault(t.name, t)
        for b in rep.bugs:
            bugs.setdefault(b.id, b)
        for r in rep.results:
            cell = (r.bug.id, r.tree.name)
            if cell in cells:
                raise BadInput(
                    f"{path}: bug {r.bug.id} on tree {r.tree.name} is also in {cells[cell][0]} "
                    "(expected reports of disjoint cells, e.g. the shards of one run)"
                )
            cells[cell] = (path, r)
            trees.setdefault(r.tree.name, r.tree)
            bugs.setdefault(r.bug.id, r.bug)
    results = [cells[(b, t)][1] for t in trees for b in bugs if (b, t) in cells]
    return Report(
        results=results,
        trees=list(trees.values()),
        bugs=list(bugs.values()),
        version=first.version,
        generated=max(rep.generated for _, rep in parts),
    )


def _missing_shards(parts: list[tuple[Path, Report]]) -> str | None:
    """When every input is a shard of N: which of the N are not there."""
    shards = [rep.shard for _, rep in parts]
    if not shards or any(s is None for s in shards):
        return None
    ns = {s.split("/")[1] for s in shards if s}
    if len(ns) != 1:
        return None
    n = int(ns.pop())
    got = {int(s.split("/")[0]) for s in shards if s}
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in got]
    return ", ".join(missing) or None


def execute(opts: MergeOptions) -> int:
    from patchcheck.report.json_load import load_report

    parts = [(p, load_report(p)) for p in opts.reports]
    merged = combine(parts)
    if missing := _missing_shards(parts):
        print(f"patchcheck: warning: shard {missing} is not among the reports merged", file=sys.stderr)
    out = opts.output
    common.emit(out.render(merged), out.path)
    common.summarise_errors(merged.results)
    return common.exit_code(merged.results, out.fail_on, out.min_severity)
