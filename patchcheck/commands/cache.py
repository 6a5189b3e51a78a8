"""`patchcheck cache verify | prune`."""

from __future__ import annotations

import argparse

from patchcheck.commands.common import bugset, cache_dir
from patchcheck.errors import EXIT_NO_SERIES, EXIT_OK


def run(args: argparse.Namespace) -> int:
    from patchcheck.fetch.cache import prune_cache, verify_cache

    cdir = cache_dir(args)
    if args.cache_verb == "verify":
        problems = verify_cache(cdir)
        for entry, why in problems:
            print(f"{entry}: {why}")
        if not problems:
            print(f"{cdir}: cache is sound")
        return EXIT_NO_SERIES if problems else EXIT_OK
    # entries are keyed by msgid; a fix with a local mbox has none
    keep = {f.msgid for b in bugset(args).all() for f in b.fixes if f.mbox is None and f.msgid}
    for entry in prune_cache(cdir, keep):
        print(f"removed {entry}")
    return EXIT_OK
