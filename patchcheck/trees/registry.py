"""The tree kinds: each kind module registers how to recognise its trees and how to open one.

``detect`` asks the kinds in priority order: folders by their content, files by their name,
then by their first bytes. Error messages and ``patchcheck trees list`` take the list of
kinds from here, so a new kind is one new module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.trees.base import OpenRequest, TreeView

HEAD_BYTES = 512  # enough for every magic number, the tar "ustar" mark at 257 included


@dataclass(frozen=True)
class Kind:
    name: str  # folder | git | tarball | deb | srpm | dsc: TreeInfo.kind
    what: str  # how a message names it: "a .src.rpm"
    open: Callable[[OpenRequest], TreeView]
    priority: int  # lower is asked first
    match_dir: Callable[[Path], bool] | None = None
    match_name: Callable[[Path], bool] | None = None  # by the file's name
    match_head: Callable[[bytes], bool] | None = None  # the first HEAD_BYTES bytes
    takes_rev: bool = False


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    _KINDS[kind.name] = kind
    return kind


def kinds() -> list[Kind]:
    return sorted(_KINDS.values(), key=lambda k: k.priority)


def get(name: str) -> Kind:
    return _KINDS[name]


def expected() -> str:
    """ "a folder, a git checkout, ... or a .dsc": every kind, for error messages."""
    names = [k.what for k in kinds()]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def detect(path: Path) -> Kind:
    """The kind of ``path``: folders by content, files by name, then by their first bytes."""
    if path.is_dir():
        for k in kinds():
            if k.match_dir is not None and k.match_dir(path):
                return k
        raise TreeError(f"{path}: a folder no kind accepts; expected {expected()}")
    for k in kinds():
        if k.match_name is not None and k.match_name(path):
            return k
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        raise TreeError(f"{path}: cannot read ({e.strerror or e})") from e
    for k in kinds():
        if k.match_head is not None and k.match_head(head):
            return k
    raise TreeError(f"{path}: unsupported file type; expected {expected()}")
