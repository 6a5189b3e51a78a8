"""`patchcheck backport` end to end: real mails (a local mbox, the local public-inbox server),
real trees (folders, a .dsc, an SRPM), and the written patches applied with git am, git apply
and patch -F0."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.commands.backport import spec_lines
from testing.kfixtures import MAKEFILE, make_diff, write_tree
from testing.mailgen import make_mbox, make_patch_mail
from testing.pi_server import PIServer
from testing.rig import HUNK_A, HUNK_B, OLD, edit, patchcheck_args
from testing.treegen import FINAL, _build_dsc, build_srpm, have
from testing.upstream import apply_with_fuzz, exact_apply, git_am

UPSTREAM = "38f080f3cd19fbd87eb7f6c4f6c236c1c9df6fba"
STEP1 = HUNK_A
STEP2 = ("\t\treturn 0;\n\treturn ret1;", "\t\treturn 0; /* clamp */\n\treturn ret1;")


def bug_file(bugs: Path, bug_id: str, fix: str) -> None:
    bugs.mkdir(parents=True, exist_ok=True)
    (bugs / f"{bug_id}.toml").write_text(f'id = "{bug_id}"\ntitle = "t"\n[[fix]]\n{fix}\n')


def local_bug(bugs: Path, bug_id: str, mails: list[bytes], extra: str = "") -> None:
    (bugs / "fixes").mkdir(parents=True, exist_ok=True)
    (bugs / "fixes" / f"{bug_id}.mbox").write_bytes(make_mbox(mails))
    bug_file(bugs, bug_id, f'mbox = "fixes/{bug_id}.mbox"\n{extra}')


def backport(
    capsys: pytest.CaptureFixture[str], tree: Path, bugs: Path, out: Path, *extra: str
) -> tuple[int, str]:
    argv = ["backport", "--tree", str(tree), "--all", "-o", str(out), *extra]
    rc = main(patchcheck_args(*argv, bugs=bugs, cache=bugs.parent / "cache", lore=None, jobs=None))
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@pytest.fixture
def two_step(tmp_path: Path) -> tuple[bytes, bytes]:
    one = edit(OLD, "fs/a.c", *STEP1)
    return make_diff(tmp_path, OLD, one), make_diff(tmp_path, one, edit(one, "fs/a.c", *STEP2))


def test_a_series_is_written_in_order_and_git_am_takes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], two_step: tuple[bytes, bytes]
) -> None:
    d1, d2 = two_step
    mails = [
        make_patch_mail("fs: guard ret1", d1, "s-1@x.org", 1, 2, trailers=["Cc: stable@vger.kernel.org"]),
        make_patch_mail("fs: clamp ret1", d2, "s-2@x.org", 2, 2, in_reply_to="s-1@x.org"),
    ]
    local_bug(tmp_path / "bugs", "b1", mails, f'upstream = ["{UPSTREAM}", "{"1" * 40}"]')
    # the tree has moved on: an offset everywhere, and fuzz for the first hunk
    tree_files = {k: "/* vendor */\n" + v for k, v in OLD.items() if k != "Makefile"}
    tree_files["Makefile"] = MAKEFILE
    tree_files["fs/a.c"] = tree_files["fs/a.c"].replace("\t\treturn -2;", "\t\treturn -2; /* vendor */")
    tree = write_tree(tmp_path / "tree", tree_files)
    out = tmp_path / "out"
    rc, text = backport(capsys, tree, tmp_path / "bugs", out, "--offline")
    assert rc == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0001-fs-guard-ret1.patch", "0002-fs-clamp-ret1.patch"], text
    first = (out / names[0]).read_text()
    assert first.startswith(f"From {UPSTREAM} Mon Sep 17 00:00:00 2001\nFrom: A U Thor <a@example.org>\n")
    assert "\nDate: Mon, 04 Nov 2024 14:55:18 +0100\nSubject: [PATCH 1/2] fs: guard ret1\n\n" in first
    assert f"\n\ncommit {UPSTREAM} upstream.\n\nExplain why" in first
    assert "Cc: stable@vger.kernel.org\nSigned-off-by: A U Thor <a@example.org>\n---\n fs/a.c |" in first
    assert "Link:" not in first  # a local mbox has no thread to link to
    # each applies exactly on what the ones before it leave, and gives what the original
    # gives with fuzz
    mid = exact_apply(tree, (out / names[0]).read_bytes())
    assert mid == apply_with_fuzz(tree, d1)
    mid_tree = tmp_path / "mid"
    for rel, data in mid.items():
        (mid_tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (mid_tree / rel).write_bytes(data)
    exact_apply(mid_tree, (out / names[1]).read_bytes())
    log = git_am(tree, [out / n for n in names], tmp_path / "am")
    assert log.splitlines() == ["fs: guard ret1", "fs: clamp ret1"]
    assert "wrote 0001-fs-guard-ret1.patch" in text and "2 patches written" in text


def test_lore_patch_links_its_thread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = make_diff(tmp_path, OLD, edit(OLD, "fs/a.c", *STEP1))
    tree = write_tree(tmp_path / "tree", {k: "/* v */\n" + v for k, v in OLD.items()})
    bug_file(tmp_path / "bugs", "b1", 'msgid = "l-1@x.org"')
    with PIServer() as server:
        server.add_thread(make_mbox([make_patch_mail("fs: guard ret1", d, "l-1@x.org")]))
        rc, text = backport(capsys, tree, tmp_path / "bugs", tmp_path / "out", "--lore-url", server.url)
    assert rc == 0, text
    [p] = (tmp_path / "out").iterdir()
    body = p.read_text()
    assert f"Signed-off-by: A U Thor <a@example.org>\nLink: {server.url}/all/l-1@x.org/\n---\n" in body
    assert "\ncommit " not in body  # no upstream id known
    exact_apply(tree, p.read_bytes())
    # offline, from the selection stored in the cache: the same mail, date and message kept
    rc, text = backport(capsys, tree, tmp_path / "bugs", tmp_path / "out2", "--offline", "--lore-url", server.url)
    assert rc == 0, text
    assert (tmp_path / "out2" / p.name).read_bytes() == p.read_bytes()


def test_present_conflicting_and_the_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], two_step: tuple[bytes, bytes]
) -> None:
    d1, _ = two_step
    done = edit(OLD, "fs/a.c", *STEP1)
    d3 = make_diff(tmp_path, OLD, edit(OLD, "fs/b.c", *HUNK_B))
    local_bug(tmp_path / "bugs", "a-present", [make_patch_mail("fs: guard ret1", d1, "p@x.org")])
    local_bug(tmp_path / "bugs", "b-conflict", [make_patch_mail("fs/b: check ctx", d3, "c@x.org")])
    d4 = make_diff(tmp_path, OLD, edit(OLD, "fs/b.c", "\tctx->count5 += ret5;", "\tctx->count5 += ret5 & 1;"))
    local_bug(tmp_path / "bugs", "c-ok", [make_patch_mail("fs/b: mask ret5", d4, "o@x.org")])
    tree = write_tree(
        tmp_path / "tree",
        edit(done, "fs/b.c", "\tif (!ctx->ready3)\n\t\treturn -4;", "\tif (!ctx->ready3)\n\t\treturn -EINVAL;"),
    )
    out = tmp_path / "out"
    rc, text = backport(capsys, tree, tmp_path / "bugs", out, "--offline")
    assert rc == 1, text
    assert sorted(p.name for p in out.iterdir()) == ["0001-fs-b-check-ctx.rej", "0002-fs-b-mask-ret5.patch"]
    # a .rej keeps its place in the file numbers; the mails count among themselves
    assert "\nSubject: [PATCH] fs/b: mask ret5\n" in (out / "0002-fs-b-mask-ret5.patch").read_text()
    assert "a-present: fs: guard ret1: present (exact): nothing written (already in the tree" in text
    assert "b-conflict: fs/b: check ctx: conflicting: nothing written" in text
    rej = (out / "0001-fs-b-check-ctx.rej").read_text()
    assert "# hunk #1 at fs/b.c" in rej and "+\tif (!ctx || !ctx->ready3)" in rej


def test_out_dir_is_refused_inside_the_tree_or_with_patches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], two_step: tuple[bytes, bytes]
) -> None:
    local_bug(tmp_path / "bugs", "b1", [make_patch_mail("fs: guard ret1", two_step[0], "p@x.org")])
    tree = write_tree(tmp_path / "tree", OLD)
    before = sorted(p.name for p in tree.rglob("*"))
    rc, text = backport(capsys, tree, tmp_path / "bugs", tree / "patches", "--offline")
    assert rc == 2 and "inside the tree" in text and text.count("\n") == 1
    rc, text = backport(capsys, tree, tmp_path / "bugs", tmp_path / "bugs" / "out", "--offline")
    assert rc == 2 and "inside the input folder" in text
    rc, text = backport(capsys, tree, tmp_path / "bugs", tmp_path / "bugs" / "fixes" / "b1.mbox", "--offline")
    assert rc == 2
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "0001-old.patch").write_text("x")
    rc, text = backport(capsys, tree, tmp_path / "bugs", stale, "--offline")
    assert rc == 2 and "already holds 0001-old.patch" in text
    assert sorted(p.name for p in tree.rglob("*")) == before


@pytest.mark.skipif(not (have("dpkg-source") and have("rpmbuild")), reason="needs dpkg-source and rpmbuild")
def test_queue_lines_for_a_dsc_and_an_srpm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = "fs/nfsd/nfs4callback.c"
    d = make_diff(tmp_path, {path: FINAL[path]}, {path: FINAL[path].replace(b"\treturn 3;\n", b"\treturn 33;\n")})
    local_bug(tmp_path / "bugs", "b1", [make_patch_mail("nfsd: cb_3 returns 33", d, "q@x.org")])
    dsc = _build_dsc(tmp_path / "dscwork", tmp_path / "dsc", "3.0 (quilt)")
    rc, text = backport(capsys, dsc, tmp_path / "bugs", tmp_path / "out1", "--offline")
    assert rc == 0, text
    assert (
        "add to debian/patches/series (the files go to debian/patches/):\n  0001-nfsd-cb_3-returns-33.patch"
        in text
    )
    srpm = build_srpm(tmp_path / "rpmwork", tmp_path / "srpm")
    rc, text = backport(capsys, srpm, tmp_path / "bugs", tmp_path / "out2", "--offline")
    assert rc == 0, text
    assert "  Patch3: 0001-nfsd-cb_3-returns-33.patch" in text
    assert "  ApplyPatch 0001-nfsd-cb_3-returns-33.patch" in text


def test_spec_lines_follow_the_specs_style() -> None:
    names = ["0001-a.patch", "0002-b.patch"]
    auto = ["%autosetup -p1"]
    assert spec_lines(auto, [0, 1, 7], names)[1:3] == ["  Patch8: 0001-a.patch", "  Patch9: 0002-b.patch"]
    assert "nothing more" in spec_lines(auto, [], names)[-1]
    old = ["%setup -q", "%patch0 -p1", "%patch1 -p1"]
    assert spec_lines(old, [0, 1], names)[-2:] == ["  %patch2 -p1", "  %patch3 -p1"]
    new = ["%setup -q", "%patch -P 0 -p1"]
    assert spec_lines(new, [0], names)[-2:] == ["  %patch -P 1 -p1", "  %patch -P 2 -p1"]
    manual = ["%setup -q -N", "%autosetup -N", "%patch -P 0 -p1"]
    assert spec_lines(manual, [0], names)[-1] == "  %patch -P 2 -p1"
    assert "does not know" in spec_lines(["%setup -q", "make prepare"], [0], names)[-1]
