"""One module per CLI verb; ``dispatch`` picks it (imported lazily: start-up stays cheap)."""

from __future__ import annotations

import argparse
import importlib


def dispatch(args: argparse.Namespace) -> int:
    module = {"check": "check", "audit": "check"}.get(args.verb, args.verb)
    mod = importlib.import_module(f"patchcheck.commands.{module}")
    rc: int = mod.run(args)
    return rc
