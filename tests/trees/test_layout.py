"""The trees package's shape: small modules, imports that only go one way, one module per kind."""

from __future__ import annotations

import ast
from pathlib import Path

from patchcheck.trees import KINDS

PKG = Path(__file__).resolve().parents[2] / "patchcheck" / "trees"


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """patchcheck.trees modules named by ``path``'s imports (TYPE_CHECKING ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("patchcheck.trees"):
            found.add(node.module)
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("patchcheck.trees"))
    return found


def test_every_module_is_small() -> None:
    for path in PKG.rglob("*.py"):
        assert len(path.read_text().splitlines()) < 500, path


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}
    # The package's __init__ imports every kind so that it registers; nothing imports it back.
    for m, deps in graph.items():
        assert "patchcheck.trees" not in deps or m == "patchcheck.trees", f"{m} imports the package"

    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, " -> ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_one_module_per_kind() -> None:
    assert set(KINDS) == {"folder", "git", "tarball", "deb", "srpm", "dsc"}
    for kind in KINDS:
        name = {"git": "gitrepo"}.get(kind, kind)
        assert (PKG / f"{name}.py").is_file(), kind
