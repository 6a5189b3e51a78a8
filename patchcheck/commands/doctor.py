"""`patchcheck doctor`: which system tools are installed, which tree kinds are ready, and the
package to install for each missing tool. Also the ``--version`` line (patchcheck and b4).

Exit 0 when the core tools (git, patch) are there and so is every tool of the ``--kind``
kinds asked for; 1 otherwise. A tool only some kinds need is reported, not required.
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import sys

from patchcheck import __version__
from patchcheck.errors import EXIT_FINDINGS, EXIT_OK, ToolError
from patchcheck.sys import proc
from patchcheck.sys.tools import KINDS, TOOLS, Tool, for_kind

_VERSION = re.compile(r"\d+(?:\.\d+)+")


def version_line() -> str:
    from importlib import metadata  # 80 ms of imports: only for --version and doctor

    try:
        b4 = metadata.version("b4")
    except metadata.PackageNotFoundError:
        b4 = "not installed"
    return f"patchcheck {__version__} (b4 {b4}, Python {platform.python_version()})"


def _tool_version(tool: Tool, path: str) -> str:
    if tool.version_args is None:
        return "(no version query)"
    try:
        res = proc.run([path, *tool.version_args], timeout=10)
    except ToolError:
        return "?"
    first = (res.out() or res.err()).strip().splitlines()
    hit = _VERSION.search(first[0]) if first else None
    return hit.group(0) if hit else "?"


def _needed_for(tool: Tool) -> str:
    if tool.core:
        return "every tree kind"
    return ", ".join(tool.needed_by) or "optional"


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    found = {t.name: shutil.which(t.name) for t in TOOLS}
    rows = []
    for t in TOOLS:
        path = found[t.name]
        status = f"ok {_tool_version(t, path)}" if path else "MISSING"
        rows.append([t.name, status, _needed_for(t), t.apt, t.dnf, t.role])
    print(version_line())
    print()
    print(tabulate(rows, headers=["tool", "status", "needed for", "apt package", "dnf package", "what for"]))
    print()

    ready = []
    for kind in KINDS:
        lacking = [t for t in for_kind(kind) if not found[t.name]]
        if lacking:
            apt = " ".join(dict.fromkeys(t.apt for t in lacking))
            dnf = " ".join(dict.fromkeys(t.dnf for t in lacking))
            state = f"no: missing {', '.join(t.name for t in lacking)} (apt-get install {apt} | dnf install {dnf})"
        else:
            state = "yes"
        ready.append([kind, state])
    print(tabulate(ready, headers=["tree kind", "ready"]))

    wanted = {t.name for t in TOOLS if t.core} | {t.name for k in args.kind for t in for_kind(k)}
    missing = sorted(n for n in wanted if not found[n])
    if missing:
        print(f"\npatchcheck doctor: missing {', '.join(missing)}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK
