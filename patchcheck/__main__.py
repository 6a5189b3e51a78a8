"""`python -m patchcheck`, and the installed `patchcheck` command (``run``)."""

import gc
import sys

from patchcheck.cli import main


def run() -> int:
    """``main``, then an exit without the collector's last pass over everything the run
    made (~40 ms after a release audit; nothing is left to collect at exit). Tests call
    ``main``: a test process goes on running."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
