"""Trailers, mentions and subject prefixes: every form the fetcher, the history index and
the bug loader read, from one module."""

from __future__ import annotations

import pytest

from patchcheck.text import trailers as t
from patchcheck.text.trailers import Inclusion, Subject, UpstreamRef

SHA = "38f080f3cd19f0d1b5a5b4e1ab0e7dd4bbd5a9f1"
SHA2 = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"


def test_fixes_links_cves() -> None:
    body = (
        "nfsd: fix a leak\n\n"
        "This closes CVE-2024-50264 (and cve-2024-1234a, not xCVE-2024-9999).\n\n"
        f'Fixes: {SHA[:12]} ("nfsd: add a thing")  \n'
        f"  fixes:\t{SHA2}\n"
        f'Fixes: {SHA[:12]} ("nfsd: add a thing")\n'
        "Link: https://lore.kernel.org/r/20241104135518.978956692@infradead.org\n"
        "link: https://bugzilla.kernel.org/show_bug.cgi?id=1 trailing words\n"
        "Reported-by: someone\n"
    )
    assert t.fixes(body) == [f'{SHA[:12]} ("nfsd: add a thing")', SHA2]
    assert t.fixes_shas(body) == [SHA[:12], SHA2]
    assert t.links(body) == [
        "https://lore.kernel.org/r/20241104135518.978956692@infradead.org",
        "https://bugzilla.kernel.org/show_bug.cgi?id=1",
    ]
    assert t.cves("[PATCH] x CVE-2024-50264\n" + body) == ["CVE-2024-50264", "CVE-2024-1234"]


def test_ids() -> None:
    assert t.is_sha(SHA) and t.is_sha(SHA[:7]) and not t.is_sha(SHA[:6]) and not t.is_sha(SHA.upper())
    assert t.is_sha(SHA, full=True) and not t.is_sha(SHA[:12], full=True)
    assert t.is_cve("CVE-2024-50264") and not t.is_cve("cve-2024-50264") and not t.is_cve("CVE-2024-1")
    # the whole value: re.match with "$" would let a trailing newline through
    assert not t.is_sha(SHA[:12] + "\n") and not t.is_sha(SHA + "\n", full=True)
    assert not t.is_cve("CVE-2024-50264\n") and not t.is_cve(" CVE-2024-50264")


def test_ubuntu_cve_and_buglink_lines() -> None:
    body = (
        "BugLink: https://bugs.launchpad.net/bugs/2012345\n"
        "CVE-2024-1086\n\n"
        "The fix for CVE-2023-0001 in prose is not a trailer line.\n"
        "CVE: CVE-2022-3567\n"
        f"(cherry picked from commit {SHA})\n"
    )
    assert t.cve_lines(body) == ["CVE-2024-1086", "CVE-2022-3567"]
    assert t.buglinks(body) == ["https://bugs.launchpad.net/bugs/2012345"]
    assert t.upstream_refs(body) == [UpstreamRef(SHA, "cherry")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f"commit {SHA} upstream.\n", [(SHA, "stable")]),
        ("Commit 38F080F3CD19 Upstream.\n", [("38f080f3cd19", "stable")]),
        (f"[ Upstream commit {SHA} ]\n", [(SHA, "bracket")]),
        (f"[  upstream commit {SHA}  ]\n", [(SHA, "bracket")]),
        (f"Upstream commit {SHA}\n", [(SHA, "plain")]),
        (f"x\n(cherry picked from commit {SHA[:12]} linux-next)\n", [(SHA[:12], "cherry")]),
        (f"(cherry-picked from commit {SHA[:12]})\n", [(SHA[:12], "cherry")]),
        (f"(backported from commit {SHA} linux-next)\n", [(SHA, "backported")]),
        (f"mainline inclusion\nfrom mainline-v6.7-rc1\ncommit {SHA}\ncategory: bugfix\n", [(SHA, "inclusion")]),
        (f"stable inclusion\ncommit {SHA[:12]}\n", [(SHA[:12], "inclusion")]),
        # prose and other trailers name commits without claiming to be a backport of them
        (f'Since commit {SHA[:12]} ("nfsd: foo") the queue leaks.\n', []),
        (f"commit {SHA[:12]} broke this.\n", []),
        (f'Fixes: {SHA[:12]} ("nfsd: foo")\n', []),
        ("commit 38f080f3cd1 upstream.\n", []),  # 11 hex: too short to trust
        (f"see\ncommit {SHA[:12]}\n", []),  # a bare line without an inclusion header
    ],
)
def test_upstream_forms_and_prose(body: str, expected: list[tuple[str, str]]) -> None:
    assert t.upstream_refs(body) == expected
    assert t.upstream_refs(body.encode()) == expected  # git log bodies stay bytes
    assert t.upstream_commit(body) == (expected[0][0] if expected else None)


def test_upstream_commit_prefers_the_stable_line() -> None:
    # a stable mail quoting the cherry-pick line of the commit it backports
    body = f"(cherry picked from commit {SHA2})\n\ncommit {SHA} upstream.\n"
    assert [r.form for r in t.upstream_refs(body)] == ["cherry", "stable"]
    assert t.upstream_commit(body) == SHA


def test_reverted_commit() -> None:
    assert t.reverted_commit(f"This reverts commit {SHA}.\n") == SHA
    assert t.reverted_commit(f"  this reverts commit {SHA}\n".encode()) == SHA
    assert t.reverted_commit(f"It reverts commit {SHA}.\n") is None


def test_openeuler_inclusion_block() -> None:
    body = (
        "From: A U Thor <a@example.org>\n\n"
        "mainline inclusion\n"
        "from mainline-v6.11-rc2\n"
        f"commit {SHA}\n"
        "category: bugfix\n"
        "bugzilla: https://gitee.com/openeuler/kernel/issues/IAIN7J\n"
        "DTS: #87\n"
        "CVE: CVE-2024-42301, CVE-2024-42302\n\n"
        f"Reference: https://git.kernel.org/linus/{SHA}\n\n"
        "--------------------------------\n\n"
        "The change.\n"
    )
    assert t.inclusion(body) == Inclusion(
        kind="mainline",
        source="mainline-v6.11-rc2",
        commit=SHA,
        category="bugfix",
        bugzilla="https://gitee.com/openeuler/kernel/issues/IAIN7J",
        cves=("CVE-2024-42301", "CVE-2024-42302"),
    )
    assert t.inclusion("hulk inclusion\ncategory: feature\nbugzilla: 1\nCVE: NA\n") == Inclusion(
        kind="hulk", category="feature", bugzilla="1"
    )
    assert t.inclusion("no block here\n") is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            "[PATCH v2 6.12 078/172] nfsd: fix a leak",
            Subject("nfsd: fix a leak", 2, 78, 172, ("PATCH", "v2", "6.12", "078/172")),
        ),
        ("[PATCHv3 1/2] x: y", Subject("x: y", 3, 1, 2, ("PATCH", "v3", "1/2"))),
        ("[RFC PATCH net-next 0/3] x: y", Subject("x: y", 1, 0, 3, ("RFC", "PATCH", "net-next", "0/3"), rfc=True)),
        ("[PATCH RESEND] [media] x: y", Subject("[media] x: y", prefixes=("PATCH", "RESEND"), resend=True)),
        ("Re: [PATCH 2/5] x: y", Subject("x: y", 1, 2, 5, ("PATCH", "2/5"), reply=True)),
        ("[net-next v3 2/7] x: y", Subject("x: y", 3, 2, 7, ("net-next", "v3", "2/7"))),
        ("UBUNTU: SAUCE: x: y", Subject("x: y", tags=("UBUNTU", "SAUCE"), distro_only=True)),
        ("[PATCH] BACKPORT: FROMGIT: x: y", Subject("x: y", prefixes=("PATCH",), tags=("BACKPORT", "FROMGIT"))),
        ("UPSTREAM: [PATCH] x:  y", Subject("x: y", prefixes=("PATCH",), tags=("UPSTREAM",))),
        ("[media] x: y", Subject("[media] x: y")),
        ("[GIT PULL] nfsd fixes", Subject("[GIT PULL] nfsd fixes")),
    ],
)
def test_subjects(subject: str, expected: Subject) -> None:
    assert t.parse_subject(subject) == expected
    assert t.strip_subject_prefix(subject) == expected.text


def test_subject_targets() -> None:
    assert t.parse_subject("[PATCH AUTOSEL 6.6 01/20] x").targets == ("AUTOSEL", "6.6")
    assert t.parse_subject("[PATCH v2 6.12 078/172] x").targets == ("6.12",)


def test_inclusion_needs_its_keys() -> None:
    assert t.inclusion("Queued for\nearly inclusion\n\nThe change.\n") is None
