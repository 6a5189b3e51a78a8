"""`python -m patchcheck`, and the installed `patchcheck` command (``run``)."""

import gc
import sys

from patchcheck.cli import main
from patchcheck.sys.workers import GC_THRESHOLD


def run() -> int:
    """``main`` for a process that ends with it (tests call ``main``): the collector runs
    less often (a check makes many short-lived objects and few cycles: at the default
    threshold it ran thousands of times for nothing), and not at all over what is left at
    exit (~40 ms after a release audit)."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
