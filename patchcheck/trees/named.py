"""The trees file: named trees (``[linux-4.19] path = "..."``) and where it is looked for."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchcheck.errors import TreeError


@dataclass(frozen=True)
class NamedTree:
    """One ``[name]`` table of the trees file."""

    name: str
    path: Path  # absolute; relative paths in the file are relative to the file
    rev: str | None = None
    distro: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # every other string key
    trees_file: Path | None = None


def trees_file_places() -> list[Path]:
    """Where a trees file is looked for when none is given: ./trees.toml, then
    $XDG_CONFIG_HOME/patchcheck/trees.toml."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("trees.toml").absolute(), Path(config) / "patchcheck" / "trees.toml"]


def find_trees_file(explicit: Path | None) -> Path | None:
    """The explicit file, else the first of ``trees_file_places`` that exists."""
    if explicit is not None:
        return explicit
    return next((p for p in trees_file_places() if p.is_file()), None)


def load_trees_file(path: Path) -> dict[str, NamedTree]:
    """Parse and validate a trees file; every problem is a one-line TreeError naming the key."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TreeError(f"{path}: cannot read the trees file ({e.strerror or e})") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise TreeError(f"{path}: not valid TOML ({e})") from e
    base = path.absolute().parent
    trees: dict[str, NamedTree] = {}
    for name, table in _tree_tables(path, data):
        for key, value in table.items():
            if not isinstance(value, str):
                raise TreeError(f"{path}: [{name}].{key}: expected a string")
        if "path" not in table:
            raise TreeError(f"{path}: [{name}].path: missing; expected the tree's file or folder")
        if not table["path"].strip():
            raise TreeError(f"{path}: [{name}].path: empty; expected the tree's file or folder")
        tree_path = Path(os.path.expanduser(table["path"]))
        labels = {k: v for k, v in table.items() if k not in ("path", "rev", "distro")}
        trees[name] = NamedTree(
            name=name,
            path=Path(os.path.normpath(base / tree_path)),  # base is ignored when absolute
            rev=table.get("rev") or None,
            distro=table.get("distro") or None,
            labels=labels,
            trees_file=path,
        )
    return trees


def _tree_tables(path: Path, data: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """The tree tables, by name. ``[linux-4.19]`` is, to TOML, table "19" inside "linux-4":
    a table holding only tables is such a dotted name, so it is joined back."""
    found: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if not isinstance(value, dict):
            where = f"[{prefix}].{key}" if prefix else key
            raise TreeError(f'{path}: {where}: expected a [{name}] table with path = "..."')
        if value and all(isinstance(v, dict) for v in value.values()):
            found += _tree_tables(path, value, name)
        else:
            found.append((name, value))
    return found
