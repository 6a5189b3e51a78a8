"""Split a patch's diff into per-file sections and hunks, on bytes.

Kernel patches can carry CRLF, non-UTF-8 bytes and binary hunks, so sections are split on
raw bytes and each section's hunks are parsed by unidiff through a lossless latin-1 view.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import unidiff
from unidiff.errors import UnidiffParseError

from patchcheck.errors import PatchcheckError


class MalformedPatch(PatchcheckError):
    """The diff cannot be parsed (wrong hunk line counts, no file headers...)."""


@dataclass
class Hunk:
    index: int  # 1-based within the patch
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    before: list[bytes]  # context + removed, in order (the pre-image)
    after: list[bytes]  # context + added, in order (the post-image)
    removed: list[bytes]
    added: list[bytes]


@dataclass
class FilePatch:
    old_path: str | None  # None for a new file
    new_path: str | None  # None for a deleted file
    raw: bytes  # this file's section of the diff, as posted
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    rename: bool = False
    mode_only: bool = False

    @property
    def path(self) -> str:
        """The path the fix is about: the old one, or the new one for a new file."""
        return self.old_path or self.new_path or "?"


_GIT_HDR = re.compile(rb"^diff --git (?:a/)?(\S+) (?:b/)?(\S+)")


def _strip_prefix(p: str) -> str | None:
    p = p.split("\t", 1)[0].strip()
    if p == "/dev/null":
        return None
    if p.startswith(("a/", "b/")):
        return p[2:]
    # -p1 semantics for non-git diffs: drop the first component
    return p.split("/", 1)[1] if "/" in p else p


def _split_sections(diff: bytes) -> list[list[bytes]]:
    """Raw lines (with endings) per file section."""
    lines = diff.splitlines(keepends=True)
    sections: list[list[bytes]] = []
    cur: list[bytes] | None = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        starts = ln.startswith(b"diff --git ")
        # a plain "--- x / +++ y / @@" without a diff --git line before it (GNU diff -u)
        if (
            not starts
            and ln.startswith(b"--- ")
            and i + 2 < len(lines)
            and lines[i + 1].startswith(b"+++ ")
            and lines[i + 2].startswith(b"@@")
            and (cur is None or any(x.startswith(b"@@") for x in cur))
        ):
            starts = True
        if starts:
            cur = [ln]
            sections.append(cur)
        elif cur is not None:
            if ln.startswith(b"-- \n") or ln == b"-- \r\n" or ln == b"--\n":
                cur = None  # signature separator: the diff ended
            else:
                cur.append(ln)
        i += 1
    return sections


def _to_lines(b: str) -> bytes:
    return b.encode("latin-1")


def _parse_section(lines: list[bytes], counter: list[int]) -> FilePatch:
    raw = b"".join(lines)
    first = lines[0]
    old: str | None
    new: str | None
    old = new = None
    m = _GIT_HDR.match(first)
    if m:
        old, new = m.group(1).decode("utf-8", "replace"), m.group(2).decode("utf-8", "replace")
    binary = rename = False
    created = deleted = False
    for ln in lines[1:]:
        if ln.startswith(b"@@"):
            break
        if ln.startswith(b"new file mode"):
            created = True
        elif ln.startswith(b"deleted file mode"):
            deleted = True
        elif ln.startswith(b"rename from ") or ln.startswith(b"copy from "):
            rename = True
            old = ln.split(b" ", 2)[2].strip().decode("utf-8", "replace")
        elif ln.startswith(b"rename to ") or ln.startswith(b"copy to "):
            new = ln.split(b" ", 2)[2].strip().decode("utf-8", "replace")
        elif ln.startswith(b"GIT binary patch") or (ln.startswith(b"Binary files ")):
            binary = True
        elif ln.startswith(b"--- "):
            old = _strip_prefix(ln[4:].decode("utf-8", "replace").rstrip("\r\n"))
            if old is None:
                created = True
        elif ln.startswith(b"+++ "):
            new = _strip_prefix(ln[4:].decode("utf-8", "replace").rstrip("\r\n"))
            if new is None:
                deleted = True
    if created:
        old = None
    if deleted:
        new = None
    fp = FilePatch(old_path=old, new_path=new, raw=raw, binary=binary, rename=rename)
    if binary:
        return fp
    # unidiff wants headers; a latin-1 view maps every byte to one char and back
    text = [ln.decode("latin-1") for ln in lines]
    if not any(t.startswith("@@") for t in text):
        fp.mode_only = not created and not deleted
        return fp
    if not any(t.startswith("--- ") for t in text):
        raise MalformedPatch(f"{fp.path}: hunks without ---/+++ file headers")
    try:
        ps = unidiff.PatchSet(text)  # type: ignore[attr-defined]
    except UnidiffParseError as e:
        raise MalformedPatch(f"{fp.path}: {e}") from e
    for pf in ps:
        for h in pf:
            counter[0] += 1
            before: list[bytes] = []
            after: list[bytes] = []
            removed: list[bytes] = []
            added: list[bytes] = []
            for line in h:
                if line.line_type == "\\":
                    continue
                val = _to_lines(line.value).rstrip(b"\n")
                if line.line_type == " ":
                    before.append(val)
                    after.append(val)
                elif line.line_type == "-":
                    before.append(val)
                    removed.append(val)
                elif line.line_type == "+":
                    after.append(val)
                    added.append(val)
            fp.hunks.append(
                Hunk(
                    counter[0],
                    h.source_start,
                    h.source_length,
                    h.target_start,
                    h.target_length,
                    before,
                    after,
                    removed,
                    added,
                )
            )
    return fp


def parse_diff(diff: bytes) -> list[FilePatch]:
    """Parse a patch's diff; raises MalformedPatch when it has no usable file section.

    The sections are shared between calls with the same diff (treat them as read-only):
    a run parses each patch once for the paths it touches and again per tree it checks."""
    return list(_parse_cached(diff))


@functools.lru_cache(maxsize=4096)
def _parse_cached(diff: bytes) -> tuple[FilePatch, ...]:
    sections = _split_sections(diff)
    if not sections:
        raise MalformedPatch("no diff found in the patch")
    counter = [0]
    return tuple(_parse_section(s, counter) for s in sections)
