"""Prerequisites of a conflict (issue 16 item 2), on a synthetic upstream git repository
built here: a base, a prerequisite that changes a line the fix's context needs, and the
fix; trees at the base. Real git blame, the real engine, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.evidence.prereqs import Wanted, absent, search
from patchcheck.fetch.upstream import UpstreamRepo
from patchcheck.model import PatchMail, PatchResult, Prereq, SearchLimits, Verdict
from patchcheck.text.diff import parse_diff
from testing.gitrepo import commit
from testing.rig import patchcheck_args
from testing.upstream import BASE, Upstream, build_upstream, edit, git_am, tree_at


@pytest.fixture
def up(tmp_path: Path) -> Upstream:
    return build_upstream(tmp_path / "mainline")


def bug(d: Path, fix: str, bug_id: str = "b1") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{bug_id}.toml").write_text(f'id = "{bug_id}"\ntitle = "t"\n[[fix]]\n{fix}\n')
    return d


def args(verb: str, tree: Path, bugs: Path, cache: Path, repo: Path, *extra: str) -> list[str]:
    """``patchcheck VERB`` of every bug of ``bugs`` on ``tree``, with the upstream clone."""
    return patchcheck_args(
        verb,
        "--tree",
        str(tree),
        "--all",
        "--upstream-repo",
        str(repo),
        *extra,
        bugs=bugs,
        cache=cache,
        lore=None,
        jobs=None,
    )


def run(
    capsys: pytest.CaptureFixture[str], tree: Path, bugs: Path, repo: Path, *extra: str, fmt: str = "json"
) -> tuple[int, str]:
    """``patchcheck check`` with the upstream clone: exit code and report."""
    rc = main(args("check", tree, bugs, bugs.parent / "cache", repo, "--format", fmt, *extra))
    return rc, capsys.readouterr().out


def check(
    capsys: pytest.CaptureFixture[str], tree: Path, bugs: Path, repo: Path, *extra: str
) -> tuple[int, list[dict]]:
    rc, out = run(capsys, tree, bugs, repo, *extra)
    return rc, [p for r in json.loads(out)["results"] for p in r["patches"]]


def test_the_conflict_names_its_prerequisite(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tree_at(up, up.base, tmp_path / "tree")
    bugs = bug(tmp_path / "bugs", f'upstream = ["{up.fix}"]')
    rc, [p] = check(capsys, tree, bugs, up.repo)
    assert rc == 1 and p["verdict"] == "conflicting"
    pre = p["prerequisites"]
    # nearest first: the prerequisite (absent, applies), then the base the other lines come from
    assert [(q["commit"], q["verdict"], q["method"]) for q in pre] == [
        (up.prereq, "backportable", "clean"),
        (up.base, "present", "exact"),
    ]
    assert (
        pre[0]["subject"] == "fs: count ret1 atomically"
        and pre[0]["hunks"] == ["fs/a.c#1"]
        and pre[0]["depth"] == 1
    )
    assert up.other not in {q["commit"] for q in pre}  # it changed another file
    assert p["with_prerequisites"] is None and p["prerequisites_note"] is None
    # a search capped at one commit says so
    rc, [p] = check(capsys, tree, bugs, up.repo, "--prereq-commits", "1")
    assert [q["commit"] for q in p["prerequisites"]] == [up.prereq]
    assert "search capped at 1 commits" in p["prerequisites_note"]


def test_with_prereqs_makes_it_backportable_and_backport_writes_both(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tree_at(up, up.base, tmp_path / "tree")
    bugs = bug(tmp_path / "bugs", f'upstream = ["{up.fix}"]')
    rc, [p] = check(capsys, tree, bugs, up.repo, "--with-prereqs")
    assert p["verdict"] == "conflicting"  # the tree still lacks the prerequisite
    assert p["with_prerequisites"].startswith(
        f"backportable (clean) on top of the absent prerequisites that apply (oldest first: {up.prereq[:12]})"
    )
    out = tmp_path / "out"
    rc = main(args("backport", tree, bugs, tmp_path / "cache", up.repo, "--with-prereqs", "-o", str(out)))
    text = capsys.readouterr().out
    assert rc == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0001-fs-count-ret1-atomically.patch", "0002-fs-guard-ret1-against-negative-values.patch"]
    assert "wrote 0001-fs-count-ret1-atomically.patch (a prerequisite of 'fs: guard ret1" in text
    assert (out / names[0]).read_text().startswith(f"From {up.prereq} ")
    assert f"commit {up.fix} upstream." in (out / names[1]).read_text()
    log = git_am(tree, [out / n for n in names], tmp_path / "am")
    assert log.splitlines() == ["fs: count ret1 atomically", "fs: guard ret1 against negative values"]
    assert (tmp_path / "am" / "fs/a.c").read_bytes() == (up.repo / "fs/a.c").read_bytes()
    # without --with-prereqs: the conflict's rejects, and its prerequisites printed
    rc = main(args("backport", tree, bugs, tmp_path / "c", up.repo, "-o", str(tmp_path / "out2")))
    text = capsys.readouterr().out
    assert rc == 1
    assert (
        "prerequisites (upstream, nearest first):\n"
        f"    {up.prereq[:12]} fs: count ret1 atomically: backportable (clean) [hunk fs/a.c#1]" in text
    )
    assert [p.name for p in (tmp_path / "out2").iterdir()] == ["0001-fs-guard-ret1-against-negative-values.rej"]


def test_a_prerequisite_that_conflicts_has_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rewrites a line; B rewrites it again with the line above (so B needs A); the fix
    changes the line below (so it needs B). A tree before A: the fix needs B, B needs A."""
    repo = tmp_path / "up"
    up = build_upstream(repo)  # the chain goes on top of its commits
    y, x, z = "\tif (!ctx->ready4)\n", "\t\treturn -5;\n", "\tret4 = a_helper4(ctx, arg4);\n"

    def change(msg: str, old: str, new: str) -> str:
        return commit(repo, msg, {"fs/a.c": edit((repo / "fs/a.c").read_text(), old, new)})

    a = change("fs: A\n", y + x, y + "\t\treturn -EAGAIN;\n")
    b = change("fs: B\n", y + "\t\treturn -EAGAIN;\n", "\tif (!ctx->ready4 || !arg4)\n\t\treturn -EINVAL;\n")
    fix = change("fs: fix\n", z, "\tret4 = a_helper4_locked(ctx, arg4);\n")
    tree = tree_at(up, up.fix, tmp_path / "tree")  # has everything before A
    bugs = bug(tmp_path / "bugs", f'upstream = ["{fix}"]')
    rc, [p] = check(capsys, tree, bugs, repo)
    got = {q["commit"]: (q["verdict"], q["depth"], q["needed_by"]) for q in p["prerequisites"]}
    assert got[b] == ("conflicting", 1, None)
    assert got[a] == ("backportable", 2, b)
    rc, [p] = check(capsys, tree, bugs, repo, "--prereq-depth", "1")
    assert a not in {q["commit"] for q in p["prerequisites"]}
    assert "search capped at depth 1" in p["prerequisites_note"]
    rc, [p] = check(capsys, tree, bugs, repo, "--with-prereqs")
    assert p["with_prerequisites"].startswith(
        f"backportable (clean) on top of the absent prerequisites that apply (oldest first: {a[:12]}, {b[:12]})"
    )


def test_a_missing_file_points_at_the_commit_that_made_it(tmp_path: Path, up: Upstream) -> None:
    repo = UpstreamRepo(up.repo)
    made = commit(up.repo, "fs: add c.c\n", {"fs/c.c": "int c;\nint d;\nint e;\n"})
    fix = commit(up.repo, "fs: fix c.c\n", {"fs/c.c": "int c;\nint d = 1;\nint e;\n"})
    mail = repo.patch_mail(fix)
    [fp] = parse_diff(mail.diff)
    seen: list[str] = []

    def judge(p: PatchMail) -> PatchResult:
        seen.append(p.upstream or "")
        return PatchResult(p.msgid, p.subject, p.upstream, Verdict.BACKPORTABLE, "clean", "")

    found = search(repo, fix, [Wanted(1, "fs/c.c", None)], judge)
    assert [q.commit for q in found.prereqs] == [made] and seen == [made]
    # and by blame, for a hunk whose file is there
    found = search(repo, fix, [Wanted(1, "fs/c.c", fp.hunks[0])], judge, SearchLimits(commits=5))
    assert [q.commit for q in found.prereqs] == [made]


def test_absent_is_oldest_first_and_skips_what_is_there() -> None:
    def q(c: str, verdict: str, time: int, depth: int = 1, partial: bool = False) -> Prereq:
        return Prereq(c, c, verdict, None, ("f.c#1",), depth, None, partial, time)

    got = absent(
        [
            q("new", "backportable", 30),
            q("old", "conflicting", 10),
            q("there", "present", 20),
            q("big", "backportable", 5, partial=True),
            q("deep", "backportable", 10, depth=2),
        ]
    )
    assert [p.commit for p in got] == ["deep", "old", "new"]


def test_no_upstream_id_no_search(tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    from testing.kfixtures import make_diff
    from testing.mailgen import make_mbox, make_patch_mail

    tree = tree_at(up, up.base, tmp_path / "tree")
    fixed = edit(
        edit(BASE["fs/a.c"], "\tctx->count1 += ret1;", "\tatomic_add(ret1, &ctx->count1);"),
        "\treturn ret1;",
        "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;",
    )
    d = make_diff(
        tmp_path,
        {"fs/a.c": edit(BASE["fs/a.c"], "\tctx->count1 += ret1;", "\tatomic_add(ret1, &ctx->count1);")},
        {"fs/a.c": fixed},
    )
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    (bugs / "fixes" / "m.mbox").write_bytes(make_mbox([make_patch_mail("fs: guard", d, "m@x.org")]))
    bug(bugs, 'mbox = "fixes/m.mbox"')
    rc, [p] = check(capsys, tree, bugs, up.repo, "--offline")
    assert p["verdict"] == "conflicting" and p["prerequisites"] == []
    assert "no upstream commit id known" in p["prerequisites_note"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "junit"])
def test_every_format_shows_them(
    tmp_path: Path, up: Upstream, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    tree = tree_at(up, up.base, tmp_path / "tree")
    bugs = bug(tmp_path / "bugs", f'upstream = ["{up.fix}"]')
    rc, out = run(capsys, tree, bugs, up.repo, "--with-prereqs", fmt=fmt)
    assert rc == 1
    assert f"{up.prereq[:12]} fs: count ret1 atomically: backportable (clean)" in out
    assert "with prerequisites: backportable (clean)" in out
