"""rpm macros and %if expressions, evaluated safely: the core of the spec preprocessor.

``Expander`` expands ``%{x}``, ``%x``, ``%{?x:y}``, ``%{!?x:y}``, ``%{with x}``, ``%{defined x}``,
``%{expand:...}``, ``%[expr]`` and a few string built-ins against a ``Macros`` table. Nothing is
ever run: ``%(...)`` shell macros, ``%{lua:...}``, parametric macros and macros the table does
not hold expand to UNKNOWN, and an expression holding UNKNOWN is undecided (three-valued logic:
``0 && unknown`` is still false). Every expansion is bounded in depth, size and steps.
``specprep.preprocess`` applies this to a whole spec.
"""

from __future__ import annotations

import platform
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

UNKNOWN = "\x00"  # marks text only rpm could produce; any value holding it is unknown
MAX_DEPTH = 32  # nested macro expansions (rpm stops at 64; real specs stay under 10)
MAX_OUTPUT = 1 << 20  # characters one expansion may produce
MAX_STEPS = 200_000  # macro expansions per spec (a kernel spec needs a few thousand)
MAX_EXPR = 1 << 16  # characters of one expanded expression
MAX_NEST = 32  # parentheses and ?: nesting in one expression

# rpm's arch-list macros, as its platform files define them (the ones kernel specs use).
ARCH_LISTS = {
    "ix86": "i386 i486 i586 i686 pentium3 pentium4 athlon geode",
    "x86_64": "x86_64 amd64 em64t",
    "arm": "armv3l armv4b armv4l armv4tl armv5tl armv5tel armv5tejl armv6l armv6hl armv7l armv7hl armv7hnl",
    "arm64": "aarch64",
    "power64": "ppc64 ppc64p7 ppc64le",
    "riscv": "riscv64",
    "loongarch64": "loongarch64",
}
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8": "aarch64"}
_BODY = re.compile(r"([!?]*)([A-Za-z_]\w*)?(.*)", re.S)
_SHORT = re.compile(r"([!?]*)([A-Za-z_]\w*)")


def host_arch() -> str:
    """The running machine's rpm architecture (the default for ``--arch``)."""
    return normalize_arch(platform.machine() or "x86_64")


def normalize_arch(arch: str) -> str:
    """rpm's name for an architecture given as Debian or kernel people spell it."""
    a = arch.strip().lower()
    return _ARCH_ALIASES.get(a, a)


def builtin_macros(arch: str, os_name: str = "linux") -> dict[str, str]:
    """The macros rpm and its distro configs provide that conditionals use: arch, os, arch lists."""
    base = {"nil": "", "_arch": arch, "_target_cpu": arch, "_host_cpu": arch, "_build_cpu": arch}
    base["toolchain"] = "gcc"  # the default of Fedora's and openEuler's rpm configs (kernel specs test it)
    for key in ("_os", "_target_os", "_host_os", "_build_os"):
        base[key] = os_name
    return {**base, **ARCH_LISTS}


@dataclass(frozen=True)
class Def:
    body: str
    params: str | None = None  # "(opts)" of a parametric macro: never expanded by us
    maybe: bool = False  # made in a branch of an undecided %if: perhaps not defined at all


class Macros:
    """rpm's macro table: a stack of definitions per name (%define pushes, %undefine pops)."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._stacks: dict[str, list[Def]] = {}
        for name, body in (initial or {}).items():
            self.define(name, body)

    def define(self, name: str, body: str, params: str | None = None, *, maybe: bool = False) -> None:
        self._stacks.setdefault(name, []).append(Def(body, params, maybe))

    def undefine(self, name: str) -> None:
        stack = self._stacks.get(name)
        if stack:
            stack.pop()
            if not stack:
                del self._stacks[name]

    def get(self, name: str) -> Def | None:
        stack = self._stacks.get(name)
        return stack[-1] if stack else None

    def snapshot(self) -> Mapping[str, str | None]:
        """name -> value as stored (a %define body unexpanded); None when unknown or parametric."""
        out: dict[str, str | None] = {}
        for name, stack in self._stacks.items():
            top = stack[-1]
            out[name] = None if top.params is not None or top.maybe or UNKNOWN in top.body else top.body
        return MappingProxyType(out)


class _Stop(Exception):
    """An expansion ran past a bound; its value is unknown."""


def _close(text: str, start: int, opening: str, closing: str) -> int:
    """Index of the bracket closing the one at ``start``, or -1."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


_STRING_FUNCS: dict[str, Callable[[str], str]] = {
    "basename": posixpath.basename,
    "dirname": posixpath.dirname,
    "upper": str.upper,
    "lower": str.lower,
    "shrink": lambda s: " ".join(s.split()),
    "quote": lambda s: s,
    "len": lambda s: str(len(s)),
    "suffix": lambda s: posixpath.splitext(s)[1].lstrip("."),
    "echo": lambda s: "",
    "warn": lambda s: "",
}


class Expander:
    """Expands macros against a table, within bounds; what it cannot know becomes UNKNOWN.

    One expander serves one spec: its step budget is shared by every expansion it makes.
    """

    def __init__(self, macros: Macros, steps: int = MAX_STEPS) -> None:
        self.macros = macros
        self.steps = steps
        self.problems: list[str] = []  # the bounds expansions ran into, each once
        self.last_problem: str | None = None

    def expand(self, text: str) -> str:
        """``text`` with its macros expanded; UNKNOWN where a value is not knowable here."""
        try:
            return self._expand(text, 0)
        except _Stop as e:
            if str(e) not in self.problems:
                self.problems.append(str(e))
            self.last_problem = str(e)
            return UNKNOWN

    def value(self, text: str) -> str | None:
        """The expansion of ``text``, or None when any part of it is unknown."""
        out = self.expand(text)
        return None if UNKNOWN in out else out

    def condition(self, expr: str) -> tuple[bool | None, str | None]:
        """A %if expression's truth (None: undecided) and, when undecided, why."""
        self.last_problem = None
        v, why = _evaluate(self.expand(expr))
        if v is None:
            return None, self.last_problem or why or "it depends on a value only rpm could compute"
        return bool(v), None

    def _expand(self, text: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise _Stop("macros nest too deeply")
        out: list[str] = []
        size = 0
        i = 0
        while i < len(text):
            j = text.find("%", i)
            if j < 0:
                j = len(text)
            out.append(text[i:j])
            size += j - i
            i = j
            if j < len(text):
                self.steps -= 1
                if self.steps < 0:
                    raise _Stop("the macro expansion budget is spent")
                piece, i = self._percent(text, j, depth)
                out.append(piece)
                size += len(piece)
            if size > MAX_OUTPUT:
                raise _Stop("a macro expands to more than 1 MiB")
        return "".join(out)

    def _percent(self, text: str, j: int, depth: int) -> tuple[str, int]:
        """The expansion of the macro starting at text[j] == '%', and the index after it."""
        c = text[j + 1 : j + 2]
        if c == "%":
            return "%", j + 2
        if c in ("{", "(", "["):
            end = _close(text, j + 1, c, {"{": "}", "(": ")", "[": "]"}[c])
            if end < 0:
                return text[j:], len(text)
            body = text[j + 2 : end]
            if c == "(" or body.startswith("lua:"):
                return UNKNOWN, end + 1
            if c == "[":
                return _to_text(_evaluate(self._expand(body, depth + 1))[0]), end + 1
            return self._braced(body, depth), end + 1
        m = _SHORT.match(text, j + 1)
        if m is None or (m.group(1) and "?" not in m.group(1)):
            return "%", j + 1
        return self._braced(m.group(1) + m.group(2), depth), m.end()

    def _braced(self, body: str, depth: int) -> str:
        flags, name, rest = _BODY.fullmatch(body).groups()  # type: ignore[union-attr]
        if name is None:
            return UNKNOWN
        arg = rest[1:] if rest[:1] in (":", " ", "\t") else None
        if arg is None and rest:
            return UNKNOWN  # not a macro name rpm accepts
        if "?" in flags:
            d = self.macros.get(name)
            if d is not None and d.maybe:
                return UNKNOWN
            neg = flags.count("!") % 2 == 1
            if (d is not None) == neg:
                return ""
            if arg is not None:
                return self._expand(arg, depth + 1)
            return "" if d is None else self._value(d, depth)
        if arg is not None:
            return self._builtin(name, arg.strip() if rest[0] != ":" else arg, depth)
        if name in ("define", "global", "undefine"):
            return ""  # a definition made during expansion (%{expand:%%global ...}): not replayed
        d = self.macros.get(name)
        return UNKNOWN if d is None else self._value(d, depth)

    def _value(self, d: Def, depth: int) -> str:
        if d.params is not None or d.maybe:
            return UNKNOWN
        return self._expand(d.body, depth + 1)

    def _defined(self, name: str) -> str:
        d = self.macros.get(name)
        return UNKNOWN if d is not None and d.maybe else ("1" if d is not None else "0")

    def _builtin(self, name: str, arg: str, depth: int) -> str:
        if name in ("with", "without"):
            return self._defined(f"_{name}_{arg.strip()}")
        if name in ("defined", "undefined"):
            found = self._defined(arg.strip())
            return found if name == "defined" or found == UNKNOWN else str(1 - int(found))
        if name == "expand":
            return self._expand(self._expand(arg, depth + 1), depth + 1)
        if name in ("S", "P"):
            d = self.macros.get(("SOURCE" if name == "S" else "PATCH") + self._expand(arg, depth + 1).strip())
            return UNKNOWN if d is None else self._value(d, depth)
        func = _STRING_FUNCS.get(name)
        if func is None:
            return UNKNOWN  # getenv:, uncompress:, sub:, ... or an undefined macro with an argument
        value = self._expand(arg, depth + 1)
        return UNKNOWN if UNKNOWN in value else func(value)


# ---- expressions ----------------------------------------------------------------------------

Value = int | str | None  # None: unknown
_OPS2 = ("&&", "||", "==", "!=", "<=", ">=")
_OPS1 = "<>!()+-*/?:"
_WORD_END = set(' \t\n"' + _OPS1 + "=&|")


class _Syntax(Exception):
    pass


def _tokens(s: str) -> list[tuple[str, Value]]:
    toks: list[tuple[str, Value]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c == '"' or (c == "v" and s[i + 1 : i + 2] == '"'):
            start = i + (2 if c == "v" else 1)
            end = s.find('"', start)
            if end < 0:
                raise _Syntax("unterminated string")
            body = s[start:end]
            # v"1.2" version literals compare by rpm's version order: not ours to guess
            toks.append(("val", None if c == "v" or UNKNOWN in body else body))
            i = end + 1
        elif s.startswith(_OPS2, i):
            toks.append((s[i : i + 2], None))
            i += 2
        elif c in _OPS1:
            toks.append((c, None))
            i += 1
        else:
            j = i
            while j < n and s[j] not in _WORD_END:
                j += 1
            if j == i:
                raise _Syntax(f"unexpected {c!r}")
            word = s[i:j]
            if UNKNOWN in word:
                toks.append(("val", None))
            elif word.isdigit():
                toks.append(("val", int(word) if len(word) < 4000 else None))
            else:
                toks.append(("val", word))  # a bare word: a string, as rpm before 4.15 read it
            i = j
    return toks


def _truth(v: Value) -> bool | None:
    return None if v is None else bool(v)


def _bool(t: bool | None) -> Value:
    return None if t is None else int(t)


class _Parser:
    """Precedence climbing over rpm's grammar: ?: || && comparisons + - * / ! - ( )."""

    def __init__(self, toks: list[tuple[str, Value]]) -> None:
        self.toks = toks
        self.i = 0
        self.nest = 0

    def peek(self) -> str:
        return self.toks[self.i][0] if self.i < len(self.toks) else ""

    def take(self, kind: str) -> None:
        if self.peek() != kind:
            raise _Syntax(f"expected {kind!r}")
        self.i += 1

    def parse(self) -> Value:
        if not self.toks:
            raise _Syntax("empty expression")
        v = self.ternary()
        if self.i != len(self.toks):
            raise _Syntax(f"unexpected {self.peek()!r}")
        return v

    def ternary(self) -> Value:
        cond = self.binary()
        if self.peek() != "?":
            return cond
        self.nest += 1
        if self.nest > MAX_NEST:
            raise _Syntax("nested too deeply")
        self.i += 1
        a = self.ternary()
        self.take(":")
        b = self.ternary()
        self.nest -= 1
        t = _truth(cond)
        if t is None:
            return a if a == b else None
        return a if t else b

    def binary(self, level: int = 0) -> Value:
        if level == len(_LEVELS):
            return self.unary()
        v = self.binary(level + 1)
        while self.peek() in _LEVELS[level]:
            op = self.peek()
            self.i += 1
            v = _binary(op, v, self.binary(level + 1))
        return v

    def unary(self) -> Value:
        ops: list[str] = []
        while self.peek() in ("!", "-"):
            ops.append(self.peek())
            self.i += 1
        v = self.primary()
        for op in reversed(ops):
            if op == "!":
                v = _bool(None if _truth(v) is None else not _truth(v))
            elif isinstance(v, str):
                raise _Syntax("- on a string")
            elif v is not None:
                v = -v
        return v

    def primary(self) -> Value:
        kind = self.peek()
        if kind == "(":
            self.nest += 1
            if self.nest > MAX_NEST:
                raise _Syntax("nested too deeply")
            self.i += 1
            v = self.ternary()
            self.take(")")
            self.nest -= 1
            return v
        if kind != "val":
            raise _Syntax(f"unexpected {kind or 'end'!r}")
        self.i += 1
        return self.toks[self.i - 1][1]


_LEVELS = (("||",), ("&&",), ("==", "!=", "<", ">", "<=", ">="), ("+", "-"), ("*", "/"))


def _binary(op: str, a: Value, b: Value) -> Value:
    if op in ("||", "&&"):
        ta, tb = _truth(a), _truth(b)
        short = op == "||"  # the truth value that decides the result whatever the other side is
        if short in (ta, tb):
            return int(short)
        return None if None in (ta, tb) else int(not short)
    if op in ("+", "-", "*", "/"):
        return _arith(op, a, b)
    return _compare(op, a, b)


def _compare(op: str, a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    if type(a) is not type(b):
        raise _Syntax("types must match")
    return int(
        {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]  # type: ignore[operator]
    )


def _arith(op: str, a: Value, b: Value) -> Value:
    if a is not None and b is not None and type(a) is not type(b):
        raise _Syntax("types must match")
    if isinstance(a, str) or isinstance(b, str):
        if op != "+":
            raise _Syntax(f"{op} on strings")
        return None if a is None or b is None else f"{a}{b}"
    if a is None or b is None:
        return None
    if op == "/" and b == 0:
        raise _Syntax("division by zero")
    return {"+": a + b, "-": a - b, "*": a * b, "/": int(a / b) if op == "/" else 0}[op]


def evaluate(expanded: str) -> Value:
    """The value of an already macro-expanded expression: int, str, or None when unknown or
    not an expression rpm would accept."""
    return _evaluate(expanded)[0]


def _evaluate(expanded: str) -> tuple[Value, str | None]:
    if len(expanded) > MAX_EXPR:
        return None, f"the expression is longer than {MAX_EXPR} characters"
    try:
        return _Parser(_tokens(expanded)).parse(), None
    except _Syntax as e:
        return None, f"not an expression rpm accepts ({e})"


def expand(text: str, macros: Macros) -> str | None:
    """``text`` with its macros expanded, or None when any part of it is unknown."""
    return Expander(macros).value(text)


def _to_text(v: Value) -> str:
    return UNKNOWN if v is None else str(v)
