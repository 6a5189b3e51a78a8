"""The command line's grammar: each verb's options, and the checks argparse gives them.

``build_parser(verb)`` builds one verb's parser (a run parses its own options only) or, for
``--help``, all of them. cli.py runs what is parsed.
"""

from __future__ import annotations

import argparse
import math
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchcheck.bugs.load import SEVERITIES
from patchcheck.errors import PatchcheckError
from patchcheck.model import Verdict
from patchcheck.report import FORMATS
from patchcheck.sys.tools import KINDS

if TYPE_CHECKING:
    from patchcheck.bugs.select import Shard


class VersionAction(argparse.Action):
    """``--version``: like argparse's, with b4's version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from patchcheck.commands.doctor import version_line  # only when asked: it imports much

        print(version_line())
        parser.exit()


DEFAULT_FAIL_ON = ",".join((Verdict.PARTIAL, Verdict.BACKPORTABLE, Verdict.CONFLICTING))


class _Parser(argparse.ArgumentParser):
    """argparse prints usage + message and exits 2; we want our one-line form.

    No abbreviated options: ``--bug`` must never quietly mean ``--bugs-dir``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

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


MAX_SECONDS = 86400.0  # a network timeout longer than a day is a typo (and overflows a socket's)


def _positive_float(v: str) -> float:
    """Seconds: finite, above 0, at most a day ('inf', 'nan', '1e308' are refused)."""
    try:
        n = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {v!r}") from None
    if not (math.isfinite(n) and 0 < n <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(f"expected positive seconds, at most {MAX_SECONDS:g}, got {v!r}")
    return n


def _size(v: str) -> int:
    from patchcheck.text.units import parse_size

    try:
        return parse_size(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _fraction(v: str) -> float:
    try:
        n = float(v)
    except ValueError:
        n = math.nan
    if not 0 <= n <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {v!r}")
    return n


def _url_problem(v: str) -> str | None:
    """Why ``v`` cannot be a public-inbox base URL, or None."""
    if any(c.isspace() or not c.isprintable() for c in v):
        return "holds whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(v)
        port = parts.port
    except ValueError as e:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        return str(e)
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    if parts.query or parts.fragment:
        return "a base URL has no ?query or #fragment"
    return None


def _lore_url(v: str) -> str:
    why = _url_problem(v)
    if why:
        raise argparse.ArgumentTypeError(f"{v!r}: {why} (expected http(s)://host[:port][/path])")
    return v


def check_environment(args: argparse.Namespace) -> None:
    """Options also read from the environment get the checks argparse gives the flags."""
    env_url = os.environ.get("PATCHCHECK_LORE_URL")
    if hasattr(args, "lore_url") and args.lore_url is None and env_url:
        why = _url_problem(env_url)
        if why:
            raise PatchcheckError(
                f"PATCHCHECK_LORE_URL={env_url!r}: {why} (expected http(s)://host[:port][/path])"
            )


def _verdicts(v: str) -> frozenset[str]:
    """A comma list of verdict names (for --fail-on)."""
    out = frozenset(x.strip() for x in v.split(",") if x.strip())
    bad = out - set(Verdict)
    if bad:
        raise argparse.ArgumentTypeError(
            f"{', '.join(sorted(bad))} is not a verdict (expected a comma list of: {', '.join(Verdict)})"
        )
    return out


def _age(v: str) -> float:
    from patchcheck.commands.cache import parse_age

    try:
        return parse_age(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common options")
    g.add_argument(
        "--bugs-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="folder of known-bug files, added to the shipped ones (repeatable) [PATCHCHECK_BUGS_DIR]",
    )
    g.add_argument(
        "--no-shipped-bugs", action="store_true", help="leave out the known bugs shipped with patchcheck"
    )
    g.add_argument("--cache-dir", type=Path, help="where fetched series are kept [PATCHCHECK_CACHE_DIR]")
    g.add_argument(
        "--tree-cache",
        type=Path,
        help="where members read out of tree archives and git history indexes are kept "
        "(default $XDG_CACHE_HOME/patchcheck/trees) [PATCHCHECK_TREE_CACHE]",
    )
    g.add_argument("--lore-url", type=_lore_url, help="public-inbox archive base URL [PATCHCHECK_LORE_URL]")
    g.add_argument("--offline", action="store_true", help="use only the cache")
    g.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help=f"network timeout per request, seconds (default 30, at most {MAX_SECONDS:g})",
    )
    g.add_argument("--trees-file", type=Path, help="named trees [PATCHCHECK_TREES]")
    g.add_argument(
        "--arch",
        help="architecture an SRPM's %%ifarch/%%if blocks are read for (default: the host's) [PATCHCHECK_ARCH]",
    )
    # limits on what is read from strangers (README "Limits"); defaults in fetch/limits.py
    g.add_argument("--max-answer-bytes", type=_size, help="per HTTP answer (64M) [PATCHCHECK_MAX_ANSWER_BYTES]")
    g.add_argument("--max-thread-bytes", type=_size, help="per mail thread (256M) [PATCHCHECK_MAX_THREAD_BYTES]")
    g.add_argument("--max-thread-mails", type=_positive_int, help="mails (5000) [PATCHCHECK_MAX_THREAD_MAILS]")
    g.add_argument("--max-mbox-bytes", type=_size, help="per mbox = file (64M) [PATCHCHECK_MAX_MBOX_BYTES]")
    g.add_argument(
        "--max-member-bytes",
        metavar="SIZE",
        help="the most one file of a tree or archive member may inflate to, e.g. 512M or 2G"
        " (default 512M) [PATCHCHECK_MAX_MEMBER_BYTES]",
    )
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
        choices=SEVERITIES,
        help="only bugs of this severity",
    )
    g.add_argument("--cve", action="append", default=[], help="only bugs naming this CVE")
    p.set_defaults(need_selection=need)


def _output(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report")
    g.add_argument("--format", choices=FORMATS, default=None, help="report format (default table)")
    g.add_argument("-o", "--output", type=Path, help="write the report there")
    g.add_argument(
        "--fail-on",
        type=_verdicts,
        default=DEFAULT_FAIL_ON,
        help=f"verdicts that make the exit code 1 (default {DEFAULT_FAIL_ON})",
    )
    g.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default=SEVERITIES[0],
        help="only bugs at least this severe can fail the run",
    )
    g.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    g.add_argument(
        "-v", "--verbose", action="store_true", help="per failing hunk: file:line, reason, near-match diff"
    )


def _report(p: argparse.ArgumentParser) -> None:
    _output(p)
    g = p.add_argument_group("trees")
    g.add_argument("--rev", help="for a git tree: check this commit without checking it out")
    _upstream(g)
    g.add_argument(
        "--max-hunks",
        type=_positive_int,
        default=None,
        metavar="N",
        help="a patch with more hunks is an error, not checked (default 20000)",
    )


def _upstream(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--upstream-repo",
        type=Path,
        help="a local clone of mainline or stable: 3-way merges, prerequisites, fixes given by upstream only",
    )
    g.add_argument(
        "--with-prereqs",
        action="store_true",
        help="check a conflicting fix on top of its absent prerequisites (needs --upstream-repo)",
    )
    g.add_argument(
        "--prereq-depth", type=_positive_int, default=2, help="prerequisites of prerequisites, down to N"
    )
    g.add_argument("--prereq-commits", type=_positive_int, default=20, help="judge at most N candidate commits")


def _shard(v: str) -> Shard:
    from patchcheck.bugs.select import Shard

    try:
        return Shard.parse(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``verb`` (a key of _VERB_PARSERS), only that verb's options: a
    run parses its own and need not build the other 15 parsers (~5 ms of every start)."""
    p = _Parser(
        prog="patchcheck",
        description="Is the upstream fix for a known kernel bug in this tree, and if not, can it be taken?",
        epilog="Without a verb, `patchcheck --tree T --bug ID` means `patchcheck check`.",
    )
    p.add_argument("--version", action=VersionAction, help="show patchcheck's and b4's versions and exit")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, add in _VERB_PARSERS.items():
        if verb is None or verb == name:
            add(sub)
    return p


_SHARD_HELP = "check only the K-th of N stable slices of the (bug, tree) cells"
_Sub = Any  # argparse's _SubParsersAction, private to it


def _check_parser(sub: _Sub) -> None:
    c = sub.add_parser("check", help="check bugs on one tree")
    c.add_argument("--tree", required=True, help="a trees.toml name or a path")
    c.add_argument("--shard", type=_shard, metavar="K/N", help=_SHARD_HELP)
    _selection(c, True)
    _report(c)
    _common(c)


def _audit_parser(sub: _Sub) -> None:
    a = sub.add_parser("audit", help="bugs x trees matrix")
    a.add_argument("--tree", action="append", required=True, help="repeatable")
    a.add_argument("--shard", type=_shard, metavar="K/N", help=_SHARD_HELP)
    _selection(a, False)
    _report(a)
    _common(a)


def _fetch_parser(sub: _Sub) -> None:
    f = sub.add_parser("fetch", help="fill the cache, e.g. before going offline")
    _selection(f, False)
    _common(f)


def _bugs_parser(sub: _Sub) -> None:
    b = sub.add_parser("bugs", help="list, show or validate known-bug files")
    bsub = b.add_subparsers(dest="bugs_verb", metavar="ACTION", required=True, parser_class=_Parser)
    _common(bsub.add_parser("list", help="one line per known bug"))
    bs = bsub.add_parser("show", help="one bug in full")
    bs.add_argument("id")
    _common(bs)
    _common(bsub.add_parser("validate", help="check every bug file strictly"))


def _trees_parser(sub: _Sub) -> None:
    t = sub.add_parser("trees", help="named trees")
    tsub = t.add_subparsers(dest="trees_verb", metavar="ACTION", required=True, parser_class=_Parser)
    _common(tsub.add_parser("list", help="names, sources and detected versions"))


def _triage_parser(sub: _Sub) -> None:
    tr = sub.add_parser("triage", help="match a kernel oops to known bugs")
    tr.add_argument("file", help="a dmesg / vmcore-dmesg / crash log, or - for stdin")
    tr.add_argument("--tree", help="go on to check the matched bugs on this tree")
    tr.add_argument("--threshold", type=_fraction, default=0.35, help="minimum score (0..1)")
    tr.add_argument("--top", type=_positive_int, default=5, help="how many matches to show")
    _report(tr)
    _common(tr)


def _merge_parser(sub: _Sub) -> None:
    m = sub.add_parser("merge", help="combine JSON reports (e.g. CI shards) into one report")
    m.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json", help="reports of --format json")
    _output(m)


def _backport_parser(sub: _Sub) -> None:
    bp = sub.add_parser("backport", help="write each fix as it applies to the tree, as patch files")
    bp.add_argument("--tree", required=True, help="a trees.toml name or a path")
    _selection(bp, True)
    bp.add_argument("-o", "--output-dir", type=Path, required=True, metavar="DIR", help="where the patches go")
    bp.add_argument("--rev", help="for a git tree: this commit, without checking it out")
    _upstream(bp)
    _common(bp)


def _cache_parser(sub: _Sub) -> None:
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


def _doctor_parser(sub: _Sub) -> None:
    d = sub.add_parser("doctor", help="system tools: present, missing, and the package to install")
    d.add_argument("--kind", action="append", default=[], choices=KINDS, help="also require its tools")


# in the order --help lists them
_VERB_PARSERS = {
    "check": _check_parser,
    "audit": _audit_parser,
    "fetch": _fetch_parser,
    "bugs": _bugs_parser,
    "trees": _trees_parser,
    "triage": _triage_parser,
    "merge": _merge_parser,
    "backport": _backport_parser,
    "cache": _cache_parser,
    "doctor": _doctor_parser,
}
VERBS = tuple(_VERB_PARSERS)
