"""The patch queue of an openEuler-family kernel SRPM: series.conf files and %prep helpers.

openEuler (and Kylin, CTyunOS, which build from it) ship kernel patches in a tarball
(``patches.tar.bz2``) whose order is a ``series.conf``: one patch path a line, ``#`` comments,
blank lines; SUSE-style trees put guards (``+arm64``, ``-RT``) before a path. Their %prep applies
it with a shell helper (``Applypatches series.conf DIR`` or ``apply-patches``); Fedora-style specs
use ``ApplyPatch x.patch [-R]`` and ``ApplyOptionalPatch y.patch`` helpers. Everything here reads
text: the spec's active lines come from ``specprep.preprocess`` for the tree's arch.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass

from patchcheck.trees.specexpr import UNKNOWN, Expander
from patchcheck.trees.specprep import Evaluated

PLACEHOLDER_LINES = 9  # Fedora's ApplyOptionalPatch skips a file of this many lines or fewer
_KERNEL_ARCH = {
    "x86_64": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "ppc64le": "powerpc",
    "ppc64": "powerpc",
    "s390x": "s390",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
}
_FUNCTION = re.compile(
    r"^\s*(?:function\s+)?[A-Za-z_][\w-]*\s*\(\)\s*\{?\s*$|^\s*function\s+[A-Za-z_][\w-]*\s*\{?\s*$"
)
_HELPERS = {"ApplyPatch": "patch", "ApplyOptionalPatch": "optional"}
_SERIES_HELPERS = ("applypatches", "apply-patches", "apply_patches")
_SHELL_OPS = {";", "&&", "||", "|", "&"}


@dataclass(frozen=True)
class SeriesEntry:
    name: str  # the patch path as written, e.g. "patches/0001-nfsd-fix.patch"
    line: int  # 1-based line in the series file
    strip: int = 1
    reverse: bool = False
    guards: tuple[str, ...] = ()


@dataclass(frozen=True)
class Series:
    entries: tuple[SeriesEntry, ...]  # the patches to apply, in order
    skipped: tuple[SeriesEntry, ...] = ()  # excluded by their guards for these symbols
    notes: tuple[str, ...] = ()


def series_symbols(arch: str) -> frozenset[str]:
    """Guard symbols that hold for an rpm arch: the arch and the kernel's name for it."""
    return frozenset({arch, _KERNEL_ARCH.get(arch, arch)})


def _selected(guards: tuple[str, ...], symbols: Collection[str]) -> bool:
    """The guards(1) rule: a first ``-`` guard includes by default, a first ``+`` excludes;
    each matching guard then includes (+) or excludes (-). ``-`` alone always matches, ``+!x``
    matches when x does not hold."""
    selected = guards[0].startswith("-")
    for g in guards:
        sign, neg, sym = g[0], g[1:2] == "!", g[2:] if g[1:2] == "!" else g[1:]
        if (neg and sym not in symbols) or (not neg and (sym == "" or sym in symbols)):
            selected = sign == "+"
    return selected


def parse_series_conf(text: str, symbols: Collection[str] = (), *, label: str = "series.conf") -> Series:
    """The ordered patches of a series file; ``symbols`` decide guarded lines."""
    entries: list[SeriesEntry] = []
    skipped: list[SeriesEntry] = []
    notes: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        words = line.split()
        lead = 0
        while lead < len(words) and words[lead][0] in "+-":
            lead += 1
        guards, rest = tuple(words[:lead]), words[lead:]
        if not rest:
            notes.append(f"{label}: line {number}: no patch name in {raw.strip()[:60]!r}; skipped")
            continue
        strip, reverse = 1, False
        for opt in rest[1:]:
            if re.fullmatch(r"-p\d+", opt):
                strip = int(opt[2:])
            elif opt == "-R":
                reverse = True
            else:
                notes.append(f"{label}: line {number}: unknown option {opt[:30]!r} after {rest[0]}; ignored")
        entry = SeriesEntry(rest[0], number, strip, reverse, guards)
        (entries if not guards or _selected(guards, symbols) else skipped).append(entry)
    return Series(tuple(entries), tuple(skipped), tuple(notes))


def resolve_member(name: str, members: Collection[str]) -> str | None:
    """The archive member a series entry names: the same path, the path under one top folder,
    or, failing both, the only member with its file name."""
    norm = posixpath.normpath(name).lstrip("/")
    if norm in members:
        return norm
    under = [m for m in members if m.endswith("/" + norm) and m.count("/") == norm.count("/") + 1]
    if len(under) == 1:
        return under[0]
    base = posixpath.basename(norm)
    same = [m for m in members if posixpath.basename(m) == base]
    return same[0] if len(same) == 1 else None


def is_placeholder(data: bytes) -> bool:
    """Whether ApplyOptionalPatch skips this file (Fedora's helper: at most 9 lines)."""
    return data.count(b"\n") <= PLACEHOLDER_LINES


@dataclass(frozen=True)
class ApplyStep:
    kind: str  # "patch" (ApplyPatch), "optional" (ApplyOptionalPatch), "series" (a series file applied)
    file: str  # the patch's (or series file's) name, without folders
    line: int  # 1-based spec line
    strip: int = 1
    reverse: bool = False
    args: tuple[str, ...] = ()  # what followed the file name, as written
    certain: bool = True  # False: under a condition that could not be decided


@dataclass(frozen=True)
class PrepQueue:
    steps: tuple[ApplyStep, ...]
    notes: tuple[str, ...] = ()


def _words(text: str) -> list[str]:
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        words = text.split()
    for i, w in enumerate(words):
        if w in _SHELL_OPS:
            return words[:i]
    return words


def prep_steps(ev: Evaluated, *, label: str = "spec") -> PrepQueue:
    """ApplyPatch / ApplyOptionalPatch / series-helper calls among %prep's active lines, in
    order. Shell function bodies (the helpers' own definitions) are skipped."""
    expander = Expander(ev.macros)
    steps: list[ApplyStep] = []
    notes: list[str] = []
    in_function = False
    for sl in ev.section("prep"):
        if in_function:
            in_function = sl.text.strip() != "}"
            continue
        if _FUNCTION.match(sl.text):
            in_function = not sl.text.rstrip().endswith("}")
            continue
        words = _words(expander.expand(sl.text.replace("\\\n", " ")))
        if not words:
            continue
        command = posixpath.basename(words[0])
        if command in ("ApplyPatch", "ApplyOptionalPatch") or command.lower() in _SERIES_HELPERS:
            kind = (
                "patch" if command == "ApplyPatch" else "optional" if command == "ApplyOptionalPatch" else "series"
            )
            step = _step(kind, words[1:], sl.number, sl.certain)
            if step is None:
                notes.append(f"{label}: line {sl.number}: {command} names a file only rpm could compute; skipped")
            else:
                steps.append(step)
    return PrepQueue(tuple(steps), tuple(notes))


def _step(kind: str, args: list[str], line: int, certain: bool) -> ApplyStep | None:
    if not args or UNKNOWN in args[0] or args[0].startswith("-"):
        return None
    strip, reverse = 1, False
    for a in args[1:]:
        if re.fullmatch(r"-p\d+", a):
            strip = int(a[2:])
        elif a == "-R":
            reverse = True
    rest = tuple(a.replace(UNKNOWN, "?") for a in args[1:])
    return ApplyStep(kind, posixpath.basename(args[0]), line, strip, reverse, rest, certain)
