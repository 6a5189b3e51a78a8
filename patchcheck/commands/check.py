"""`patchcheck check` (one tree) and `patchcheck audit` (bugs x trees)."""

from __future__ import annotations

import argparse
import datetime
import sys

from patchcheck import __version__, config
from patchcheck.commands.common import at_least, bugset, make_fetcher, print_series_hints, select_bugs, tree_cache
from patchcheck.errors import EXIT_FINDINGS, EXIT_NO_SERIES, EXIT_OK, BadInput, SeriesError
from patchcheck.model import BugResult, Verdict


def parse_fail_on(value: str) -> set[str]:
    out = {v.strip() for v in value.split(",") if v.strip()}
    bad = out - set(tuple(Verdict))
    if bad:
        raise BadInput(
            f"--fail-on: {', '.join(sorted(bad))} is not a verdict "
            f"(expected a comma list of: {', '.join(tuple(Verdict))})"
        )
    return out


def exit_code(results: list[BugResult], fail_on: set[str], min_severity: str) -> int:
    """docs/interface.md: 3 when a series could not be obtained, 2 when the tree could not be
    read, else 1 on findings; when several apply the larger wins."""
    code = EXIT_OK
    for r in results:
        if r.verdict == Verdict.ERROR:
            codes = [p.error_code or EXIT_NO_SERIES for p in r.required if p.verdict == Verdict.ERROR]
            code = max(code, *codes) if codes else max(code, EXIT_NO_SERIES)
        elif r.verdict in fail_on and at_least(r.bug, min_severity):
            code = max(code, EXIT_FINDINGS)
    return code


def run(args: argparse.Namespace) -> int:
    from patchcheck import report
    from patchcheck.pipeline import fetch_all, run_matrix, tree_context
    from patchcheck.trees import find_trees_file, open_tree

    fail_on = parse_fail_on(args.fail_on)
    bugs = select_bugs(args, bugset(args))
    specs = [args.tree] if isinstance(args.tree, str) else list(dict.fromkeys(args.tree))
    tcache = tree_cache(args)
    tfile = find_trees_file(config.trees_file(args.trees_file))
    # trees first: a bad --tree is exit 2 before any network work
    trees = [open_tree(s, cache_dir=tcache, trees_file=tfile, rev=args.rev) for s in specs]
    fetcher = make_fetcher(args)
    fetched = fetch_all(bugs, fetcher, fetcher.series_key, jobs=args.jobs)
    contexts = [tree_context(t, tcache, args.upstream_repo) for t in trees]
    results = run_matrix(bugs, trees, fetched, jobs=args.jobs, contexts=contexts)
    color = args.color == "always" or (args.color == "auto" and args.output is None and sys.stdout.isatty())
    rep = report.Report(
        results=results,
        trees=[t.info for t in trees],
        bugs=bugs,
        version=__version__,
        generated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    text = report.render(rep, args.format or "table", color=color)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise BadInput(f"{args.output}: cannot write the report: {e.strerror or e}") from e
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    failed = [(b.id, s) for b in bugs for f in b.fixes if isinstance(s := fetched.by_fix[f], SeriesError)]
    print_series_hints(args, failed)
    return exit_code(results, fail_on, args.min_severity)
