"""The bug's origin, checked by content: for trees without a git history.

A fix's ``introduced_by`` (or, when the bug file gives none, the commits its mail's ``Fixes:``
trailers name) says which change brought the bug. With a local clone of mainline or stable
(``--upstream-repo``) that change's own patch is checked against the tree by the same engine:
its lines absent and its pre-image there (it would apply forward), or every file it changes
missing, is proof the bug is not in this tree; its lines there means the fix is needed; a
change that neither applies nor is there proves nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from patchcheck.decide import Origin
from patchcheck.engine.check import MAX_HUNKS, check_series, touched_paths
from patchcheck.errors import PatchcheckError
from patchcheck.fetch.upstream import UpstreamRepo
from patchcheck.model import Fix, HunkStatus, Method, PatchMail, Series, Verdict
from patchcheck.text.trailers import fix_sha, is_sha
from patchcheck.trees.base import TreeView

ABSENT, PRESENT, UNKNOWN = "absent", "present", "unknown"
_APPLIES = (Method.CLEAN, Method.OFFSET, Method.FUZZ)


def origin_shas(fix: Fix, patch: PatchMail) -> list[str]:
    """The commits that brought the bug: the bug file's ``introduced_by``, else the commit ids
    the mail's ``Fixes:`` trailers start with (abbreviated, as mails write them)."""
    if fix.introduced_by:
        return list(fix.introduced_by)
    return list(dict.fromkeys(sha for value in patch.fixes if (sha := fix_sha(value))))


@dataclass(frozen=True)
class _Change:
    sha: str
    subject: str
    diff: bytes

    @property
    def name(self) -> str:
        return f'{self.sha[:12]} ("{self.subject}")'


def read_change(repo: UpstreamRepo, sha: str) -> _Change | str:
    """The commit ``sha`` abbreviates in ``repo``, with its patch; or why there is none."""
    full = repo.commit(sha)
    if full is None or not is_sha(full, full=True):
        return f"{sha[:12]} is not in the upstream repository {repo.path}"
    res = repo.git(["log", "-1", "--format=%P%x00%s", full])
    parents, _, subject = res.out().rstrip("\n").partition("\0")
    if not res.ok:
        return f"{sha[:12]} could not be read from {repo.path}: {res.err().strip()[:200]}"
    if len(parents.split()) > 1:
        return f'{full[:12]} ("{subject}") is a merge'
    diff = repo.commit_diff(full)
    if not diff.strip():
        return f'{full[:12]} ("{subject}") has no patch to check'
    return _Change(full, subject, diff)


def _judge(tree: TreeView, change: _Change, max_hunks: int) -> Origin:
    mail = PatchMail(
        msgid=f"upstream-{change.sha[:12]}",
        subject=change.subject,
        author="",
        counter=1,
        expected=1,
        diff=change.diff,
        upstream=change.sha,
    )
    series = Series(f"upstream:{change.sha}", None, 1, change.subject, (mail,), "upstream")
    try:
        tree.prepare(sorted(touched_paths(series, max_hunks)))
        # no context: no history, changelog or origin of its own, only the content
        [r] = check_series(tree, series, Fix(msgid=None, upstream=(change.sha,)), max_hunks=max_hunks)
    except PatchcheckError as e:
        return Origin(UNKNOWN, f"the bug came with {change.name}, which could not be checked: {e}")
    if r.verdict == Verdict.PRESENT:
        return Origin(PRESENT, f"the bug came with {change.name}, whose lines are in this tree")
    if (r.verdict == Verdict.BACKPORTABLE and r.method in _APPLIES) or (
        r.verdict == Verdict.NOT_APPLICABLE and r.hunks and all(h.status == HunkStatus.MISSING for h in r.hunks)
    ):
        return Origin(ABSENT, f"the bug came with {change.name}; its lines are not in this tree")
    return Origin(
        UNKNOWN,
        f"the bug came with {change.name}, which is neither in this tree nor cleanly absent "
        f"({r.verdict}: {r.evidence}): no proof either way",
    )


class OriginCheck:
    """Checks the origin of the bugs' fixes against one tree; each change once per run."""

    def __init__(self, tree: TreeView, upstream_repo: UpstreamRepo | None, max_hunks: int = MAX_HUNKS) -> None:
        self.tree = tree
        self.repo = upstream_repo
        self.max_hunks = max_hunks
        self._lock = threading.Lock()
        self._memo: dict[str, Origin] = {}

    def __call__(self, fix: Fix, patch: PatchMail) -> Origin | None:
        shas = origin_shas(fix, patch)
        if not shas:
            return None
        if self.repo is None:
            names = ", ".join(s[:12] for s in shas)
            return Origin(UNKNOWN, f"the bug's origin ({names}) could not be checked (no --upstream-repo)")
        found = [self._one(s) for s in shas]
        if all(o.state == ABSENT for o in found):
            return Origin(ABSENT, "; ".join(o.detail for o in found))
        return next((o for o in found if o.state == PRESENT), None) or next(o for o in found if o.state == UNKNOWN)

    def _one(self, sha: str) -> Origin:
        with self._lock:  # one check per change, whichever thread asks first
            hit = self._memo.get(sha)
            if hit is None:
                assert self.repo is not None
                change = read_change(self.repo, sha)
                if isinstance(change, str):
                    hit = Origin(UNKNOWN, f"the bug's origin could not be checked: {change}")
                else:
                    hit = _judge(self.tree, change, self.max_hunks)
                self._memo[sha] = hit
            return hit
