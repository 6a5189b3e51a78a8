"""Fixes read from an upstream clone (issue 16 item 3): a [[fix]] with `upstream` and no
msgid takes its patch from the commit; with a mail too, the mail stays the source and the
commit corroborates it. A real git repository, the real CLI and the local lore server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchcheck.bugs.load import load_bug
from patchcheck.cli import main
from patchcheck.errors import BadInput, BugFileError, SeriesError
from patchcheck.fetch.upstream import UpstreamRepo, series_from_clone
from patchcheck.model import Fix
from testing.gitrepo import git
from testing.mailgen import make_mbox, make_patch_mail
from testing.pi_server import PIServer
from testing.rig import patchcheck_args
from testing.upstream import Upstream, build_upstream, tree_at


@pytest.fixture
def up(tmp_path: Path) -> Upstream:
    return build_upstream(tmp_path / "mainline")


def bug(d: Path, fix: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "b1.toml").write_text(f'id = "b1"\ntitle = "t"\n[[fix]]\n{fix}\n')
    return d


def run(
    capsys: pytest.CaptureFixture[str], bugs: Path, cache: Path, *args: str, lore: str | None = None
) -> tuple[int, str, str]:
    """``patchcheck ARGS`` on the test's bug folder and cache: exit code, stdout, stderr."""
    rc = main(patchcheck_args(*args, bugs=bugs, cache=cache, lore=lore, jobs=None))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_a_commit_becomes_a_patch_mail(up: Upstream) -> None:
    repo = UpstreamRepo(up.repo)
    [p] = series_from_clone(repo, Fix(msgid=None, upstream=(up.prereq[:12],))).patches
    assert p.upstream == up.prereq and p.msgid == f"upstream:{up.prereq}"
    assert p.subject == "fs: count ret1 atomically"
    assert p.author == "Test Author <author@example.org>"
    assert p.body == "Readers do not hold the lock.\n\nSigned-off-by: P <p@example.org>\n"
    assert p.diff.startswith(b"diff --git a/fs/a.c b/fs/a.c\nindex ") and b"+\tatomic_add(" in p.diff
    assert p.date and "in " + str(up.repo) in p.origin
    with pytest.raises(SeriesError, match="is not in"):
        series_from_clone(repo, Fix(msgid=None, upstream=("0123456789ab",)))
    with pytest.raises(SeriesError, match="--upstream-repo"):
        series_from_clone(None, Fix(msgid=None, upstream=(up.fix,)))
    (up.repo.parent / "plain").mkdir()
    with pytest.raises(BadInput, match="not a git repository"):
        UpstreamRepo(up.repo.parent / "plain")
    with pytest.raises(BadInput, match="no such folder"):
        UpstreamRepo(up.repo.parent / "absent")


def test_bug_files_take_upstream_alone_but_not_a_selection(tmp_path: Path, up: Upstream) -> None:
    b = load_bug(bug(tmp_path / "bugs", f'upstream = ["{up.fix}"]') / "b1.toml")
    assert b.fixes[0].msgid is None and b.fixes[0].label == f"upstream {up.fix[:12]}"
    bug(tmp_path / "bugs", f'upstream = ["{up.fix}"]\npatches = [1]')
    with pytest.raises(BugFileError, match=r"fix\[1\].patches"):
        load_bug(tmp_path / "bugs" / "b1.toml")


def test_check_takes_the_patch_from_the_clone(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tree_at(up, up.base, tmp_path / "tree")
    bugs = bug(tmp_path / "bugs", f'upstream = ["{up.prereq}"]')
    common = ["check", "--tree", str(tree), "--bug", "b1", "--format", "json"]
    rc, out, err = run(capsys, bugs, tmp_path / "c", *common, "--upstream-repo", str(up.repo))
    assert rc == 1, err
    [p] = json.loads(out)["results"][0]["patches"]
    assert (p["verdict"], p["method"], p["upstream"]) == ("backportable", "clean", up.prereq)
    assert f"patch taken from upstream commit {up.prereq[:12]}" in p["evidence"]
    # no clone: the series cannot be obtained, and the message says what to give
    rc, out, err = run(capsys, bugs, tmp_path / "c", *common)
    assert rc == 3 and "--upstream-repo" in json.dumps(json.loads(out))
    # patchcheck fetch has nothing to fetch for it
    rc, out, err = run(capsys, bugs, tmp_path / "c", "fetch", "--bug", "b1")
    assert rc == 0 and out == "", (out, err)


def test_backport_writes_the_commit_as_it_applies(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tree_at(up, up.base, tmp_path / "tree")
    (tree / "fs/b.c").write_text("/* vendor */\n" + (tree / "fs/b.c").read_text())
    bugs = bug(tmp_path / "bugs", f'upstream = ["{up.other}"]')
    argv = [
        "backport",
        "--tree",
        str(tree),
        "--bug",
        "b1",
        "--upstream-repo",
        str(up.repo),
        "-o",
        str(tmp_path / "out"),
    ]
    rc, out, err = run(capsys, bugs, tmp_path / "c", *argv)
    assert rc == 0, out + err
    [p] = (tmp_path / "out").iterdir()
    text = p.read_text()
    assert p.name == "0001-fs-b-check-ctx.patch"
    assert text.startswith(f"From {up.other} Mon Sep 17 00:00:00 2001\nFrom: Test Author <author@example.org>\n")
    assert f"\n\ncommit {up.other} upstream.\n\nSigned-off-by: O <o@example.org>\n---\n" in text
    assert "Link:" not in text
    # the tree's line numbers: one line more on top than upstream's
    assert "@@ -39,7 +39,7 @@" in git(up.repo, "show", up.other)
    assert "@@ -40,7 +40,7 @@" in text


def test_a_mail_stays_the_source_and_the_commit_corroborates(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    same = git(up.repo, "diff", up.prereq, up.other).encode() + b"\n"
    other = same.replace(b"+\tif (!ctx || !ctx->ready3)", b"+\tif (!ctx || !ctx->ready3 || !arg3)")
    tree = tree_at(up, up.prereq, tmp_path / "tree")
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    for name in ("same", "differs"):
        (bugs / f"{name}.toml").write_text(
            f'id = "{name}"\ntitle = "t"\n[[fix]]\nmsgid = "{name}@x.org"\nupstream = ["{up.other}"]\n'
        )
    with PIServer() as server:
        for name, diff in (("same", same), ("differs", other)):
            server.add_thread(make_mbox([make_patch_mail("fs/b: check ctx", diff, f"{name}@x.org")]))
        argv = ["check", "--tree", str(tree), "--all", "--format", "json", "--upstream-repo", str(up.repo)]
        rc, out, err = run(capsys, bugs, tmp_path / "c", *argv, lore=server.url)
    assert rc == 1, err
    ev = {r["bug"]: r["patches"][0]["evidence"] for r in json.loads(out)["results"]}
    assert "patch taken from the mail <same@x.org>" in ev["same"]
    assert f"upstream commit {up.other[:12]} in {up.repo} has the same change" in ev["same"]
    assert "differs from the mail" in ev["differs"]
