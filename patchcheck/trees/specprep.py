"""The lines of an rpm spec that are active for one architecture, without running anything.

``preprocess`` walks the spec once, in order, as rpm's parser does: ``%if``/``%elif``/``%else``/
``%endif`` (nested), ``%ifarch``/``%ifnarch``/``%ifos``/``%ifnos`` (and their ``%elif`` forms),
``%define``/``%global``/``%undefine``, ``%bcond_with``/``%bcond_without``/``%bcond``, and the
Name/Version/Release/Epoch/SourceN/PatchN tags, which define macros as rpm does. Expressions
go through ``specexpr`` (never rpm's own expansion: ``rpmspec --parse`` runs ``%(...)``). A
condition that depends on an unknown value keeps both branches, marks their lines uncertain and
leaves a note; a definition made in such a branch makes its macro unknown.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from patchcheck.errors import TreeError
from patchcheck.trees.specexpr import UNKNOWN, Expander, Macros, builtin_macros, host_arch, normalize_arch

MAX_IF_DEPTH = 256  # nested %if blocks
MAX_NOTES = 20  # undecided conditions spelled out; the rest are counted
SECTIONS = frozenset(
    {
        *("package", "description", "prep", "build", "install", "check", "clean", "files", "changelog"),
        *("pre", "post", "preun", "postun", "pretrans", "posttrans", "verifyscript", "conf"),
        *("triggerin", "triggerun", "triggerpostun", "triggerprein", "generate_buildrequires"),
        *("filetriggerin", "filetriggerun", "filetriggerpostun", "sourcelist", "patchlist"),
        *("transfiletriggerin", "transfiletriggerun", "transfiletriggerpostun"),
    }
)
_SECTION = re.compile(r"^%([a-z_]+)(?=$|\s)")
_DIRECTIVE = re.compile(
    r"^\s*%(ifarch|ifnarch|ifos|ifnos|if|elifarch|elifnarch|elifos|elifnos|elif|else|endif|"
    r"define|global|undefine|bcond_without|bcond_with|bcond)(?=$|[\s(!])(.*)$",
    re.S,
)
_DEFINE = re.compile(r"([A-Za-z_]\w*)(\([^)]*\))?(?:\s+(.*))?", re.S)
_TAG = re.compile(r"(Name|Version|Release|Epoch|Source|Patch)(\d*)\s*:\s*(.*?)\s*", re.I | re.S)


def is_header(text: str) -> bool:
    """A section's header line (``%prep``, ``%files -n x``); ``%patch 1`` and ``%setup`` are not."""
    m = _SECTION.match(text)
    return m is not None and m.group(1) in SECTIONS


class SpecError(TreeError):
    """Conditionals that do not nest (unterminated %if, stray %else/%endif): exit 2."""


@dataclass(frozen=True)
class SpecLine:
    number: int  # 1-based spec line where this line starts (continued lines are joined)
    text: str
    section: str  # "preamble", or the section it sits in: "prep", "changelog", "package"...
    certain: bool = True  # False: in a branch of a condition we could not decide


@dataclass(frozen=True)
class Evaluated:
    arch: str
    lines: tuple[SpecLine, ...]  # active lines, conditional and definition lines left out
    macros: Macros = field(repr=False, compare=False)  # the table as it stands after the last line
    sources: Mapping[int, str] = field(default_factory=dict)  # SourceN: -> file name
    patches: Mapping[int, str] = field(default_factory=dict)  # PatchN: -> file name
    notes: tuple[str, ...] = ()
    undecided: tuple[int, ...] = ()  # lines of the conditions that could not be decided

    def section(self, name: str) -> tuple[SpecLine, ...]:
        """The active lines of one section (its header line left out)."""
        return tuple(x for x in self.lines if x.section == name and not is_header(x.text))

    def expand(self, text: str) -> str | None:
        """``text`` expanded with the spec's final macros; None when any part is unknown."""
        return Expander(self.macros).value(text)


@dataclass
class _Frame:
    line: int
    outer: bool | None  # state of the enclosing block: True active, None undecided, False skipped
    taken: bool | None  # whether an earlier branch of this %if was the active one
    state: bool | None  # state of the current branch, the enclosing one included
    seen_else: bool = False


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if False in (a, b) else (None if None in (a, b) else True)


def _or(a: bool | None, b: bool | None) -> bool | None:
    return True if True in (a, b) else (None if None in (a, b) else False)


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) per spec line, lines ending in a backslash joined to the next."""
    lines = text.replace("\r\n", "\n").replace(UNKNOWN, "").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line
    i = 0
    while i < len(lines):
        start, buf = i, lines[i]
        while buf.endswith("\\") and i + 1 < len(lines):
            i += 1
            buf += "\n" + lines[i]
        yield start + 1, buf
        i += 1


class _Walker:
    def __init__(self, table: Macros, arch: str, os_name: str, label: str) -> None:
        self.table = table
        self.ex = Expander(table)
        self.arch = arch
        self.os_name = os_name.lower()
        self.label = label
        self.stack: list[_Frame] = []
        self.lines: list[SpecLine] = []
        self.sources: dict[int, str] = {}
        self.patches: dict[int, str] = {}
        self.notes: list[str] = []
        self.undecided: list[int] = []
        self.section = "preamble"

    @property
    def active(self) -> bool | None:
        return self.stack[-1].state if self.stack else True

    def line(self, number: int, text: str) -> None:
        m = _DIRECTIVE.match(text)
        if m is not None:
            self.directive(number, m.group(1), m.group(2).strip())
            return
        if self.active is False:
            return
        s = _SECTION.match(text)
        if s is not None and s.group(1) in SECTIONS:
            self.section = s.group(1)
        elif self.section == "preamble":
            self.tag(text)
        self.lines.append(SpecLine(number, text, self.section, self.active is True))

    def directive(self, n: int, word: str, rest: str) -> None:
        if word.startswith("if"):
            if len(self.stack) >= MAX_IF_DEPTH:
                raise SpecError(f"{self.label}: line {n}: %if blocks nest deeper than {MAX_IF_DEPTH}")
            outer = self.active
            cond = self.test(n, word, rest) if outer is not False else False
            self.stack.append(_Frame(n, outer, cond, _and(outer, cond)))
        elif word.startswith("elif") or word == "else":
            if not self.stack:
                raise SpecError(f"{self.label}: line {n}: %{word} without %if")
            f = self.stack[-1]
            if f.seen_else:
                raise SpecError(f"{self.label}: line {n}: %{word} after the %else of the %if at line {f.line}")
            if word == "else":
                f.seen_else = True
                branch = _not(f.taken)
            else:
                cond = self.test(n, word, rest) if f.outer is not False and f.taken is not True else False
                branch = _and(_not(f.taken), cond)
                f.taken = _or(f.taken, cond)
            f.state = _and(f.outer, branch)
        elif word == "endif":
            if not self.stack:
                raise SpecError(f"{self.label}: line {n}: %endif without %if")
            self.stack.pop()
        elif self.active is not False:
            self.define(n, word, rest)

    def test(self, n: int, word: str, rest: str) -> bool | None:
        kind = word[2:] if word.startswith("el") else word  # %elifarch tests as %ifarch does
        why: str | None = None
        if kind == "if":
            value, why = self.ex.condition(rest)
        else:
            items = self.ex.expand(rest).replace(",", " ").split()
            known = [x.lower() for x in items if UNKNOWN not in x]
            value = (self.arch if "arch" in kind else self.os_name) in known or None
            if value is None and len(known) == len(items):
                value = False
            elif value is None:
                why = "its list holds a value only rpm could compute"
            if kind.startswith("ifn"):
                value = _not(value)
        if value is None:
            self.undecided.append(n)
            if len(self.undecided) <= MAX_NOTES:
                shown = f"%{word} {rest}"[:80]
                self.notes.append(
                    f"{self.label}: could not evaluate {shown!r} at line {n} ({why}); both branches considered"
                )
        return value

    def define(self, n: int, word: str, rest: str) -> None:
        maybe = self.active is None
        if word == "undefine":
            name = rest.split()[0] if rest.split() else ""
            if maybe:
                self.table.define(name, UNKNOWN, maybe=True)
            else:
                self.table.undefine(name)
            return
        if word.startswith("bcond"):
            self.bcond(n, word, rest.split(), maybe)
            return
        m = _DEFINE.fullmatch(rest)
        if m is None:
            self.notes.append(f"{self.label}: line {n}: %{word} {rest[:40]!r} defines no macro name; ignored")
            return
        name, params, body = m.group(1), m.group(2), (m.group(3) or "").replace("\\\n", "\n").strip()
        if word == "global" and params is None:
            body = self.ex.expand(body)
        self.table.define(name, body, params, maybe=maybe)

    def bcond(self, n: int, word: str, args: list[str], maybe: bool) -> None:
        """%bcond_with x: off unless --with x; %bcond_without x: on unless --without x."""
        if not args:
            self.notes.append(f"{self.label}: line {n}: %{word} names no option; ignored")
            return
        name = args[0]
        if self.table.get(f"_with_{name}") is not None or self.table.get(f"_without_{name}") is not None:
            return  # decided by the caller (rpmbuild --with/--without)
        on: bool | None = word == "bcond_without"
        if word == "bcond":
            on, _ = self.ex.condition(" ".join(args[1:]) or "0")
        if on is None or maybe:
            self.table.define(f"_with_{name}", UNKNOWN, maybe=True)
            self.table.define(f"_without_{name}", UNKNOWN, maybe=True)
        else:
            self.table.define(
                f"_with_{name}" if on else f"_without_{name}", f"--{'with' if on else 'without'}-{name}"
            )

    def tag(self, text: str) -> None:
        m = _TAG.fullmatch(text)
        if m is None:
            return
        key, num, value = m.group(1).lower(), m.group(2), self.ex.expand(m.group(3))
        maybe = self.active is None
        if key in ("source", "patch"):
            files = self.sources if key == "source" else self.patches
            index = int(num) if num else (max(files) + 1 if files else 0)
            # "URL#/name" saves the file as "name"; the file keeps its last path component
            value = posixpath.basename(value.rsplit("#/", 1)[-1])
            files[index] = value
            self.table.define(f"{key.upper()}{index}", value, maybe=maybe)
        elif not num:
            self.table.define(key, value, maybe=maybe)


def preprocess(
    text: str,
    arch: str | None = None,
    macros: Mapping[str, str] | None = None,
    *,
    os_name: str = "linux",
    label: str = "spec",
) -> Evaluated:
    """The spec's lines active for ``arch`` (default: the host's), in order.

    ``macros`` are defined before the spec's own (as ``rpmbuild --define`` would), after rpm's
    arch/os built-ins; ``--with x`` is ``{"_with_x": "--with-x"}``. ``label`` names the spec in
    notes and errors. Raises SpecError when the conditionals do not nest.
    """
    arch = normalize_arch(arch or host_arch())
    table = Macros({**builtin_macros(arch, os_name), **(macros or {})})
    walker = _Walker(table, arch, os_name, label)
    for number, line in logical_lines(text):
        walker.line(number, line)
    if walker.stack:
        raise SpecError(f"{label}: line {walker.stack[-1].line}: %if without %endif")
    notes = list(walker.notes)
    if len(walker.undecided) > MAX_NOTES:
        notes.append(f"{label}: {len(walker.undecided) - MAX_NOTES} more conditions could not be evaluated")
    for problem in walker.ex.problems:
        if not any(problem in n for n in notes):
            notes.append(f"{label}: {problem}; the values it touched are unknown")
    return Evaluated(
        arch=arch,
        lines=tuple(walker.lines),
        macros=table,
        sources=dict(walker.sources),
        patches=dict(walker.patches),
        notes=tuple(notes),
        undecided=tuple(walker.undecided),
    )
