"""Read-only views of kernel trees, one module per source kind.

``open_tree(spec, ...)`` turns a ``--tree`` argument (a name from trees.toml or a path) into
a ``TreeView``. Nothing here writes into the user's tree: archive-backed kinds extract what a
run reads into the tree cache (``cache_dir``, by default ``~/.cache/patchcheck/trees``: never
the committable series cache), keyed by the archive's sha256.

Each kind module registers itself (``registry.register``) when imported below; the order of
detection is the kinds' priority, not the order of these imports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.model import TreeInfo
from patchcheck.trees import deb, dsc, folder, gitrepo, srpm, tarball  # noqa: F401 - each registers its kind
from patchcheck.trees._common import DEFAULT_MAX_MEMBER_BYTES, check_user_path
from patchcheck.trees.base import OpenRequest, TreeView, resolve_arch
from patchcheck.trees.named import NamedTree, find_trees_file, load_trees_file, trees_file_places
from patchcheck.trees.registry import detect, kinds

__all__ = [
    "KINDS",
    "NamedTree",
    "TreeInfo",
    "TreeView",
    "detect_kind",
    "find_trees_file",
    "load_trees_file",
    "open_tree",
]

KINDS = tuple(k.name for k in kinds())


def detect_kind(path: Path) -> str:
    """The kind's name (folder, git, tarball, deb, srpm, dsc): folders by their content,
    files by their suffix, else by their first bytes."""
    return detect(path).name


def open_tree(
    spec: str,
    *,
    cache_dir: Path,
    trees_file: Path | None = None,
    rev: str | None = None,
    max_member_bytes: int | None = None,
    arch: str | None = None,
) -> TreeView:
    """A view of ``spec``: a name from ``trees_file`` (if given), else a path.

    A name wins over a same-named relative path unless ``spec`` contains a "/".
    ``max_member_bytes`` (default 512 MiB) bounds every file a view reads and every archive
    member it inflates. ``arch`` (rpm's name or Debian's: x86_64, aarch64, arm64) decides an
    SRPM's %ifarch blocks; a trees file entry's own ``arch = "..."`` wins over it (it is the
    more specific), and the host's is the default.
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
        elif "/" not in spec:
            places = " or ".join(str(p) for p in trees_file_places())
            raise TreeError(
                f"{spec}: no such file or folder, and no trees file to name a tree; expected a kernel tree",
                hint=f"a tree name needs a trees file: none at {places}; "
                "give --trees-file FILE (or PATCHCHECK_TREES), see examples/trees.toml",
            )
        raise TreeError(f"{spec}: no such file or folder{hint}; expected a kernel tree")
    path = named.path if named else Path(spec)
    rev = rev if rev is not None else (named.rev if named else None)
    check_user_path(path, "a kernel tree (folder, git checkout or source package)")
    kind = detect(path)
    if rev is not None and not kind.takes_rev:
        raise TreeError(f"{path}: a {kind.name}, not a git checkout; a revision ({rev}) needs git")
    req = OpenRequest(
        path=path,
        cache_dir=cache_dir,
        name=named.name if named else spec,
        rev=rev,
        distro=named.distro if named else None,
        labels=dict(named.labels) if named else {},
        max_member_bytes=max_member_bytes or DEFAULT_MAX_MEMBER_BYTES,
        arch=resolve_arch(_named_arch(named) or arch),
    )
    return kind.open(req)


def _named_arch(named: NamedTree | None) -> str | None:
    arch = named.labels.get("arch") if named else None
    if named is not None and arch is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,32}", arch):
        where = named.trees_file or "the trees file"
        raise TreeError(f"{where}: [{named.name}].arch: {arch[:40]!r}: expected an architecture such as aarch64")
    return arch
