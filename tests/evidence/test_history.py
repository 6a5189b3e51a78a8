"""history.py: presence evidence from git history and distro changelogs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pytest

from patchcheck.errors import ToolError
from patchcheck.evidence import history, history_cache
from patchcheck.evidence.changelog import changelog_match
from patchcheck.evidence.history import TRAILER_FORMS, History
from patchcheck.model import Evidence
from patchcheck.text.trailers import upstream_refs
from testing.gitrepo import commit
from testing.gitrepo import git as _git

# Upstream commits that only backport trailers name (not in the test repository).
UP = {
    "stable": "38f080f3cd19f0d1b5a5b4e1ab0e7dd4bbd5a9f1",
    "bracket": "5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d",
    "plain": "0123456789abcdef0123456789abcdef01234567",
    "backported": "fedcba9876543210fedcba9876543210fedcba98",
    "inclusion": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
}
SHORT_TRAILER = "9e8d7c6b5a49"  # a 12-hex trailer; looked up by a 40-hex id


def _commit(repo: Path, path: str, text: str, message: str) -> str:
    return commit(repo, message, {path: text})


def _lines(n: int, changed: dict[int, str] | None = None) -> str:
    changed = changed or {}
    return "".join(changed.get(i, f"line {i}") + "\n" for i in range(1, 41 + n))


@dataclass
class Repo:
    path: Path
    git_dir: Path
    head: str
    c: dict[str, str]  # label -> local commit


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    r = tmp_path_factory.mktemp("hist")
    _git(r, "init", "-q", "-b", "main")
    c: dict[str, str] = {}
    c["init"] = _commit(r, "fs/a.c", _lines(0), "init: import the tree\n")
    c["intro"] = _commit(r, "fs/b.c", "int b;\n", "fs: add the frobnicator helper code\n")
    c["up"] = _commit(r, "fs/c.c", "int c;\n", "nfsd: fix callback queue race on shutdown\n\nbody\n")
    c["stable"] = _commit(
        r, "fs/d.c", "1\n", f"net: fix the stable form leak\n\ncommit {UP['stable']} upstream.\n\nDetails.\n"
    )
    c["bracket"] = _commit(
        r, "fs/d.c", "2\n", f"net: fix the bracket form leak\n\n[ Upstream commit {UP['bracket']} ]\n\nDetails.\n"
    )
    c["plain"] = _commit(r, "fs/d.c", "3\n", f"net: fix the plain form leak\n\nUpstream commit {UP['plain']}.\n")
    c["backported"] = _commit(
        r,
        "fs/d.c",
        "4\n",
        "net: fix the backported form leak\n\n"
        "Details.\n\nSigned-off-by: X <x@y>\n"
        f"(backported from commit {UP['backported']})\n"
        "Signed-off-by: Ubuntu <u@b>\n",
    )
    c["inclusion"] = _commit(
        r,
        "fs/d.c",
        "5\n",
        "net: fix the inclusion form leak\n\n"
        "mainline inclusion\nfrom mainline-v6.8-rc1\n"
        f"commit {UP['inclusion']}\ncategory: bugfix\n"
        "bugzilla: https://gitee.com/openeuler/kernel/issues/I1\n"
        "CVE: CVE-2024-1234\n\n--------------------------------\n\nText.\n",
    )
    c["short"] = _commit(
        r, "fs/d.c", "6\n", f"net: fix the short trailer leak\n\n[ Upstream commit {SHORT_TRAILER} ]\n"
    )
    # A real cherry-pick -x from a side branch that is not merged.
    _git(r, "checkout", "-q", "-b", "upstream")
    c["picked_upstream"] = _commit(r, "fs/e.c", "e\n", "mm: fix page leak in the cherry path\n")
    _git(r, "checkout", "-q", "main")
    _git(r, "cherry-pick", "-x", c["picked_upstream"])
    c["cherry"] = _git(r, "rev-parse", "HEAD")
    # Subject evidence: same subject as the fix, no trailer, different content.
    c["reworded"] = _commit(r, "fs/f.c", "f\n", "mm: handle allocation failure in foo_bar\n\nReworked backport.\n")
    c["typo"] = _commit(r, "fs/f.c", "g\n", "fix typo\n")
    # Patch-id evidence: the fix's diff, under an unrelated subject.
    c["pid"] = _commit(r, "fs/a.c", _lines(0, {20: "changed twenty"}), "local: squash vendor tweaks\n")
    # Applied and then reverted: not present.
    c["gone"] = _commit(
        r, "fs/g.c", "g\n", f"block: fix queue depth accounting bug\n\ncommit {'b' * 40} upstream.\n"
    )
    _git(r, "revert", "--no-edit", c["gone"])
    c["revert"] = _git(r, "rev-parse", "HEAD")
    # Found by patch-id, then reverted.
    c["h"] = _commit(r, "fs/h.c", _lines(0), "init: add h\n")
    c["pid_gone"] = _commit(r, "fs/h.c", _lines(0, {5: "five"}), "local: vendor tweak to h\n")
    _git(r, "revert", "--no-edit", c["pid_gone"])
    c["pid_revert"] = _git(r, "rev-parse", "HEAD")
    # Reverted by a commit that names it only by subject ('Revert "..."', no sha).
    c["subj_gone"] = _commit(r, "fs/i.c", "i\n", "mm: fix the subject-only revert case\n")
    c["subj_revert"] = _commit(
        r, "fs/i.c", "j\n", 'Revert "mm: fix the subject-only revert case"\n\nIt broke the frobnicator.\n'
    )
    head = _git(r, "rev-parse", "HEAD")
    return Repo(r, r / ".git", head, c)


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    history.clear_memo()
    yield
    history.clear_memo()


def _load(repo: Repo, cache: Path | None = None) -> History:
    return History.load(repo.git_dir, repo.head, cache)


def _find(
    h: History,
    *,
    upstream: list[str] | None = None,
    subject: str = "unrelated thing here",
    diff: bytes = b"",
    paths: list[str] | None = None,
) -> Evidence | None:
    return h.find_fix(upstream=upstream or [], subject=subject, diff=diff, paths=paths or [])


# ---- history ------------------------------------------------------------------------------


def test_upstream_sha_reachable_full_and_prefix(repo: Repo) -> None:
    h = _load(repo)
    for sha in (repo.c["up"], repo.c["up"][:12]):
        ev = _find(h, upstream=[sha])
        assert ev is not None and ev.method == "history"
        assert ev.commit == repo.c["up"]
        assert ev.detail == f"upstream commit {repo.c['up'][:12]} is an ancestor of HEAD"


@pytest.mark.parametrize("form", sorted(UP))
def test_backport_trailer_forms(repo: Repo, form: str) -> None:
    h = _load(repo)
    for sha in (UP[form], UP[form][:12]):
        ev = _find(h, upstream=[sha])
        assert ev is not None, form
        assert ev.commit == repo.c[form]
        assert ev.detail == (
            f"backport {repo.c[form][:12]} names upstream {UP[form][:12]} ({TRAILER_FORMS[form]})"
        )


def test_cherry_pick_x_trailer(repo: Repo) -> None:
    h = _load(repo)
    ev = _find(h, upstream=[repo.c["picked_upstream"]])
    assert ev is not None and ev.commit == repo.c["cherry"]
    assert "(cherry picked from commit ...)" in ev.detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"Commit 38F080F3CD19 Upstream.\n", [("38f080f3cd19", "stable")]),
        (
            b"[  upstream commit 38f080f3cd19f0d1b5a5b4e1ab0e7dd4bbd5a9f1  ]\n",
            [("38f080f3cd19f0d1b5a5b4e1ab0e7dd4bbd5a9f1", "bracket")],
        ),
        (b"x\n(cherry picked from commit 38f080f3cd19 linux-next)\n", [("38f080f3cd19", "cherry")]),
        (b"(cherry-picked from commit 38f080f3cd19)\n", [("38f080f3cd19", "cherry")]),
        (b"stable inclusion\ncommit 38f080f3cd19\n", [("38f080f3cd19", "inclusion")]),
        # prose and other trailers name commits without claiming to be a backport of them
        (b'Since commit 38f080f3cd19 ("nfsd: foo") the queue leaks.\n', []),
        (b"commit 38f080f3cd19 broke this.\n", []),
        (b'Fixes: 38f080f3cd19 ("nfsd: foo")\n', []),
        (b"commit 38f080f3cd1 upstream.\n", []),  # 11 hex: too short to trust
        (b"see\ncommit 38f080f3cd19\n", []),  # bare line without an inclusion header
    ],
)
def test_trailer_forms_and_prose(body: bytes, expected: list[tuple[str, str]]) -> None:
    assert [tuple(r) for r in upstream_refs(body)] == expected


def test_short_trailer_matches_full_query(repo: Repo) -> None:
    h = _load(repo)
    ev = _find(h, upstream=[SHORT_TRAILER + "0" * 28])
    assert ev is not None and ev.commit == repo.c["short"]


def test_reachable_outranks_trailer_and_subject(repo: Repo) -> None:
    h = _load(repo)
    ev = _find(h, upstream=[UP["stable"], repo.c["up"]], subject="mm: handle allocation failure in foo_bar")
    assert ev is not None and ev.commit == repo.c["up"]


def test_subject_match_and_normalisation(repo: Repo) -> None:
    h = _load(repo)
    for subject in (
        "mm: handle allocation failure in foo_bar",
        "[PATCH v2 3/7] mm:  handle allocation failure in foo_bar.",
        "MM: Handle allocation failure in foo_bar",
    ):
        ev = _find(h, subject=subject)
        assert ev is not None and ev.commit == repo.c["reworded"], subject
        assert ev.detail == f"subject matches commit {repo.c['reworded'][:12]}"


def test_subject_no_false_positives(repo: Repo) -> None:
    h = _load(repo)
    assert _find(h, subject="mm: handle allocation failure") is None  # a prefix of one
    assert _find(h, subject="mm: handle allocation failure in foo_baz") is None
    assert _find(h, subject="fix typo") is None  # exists, but too vague to count
    assert _find(h, upstream=["c" * 40], subject="something entirely different") is None


def test_patch_id_match_ignores_line_numbers_and_subject(repo: Repo) -> None:
    h = _load(repo)
    diff = _git(repo.path, "show", "--format=", repo.c["pid"]) + "\n"
    # As posted against another base: the hunk sits elsewhere, the subject differs.
    moved = diff.replace("@@ -17,7 +17,7 @@", "@@ -117,7 +117,7 @@")
    assert moved != diff
    ev = _find(h, subject="fs: correct line twenty", diff=moved.encode(), paths=["fs/a.c"])
    assert ev is not None and ev.commit == repo.c["pid"]
    assert ev.detail == f"patch-id matches commit {repo.c['pid'][:12]}"
    other = moved.replace("+changed twenty", "+changed twenty-one")
    assert _find(h, diff=other.encode(), paths=["fs/a.c"]) is None


def test_reverted_fix_is_not_present(repo: Repo) -> None:
    h = _load(repo)
    assert h.reverted_by(repo.c["gone"]) == repo.c["revert"]
    assert _find(h, upstream=[repo.c["gone"]]) is None
    assert _find(h, upstream=["b" * 40]) is None  # its backport trailer
    assert _find(h, subject="block: fix queue depth accounting bug") is None
    # has_commit stays reachability: a wrong "absent" would hide a bug as not-applicable
    assert h.has_commit(repo.c["gone"])


def test_reverts_cancel_patch_id_and_subject_matches(repo: Repo) -> None:
    h = _load(repo)
    diff = _git(repo.path, "show", "--format=", repo.c["pid_gone"]) + "\n"
    assert _find(h, diff=diff.encode(), paths=["fs/h.c"]) is None
    assert h.reverted_by(repo.c["subj_gone"]) == repo.c["subj_revert"]
    assert _find(h, subject="mm: fix the subject-only revert case") is None


def test_has_commit_for_introduced_by(repo: Repo) -> None:
    h = _load(repo)
    assert h.has_commit(repo.c["intro"])
    assert h.has_commit(repo.c["intro"][:12])
    assert h.has_commit(UP["bracket"])  # named by a backport trailer
    assert not h.has_commit("d" * 40)
    assert not h.has_commit(repo.c["picked_upstream"][:7] + "x")  # not hex
    assert len(h) == len(set(repo.c.values())) - 1  # all but the side-branch commit


def test_head_may_be_a_ref(repo: Repo) -> None:
    assert History.load(repo.git_dir, "main", None) is _load(repo)
    with pytest.raises(ToolError):
        History.load(repo.git_dir, "no-such-ref", None)


def test_disk_cache_serves_second_load(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _load(repo, tmp_path)
    path = tmp_path / "history" / f"{repo.head}.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == history_cache.CACHE_FORMAT and doc["head"] == repo.head
    assert doc["commits"] == sorted(doc["commits"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]

    history.clear_memo()

    def no_git(*a: object, **k: object) -> history._Builder:
        raise AssertionError("git log must not run on a cached HEAD")

    monkeypatch.setattr(history, "_read_log", no_git)
    second = _load(repo, tmp_path)
    assert second is not first
    for sha in (repo.c["up"], UP["inclusion"], repo.c["picked_upstream"]):
        a, b = _find(first, upstream=[sha]), _find(second, upstream=[sha])
        assert a == b and a is not None
    assert _find(second, subject="mm: handle allocation failure in foo_bar") is not None
    assert second.reverted_by(repo.c["gone"]) == repo.c["revert"]


def test_shallow_clone_gets_its_own_cache(repo: Repo, tmp_path: Path) -> None:
    full = _load(repo, tmp_path)
    clone = tmp_path / "shallow"
    _git(tmp_path, "clone", "-q", "--depth", "2", "--no-local", repo.path.as_uri(), str(clone))
    h = History.load(clone / ".git", repo.head, tmp_path)
    assert h is not full and len(h) == 2
    assert not h.has_commit(repo.c["intro"]) and full.has_commit(repo.c["intro"])
    names = {p.name for p in (tmp_path / "history").iterdir()}
    assert f"{repo.head}.json" in names and len(names) == 2
    assert any(n.startswith(f"{repo.head}-shallow-") for n in names)


def test_damaged_cache_is_rebuilt(repo: Repo, tmp_path: Path) -> None:
    path = tmp_path / "history" / f"{repo.head}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"format": 1, "head": "')
    h = _load(repo, tmp_path)
    assert h.has_commit(repo.c["up"])
    assert json.loads(path.read_text())["head"] == repo.head


def test_threads_share_one_log_pass(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    lock = threading.Lock()
    real = history._read_log

    def counting(git_dir: Path, head: str, timeout: float = 1.0) -> history._Builder:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.2)  # hold the pass open so the other threads pile up behind it
        return real(git_dir, head)

    monkeypatch.setattr(history, "_read_log", counting)
    with ThreadPool(8) as pool:
        got = pool.map(lambda _: _load(repo), range(8))
    assert calls == 1
    assert all(h is got[0] for h in got)


# ---- changelogs ---------------------------------------------------------------------------

DEBIAN = """\
linux (6.1.76-1) unstable; urgency=medium

  [ Salvatore Bonaccorso ]
  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.1.76
    - [x86] KVM: x86: fix the lapic timer for nested guests
    - nfsd: fix the callback workqueue teardown on shutdown (CVE-2024-26602)
    - net/sched: act_mirred: use the backlog for mirred ingress with a
      long subject that wraps (CVE-2024-26740)
    - Revert "drm/amd: enable something" (CVE-2024-11111)

 -- Salvatore Bonaccorso <carnil@debian.org>  Thu, 01 Feb 2024 22:40:55 +0100

linux (6.1.69-1) unstable; urgency=medium

  * [rt] Update to 6.1.69-rt21
"""

RPM = """\
%changelog
* Tue Mar 05 2024 Jan Stancek <jstancek@redhat.com> [4.18.0-513.18.1.el8_9]
- nfs: fix the delegation return race on unmount (Scott Mayhew) [RHEL-1234] {CVE-2024-22222}
- [fs] xfs: fix log recovery when the head wraps (Bill O'Donnell) [RHEL-4321]
"""

UBUNTU = """\
linux (5.15.0-101.111) jammy; urgency=medium

  * CVE-2024-26602
    - sched/membarrier: reduce the ability to hammer on sys_membarrier

  * Jammy update: v5.15.149 upstream stable release (LP: #2055002)
    - nfsd: fix the callback thing in the v4 server

 -- Stefan Bader <stefan.bader@canonical.com>  Fri, 01 Mar 2024 10:00:00 +0100
"""

OPENEULER = """\
* Wed Feb 21 2024 Zheng Zengkai <zhengzengkai@huawei.com> - 5.10.0-186.0.0.99
- !4672 ext4: fix double-free of blocks due to wrong extents
- fix CVE-2024-0565
"""


@pytest.mark.parametrize(
    ("text", "subject", "quote"),
    [
        (
            DEBIAN,
            "nfsd: fix the callback workqueue teardown on shutdown",
            "- nfsd: fix the callback workqueue teardown on shutdown (CVE-2024-26602)",
        ),
        (
            DEBIAN,
            "[PATCH 6.1 12/30] KVM: x86: fix the lapic timer for nested guests.",
            "- [x86] KVM: x86: fix the lapic timer for nested guests",
        ),
        (
            DEBIAN,
            "net/sched: act_mirred: use the backlog for mirred ingress with a long subject that wraps",
            "- net/sched: act_mirred: use the backlog for mirred ingress with a long subject "
            "that wraps (CVE-2024-26740)",
        ),
        (
            RPM,
            "nfs: fix the delegation return race on unmount",
            "- nfs: fix the delegation return race on unmount (Scott Mayhew) [RHEL-1234] {CVE-2024-22222}",
        ),
        (
            RPM,
            "xfs: fix log recovery when the head wraps",
            "- [fs] xfs: fix log recovery when the head wraps (Bill O'Donnell) [RHEL-4321]",
        ),
        (
            UBUNTU,
            "sched/membarrier: reduce the ability to hammer on sys_membarrier",
            "- sched/membarrier: reduce the ability to hammer on sys_membarrier",
        ),
        (
            OPENEULER,
            "ext4: fix double-free of blocks due to wrong extents",
            "- !4672 ext4: fix double-free of blocks due to wrong extents",
        ),
    ],
)
def test_changelog_subject(text: str, subject: str, quote: str) -> None:
    ev = changelog_match(text, subject=subject, cves=[])
    assert ev == Evidence("changelog", f"changelog: '{quote}'")


def test_changelog_cve() -> None:
    ev = changelog_match(DEBIAN, subject="a subject that is not there", cves=["CVE-2024-26602"])
    assert ev is not None and ev.method == "changelog" and ev.commit is None
    assert ev.detail == (
        "changelog names CVE-2024-26602: '- nfsd: fix the callback workqueue "
        "teardown on shutdown (CVE-2024-26602)'"
    )
    ev = changelog_match(UBUNTU, subject="x", cves=["CVE-2024-26602"])
    assert ev is not None and ev.detail == "changelog names CVE-2024-26602: '* CVE-2024-26602'"
    ev = changelog_match(OPENEULER, subject="x", cves=["cve-2024-0565"])
    assert ev is not None and "'- fix CVE-2024-0565'" in ev.detail


def test_changelog_no_false_positives() -> None:
    for text in (DEBIAN, UBUNTU, RPM, OPENEULER):
        assert changelog_match(text, subject="nfsd: fix the callback workqueue", cves=[]) is None
        assert changelog_match(text, subject="fix the delegation return race", cves=[]) is None
        assert (
            changelog_match(text, subject="nfsd: fix the callback workqueue teardown on shutdown now", cves=[])
            is None
        )
        # a CVE id that is a prefix of a listed one; a reverted one
        assert changelog_match(text, subject="x", cves=["CVE-2024-2660"]) is None
        assert changelog_match(text, subject="x", cves=["CVE-2024-11111"]) is None
    assert changelog_match(DEBIAN, subject="Update to 6.1.69-rt21", cves=[]) is not None
    assert changelog_match("  * fix typo\n", subject="fix typo", cves=[]) is None
    assert changelog_match("", subject="nfsd: a b c", cves=["CVE-2024-1"]) is None


def test_changelog_long_line_is_truncated() -> None:
    subject = "drivers: " + " ".join(["word"] * 80)
    ev = changelog_match(f"- {subject}\n", subject=subject, cves=[])
    assert ev is not None
    quote = ev.detail[len("changelog: '") : -1]
    assert len(quote) == 200 and quote.endswith("...")
