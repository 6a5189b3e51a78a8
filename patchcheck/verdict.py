"""Pure functions: per-hunk results -> patch verdicts -> bug verdict. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from patchcheck.bugs import Bug
from patchcheck.trees.base import TreeInfo

PRESENT = "present"
PARTIAL = "partially-present"
BACKPORTABLE = "backportable"
CONFLICTING = "conflicting"
NOT_APPLICABLE = "not-applicable"
ERROR = "error"
VERDICTS = (PRESENT, PARTIAL, BACKPORTABLE, CONFLICTING, NOT_APPLICABLE, ERROR)

# hunk statuses (interface.md)
H_CLEAN, H_OFFSET, H_FUZZ, H_PRESENT, H_FAILED, H_MISSING = (
    "clean", "offset", "fuzz", "present", "failed", "missing-file")

# apply methods, weakest last: a series is as good as its worst patch
_METHOD_RANK = {"clean": 0, "offset": 1, "fuzz": 2, "3way": 3}


@dataclass
class HunkResult:
    file: str
    status: str  # clean | offset | fuzz | present | failed | missing-file
    index: int = 0  # 1-based hunk number within the patch
    offset: int = 0
    fuzz: int = 0
    line: int | None = None  # where the hunk lands (or would) in the tree's file
    reason: str | None = None
    near: str | None = None  # for failed hunks: short diff, expected vs best near match
    patch_line: int | None = None  # where the patch says the hunk goes (its @@ -N line)


@dataclass
class PatchResult:
    msgid: str
    subject: str
    upstream: str | None
    verdict: str
    method: str | None
    evidence: str
    hunks: list[HunkResult] = field(default_factory=list)
    optional: bool = False
    note: str | None = None
    error: str | None = None
    error_code: int | None = None  # exit code the error calls for (2 tree, 3 series)


@dataclass
class BugResult:
    bug: Bug
    tree: TreeInfo
    verdict: str
    method: str | None
    error: str | None
    patches: list[PatchResult] = field(default_factory=list)

    @property
    def required(self) -> list[PatchResult]:
        return [p for p in self.patches if not p.optional]


def weakest_method(methods: Sequence[str | None]) -> str | None:
    ms = [m for m in methods if m in _METHOD_RANK]
    return max(ms, key=_METHOD_RANK.__getitem__) if ms else None


def bug_verdict(patches: Sequence[PatchResult]) -> tuple[str, str | None, str | None]:
    """Sum up a bug's required patches: (verdict, method, error).

    Optional patches never decide the bug's verdict; they are only reported.
    """
    req = [p for p in patches if not p.optional]
    if not req:
        return ERROR, None, "no required fix patches"
    errors = [p for p in req if p.verdict == ERROR]
    if errors:
        return ERROR, None, "; ".join(p.error or "error" for p in errors)
    vs = {p.verdict for p in req}
    if vs == {NOT_APPLICABLE}:
        return NOT_APPLICABLE, None, None
    relevant = [p for p in req if p.verdict != NOT_APPLICABLE]
    rv = {p.verdict for p in relevant}
    if rv == {PRESENT}:
        methods = {p.method for p in relevant}
        return PRESENT, methods.pop() if len(methods) == 1 else "mixed", None
    if PRESENT in rv or PARTIAL in rv:
        return PARTIAL, None, None
    if CONFLICTING in rv:
        return CONFLICTING, None, None
    return BACKPORTABLE, weakest_method([p.method for p in relevant]), None
