"""An SRPM's applied patches carry openEuler's backport header (``mainline inclusion`` /
``commit <sha>`` / ``CVE:``): it names the fix, as a changelog does, and content still wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.evidence.changelog import queue_match
from patchcheck.trees.archive.queue import QueuePatch, patch_header
from testing.distrotrees import (
    BACKPORT_CVE,
    BACKPORT_DIFF,
    BACKPORT_SHA,
    BACKPORT_SUBJECT,
    SERIES_PATCHES,
    OpenEulerSrpm,
    build_openeuler_srpm,
)
from testing.mailgen import make_patch_mail

NAME = "patches/0004-list-bound-the-walk.patch"
# a fix whose lines the tree does not hold (mm/untouched.c is as the tarball has it)
ELSEWHERE = (
    b"diff --git a/mm/untouched.c b/mm/untouched.c\n--- a/mm/untouched.c\n+++ b/mm/untouched.c\n"
    b"@@ -1 +1 @@\n-void untouched(void) {}\n+void untouched(void) { barrier(); }\n"
)


def _headers() -> list[tuple[str, str]]:
    return [(NAME, patch_header(QueuePatch(NAME, SERIES_PATCHES["0004-list-bound-the-walk.patch"])))]


def test_header_stops_before_the_diff() -> None:
    ((_, text),) = _headers()
    assert f"commit {BACKPORT_SHA}" in text and "diff --git" not in text and "LIST_WALK_BOUND" not in text


@pytest.mark.parametrize(
    ("upstream", "subject", "cves", "expected"),
    [
        ([BACKPORT_SHA], "unrelated words here", [], f"backports commit {BACKPORT_SHA[:12]}"),
        ([BACKPORT_SHA[:12]], "unrelated words here", [], f"backports commit {BACKPORT_SHA[:12]}"),
        ([], BACKPORT_SUBJECT, [], "has the fix's subject"),
        ([], "unrelated words here", [BACKPORT_CVE.lower()], f"names {BACKPORT_CVE}"),
        ([BACKPORT_SHA[:11]], "unrelated words here", ["CVE-2020-0001"], None),  # too short an id
    ],
)
def test_queue_match(upstream: list[str], subject: str, cves: list[str], expected: str | None) -> None:
    ev = queue_match(_headers(), upstream=upstream, subject=subject, cves=cves)
    if expected is None:
        assert ev is None
    else:
        assert ev is not None and ev.method == "changelog"
        assert ev.detail.startswith(f"applied patch {NAME} ") and expected in ev.detail


@pytest.fixture(scope="module")
def srpm(tmp_path_factory: pytest.TempPathFactory) -> OpenEulerSrpm:
    root = tmp_path_factory.mktemp("oe")
    return build_openeuler_srpm(root / "work", root / "out", "openeuler")


def _bug(bugs: Path, bug_id: str, diff: bytes, upstream: str = "", cves: str = "") -> None:
    (bugs / "fixes").mkdir(parents=True, exist_ok=True)
    subject = BACKPORT_SUBJECT if bug_id == "same" else "mm: keep the untouched helper ordered"
    (bugs / "fixes" / f"{bug_id}.mbox").write_bytes(make_patch_mail(subject, diff, f"{bug_id}@x.org"))
    up = f'upstream = ["{upstream}"]\n' if upstream else ""
    (bugs / f"{bug_id}.toml").write_text(
        f'id = "{bug_id}"\ntitle = "t"\n{cves}[[fix]]\nmbox = "fixes/{bug_id}.mbox"\n{up}'
    )


def test_cli_verdicts_on_the_srpm(srpm: OpenEulerSrpm, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bugs = tmp_path / "bugs"
    _bug(bugs, "same", BACKPORT_DIFF, BACKPORT_SHA)
    _bug(bugs, "named", ELSEWHERE, BACKPORT_SHA[:12])
    _bug(bugs, "cve", ELSEWHERE, cves=f'cves = ["{BACKPORT_CVE}"]\n')
    _bug(bugs, "plain", ELSEWHERE)
    args = ["--tree", str(srpm.path), "--arch", "x86_64", "--all", "--bugs-dir", str(bugs)]
    args += ["--no-shipped-bugs", "--cache-dir", str(tmp_path / "cache"), "--format", "json", "--offline"]
    main(args)
    rows = {r["bug"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rows["same"]["verdict"] == "present"
    for bug_id, says in (("named", f"backports commit {BACKPORT_SHA[:12]}"), ("cve", f"names {BACKPORT_CVE}")):
        (p,) = rows[bug_id]["patches"]
        # the queue names the fix, but content wins: its lines are not in the tree
        assert rows[bug_id]["verdict"] != "present", rows[bug_id]
        assert f"applied patch {NAME} {says}" in p["evidence"] and "its lines are not in the tree" in p["evidence"]
    (p,) = rows["plain"]["patches"]
    assert "applied patch" not in p["evidence"]
