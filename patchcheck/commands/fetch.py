"""`patchcheck fetch`: fill the cache so later runs work offline."""

from __future__ import annotations

import argparse

from patchcheck.commands.common import bugset, make_fetcher, print_series_hints, select_bugs
from patchcheck.errors import EXIT_NO_SERIES, EXIT_OK, SeriesError


def run(args: argparse.Namespace) -> int:
    bugs = select_bugs(args, bugset(args))
    # a fix given by upstream commits alone is read from an upstream clone at check time
    fixes = [f for b in bugs for f in b.fixes if f.msgid or f.mbox]
    fetcher = make_fetcher(args)
    got = fetcher.get_many(fixes, jobs=args.jobs)
    code = EXIT_OK
    seen: set[str] = set()
    failed: list[tuple[str, SeriesError]] = []
    for b in bugs:
        for f in b.fixes:
            if not (f.msgid or f.mbox):  # as above: not fetched
                continue
            k = fetcher.series_key(f)
            if k in seen:
                continue
            seen.add(k)
            s = got[k]
            if isinstance(s, SeriesError):
                print(f"{b.id}: {f.label}: error: {s}")
                failed.append((b.id, s))
                code = EXIT_NO_SERIES
            elif k in fetcher.unstored:
                # the point of this verb is the cache: a series it could not keep is not fetched
                print(f"{b.id}: {f.label}: error: fetched but not stored in the cache ({fetcher.unstored[k]})")
                code = EXIT_NO_SERIES
            elif not args.quiet:
                print(f"{b.id}: {f.label}: v{s.revision}, {len(s.patches)} patch(es) ({s.source})")
    print_series_hints(args, failed)
    return code
