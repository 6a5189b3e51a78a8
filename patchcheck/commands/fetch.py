"""`patchcheck fetch`: fill the cache so later runs work offline."""

from __future__ import annotations

import argparse

from patchcheck.commands.common import bugset, make_fetcher, select_bugs
from patchcheck.errors import EXIT_NO_SERIES, EXIT_OK, SeriesError


def run(args: argparse.Namespace) -> int:
    from patchcheck.fetch.fetcher import series_key

    bugs = select_bugs(args, bugset(args))
    # a fix given by upstream commits alone is read from an upstream clone at check time
    fixes = [f for b in bugs for f in b.fixes if f.msgid or f.mbox]
    got = make_fetcher(args).get_many(fixes, jobs=args.jobs)
    code = EXIT_OK
    seen: set[str] = set()
    for b in bugs:
        for f in b.fixes:
            if f not in fixes:
                continue
            k = series_key(f)
            if k in seen:
                continue
            seen.add(k)
            s = got[k]
            if isinstance(s, SeriesError):
                print(f"{b.id}: {f.label}: error: {s}")
                code = EXIT_NO_SERIES
            elif not args.quiet:
                print(f"{b.id}: {f.label}: v{s.revision}, {len(s.patches)} patch(es) ({s.source})")
    return code
