"""The stage types of the pipeline, and the words of its verdicts.

bugs -> series -> tree view -> hunk evidence -> verdicts -> report: each stage hands the next
one of these. Nothing but types lives here, so every module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Verdict(StrEnum):
    """Per patch and per bug (docs/interface.md)."""

    PRESENT = "present"
    PARTIAL = "partially-present"
    BACKPORTABLE = "backportable"
    CONFLICTING = "conflicting"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"


class HunkStatus(StrEnum):
    """What became of one hunk (docs/interface.md, plus ``3way`` for hunks a merge placed)."""

    CLEAN = "clean"
    OFFSET = "offset"
    FUZZ = "fuzz"
    THREEWAY = "3way"
    PRESENT = "present"
    FAILED = "failed"
    MISSING = "missing-file"


class Method(StrEnum):
    """How a verdict was reached: present (exact...changelog) or backportable (clean...3way)."""

    EXACT = "exact"
    OFFSET = "offset"
    MODIFIED = "modified"
    HISTORY = "history"
    CHANGELOG = "changelog"
    MIXED = "mixed"
    CLEAN = "clean"
    FUZZ = "fuzz"
    THREEWAY = "3way"


# ---- stage 1: known bugs --------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """How the bug's crash looks: call-trace function names and a headline fragment."""

    functions: tuple[str, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class Fix:
    msgid: str | None
    patches: tuple[int, ...] | None = None
    revision: int | None = None
    upstream: tuple[str, ...] = ()
    introduced_by: tuple[str, ...] = ()
    optional: bool = False
    note: str | None = None
    mbox: Path | None = None  # absolute, resolved against the bug file's folder

    @property
    def label(self) -> str:
        if self.msgid:
            return self.msgid
        if self.mbox:
            return self.mbox.name
        return f"upstream {self.upstream[0][:12]}" if self.upstream else "?"


@dataclass(frozen=True)
class Bug:
    id: str
    title: str
    fixes: tuple[Fix, ...]
    path: Path
    severity: str = "medium"
    subsystem: str = ""
    cves: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    affects: tuple[str, ...] = ()
    signature: Signature | None = None

    @property
    def required_fixes(self) -> tuple[Fix, ...]:
        return tuple(f for f in self.fixes if not f.optional)


# ---- stage 2: series ------------------------------------------------------------------


@dataclass(frozen=True)
class PatchMail:
    """One patch e-mail of a series, as selected for a fix."""

    msgid: str
    subject: str  # without the [PATCH vN m/n] prefix
    author: str
    counter: int  # 1-based position in the series (m of m/n); 1 for a single patch
    expected: int  # n of m/n
    diff: bytes  # the unified diff part (from the first "diff --git" / "---" line on)
    upstream: str | None = None  # upstream commit id, from the bug file or a trailer
    fixes: tuple[str, ...] = ()  # Fixes: trailer values ("<sha> (\"subject\")")
    links: tuple[str, ...] = ()  # Link: trailer values
    cves: tuple[str, ...] = ()  # CVE ids mentioned in the message
    date: str = ""  # the mail's Date header
    body: str = ""  # the commit message: the text before the diff, up to the "---" line
    origin: str = ""  # where the patch was taken from, when there was a choice (for the evidence)


@dataclass(frozen=True)
class Series:
    """A fix's selected patches, in series order."""

    key: str  # cache key: the msgid, or "mbox:<sha256>" for a local file
    msgid: str | None
    revision: int
    subject: str  # cover letter subject, or the first patch's
    patches: tuple[PatchMail, ...]
    source: str  # "lore", "cache" or "mbox"
    fetched: str = ""  # ISO time the thread was fetched
    extra: dict[str, str] = field(default_factory=dict)
    note: str = ""  # how the patches were chosen, when the bug file did not say (for the evidence)


# ---- stage 3: trees -------------------------------------------------------------------


@dataclass(frozen=True)
class TreeInfo:
    """A tree's identity, shown in every report row."""

    name: str  # the trees.toml name, or the path as given
    source: str  # absolute path of the file/folder
    kind: str  # folder | git | tarball | deb | srpm | dsc
    version: str | None = None  # from the Makefile: VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION
    distro: str | None = None
    release: str | None = None  # package release, e.g. 4.19.90-52.39.v2207.ky10
    labels: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. "work tree is dirty", "applied 1234 spec patches"
    arch: str | None = None  # the architecture the tree was read for (an SRPM's %ifarch)
    abi: str | None = None  # kernel ABI the distro names, e.g. 6.8.0-31 (uname -r: 6.8.0-31-generic)


# ---- stage 4-5: hunk results and verdicts ---------------------------------------------


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


@dataclass(frozen=True)
class SearchLimits:
    """How far the search for a conflict's prerequisites goes (evidence/prereqs.py)."""

    depth: int = 2  # 1: the fix's own prerequisites; 2: theirs too
    commits: int = 20  # commits judged in all


@dataclass(frozen=True)
class Prereq:
    """An upstream commit a failed hunk of the fix needs: it last changed the hunk's lines
    before the fix (or created its file), and its own verdict on the tree."""

    commit: str
    subject: str
    verdict: str  # its verdict on the tree: present, backportable, conflicting, ...
    method: str | None
    hunks: tuple[str, ...]  # "path#n": the hunks (of the fix, or of ``needed_by``) whose lines it changed
    depth: int = 1  # 1: needed by the fix; 2: by a prerequisite that conflicts; ...
    needed_by: str | None = None  # at depth > 1: that prerequisite's commit
    partial: bool = False  # a large commit, judged on the fix's files only
    time: int = 0  # committer time: the search ranks the nearest first


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
    prereqs: list[Prereq] = field(default_factory=list)  # for a conflict, with --upstream-repo
    prereq_note: str | None = None  # how the search went: caps hit, why it was not made
    with_prereqs: str | None = None  # with --with-prereqs: the verdict on top of the absent ones


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


@dataclass(frozen=True)
class Evidence:
    """What history or a changelog says about a fix, in words a report can show."""

    method: Method  # Method.HISTORY or Method.CHANGELOG
    detail: str
    commit: str | None = None  # the local commit that matched, if any
