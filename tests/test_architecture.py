"""The house rules of patchcheck/, checked on the code as it is (README "Layout").

- every module is under 500 lines;
- no import cycle between patchcheck modules (imports inside functions, under TYPE_CHECKING
  and through importlib count);
- data flows one way: a module never imports one of a later stage (STAGES); verdict.py
  imports only the model; report/ never imports trees/;
- only sys/proc.py imports subprocess; only fetch/b4shim.py imports b4 or liblore;
- each trailer regex (CVE, Fixes:, Link:) is written in one module.

A violation known when a rule was written is listed in a WAIVED_* table with its reason: while
only waived violations remain the test xfails, and it passes once they are gone. Any other
violation fails, naming the module, the import and its line.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "patchcheck"
MAX_LINES = 500

# Data flows from the first row to the last. "" is patchcheck/__init__.py (the version).
STAGES: tuple[tuple[str, ...], ...] = (
    ("", "model", "errors", "sys", "text"),
    ("bugs",),
    ("triage",),  # matches bug signatures against an oops: bug files and the model only
    ("fetch",),
    ("trees",),
    # the verdict rules are pure functions over model types: the engine asks them whether a
    # patch is in (it builds later patches of a series on the ones that are not), so they
    # come before it, as a library would; they never see a tree, a tool or a file
    ("verdict",),
    ("decide",),
    ("engine", "evidence"),
    ("pipeline",),
    ("report",),
    ("config",),  # where options, environment and defaults meet; for the verbs
    ("commands",),
    ("cliargs", "cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}

SPLIT = "to be split by the redesign (issue 13)"
WAIVED_SIZE = {
    "patchcheck.engine.check": SPLIT,
    "patchcheck.evidence.history": SPLIT,
    "patchcheck.fetch.fetcher": SPLIT,
    "patchcheck.triage.score": SPLIT,
}
WAIVED_STAGE = {}
# keyed by the package that holds every module of the cycle
WAIVED_CYCLE = {
    "patchcheck.report": "report/__init__.py imports the renderers lazily and each renderer imports "
    "its Report back under TYPE_CHECKING",
}
# waived only until TRAILERS_MODULE exists
WAIVED_TRAILER = {
    "CVE": "bugs/load.py, fetch/fetcher.py and evidence/history.py each compile one until text/trailers.py lands"
}
SUBPROCESS_USER = "patchcheck.sys.proc"
B4_USER = "patchcheck.fetch.b4shim"
B4_USER_BEFORE_SPLIT = "patchcheck.fetch.fetcher"
TRAILERS_MODULE = "patchcheck.text.trailers"
TRAILER_NEEDLES = {
    "CVE": re.compile(r"cve-"),
    "Fixes": re.compile(r"(?<![a-z])fixes:"),
    "Link": re.compile(r"(?<![a-z])link:"),
}
_RE_FUNCS = {"compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split"}


@dataclass(frozen=True)
class Module:
    name: str
    rel: str  # path relative to the repository, for messages
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.rel.endswith("__init__.py")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of the package, or the top-level name of another distribution
    line: int
    internal: bool

    def where(self, modules: Mapping[str, Module]) -> str:
        return f"{modules[self.importer].rel}:{self.line}"


@functools.cache
def modules() -> dict[str, Module]:
    out: dict[str, Module] = {}
    for path in sorted((ROOT / PKG).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(ROOT))
        out[".".join(parts)] = Module(".".join(parts), rel, ast.parse(text, rel), len(text.splitlines()))
    return out


def _known(name: str) -> str | None:
    """The module ``name`` runs: itself, or the longest enclosing package that exists."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(mod: Module) -> Iterator[Import]:
    mods = modules()

    def named(dotted: str, line: int) -> Iterator[Import]:
        if dotted == PKG or dotted.startswith(PKG + "."):
            target = _known(dotted)
            if target:
                yield Import(mod.name, target, line, True)
        else:
            yield Import(mod.name, dotted.split(".")[0], line, False)

    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from named(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.name if mod.is_package else mod.name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            if base == PKG or base.startswith(PKG + "."):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    yield from named(sub if sub in mods else base, node.lineno)
            else:
                yield from named(base, node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if fname not in ("import_module", "__import__"):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield from named(arg.value, node.lineno)
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                # import_module(f"patchcheck.commands.{verb}"): any module of that package
                prefix = str(arg.values[0].value)
                for name in mods:
                    if name.startswith(prefix) and "." not in name[len(prefix) :]:
                        yield from named(name, node.lineno)


@functools.cache
def imports() -> tuple[Import, ...]:
    return tuple(i for m in modules().values() for i in _imports_of(m))


def internal_edges() -> Iterator[Import]:
    return (i for i in imports() if i.internal and i.target != i.importer)


def stage(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def judge(rule: str, found: Mapping[str, str], waived: Mapping[str, str]) -> None:
    """``found``: violation key -> message. Fails on any violation not in ``waived``; xfails
    while only waived ones remain."""
    new = [msg for key, msg in sorted(found.items()) if key not in waived]
    assert not new, f"{rule}:\n  " + "\n  ".join(new)
    if found:
        pytest.xfail(f"{rule}; waived: " + "; ".join(f"{found[k]} ({waived[k]})" for k in sorted(found)))


# -- the rules ---------------------------------------------------------------------------------


def test_the_rules_see_the_package() -> None:
    # a test that parses nothing passes anything: make sure the walk found the real code
    mods = modules()
    assert {"patchcheck.model", "patchcheck.sys.proc", "patchcheck.cli"} <= set(mods)
    assert any(i.importer == "patchcheck.cli" and i.target.startswith("patchcheck.commands") for i in imports())


def test_modules_stay_under_500_lines() -> None:
    found = {
        m.name: f"{m.rel} has {m.lines} lines (limit {MAX_LINES - 1}): split it"
        for m in modules().values()
        if m.lines >= MAX_LINES
    }
    judge("modules over the size limit", found, WAIVED_SIZE)


def test_every_module_has_a_stage() -> None:
    missing = sorted({f"{m.rel} ({stage(m.name)!r})" for m in modules().values() if stage(m.name) not in RANK})
    assert not missing, "modules with no stage; add their package to STAGES in tests/test_architecture.py: " + (
        ", ".join(missing)
    )


def _cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _cycle_path(members: list[str], edges: Mapping[str, set[str]]) -> list[str]:
    """The shortest cycle through the first member, for the message."""
    inside, start = set(members), members[0]
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    for node in queue:  # breadth first; the queue grows while it is walked
        for nxt in sorted(edges[node] & inside):
            if nxt == start:
                path = [node]
                while (p := prev[path[-1]]) is not None:
                    path.append(p)
                return [*reversed(path), start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    lines: dict[tuple[str, str], Import] = {}
    for i in internal_edges():
        edges[i.importer].add(i.target)
        lines.setdefault((i.importer, i.target), i)
    found: dict[str, str] = {}
    for comp in _cycles(edges):
        path = _cycle_path(comp, edges)
        steps = [f"{a} -> {b} ({lines[a, b].where(modules())})" for a, b in zip(path, path[1:], strict=False)]
        parts = [c.split(".") for c in comp]
        common = ".".join(p[0] for p in zip(*parts, strict=False) if len(set(p)) == 1)
        found[common] = f"cycle among {', '.join(comp)}: " + ", ".join(steps)
    judge("import cycles", found, WAIVED_CYCLE)


def test_no_module_imports_a_later_stage() -> None:
    found: dict[str, str] = {}
    for i in internal_edges():
        a, b = stage(i.importer), stage(i.target)
        if a in RANK and b in RANK and RANK[b] > RANK[a]:
            found[f"{i.importer} -> {i.target}"] = (
                f"{i.importer} (stage {a or 'patchcheck'}) imports {i.target} (later stage {b}) "
                f"at {i.where(modules())}"
            )
    judge("imports against the data flow", found, WAIVED_STAGE)


def test_verdict_imports_only_the_model() -> None:
    bad = [
        f"{i.importer} imports {i.target} at {i.where(modules())}"
        for i in internal_edges()
        if stage(i.importer) == "verdict" and stage(i.target) not in ("verdict", "model")
    ]
    assert not bad, "verdict.py may import patchcheck.model only:\n  " + "\n  ".join(bad)


def test_report_never_imports_trees() -> None:
    bad = [
        f"{i.importer} imports {i.target} at {i.where(modules())}"
        for i in internal_edges()
        if stage(i.importer) == "report" and stage(i.target) == "trees"
    ]
    assert not bad, "report/ renders results; it never reads trees:\n  " + "\n  ".join(bad)


def test_only_proc_imports_subprocess() -> None:
    bad = [
        f"{i.importer} imports subprocess at {i.where(modules())}"
        for i in imports()
        if not i.internal and i.target == "subprocess" and i.importer != SUBPROCESS_USER
    ]
    assert not bad, f"every subprocess goes through {SUBPROCESS_USER}:\n  " + "\n  ".join(bad)
    assert any(i.importer == SUBPROCESS_USER and i.target == "subprocess" for i in imports())


def test_only_the_b4_shim_imports_b4_and_liblore() -> None:
    users = {i.importer: i for i in imports() if not i.internal and i.target in ("b4", "liblore")}
    allowed = B4_USER if B4_USER in modules() else B4_USER_BEFORE_SPLIT
    bad = [
        f"{name} imports {i.target} at {i.where(modules())}"
        for name, i in sorted(users.items())
        if name != allowed
    ]
    assert not bad, f"b4 and liblore are used through {allowed} only:\n  " + "\n  ".join(bad)
    if allowed != B4_USER:
        pytest.xfail(f"{B4_USER} does not exist yet; {B4_USER_BEFORE_SPLIT} is the one b4/liblore user")


def _regex_literals(mod: Module) -> Iterator[tuple[str, int]]:
    """String patterns passed to re.compile / re.search / ... in ``mod``."""
    for node in ast.walk(mod.tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        if node.func.attr not in _RE_FUNCS or not isinstance(node.func.value, ast.Name):
            continue
        if node.func.value.id != "re":
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str | bytes):
            value = arg.value.decode("latin-1") if isinstance(arg.value, bytes) else arg.value
            yield value, node.lineno


@pytest.mark.parametrize("trailer", sorted(TRAILER_NEEDLES))
def test_each_trailer_regex_is_written_once(trailer: str) -> None:
    needle = TRAILER_NEEDLES[trailer]
    where: dict[str, list[str]] = {}
    for m in modules().values():
        for pattern, line in _regex_literals(m):
            if needle.search(pattern.lower()):
                where.setdefault(m.name, []).append(f"{m.rel}:{line} {pattern!r}")
    found = {}
    if len(where) > 1:
        found[trailer] = f"the {trailer} trailer regex is written in {len(where)} modules: " + ", ".join(
            s for name in sorted(where) for s in where[name]
        )
    # once the one trailer module exists, every copy elsewhere is a fault
    waived = {} if TRAILERS_MODULE in modules() else WAIVED_TRAILER
    judge(f"trailer regexes outside {TRAILERS_MODULE}", found, waived)
