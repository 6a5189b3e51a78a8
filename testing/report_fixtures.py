"""Builders of result objects for the report tests (no trees, no network).

``sample_report()`` gives 6 bugs x 3 trees covering every verdict, optional patches, failed
hunks with near-match diffs, errors, and text that needs escaping in each format.
``EXPECTED`` is the grid the renderers must show, kept apart from the builders on purpose.
"""

from __future__ import annotations

from pathlib import Path

from patchcheck.model import Bug, BugResult, Fix, HunkResult, HunkStatus, PatchResult, TreeInfo, Verdict
from patchcheck.report.model import Report

VERSION = "9.9.9-test"
GENERATED = "2025-01-02T03:04:05+00:00"

NEAR_DIFF = """\
--- fix expects
+++ tree has (best match at line 1240, 2 of 3 lines)
@@ -1,3 +1,3 @@
 \tspin_lock(&nn->client_lock);
-\tlist_del(&clp->cl_lru);
+\tlist_del_init(&clp->cl_lru);
 \tspin_unlock(&nn->client_lock);
"""
# A near diff that itself contains a Markdown fence and HTML: must not break either format.
TRICKY_NEAR = """\
@@ -10,2 +10,2 @@
-\t/* ``` not a fence <b>bold</b> */
+\tif (a < b && c > d) return;
"""

TREES = [
    TreeInfo(
        name="linux-4.19", source="/src/linux-4.19", kind="git", version="4.19.90", notes=("work tree is dirty",)
    ),
    TreeInfo(
        name="ky10",
        source="/srpms/kernel-4.19.90-52.39.v2207.ky10.src.rpm",
        kind="srpm",
        version="4.19.90",
        distro="Kylin V10",
        release="4.19.90-52.39.v2207.ky10",
        arch="aarch64",
        abi="4.19.90-52.39",
        notes=("applied 1234 spec patches",),
    ),
    TreeInfo(
        name="debian-6.1",
        source="/debs/linux-source-6.1.deb",
        kind="deb",
        version="6.1.115",
        distro="Debian 12",
        release="6.1.115-1",
    ),
]

# (bug id, severity, title, cves, references, has optional fix)
_BUG_SPECS: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...], bool]] = [
    (
        "nfsd-callback-wq",
        "critical",
        "nfsd: callback workqueue | NULL deref in __queue_work",
        ("CVE-2024-50264",),
        ("https://lore.kernel.org/all/x@y/", "javascript:alert(1)"),
        True,
    ),
    ("net-sched-uaf", "high", "net/sched: use-after-free in *qdisc* teardown", (), (), False),
    (
        "ext4-extent-oob",
        "medium",
        "ext4: out-of-bounds read in extent tree",
        (),
        ("https://bugzilla.kernel.org/show_bug.cgi?id=1",),
        False,
    ),
    ("xfs-log-hang", "low", "xfs: log force hang", (), (), False),
    ("mm-vmalloc-race", "critical", "mm: vmalloc race", ("CVE-2023-1111", "CVE-2023-2222"), (), True),
    ("vendor-escape", "high", "drm: <script>alert('x')</script> & [link](http://evil)", (), (), False),
]

# bug id -> verdict/method per tree, in TREES order
_GRID: dict[str, list[tuple[str, str | None]]] = {
    "nfsd-callback-wq": [(Verdict.BACKPORTABLE, "clean"), (Verdict.CONFLICTING, None), (Verdict.PRESENT, "exact")],
    "net-sched-uaf": [(Verdict.PRESENT, "history"), (Verdict.PARTIAL, None), (Verdict.NOT_APPLICABLE, None)],
    "ext4-extent-oob": [(Verdict.CONFLICTING, None), (Verdict.BACKPORTABLE, "fuzz"), (Verdict.ERROR, None)],
    "xfs-log-hang": [
        (Verdict.NOT_APPLICABLE, None),
        (Verdict.PRESENT, "modified"),
        (Verdict.BACKPORTABLE, "offset"),
    ],
    "mm-vmalloc-race": [(Verdict.ERROR, None), (Verdict.NOT_APPLICABLE, None), (Verdict.PARTIAL, None)],
    "vendor-escape": [(Verdict.PRESENT, "changelog"), (Verdict.BACKPORTABLE, "3way"), (Verdict.CONFLICTING, None)],
}

EXPECTED: dict[tuple[str, str], tuple[str, str | None]] = {
    (bug_id, t.name): cell for bug_id, cells in _GRID.items() for t, cell in zip(TREES, cells, strict=True)
}


def make_bug(
    bug_id: str,
    severity: str = "medium",
    title: str = "a bug",
    cves: tuple[str, ...] = (),
    references: tuple[str, ...] = (),
    optional_fix: bool = False,
) -> Bug:
    fixes = [Fix(msgid=f"{bug_id}-1@kernel.org", upstream=("a" * 40,), note="the real fix")]
    if optional_fix:
        fixes.append(Fix(msgid=f"{bug_id}-2@kernel.org", optional=True, note="hardening follow-up"))
    return Bug(
        id=bug_id,
        title=title,
        fixes=tuple(fixes),
        path=Path(f"/bugs/{bug_id}.toml"),
        severity=severity,
        subsystem=bug_id.split("-")[0],
        cves=cves,
        references=references,
    )


def make_hunk(
    status: str, index: int = 1, file: str = "fs/nfsd/nfs4state.c", near: str | None = None
) -> HunkResult:
    failed = status in (HunkStatus.FAILED, HunkStatus.MISSING)
    return HunkResult(
        file=file,
        status=status,
        index=index,
        offset=12 if status in (HunkStatus.OFFSET, HunkStatus.FUZZ) else 0,
        fuzz=2 if status == HunkStatus.FUZZ else 0,
        line=None if status == HunkStatus.MISSING else 1234 + index,
        reason=(
            "context does not match | near line 1240"
            if status == HunkStatus.FAILED
            else "file does not exist"
            if status == HunkStatus.MISSING
            else None
        ),
        near=near if failed else None,
    )


def make_patch(
    bug: Bug, n: int, verdict: str, method: str | None, optional: bool = False, near: str = NEAR_DIFF
) -> PatchResult:
    """A patch whose hunks are consistent with its verdict."""
    hunks: list[HunkResult]
    error = None
    if verdict == Verdict.PRESENT:
        hunks = [make_hunk(HunkStatus.PRESENT, 1), make_hunk(HunkStatus.PRESENT, 2)]
    elif verdict == Verdict.BACKPORTABLE:
        status = {"offset": HunkStatus.OFFSET, "fuzz": HunkStatus.FUZZ}.get(method or "", HunkStatus.CLEAN)
        hunks = [make_hunk(HunkStatus.CLEAN, 1), make_hunk(status, 2)]
    elif verdict == Verdict.CONFLICTING:
        hunks = [make_hunk(HunkStatus.CLEAN, 1), make_hunk(HunkStatus.FAILED, 2, near=near)]
    elif verdict == Verdict.NOT_APPLICABLE:
        hunks = [make_hunk(HunkStatus.MISSING, 1, file="fs/nfsd/gone.c")]
    elif verdict == Verdict.ERROR:
        hunks = []
        error = f"{bug.id}: series not in cache (offline)"
    else:
        raise ValueError(verdict)
    return PatchResult(
        msgid=f"{bug.id}-{n}@kernel.org",
        subject=f"[PATCH {n}/2] {bug.subsystem}: fix {bug.id} part {n}",
        upstream=("a" * 40) if n == 1 else None,
        verdict=verdict,
        method=method,
        evidence=f"{verdict} by {method or 'inspection'} for patch {n} (evidence text)",
        hunks=hunks,
        optional=optional,
        note="hardening follow-up" if optional else None,
        error=error,
    )


def make_result(
    bug: Bug, tree: TreeInfo, verdict: str, method: str | None, optional_fix: bool = False, near: str = NEAR_DIFF
) -> BugResult:
    patches: list[PatchResult]
    error = None
    if verdict == Verdict.PARTIAL:
        # one patch in, the other one not placeable: the typical partial backport
        patches = [
            make_patch(bug, 1, Verdict.PRESENT, "exact"),
            make_patch(bug, 2, Verdict.CONFLICTING, None, near=near),
        ]
    else:
        patches = [make_patch(bug, 1, verdict, method, near=near)]
        if verdict == Verdict.ERROR:
            error = patches[0].error
    if optional_fix:
        # The optional patch never decides the verdict; give it one that differs.
        opt_verdict = Verdict.CONFLICTING if verdict != Verdict.CONFLICTING else Verdict.BACKPORTABLE
        opt_method = "clean" if opt_verdict == Verdict.BACKPORTABLE else None
        patches.append(make_patch(bug, len(patches) + 1, opt_verdict, opt_method, optional=True, near=near))
    return BugResult(bug=bug, tree=tree, verdict=verdict, method=method, error=error, patches=patches)


def sample_bugs() -> list[Bug]:
    return [make_bug(i, sev, title, cves, refs, opt) for i, sev, title, cves, refs, opt in _BUG_SPECS]


def sample_report(trees: list[TreeInfo] | None = None) -> Report:
    """The full grid in run order (tree-major, as a per-tree worker pool would finish)."""
    trees = TREES if trees is None else trees
    bugs = sample_bugs()
    results = []
    for t in trees:
        col = TREES.index(t)
        for b in bugs:
            verdict, method = _GRID[b.id][col]
            near = TRICKY_NEAR if b.id == "vendor-escape" else NEAR_DIFF
            results.append(
                make_result(b, t, verdict, method, optional_fix=any(f.optional for f in b.fixes), near=near)
            )
    return Report(results=results, trees=list(trees), bugs=bugs, version=VERSION, generated=GENERATED)
