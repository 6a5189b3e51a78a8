"""End to end on the Ubuntu fixture: debian.master/changelog is changelog evidence, and content
wins (interface.md, verdicts). A fix whose subject the changelog lists reads present/changelog
only where the tree's content bears it out; where its lines are missing the verdict stays and
the evidence says the changelog names it; a fix whose lines are there as posted is present by
content (exact), whatever the changelog says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.distrotrees import (
    CALLBACK_NEW,
    CALLBACK_OLD,
    CT_BPF_NEW,
    CT_BPF_OLD,
    SUBJECTS,
    UBUNTU_BASE,
    build_ubuntu_dsc,
    build_ubuntu_git,
    export_folder,
)
from testing.kfixtures import make_diff
from testing.mailgen import make_patch_mail
from testing.pi_server import PIServer
from testing.treegen import have

CB = "fs/nfsd/nfs4callback.c"
CT = "net/netfilter/nf_conntrack_bpf.c"
CORE = "kernel/events/core.c"
# the fix as posted: the tree took it without the comment (a reworked backport)
CALLBACK_POSTED = CALLBACK_NEW.replace(
    b"\treturn queue_work(", b"\t/* the client's own queue outlives its callbacks */\n\treturn queue_work("
)
CORE_FIXED = UBUNTU_BASE[CORE] + b"int perf_event_release_guard(void) { return -1; }\n"


def _bug(d: Path, bug_id: str, msgid: str) -> None:
    (d / f"{bug_id}.toml").write_text(
        f'id = "{bug_id}"\ntitle = "fixture bug {bug_id}"\nseverity = "high"\n\n[[fix]]\nmsgid = "{msgid}"\n'
    )


@pytest.fixture
def setup(tmp_path: Path, pi_server: PIServer) -> tuple[list[Path], Path, PIServer]:
    repo = build_ubuntu_git(tmp_path / "git" / "linux")
    trees = [export_folder(repo.path, tmp_path / "linux-6.8.0")]
    if have("dpkg-source"):
        trees.append(build_ubuntu_dsc(repo.path, tmp_path / "dsc-work", tmp_path / "dsc"))
    work = tmp_path / "diffs"
    work.mkdir()
    mails = {
        # listed in the changelog (a wrapped stable subject); the tree holds it reworked
        "traced": (SUBJECTS["cherry_pick"], make_diff(work, {CB: CALLBACK_OLD}, {CB: CALLBACK_POSTED})),
        # listed in the changelog; its lines are not in the tree
        "lacking": (SUBJECTS["backport"], make_diff(work, {CORE: UBUNTU_BASE[CORE]}, {CORE: CORE_FIXED})),
        # listed in the changelog; in the tree exactly as posted
        "exact": (SUBJECTS["backport"], make_diff(work, {CT: CT_BPF_OLD}, {CT: CT_BPF_NEW})),
    }
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    for name, (subject, diff) in mails.items():
        msgid = f"{name}-1@example.org"
        pi_server.add_thread(make_patch_mail(subject, diff, msgid))
        _bug(bugs, f"b-{name}", msgid)
    return trees, bugs, pi_server


def _check(tree: Path, bugs: Path, server: PIServer, cache: Path) -> dict[str, dict]:
    cmd = [sys.executable, "-m", "patchcheck", "check", "--tree", str(tree), "--format", "json"]
    cmd += ["--bugs-dir", str(bugs), "--no-shipped-bugs", "--cache-dir", str(cache), "--lore-url", server.url]
    cmd += ["--bug", "b-traced", "--bug", "b-lacking", "--bug", "b-exact", "-j", "1", "-q"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert "Traceback" not in cp.stderr, cp.stderr
    assert cp.returncode == 1, cp.stderr  # the lacking fix is backportable
    return {r["bug"]: r for r in json.loads(cp.stdout)["results"]}


def test_changelog_evidence_and_content_wins(setup: tuple[list[Path], Path, PIServer], tmp_path: Path) -> None:
    trees, bugs, server = setup
    for tree in trees:
        res = _check(tree, bugs, server, tmp_path / "cache")
        got = {b: (r["verdict"], r["method"]) for b, r in res.items()}
        assert got == {
            "b-traced": ("present", "changelog"),
            "b-lacking": ("backportable", "clean"),
            "b-exact": ("present", "exact"),
        }, (tree, {b: r["patches"][0]["evidence"] for b, r in res.items()})
        traced = res["b-traced"]["patches"][0]["evidence"]
        assert traced.startswith("changelog: ") and "nfsd: keep the callback workqueue alive" in traced
        lacking = res["b-lacking"]["patches"][0]["evidence"]
        assert "changelog" in lacking and "its lines are not in the tree" in lacking
        assert "changelog" not in res["b-exact"]["patches"][0]["evidence"]
