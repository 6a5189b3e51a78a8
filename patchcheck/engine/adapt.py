"""A patch as it applies to a tree: the original applied to copies of the scratch files the
way the engine accepted it (at an offset, with fuzz, or by a 3-way merge), and the diff of
those files before and after, taken with git. That diff is only handed out once it is proven
exact: ``git apply`` and ``patch -p1 -F0`` (no offset, no fuzz) each turn fresh copies of the
same files into exactly the files the original gave.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchcheck.engine.scratch import Scratch
from patchcheck.engine.threeway import merged_files, named_paths, read_files
from patchcheck.engine.tools import MAX_FUZZ
from patchcheck.sys import git, patchtool
from patchcheck.sys.paths import unlink_beneath, write_beneath
from patchcheck.text.diff import FilePatch, MalformedPatch, parse_diff

Files = dict[str, bytes | None]  # path -> content, None where there is no file

_BEFORE, _AFTER = "a", "b"  # the workspace's folders of the files before and after
# GNU patch's words for a hunk that did not land exactly where the diff says
_INEXACT = re.compile(r"^Hunk #\d+ (?:succeeded at \d+ (?:with fuzz|\(offset)|FAILED|ignored)", re.M)


class NotExact(Exception):
    """The adapted diff cannot be made, or does not apply exactly: nothing may be written."""


@dataclass(frozen=True)
class Adapted:
    diff: bytes  # git diff of the files before and after, a/ b/ paths relative to the tree
    stat: str  # its diffstat and summary (git apply --stat --summary)
    after: Files  # the files it leaves, by every path it names


def adapt(
    scratch: Scratch,
    files: Sequence[FilePatch],
    diff: bytes,
    *,
    three_way: bool = False,
    object_dirs: Sequence[Path] = (),
) -> Adapted:
    """The adapted diff of ``files`` (the parsed ``diff``) on the scratch state; the scratch
    itself is left as it was. Raises NotExact."""
    paths = named_paths(files)
    before = {p: scratch.read(p) if scratch.ensure(p) else None for p in paths}
    ws = Path(tempfile.mkdtemp(prefix="adapt-", dir=scratch.root))
    try:
        _lay(ws / _BEFORE, before)
        if three_way:
            merged = merged_files(scratch, files, diff, object_dirs)
            if merged is None:
                raise NotExact("the 3-way merge the check found does not succeed again")
            _lay(ws / _AFTER, merged)
        else:
            _lay(ws / _AFTER, before)
            r = patchtool.run(
                patchtool.argv(fuzz=MAX_FUZZ), cwd=ws / _AFTER, input=b"".join(fp.raw for fp in files)
            )
            if not r.ok:
                raise NotExact(f"the original does not apply with fuzz {MAX_FUZZ}: {_first(r.out() + r.err())}")
        after = read_files(ws / _AFTER, paths)
        if after == before:
            raise NotExact("applying it changes no file")
        out = git.git(
            ["diff", "--no-index", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--", _BEFORE, _AFTER],
            cwd=ws,
            env={"GIT_CEILING_DIRECTORIES": str(scratch.root)},
        )
        if out.returncode not in (0, 1) or not out.stdout:
            raise NotExact(f"git diff --no-index failed: {_first(out.err())}")
        adapted = relabel(out.stdout)
        _verify(ws, scratch.root, before, after, adapted)
        stat = git.git(["apply", "--stat", "--summary", "-"], cwd=ws, input=adapted)
        return Adapted(adapted, stat.out() if stat.ok else "", after)
    finally:
        shutil.rmtree(ws, ignore_errors=True)


def take(scratch: Scratch, adapted: Adapted) -> None:
    """Apply an adapted diff to the scratch (later patches build on it), and make sure the
    scratch then holds exactly the files it was made to leave."""
    try:
        files = parse_diff(adapted.diff)
    except MalformedPatch as e:
        raise NotExact(f"the adapted diff cannot be read back: {e}") from e
    scratch.apply(files, fuzz=0)
    for p, want in adapted.after.items():
        if scratch.read(p) != want:
            raise NotExact(f"{p}: the scratch copy differs from the verified result after applying it")


# ---- the diff's paths -------------------------------------------------------------------

_HEADER_PREFIXES = (b"diff --git ", b"--- ", b"+++ ", b"rename from ", b"rename to ", b"copy from ", b"copy to ")


def _strip_folder(name: bytes) -> bytes:
    """``a/a/fs/x.c`` -> ``a/fs/x.c``; ``a/fs/x.c`` (a rename line) -> ``fs/x.c``; quoted
    names keep their quotes. /dev/null stays."""
    quoted = name.startswith(b'"')
    body = name[1:] if quoted else name
    if body == b"/dev/null":
        return name
    for side in (b"a/", b"b/"):
        for folder in (_BEFORE.encode() + b"/", _AFTER.encode() + b"/"):
            if body.startswith(side + folder):
                body = side + body[len(side + folder) :]
                return b'"' + body if quoted else body
    for folder in (_BEFORE.encode() + b"/", _AFTER.encode() + b"/"):
        if body.startswith(folder):
            body = body[len(folder) :]
            break
    return b'"' + body if quoted else body


def relabel(diff: bytes) -> bytes:
    """git's diff of the workspace folders with the tree's own paths in every header line
    (hunk lines are left byte for byte)."""
    out: list[bytes] = []
    in_header = False
    for ln in diff.splitlines(keepends=True):
        if ln.startswith(b"diff --git "):
            in_header = True
            names = ln[len(b"diff --git ") :].rstrip(b"\n")
            # git writes both names the same way (quoted or not); the second starts at " b/"
            # or ' "b/'
            cut = names.find(b' "b/' if names.startswith(b'"') else b" b/")
            if cut < 0:
                raise NotExact(f"unexpected git diff header {ln[:100]!r}")
            ln = b"diff --git " + _strip_folder(names[:cut]) + b" " + _strip_folder(names[cut + 1 :]) + b"\n"
        elif ln.startswith(b"@@"):
            in_header = False
        elif in_header:
            key = next((k for k in _HEADER_PREFIXES if ln.startswith(k)), None)
            if key is not None:
                name = ln[len(key) :].rstrip(b"\n")
                tab = name.find(b"\t")
                tail = name[tab:] if tab >= 0 and key in (b"--- ", b"+++ ") else b""
                name = name[:tab] if tail else name
                ln = key + _strip_folder(name) + tail + b"\n"
        out.append(ln)
    return b"".join(out)


# ---- verification -----------------------------------------------------------------------


def _verify(ws: Path, ceiling: Path, before: Files, after: Files, adapted: bytes) -> None:
    """Both tools turn fresh copies of ``before`` into exactly ``after``, at offset 0 and
    with no fuzz."""
    try:
        named = named_paths(parse_diff(adapted))
    except MalformedPatch as e:
        raise NotExact(f"the adapted diff cannot be read back: {e}") from e
    if not set(named) <= set(after):
        raise NotExact(f"the adapted diff names files the original does not: {sorted(set(named) - set(after))}")
    paths = sorted(after)

    gdir = ws / "git"
    _lay(gdir, before)
    r = git.git(["apply", "-"], cwd=gdir, input=adapted, env={"GIT_CEILING_DIRECTORIES": str(ceiling)})
    if not r.ok:
        raise NotExact(f"git apply refuses the adapted diff: {_first(r.err())}")
    if read_files(gdir, paths) != after:
        raise NotExact("git apply of the adapted diff gives other files than the original with fuzz")

    pdir = ws / "patch"
    _lay(pdir, before)
    r = patchtool.run(patchtool.argv(fuzz=0), cwd=pdir, input=adapted)
    inexact = _INEXACT.search(r.out())
    if not r.ok or inexact:
        raise NotExact(
            f"patch -p1 -F0 does not apply it exactly: {_first(inexact.group(0) if inexact else r.out())}"
        )
    if read_files(pdir, paths) != after:
        raise NotExact("patch -p1 -F0 of the adapted diff gives other files than the original with fuzz")


def _lay(root: Path, files: Files) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for p, data in files.items():
        if data is None:
            unlink_beneath(root, p)
        else:
            write_beneath(root, p, data)


_ROUTINE = re.compile(r"^(?:patching file|checking file|Hunk #\d+ succeeded at )")


def _first(text: str) -> str:
    """The first line of a tool's output that says something beyond routine progress."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = [ln for ln in lines if not _ROUTINE.match(ln)]
    return (telling or lines or ["no output"])[0][:200]
