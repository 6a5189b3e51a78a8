"""From a verdict to a backport: each required patch, in order, checked on the state the
patches written before it leave, and when it is backportable, adapted to the tree (see
adapt.py) and applied there for the next ones. A conflicting patch gets its failed hunks,
with their near matches, as reject text; nothing of it is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from patchcheck.engine.adapt import Adapted, NotExact, adapt, take
from patchcheck.engine.check import TreeContext, check_patch
from patchcheck.engine.scratch import Scratch
from patchcheck.model import Fix, HunkResult, HunkStatus, Method, PatchMail, PatchResult, Verdict
from patchcheck.text.diff import FilePatch, MalformedPatch, parse_diff
from patchcheck.trees.base import TreeView


@dataclass
class Step:
    """What became of one patch."""

    patch: PatchMail
    result: PatchResult  # its check on the state the patches written before it leave
    adapted: Adapted | None = None  # set when it is to be written
    rejects: bytes | None = None  # a conflicting patch's failed hunks
    why: str = ""  # why nothing is written, in words
    notes: list[str] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.adapted is not None


class Backporter:
    """One scratch state for a whole run: every patch is checked on top of the ones
    written before it (of its own fix, of earlier fixes and of earlier bugs)."""

    def __init__(self, tree: TreeView, ctx: TreeContext | None = None) -> None:
        self.tree = tree
        self.ctx = ctx or TreeContext()
        self.scratch = Scratch(tree)

    def close(self) -> None:
        self.scratch.close()

    def __enter__(self) -> Backporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, patch: PatchMail, fix: Fix, cves: Sequence[str] = ()) -> Step:
        """Check one patch; adapt and take it when it is backportable."""
        r = check_patch(self.scratch, patch, fix=fix, ctx=self.ctx, keep_going=False, cves=cves)
        s = Step(patch, r)
        if r.verdict == Verdict.BACKPORTABLE:
            try:
                files = parse_diff(patch.diff)
                s.adapted = adapt(
                    self.scratch,
                    files,
                    patch.diff,
                    three_way=r.method == Method.THREEWAY,
                    object_dirs=self.ctx.object_dirs,
                )
                take(self.scratch, s.adapted)
            except (NotExact, MalformedPatch) as e:
                s.adapted = None
                s.why = f"refused: the adapted patch is not exact ({e})"
        elif r.verdict == Verdict.CONFLICTING:
            s.why = r.evidence
            s.rejects = rejects(patch, r)
        elif r.verdict == Verdict.PRESENT:
            s.why = f"already in the tree: {r.evidence}"
        else:
            s.why = r.error or r.evidence
        return s


# ---- reject text ------------------------------------------------------------------------


def hunk_texts(fp: FilePatch) -> dict[int, bytes]:
    """Each hunk's lines as the diff has them (header line included), by patch-wide index."""
    chunks: list[list[bytes]] = []
    for ln in fp.raw.splitlines(keepends=True):
        if ln.startswith(b"@@"):
            chunks.append([])
        if chunks:
            chunks[-1].append(ln)
    return {h.index: b"".join(c) for h, c in zip(fp.hunks, chunks, strict=False)}


def _comment(text: str) -> list[str]:
    return [f"# {ln}".rstrip() for ln in text.rstrip("\n").split("\n")]


def rejects(patch: PatchMail, result: PatchResult) -> bytes:
    """The hunks that cannot be placed, as a reject file: what the engine found about each
    (reason, near match) in comment lines first, then the hunks as the patch has them."""
    failed: list[HunkResult] = [h for h in result.hunks if h.status in (HunkStatus.FAILED, HunkStatus.MISSING)]
    head = [f"patchcheck: {patch.subject} <{patch.msgid}>", result.evidence, ""]
    for h in failed:
        where = f"{h.file}:{h.line}" if h.line else h.file
        head.append(f"hunk #{h.index} at {where}: {h.reason or h.status}")
        if h.near:
            head += ["  near match:", *(f"  {ln}" for ln in h.near.split("\n"))]
    out = ["\n".join(ln for t in head for ln in _comment(t)).encode() + b"\n"]
    try:
        files = parse_diff(patch.diff)
    except MalformedPatch:
        return b"".join(out)
    want = {h.index for h in failed}
    for fp in files:
        texts = [t for i, t in hunk_texts(fp).items() if i in want]
        if texts:
            old = f"a/{fp.old_path}" if fp.old_path else "/dev/null"
            new = f"b/{fp.new_path}" if fp.new_path else "/dev/null"
            out.append(f"--- {old}\n+++ {new}\n".encode())
            out += [t if t.endswith(b"\n") else t + b"\n" for t in texts]
    return b"".join(out)
