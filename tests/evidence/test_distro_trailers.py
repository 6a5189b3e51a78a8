"""History reads the distros' trailers (issue 17 items 1-2): Ubuntu's ``(cherry picked from
commit X)``, ``(backported from commit X)``, CVE lines and ``UBUNTU: SAUCE:`` subjects, and
openEuler's ``mainline inclusion`` block, on real git repositories built here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchcheck.evidence import history
from patchcheck.evidence.changelog import changelog_match
from patchcheck.evidence.history import History, normalise_subject
from patchcheck.model import Evidence
from testing.distrotrees import CVE, SUBJECTS, UPSTREAM, UbuntuGit, build_ubuntu_git
from testing.gitrepo import commit, init

# an upstream commit only openEuler's inclusion block names (not in the repository)
OE_UP = "7d1d2c8a3b4e5f60718293a4b5c6d7e8f9012345"
OE_CVE = "CVE-2023-52885"
OE_SUBJECT = "SUNRPC: Fix UAF in svc_tcp_listen_data_ready()"
OE_MESSAGE = f"""{OE_SUBJECT}

mainline inclusion
from mainline-v6.5-rc1
commit {OE_UP}
category: bugfix
bugzilla: https://gitee.com/src-openeuler/kernel/issues/I00000
CVE: {OE_CVE}

Reference: https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id={OE_UP}

--------------------------------

The listener's socket may be freed while data_ready still runs.

Signed-off-by: Upstream Dev <up@example.org>
Signed-off-by: Vendor Dev <dev@example.org>
"""


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    history.clear_memo()
    yield
    history.clear_memo()


@pytest.fixture(scope="module")
def ubuntu(tmp_path_factory: pytest.TempPathFactory) -> UbuntuGit:
    return build_ubuntu_git(tmp_path_factory.mktemp("ubuntu") / "linux")


@pytest.fixture(scope="module")
def openeuler(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("oe") / "kernel"
    c = {"base": init(repo, {"net/sunrpc/svcsock.c": "int listen;\n"})}
    c["incl"] = commit(repo, OE_MESSAGE, {"net/sunrpc/svcsock.c": "int listen;\nint guarded;\n"})
    c["prose"] = commit(
        repo, f"sunrpc: tidy up\n\nThis is ready for inclusion\ncommit {'c' * 40}\n", {"net/sunrpc/x.c": "x\n"}
    )
    return repo, c


def _ubuntu_history(u: UbuntuGit) -> History:
    return History.load(u.path / ".git", u.head, None)


def _find(h: History, **kw: object) -> Evidence | None:
    args: dict[str, object] = {"upstream": [], "subject": "unrelated thing here", "diff": b"", "paths": []}
    args.update(kw)
    return h.find_fix(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "words"),
    [("cherry_pick", "(cherry picked from commit ...)"), ("backport", "(backported from commit ...)")],
)
def test_ubuntu_pick_trailers_name_the_fix(ubuntu: UbuntuGit, label: str, words: str) -> None:
    h = _ubuntu_history(ubuntu)
    for sha in (UPSTREAM[label], UPSTREAM[label][:12]):
        ev = _find(h, upstream=[sha])
        assert ev is not None and ev.commit == ubuntu.commits[label], sha
        local = ubuntu.commits[label][:12]
        assert ev.detail == f"backport {local} names upstream {UPSTREAM[label][:12]} ({words})"
    assert _find(h, upstream=["0" * 40]) is None


def test_ubuntu_cve_line_names_the_fix(ubuntu: UbuntuGit) -> None:
    h = _ubuntu_history(ubuntu)
    ev = _find(h, cves=[CVE.lower()])
    assert ev is not None and ev.commit == ubuntu.commits["backport"]
    assert ev.detail == f"commit {ubuntu.commits['backport'][:12]} names {CVE} on a line of its own"
    assert _find(h, cves=["CVE-2024-9999"]) is None


def test_ubuntu_sauce_subject_is_the_change_subject(ubuntu: UbuntuGit) -> None:
    h = _ubuntu_history(ubuntu)
    bare = SUBJECTS["sauce"].removeprefix("UBUNTU: SAUCE: ")
    assert normalise_subject(SUBJECTS["sauce"]) == normalise_subject(bare)
    ev = _find(h, subject=f"[PATCH v2 1/3] {bare}.")
    assert ev is not None and ev.commit == ubuntu.commits["sauce"]


def test_openeuler_inclusion_block(openeuler: tuple[Path, dict[str, str]]) -> None:
    repo, c = openeuler
    h = History.load(repo / ".git", "HEAD", None)
    ev = _find(h, upstream=[OE_UP[:12]])
    assert ev is not None and ev.commit == c["incl"]
    assert "(mainline inclusion / commit ...)" in ev.detail
    ev = _find(h, cves=[OE_CVE])
    assert ev is not None and ev.commit == c["incl"]
    # "for inclusion" in prose followed by a commit line is no inclusion block
    assert _find(h, upstream=["c" * 40]) is None


def test_cache_keeps_cve_lines(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    first = History.load(ubuntu.path / ".git", ubuntu.head, tmp_path)
    history.clear_memo()
    again = History.load(ubuntu.path / ".git", ubuntu.head, tmp_path)
    assert again is not first and again.tables.cves == first.tables.cves == {CVE: ubuntu.commits["backport"]}


def test_changelog_cve_after_a_hyphen() -> None:
    # text/trailers.cves is the one CVE regex: a CVE right after a hyphen counts now too
    text = "  * fix the thing\n    - nfsd: x (LP: #1)-CVE-2024-50264\n"
    ev = changelog_match(text, subject="unrelated", cves=["CVE-2024-50264"])
    assert ev is not None and "CVE-2024-50264" in ev.detail
