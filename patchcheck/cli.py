"""Command line: argument parsing and the one boundary that turns errors into exit codes.

Imports of the heavy parts (b4, the engine, renderers) happen inside the verbs so that
``patchcheck --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from patchcheck import __version__
from patchcheck.errors import EXIT_BAD_INPUT, PatchcheckError

VERBS = ("check", "audit", "fetch", "bugs", "trees", "triage", "cache")
FORMATS = ("table", "json", "markdown", "html", "junit")
DEFAULT_FAIL_ON = "partially-present,backportable,conflicting"


class _Parser(argparse.ArgumentParser):
    """argparse prints usage + message and exits 2; we want our one-line form."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PatchcheckError(f"{self.prog}: {message} (see --help)")


def _positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v!r}")
    return n


def _positive_float(v: str) -> float:
    try:
        n = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {v!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}")
    return n


def _size(v: str) -> int:
    from patchcheck.fetch.limits import parse_size

    try:
        return parse_size(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _age(v: str) -> float:
    from patchcheck.commands.cache import parse_age

    try:
        return parse_age(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common options")
    g.add_argument("--bugs-dir", type=Path, help="folder of known-bug files [PATCHCHECK_BUGS_DIR]")
    g.add_argument("--cache-dir", type=Path, help="where fetched series are kept [PATCHCHECK_CACHE_DIR]")
    g.add_argument(
        "--tree-cache",
        type=Path,
        help="where members read out of tree archives and git history indexes are kept "
        "(default $XDG_CACHE_HOME/patchcheck/trees) [PATCHCHECK_TREE_CACHE]",
    )
    g.add_argument("--lore-url", help="public-inbox archive base URL [PATCHCHECK_LORE_URL]")
    g.add_argument("--offline", action="store_true", help="use only the cache")
    g.add_argument(
        "--timeout", type=_positive_float, default=30.0, help="network timeout per request, seconds (default 30)"
    )
    g.add_argument("--trees-file", type=Path, help="named trees [PATCHCHECK_TREES]")
    # limits on what is read from strangers (README "Limits"); defaults in fetch/limits.py
    g.add_argument("--max-answer-bytes", type=_size, help="per HTTP answer (64M) [PATCHCHECK_MAX_ANSWER_BYTES]")
    g.add_argument("--max-thread-bytes", type=_size, help="per mail thread (256M) [PATCHCHECK_MAX_THREAD_BYTES]")
    g.add_argument("--max-thread-mails", type=_positive_int, help="mails (5000) [PATCHCHECK_MAX_THREAD_MAILS]")
    g.add_argument("--max-mbox-bytes", type=_size, help="per mbox = file (64M) [PATCHCHECK_MAX_MBOX_BYTES]")
    g.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="parallel workers (default: number of CPUs)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _selection(p: argparse.ArgumentParser, need: bool) -> None:
    g = p.add_argument_group("which bugs")
    g.add_argument("--bug", action="append", default=[], metavar="ID", help="a known bug id (repeatable)")
    g.add_argument("--all", action="store_true", help="every known bug")
    g.add_argument("--subsystem", action="append", default=[], help="only bugs of this subsystem")
    g.add_argument(
        "--severity",
        action="append",
        default=[],
        choices=("low", "medium", "high", "critical"),
        help="only bugs of this severity",
    )
    g.add_argument("--cve", action="append", default=[], help="only bugs naming this CVE")
    p.set_defaults(need_selection=need)


def _report(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report")
    g.add_argument("--format", choices=FORMATS, default=None, help="report format (default table)")
    g.add_argument("-o", "--output", type=Path, help="write the report there")
    g.add_argument(
        "--fail-on",
        default=DEFAULT_FAIL_ON,
        help=f"verdicts that make the exit code 1 (default {DEFAULT_FAIL_ON})",
    )
    g.add_argument(
        "--min-severity",
        choices=("low", "medium", "high", "critical"),
        default="low",
        help="only bugs at least this severe can fail the run",
    )
    g.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    g.add_argument("--rev", help="for a git tree: check this commit without checking it out")
    g.add_argument(
        "--upstream-repo", type=Path, help="a git repository with upstream objects (for 3-way grading and history)"
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="patchcheck",
        description="Is the upstream fix for a known kernel bug in this tree, and if not, can it be taken?",
        epilog="Without a verb, `patchcheck --tree T --bug ID` means `patchcheck check`.",
    )
    p.add_argument("--version", action="version", version=f"patchcheck {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    c = sub.add_parser("check", help="check bugs on one tree")
    c.add_argument("--tree", required=True, help="a trees.toml name or a path")
    _selection(c, True)
    _report(c)
    _common(c)

    a = sub.add_parser("audit", help="bugs x trees matrix")
    a.add_argument("--tree", action="append", required=True, help="repeatable")
    _selection(a, False)
    _report(a)
    _common(a)

    f = sub.add_parser("fetch", help="fill the cache, e.g. before going offline")
    _selection(f, False)
    _common(f)

    b = sub.add_parser("bugs", help="list, show or validate known-bug files")
    bsub = b.add_subparsers(dest="bugs_verb", metavar="ACTION", required=True, parser_class=_Parser)
    _common(bsub.add_parser("list", help="one line per known bug"))
    bs = bsub.add_parser("show", help="one bug in full")
    bs.add_argument("id")
    _common(bs)
    _common(bsub.add_parser("validate", help="check every bug file strictly"))

    t = sub.add_parser("trees", help="named trees")
    tsub = t.add_subparsers(dest="trees_verb", metavar="ACTION", required=True, parser_class=_Parser)
    _common(tsub.add_parser("list", help="names, sources and detected versions"))

    tr = sub.add_parser("triage", help="match a kernel oops to known bugs")
    tr.add_argument("file", help="a dmesg / vmcore-dmesg / crash log, or - for stdin")
    tr.add_argument("--tree", help="go on to check the matched bugs on this tree")
    tr.add_argument("--threshold", type=float, default=0.35, help="minimum score (0..1)")
    tr.add_argument("--top", type=_positive_int, default=5, help="how many matches to show")
    _report(tr)
    _common(tr)

    ca = sub.add_parser("cache", help="verify or prune the series cache")
    casub = ca.add_subparsers(dest="cache_verb", metavar="ACTION", required=True, parser_class=_Parser)
    _common(casub.add_parser("verify", help="check every cached series' checksum and stored selection"))
    cp = casub.add_parser("prune", help="drop series no known bug refers to, and unused tree cache entries")
    cp.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="also drop tree cache entries and history indexes unused for AGE (30d, 12h, 2w; a number is days)",
    )
    _common(cp)
    return p


def _normalise_argv(argv: list[str]) -> list[str]:
    if argv and argv[0] not in VERBS and argv[0] not in ("-h", "--help", "--version"):
        return ["check", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(args_list)
        if args.verb is None:
            build_parser().print_help()
            return EXIT_BAD_INPUT
        from patchcheck.commands import dispatch

        return dispatch(args)
    except PatchcheckError as e:
        print(f"patchcheck: error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("patchcheck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # e.g. `patchcheck bugs list | head`
        return 0
    except OSError as e:
        print(f"patchcheck: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # noqa: BLE001 - the last line of defence: no tracebacks
        if os.environ.get("PATCHCHECK_DEBUG"):
            raise
        print(
            f"patchcheck: internal error: {type(e).__name__}: {e} (set PATCHCHECK_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
