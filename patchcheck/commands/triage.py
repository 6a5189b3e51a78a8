"""``patchcheck triage FILE|-``: which known bugs does this oops look like?"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from patchcheck import config
from patchcheck.bugs import load as bugs_mod
from patchcheck.errors import BadInput
from patchcheck.model import Bug
from patchcheck.sys.atomic import replace_file
from patchcheck.triage.score import DEFAULT_THRESHOLD, Match, Oops, triage_text


def triage_file(
    text: str, bugs: Iterable[Bug], threshold: float = DEFAULT_THRESHOLD
) -> tuple[Oops | None, list[Match]]:
    """Parse ``text`` and rank ``bugs`` against its first oops (no oops: ``(None, [])``)."""
    return triage_text(text, bugs, threshold)


def read_log(name: str) -> str:
    """The log's text; '-' is standard input. Undecodable bytes become U+FFFD."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as e:
        raise BadInput(f"{name}: cannot read crash log: {e.strerror or e}") from None
    # vmcore-dmesg output may hold stray bytes from a torn ring buffer: keep going.
    return data.decode("utf-8", errors="replace")


def _summary_rows(oops: Oops) -> list[tuple[str, str]]:
    rows = [
        ("oops", oops.headline or "?"),
        ("function", oops.function or "?"),
        ("release", oops.release or "?"),
        ("command", oops.comm or "?"),
        ("trace", " < ".join(oops.trace) if oops.trace else "(none)"),
    ]
    rows += [("note", n) for n in oops.notes]
    return rows


def render_table(oops: Oops, matches: list[Match], threshold: float, out: TextIO) -> None:
    for key, val in _summary_rows(oops):
        out.write(f"{key + ':':<10} {val}\n")
    out.write("\n")
    if not matches:
        out.write(f"no known bug matches (threshold {threshold:.2f})\n")
        return
    width = max(len("bug"), *(len(m.bug) for m in matches))
    out.write(f"{'score':<6} {'bug':<{width}}  why\n")
    for m in matches:
        out.write(f"{m.score:<6.2f} {m.bug:<{width}}  {m.why}\n")


def render_json(oops: Oops, matches: list[Match], out: TextIO) -> None:
    doc = {"oops": oops.to_dict(), "matches": [m.to_dict() for m in matches]}
    out.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def run(args: argparse.Namespace) -> int:
    text = read_log(str(args.file))
    bugs_dir = getattr(args, "bugs_dir", None)
    # config honours PATCHCHECK_BUGS_DIR, then falls back to the shipped known_bugs/
    bugset = bugs_mod.load_bugs(config.bugs_dir(Path(bugs_dir) if bugs_dir else None))
    threshold = getattr(args, "threshold", None)
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    oops, matches = triage_file(text, bugset.all(), threshold)
    top = getattr(args, "top", None)
    if top is not None and top > 0:
        matches = matches[:top]
    fmt = getattr(args, "format", None) or "table"
    tree = getattr(args, "tree", None)
    check: Callable[[list[str]], int] | None = getattr(args, "check_callback", None) or _check_on_tree(args)
    output: Path | None = getattr(args, "output", None)
    if tree:
        # -o belongs to the check's report then; on stdout a JSON report must stay one
        # document, so the triage summary goes to stderr.
        _emit(oops, matches, threshold, fmt, sys.stderr if fmt == "json" and output is None else sys.stdout)
        if matches and check is not None:
            return check([m.bug for m in matches])
        return 0
    if output is not None:
        buf = io.StringIO()
        _emit(oops, matches, threshold, fmt, buf)
        replace_file(output, buf.getvalue().encode("utf-8"))  # atomic: a failed write keeps the old file
    else:
        _emit(oops, matches, threshold, fmt, sys.stdout)
    return 0


def _check_on_tree(args: argparse.Namespace) -> Callable[[list[str]], int]:
    """Go on to `patchcheck check --tree T --bug <matched ids>` with the same options."""

    def go(ids: list[str]) -> int:
        from patchcheck.commands import check as check_cmd

        ns = argparse.Namespace(**vars(args))
        ns.bug, ns.all, ns.subsystem, ns.severity, ns.cve = ids, False, [], [], []
        ns.need_selection = True
        return check_cmd.run(ns)

    return go


def _emit(oops: Oops | None, matches: list[Match], threshold: float, fmt: str, out: TextIO) -> None:
    if oops is None:
        out.write("no oops found\n")
    elif fmt == "json":
        render_json(oops, matches, out)
    else:
        render_table(oops, matches, threshold, out)
    out.flush()
