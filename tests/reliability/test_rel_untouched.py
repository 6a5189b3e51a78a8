"""The user's tree is never touched: for every kind of tree (folder, git, tarball, deb,
srpm, dsc), a check, an audit, a failing run and runs interrupted by SIGINT and SIGKILL
leave every file of the tree's folder as it was (content, mtime, mode, and the file list:
nothing added next to the user's file). After the interrupts, a normal run on the same
cache succeeds and the cache holds nothing a later run would trust.

The trees are built with testing/treegen.py's builders (the same content as every kind)."""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from pathlib import Path

import pytest

from testing.gitrepo import init
from testing.kfixtures import make_diff, write_tree
from testing.mailgen import make_mbox, make_patch_mail
from testing.pi_server import PIServer
from testing.rig import Completed, Rig, bug_file, interrupt, no_traceback, wait_for
from testing.treegen import BASE, FINAL, TOP, _build_deb, _build_dsc, build_srpm, have, snapshot, write_tar

CORE = "kernel/events/core.c"
PRESENT_MID = "clp-1@example.org"  # STAGE1's change: in every kind's final content
FIX_MID = "perf-1@example.org"  # a change to kernel/events/core.c: backportable everywhere
KINDS = ["folder", "git", "tarball", "deb", "srpm", "dsc"]
TOOLS = {"deb": "dpkg-deb", "srpm": "rpmbuild", "dsc": "dpkg-source"}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """kind -> the user's tree (alone in its folder)."""
    root = tmp_path_factory.mktemp("kinds")
    out: dict[str, Path] = {"folder": write_tree(root / "folder" / TOP, FINAL)}
    (root / "tarball").mkdir()
    out["tarball"] = write_tar(root / "tarball" / f"{TOP}.tar.xz", FINAL, TOP, "w:xz")
    repo = write_tree(root / "git" / "linux", FINAL)
    init(repo, message="final")
    out["git"] = repo
    if have("dpkg-deb"):
        (root / "deb").mkdir()
        out["deb"] = _build_deb(root / "debwork", root / "deb" / "linux-source-4.19.deb")
    if have("rpmbuild"):
        out["srpm"] = build_srpm(root / "rpmwork", root / "srpm")
    if have("dpkg-source"):
        out["dsc"] = _build_dsc(root / "dscwork", root / "dsc", "3.0 (quilt)")
    return out


def _serve(server: PIServer, work: Path) -> None:
    new_core = FINAL[CORE].replace(b"return 0;", b"return -EINVAL;")
    fix = make_diff(work, {CORE: FINAL[CORE]}, {CORE: new_core})
    stage0 = {"fs/nfsd/nfs4callback.c": BASE["fs/nfsd/nfs4callback.c"]}
    present = make_diff(work, stage0, {"fs/nfsd/nfs4callback.c": FINAL["fs/nfsd/nfs4callback.c"]})
    server.add_thread(make_mbox([make_patch_mail("perf: refuse open", fix, FIX_MID)]))
    server.add_thread(make_mbox([make_patch_mail("nfsd: check clp", present, PRESENT_MID)]))


def _results(cp: Completed) -> dict[str, str]:
    no_traceback(cp)
    return {r["bug"]: r["verdict"] for r in json.loads(cp.stdout)["results"]}


GOOD_VERDICTS = {"b-fix": "backportable", "b-present": "present"}


@pytest.mark.parametrize("kind", KINDS)
def test_tree_is_never_touched(kinds: dict[str, Path], kind: str, tmp_path: Path, pi_server: PIServer) -> None:
    if kind not in kinds:
        pytest.skip(f"{TOOLS[kind]} is not installed: cannot build a {kind} tree")
    tree = kinds[kind]
    folder = tree.parent  # the tree and whatever might appear next to it
    (tmp_path / "gen").mkdir()
    _serve(pi_server, tmp_path / "gen")
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    bug_file(bugs, "b-fix", f'msgid = "{FIX_MID}"')
    bug_file(bugs, "b-present", f'msgid = "{PRESENT_MID}"')
    bug_file(bugs, "b-404", 'msgid = "nowhere-1@example.org"')
    rig = Rig(
        root=tmp_path, tree=tree, bugs=bugs, cache=tmp_path / "cache", server=pi_server, diff_a=b"", diff_b=b""
    )
    before = snapshot(folder)
    t = str(tree)

    def untouched(after: str) -> None:
        assert snapshot(folder) == before, f"{kind} tree changed by {after}"

    def fetches() -> int:
        return sum(r.endswith("t.mbox.gz") for r in pi_server.requests)

    # interrupted while its fetch waits on the server (the tree is already open then)
    pi_server.delay = 30
    for sig, code in ((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)):
        n = fetches()
        proc = rig.popen("check", "--tree", t, "--bug", "b-fix", "--bug", "b-present")
        wait_for(lambda n=n: fetches() > n)  # type: ignore[misc]
        time.sleep(0.2)
        rc, out, err = interrupt(proc, sig)
        assert rc == code, (sig, rc, err)
        if sig == signal.SIGINT:
            assert err.strip().splitlines() == ["patchcheck: interrupted"]
        untouched(sig.name)
    pi_server.delay = 0

    cp = rig.run("check", "--tree", t, "--bug", "b-fix", "--bug", "b-present", "--format", "json")
    assert cp.returncode == 1 and _results(cp) == GOOD_VERDICTS, cp.stderr
    untouched("check")
    cp = rig.run("cache", "verify")
    assert cp.returncode == 0, cp.stdout

    # audit, failing: one series is not on the server (exit 3), the others judged
    cp = rig.run("audit", "--tree", t, "--all", "--format", "json")
    assert cp.returncode == 3 and _results(cp) == {**GOOD_VERDICTS, "b-404": "error"}
    untouched("audit")

    # killed while it reads the tree: a cold tree cache, the series already cached
    cold = dataclasses.replace(rig, cache=tmp_path / "cold")
    assert cold.run("fetch", "--bug", "b-fix", "--bug", "b-present").returncode == 0
    proc = cold.popen("check", "--tree", t, "--bug", "b-fix", "--bug", "b-present", offline=True)
    time.sleep(0.5)
    interrupt(proc, signal.SIGKILL)
    untouched("SIGKILL while reading the tree")
    cp = cold.run("check", "--tree", t, "--bug", "b-fix", "--bug", "b-present", "--format", "json", offline=True)
    assert cp.returncode == 1 and _results(cp) == GOOD_VERDICTS, cp.stderr
    untouched("the run after the kill")
