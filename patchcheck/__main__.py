"""`python -m patchcheck`."""

import sys

from patchcheck.cli import main

sys.exit(main())
