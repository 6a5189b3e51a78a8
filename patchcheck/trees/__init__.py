"""Read-only views of kernel trees, one module per source kind.

``open_tree(spec, ...)`` turns a ``--tree`` argument (a name from trees.toml or a path) into
a ``TreeView``. Nothing here writes into the user's tree: archive-backed kinds extract what a
run reads into the patchcheck cache (``<cache_dir>/trees/``), keyed by the archive's sha256.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchcheck.errors import TreeError
from patchcheck.model import TreeInfo
from patchcheck.trees._common import check_user_path
from patchcheck.trees.base import TreeView
from patchcheck.trees.tarball import TAR_SUFFIXES

__all__ = [
    "NamedTree",
    "TreeInfo",
    "TreeView",
    "detect_kind",
    "find_trees_file",
    "load_trees_file",
    "open_tree",
]

KINDS = ("folder", "git", "tarball", "deb", "srpm", "dsc")


@dataclass(frozen=True)
class NamedTree:
    """One ``[name]`` table of the trees file."""

    name: str
    path: Path  # absolute; relative paths in the file are relative to the file
    rev: str | None = None
    distro: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # every other string key
    trees_file: Path | None = None


def find_trees_file(explicit: Path | None) -> Path | None:
    """The explicit file, else ./trees.toml, else $XDG_CONFIG_HOME/patchcheck/trees.toml."""
    if explicit is not None:
        return explicit
    local = Path("trees.toml")
    if local.is_file():
        return local.absolute()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(config) / "patchcheck" / "trees.toml"
    return user if user.is_file() else None


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


def detect_kind(path: Path) -> str:
    """folder | git | tarball | deb | srpm | dsc, from the suffix, else the first bytes."""
    if path.is_dir():
        if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
            return "git"
        return "folder"
    name = path.name.lower()
    if name.endswith(".src.rpm") or name.endswith(".srpm"):
        return "srpm"
    if name.endswith(".rpm"):
        raise TreeError(f"{path}: a binary RPM; expected a kernel .src.rpm")
    if name.endswith(".dsc"):
        return "dsc"
    if name.endswith(".deb"):
        return "deb"
    if name.endswith(TAR_SUFFIXES):
        return "tarball"
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise TreeError(f"{path}: cannot read ({e.strerror or e})") from e
    if head.startswith(b"\xed\xab\xee\xdb"):
        return "srpm"
    if head.startswith(b"!<arch>\n"):
        return "deb"
    if head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh")) or head[257:262] == b"ustar":
        return "tarball"
    raise TreeError(
        f"{path}: unsupported file type; expected a folder, git checkout, .tar.* tarball, "
        "linux-source .deb, .src.rpm or .dsc"
    )


def open_tree(
    spec: str,
    *,
    cache_dir: Path,
    trees_file: Path | None = None,
    rev: str | None = None,
) -> TreeView:
    """A view of ``spec``: a name from ``trees_file`` (if given), else a path.

    A name wins over a same-named relative path unless ``spec`` contains a "/".
    """
    named: NamedTree | None = None
    if trees_file is not None and "/" not in spec:
        known = load_trees_file(trees_file)
        named = known.get(spec)
    if named is None and not os.path.lexists(spec):
        hint = ""
        if trees_file is not None:
            names = sorted(load_trees_file(trees_file))
            hint = f" and not a name in {trees_file} (names: {', '.join(names) or 'none'})"
        raise TreeError(f"{spec}: no such file or folder{hint}; expected a kernel tree")
    path = named.path if named else Path(spec)
    rev = rev if rev is not None else (named.rev if named else None)
    check_user_path(path, "a kernel tree (folder, git checkout or source package)")
    kind = detect_kind(path)
    if rev is not None and kind != "git":
        raise TreeError(f"{path}: a {kind}, not a git checkout; a revision ({rev}) needs git")
    return _open_kind(
        kind,
        path,
        cache_dir=cache_dir,
        rev=rev,
        name=named.name if named else spec,
        distro=named.distro if named else None,
        labels=dict(named.labels) if named else {},
    )


def _open_kind(
    kind: str,
    path: Path,
    *,
    cache_dir: Path,
    rev: str | None,
    name: str,
    distro: str | None,
    labels: dict[str, str],
) -> TreeView:
    # Imported here so opening a folder never pays for the archive modules.
    if kind == "folder":
        from patchcheck.trees.folder import FolderTree

        return FolderTree(path, name=name, distro=distro, labels=labels)
    if kind == "git":
        from patchcheck.trees.gitrepo import GitTree

        return GitTree(path, name=name, rev=rev, distro=distro, labels=labels)
    if kind == "tarball":
        from patchcheck.trees.tarball import TarballTree

        return TarballTree(path, cache_dir=cache_dir, name=name, distro=distro, labels=labels)
    if kind == "deb":
        from patchcheck.trees.deb import DebTree

        return DebTree(path, cache_dir=cache_dir, name=name, distro=distro, labels=labels)
    if kind == "srpm":
        from patchcheck.trees.srpm import SrpmTree

        return SrpmTree(path, cache_dir=cache_dir, name=name, distro=distro, labels=labels)
    from patchcheck.trees.dsc import DscTree

    return DscTree(path, cache_dir=cache_dir, name=name, distro=distro, labels=labels)
