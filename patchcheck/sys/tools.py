"""The system tools patchcheck runs, which distro package ships each, and what needs it.

One table, read by ``patchcheck doctor``, by the README's "Prerequisites" table and by the
"command not found" errors, so a missing tool is named with the package to install.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from patchcheck.errors import ToolError

KINDS = ("git", "folder", "tarball", "deb", "srpm", "dsc")
EVERY_KIND = KINDS
ARCHIVES = ("tarball", "deb", "srpm", "dsc")


@dataclass(frozen=True)
class Tool:
    name: str  # the command
    apt: str  # Debian / Ubuntu package
    dnf: str  # Fedora / RHEL / openEuler / Kylin package
    needed_by: tuple[str, ...]  # tree kinds that cannot be checked without it
    optional_for: tuple[str, ...]  # tree kinds it only speeds up (Python does the work otherwise)
    role: str  # what patchcheck does with it, for people
    version_args: tuple[str, ...] | None = ("--version",)  # None: the tool has no version query

    @property
    def core(self) -> bool:
        return self.needed_by == EVERY_KIND


TOOLS: tuple[Tool, ...] = (
    Tool("git", "git", "git", EVERY_KIND, (), "apply --check / --3way of every fix; git trees; b4's patch-ids"),
    Tool("patch", "patch", "patch", EVERY_KIND, (), "GNU patch: offset and fuzz grading; spec and quilt queues"),
    Tool("xz", "xz-utils", "xz", (), ARCHIVES, "decompresses .xz on every core (Python's lzma otherwise)"),
    Tool("gzip", "gzip", "gzip", (), ARCHIVES, "decompresses .gz (Python's gzip otherwise)"),
    Tool("bzip2", "bzip2", "bzip2", (), ARCHIVES, "decompresses .bz2 (Python's bz2 otherwise)"),
    Tool(
        "zstd",
        "zstd",
        "zstd",
        (),
        ARCHIVES,
        "decompresses .zst (.tar.zst tarballs, zstd .debs and .src.rpm payloads)",
    ),
)
BY_NAME = {t.name: t for t in TOOLS}


def for_kind(kind: str) -> list[Tool]:
    """The tools a tree kind needs (not the optional ones)."""
    return [t for t in TOOLS if kind in t.needed_by]


def install_hint(name: str) -> str:
    """``apt-get install X`` / ``dnf install Y`` for a tool of the table, else a generic hint."""
    tool = BY_NAME.get(name)
    if tool is None:
        return "is it installed?"
    return f"install it with `apt-get install {tool.apt}` or `dnf install {tool.dnf}`"


def missing_message(name: str, for_what: str | None = None) -> str:
    needed = f", needed for {for_what}" if for_what else ""
    return f"{name}: command not found{needed}; {install_hint(name)}"


def require(name: str, for_what: str | None = None) -> str:
    """The path of tool ``name``; a one-line ``ToolError`` naming the package when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise ToolError(missing_message(name, for_what))
    return path
