"""One module per CLI verb; ``dispatch`` picks it (imported lazily: start-up stays cheap)."""

from __future__ import annotations

import argparse
import importlib

from patchcheck.sys import progress


def dispatch(args: argparse.Namespace) -> int:
    progress.setup(quiet=getattr(args, "quiet", False))  # on a terminal, unless -q
    module = {"check": "check", "audit": "check"}.get(args.verb, args.verb)
    mod = importlib.import_module(f"patchcheck.commands.{module}")
    rc: int = mod.run(args)
    return rc
