"""The pipeline on real git trees: history evidence, --rev, introduced_by, and fixes from a
local mbox (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchcheck.cli import main
from testing.gitrepo import git, init
from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail

UPSTREAM = "38f080f3cd19fbd87eb7f6c4f6c236c1c9df6fba"
OLD = {"Makefile": MAKEFILE, "fs/a.c": c_file("a")}
HUNK = ("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")


def bug(d: Path, bug_id: str, diff: bytes, extra: str = "") -> None:
    (d / "fixes").mkdir(parents=True, exist_ok=True)
    (d / "fixes" / f"{bug_id}.mbox").write_bytes(
        make_patch_mail("fs: guard ret1 against negative values", diff, f"{bug_id}@x.org")
    )
    (d / f"{bug_id}.toml").write_text(
        f'id = "{bug_id}"\ntitle = "t"\n[[fix]]\nmbox = "fixes/{bug_id}.mbox"\n{extra}\n'
    )


def check(
    capsys: pytest.CaptureFixture[str], tree: Path, bugs: Path, cache: Path, *extra: str
) -> tuple[int, dict[str, dict]]:
    rc = main(
        [
            "--tree",
            str(tree),
            "--all",
            "--bugs-dir",
            str(bugs),
            "--no-shipped-bugs",
            "--cache-dir",
            str(cache),
            "--format",
            "json",
            "--offline",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return rc, {r["bug"]: r for r in json.loads(out)["results"]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """base -> backport of the fix (with a stable-style trailer) -> a later rework of
    the same lines, so the content no longer reverse-applies."""
    r = write_tree(tmp_path / "linux", OLD)
    init(r)
    (r / "fs/a.c").write_text(OLD["fs/a.c"].replace(*HUNK))
    git(r, "commit", "-qam", f"fs: guard ret1\n\ncommit {UPSTREAM} upstream.\n")
    (r / "fs/a.c").write_text(
        OLD["fs/a.c"].replace(HUNK[0], "\tif (unlikely(ret1 < 0))\n\t\treturn 0;\n\treturn ret1;")
    )
    git(r, "commit", "-qam", "fs: mark the ret1 check unlikely")
    return r


def test_history_outranks_content(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bugs = tmp_path / "bugs"
    diff = make_diff(tmp_path, OLD, {**OLD, "fs/a.c": OLD["fs/a.c"].replace(*HUNK)})
    bug(bugs, "by-sha", diff, f'upstream = ["{UPSTREAM}"]')
    bug(bugs, "no-sha", diff)
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    assert (res["by-sha"]["verdict"], res["by-sha"]["method"]) == ("present", "history")
    assert "38f080f3cd19" in res["by-sha"]["patches"][0]["evidence"]
    # without the sha, the subject still finds the backport in the history
    assert (res["no-sha"]["verdict"], res["no-sha"]["method"]) == ("present", "history")
    before = git(repo, "status", "--porcelain")
    assert before == ""


def test_rev_checks_an_older_commit(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bugs = tmp_path / "bugs"
    diff = make_diff(tmp_path, OLD, {**OLD, "fs/a.c": OLD["fs/a.c"].replace(*HUNK)})
    (bugs / "fixes").mkdir(parents=True)
    (bugs / "fixes/x.mbox").write_bytes(make_patch_mail("fs: a different subject here", diff, "x@y"))
    (bugs / "x.toml").write_text('id = "x"\ntitle = "t"\n[[fix]]\nmbox = "fixes/x.mbox"\n')
    head = git(repo, "rev-parse", "HEAD")
    rc, res = check(capsys, repo, bugs, tmp_path / "c", "--rev", "HEAD~2")
    assert (res["x"]["verdict"], res["x"]["method"]) == ("backportable", "clean")
    rc, res = check(capsys, repo, bugs, tmp_path / "c", "--rev", "HEAD~1")
    assert (res["x"]["verdict"], res["x"]["method"]) == ("present", "exact")
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""


def test_introduced_by_absent(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bugs = tmp_path / "bugs"
    other = {**OLD, "fs/a.c": OLD["fs/a.c"].replace("\tint ret3 = 0;", "\tint ret3 = -1;")}
    diff = make_diff(tmp_path, OLD, other)
    bug(bugs, "intro", diff, 'introduced_by = ["0ee288e69d03"]')
    base = git(repo, "rev-list", "--max-parents=0", "HEAD")
    (bugs / "intro2.toml").write_text(
        (bugs / "intro.toml")
        .read_text()
        .replace('id = "intro"', 'id = "intro2"')
        .replace("0ee288e69d03", base[:12])
    )
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    assert res["intro"]["verdict"] == "not-applicable"
    assert "introduced_by" in res["intro"]["patches"][0]["evidence"]
    assert res["intro2"]["verdict"] == "backportable"


# ---- content wins over history (issue 11, item 2) -------------------------------------

SUBJECT = "fs: guard ret1 against negative values"
HUNK2 = ("\tctx->count4 += ret4;", "\tctx->count4 += ret4 & 0xff;")


def _with(*hunks: tuple[str, str]) -> str:
    text = OLD["fs/a.c"]
    for old, new in hunks:
        text = text.replace(old, new)
    return text


@pytest.fixture
def fixed(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout whose history has the fix (two hunks) as a commit of its own, and a
    bug whose fix is that patch."""
    r = write_tree(tmp_path / "linux", OLD)
    git(r, "init", "-q")
    git(r, "add", ".")
    git(r, "commit", "-qm", "base")
    (r / "fs/a.c").write_text(_with(HUNK, HUNK2))
    git(r, "commit", "-qam", SUBJECT)
    bugs = tmp_path / "bugs"
    bug(bugs, "fix", make_diff(tmp_path, OLD, {**OLD, "fs/a.c": _with(HUNK, HUNK2)}))
    return r, bugs


def test_reverted_fix_is_not_present(
    fixed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, bugs = fixed
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    assert (res["fix"]["verdict"], res["fix"]["method"]) == ("present", "exact")
    git(repo, "revert", "--no-edit", "HEAD")
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    assert (res["fix"]["verdict"], res["fix"]["method"]) == ("backportable", "clean"), res["fix"]
    assert rc == 1


def test_revert_named_only_by_its_subject_cancels(
    fixed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, bugs = fixed
    (repo / "fs/a.c").write_text(OLD["fs/a.c"])
    git(repo, "commit", "-qam", f'Revert "{SUBJECT}"', "-m", "It broke the frobnicator.")
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    ev = res["fix"]["patches"][0]["evidence"]
    assert (res["fix"]["verdict"], res["fix"]["method"]) == ("backportable", "clean"), ev
    assert "history names" not in ev  # the revert cancelled the commit


def test_fix_undone_by_hand_is_not_present(
    fixed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, bugs = fixed
    fix_sha = git(repo, "rev-parse", "HEAD")
    # wholly: the work tree (the content of a checkout without --rev) lost both hunks
    (repo / "fs/a.c").write_text(OLD["fs/a.c"])
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    [p] = res["fix"]["patches"]
    assert (p["verdict"], p["method"]) == ("backportable", "clean"), p["evidence"]
    assert f"history names commit {fix_sha[:12]}" in p["evidence"]
    assert "its lines are not in the tree (reverted? dropped?)" in p["evidence"]
    # partly: one hunk undone
    (repo / "fs/a.c").write_text(_with(HUNK))
    rc, res = check(capsys, repo, bugs, tmp_path / "c")
    [p] = res["fix"]["patches"]
    assert p["verdict"] == "partially-present", p["evidence"]
    assert [h["status"] for h in p["hunks"]] == ["present", "offset"]
    assert f"history names commit {fix_sha[:12]}" in p["evidence"]
