"""The apply engine on small trees and real diffs: every hunk status and patch verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.engine.blocks import find_block
from patchcheck.engine.check import check_series, touched_paths
from patchcheck.model import Fix, PatchMail, Series
from patchcheck.text.diff import MalformedPatch, parse_diff
from patchcheck.verdict import bug_verdict
from testing.gitrepo import git, init
from testing.kfixtures import DictTree, c_file, make_diff

OLD = {"fs/a.c": c_file("a"), "fs/b.c": c_file("b")}


def fixed(files: dict[str, str]) -> dict[str, str]:
    """The fix: two hunks in fs/a.c, one in fs/b.c."""
    out = dict(files)
    out["fs/a.c"] = (
        out["fs/a.c"]
        .replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")
        .replace("\tctx->count4 += ret4;", "\tctx->count4 += ret4 & 0xff;")
    )
    out["fs/b.c"] = out["fs/b.c"].replace("\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)")
    return out


def series_of(*diffs: bytes) -> Series:
    n = len(diffs)
    return Series(
        key="k",
        msgid="k",
        revision=1,
        subject="s",
        source="mbox",
        patches=tuple(
            PatchMail(msgid=f"p{i}@x", subject=f"patch {i}", author="A", counter=i, expected=n, diff=d)
            for i, d in enumerate(diffs, 1)
        ),
    )


def run(files: dict[str, str], *diffs: bytes) -> list:
    return check_series(DictTree(files), series_of(*diffs), Fix(msgid="k@x"))


@pytest.fixture
def diff(tmp_path: Path) -> bytes:
    return make_diff(tmp_path, OLD, fixed(OLD))


def test_clean(diff: bytes) -> None:
    [r] = run(OLD, diff)
    assert (r.verdict, r.method) == ("backportable", "clean")
    assert [h.status for h in r.hunks] == ["clean", "clean", "clean"]
    assert all(h.line for h in r.hunks)


def test_present_exact(diff: bytes) -> None:
    [r] = run(fixed(OLD), diff)
    assert (r.verdict, r.method) == ("present", "exact")
    assert {h.status for h in r.hunks} == {"present"}


def test_present_offset(diff: bytes) -> None:
    shifted = {k: "/* one */\n/* two */\n" + v for k, v in fixed(OLD).items()}
    [r] = run(shifted, diff)
    assert (r.verdict, r.method) == ("present", "offset")
    # the whole reverse check passed (git apply -R): its offsets are turned to patch(1)'s sign
    assert [(h.file, h.index, h.offset) for h in r.hunks] == [("fs/a.c", 1, 2), ("fs/a.c", 2, 2), ("fs/b.c", 1, 2)]
    assert {h.reason for h in r.hunks} == {"already there, 2 lines later"}
    one = {k: "/* one */\n" + v for k, v in fixed(OLD).items()}
    [r] = run(one, diff)
    assert {h.reason for h in r.hunks} == {"already there, 1 line later"}
    # the same sign when GNU patch places them (one file lacks a hunk's post-image)
    half = dict(shifted, **{"fs/b.c": OLD["fs/b.c"]})
    [r] = run(half, diff)
    assert [(h.status, h.offset) for h in r.hunks] == [("present", 2), ("present", 2), ("clean", 0)]


def test_offset(diff: bytes) -> None:
    shifted = {k: "/* one */\n/* two */\n/* three */\n" + v for k, v in OLD.items()}
    [r] = run(shifted, diff)
    assert (r.verdict, r.method) == ("backportable", "offset")
    assert [h.offset for h in r.hunks] == [3, 3, 3]


def test_fuzz(diff: bytes) -> None:
    drifted = dict(OLD)
    # first context line of hunk 1 differs: only applies with fuzz
    drifted["fs/a.c"] = drifted["fs/a.c"].replace("\t\treturn -2;", "\t\treturn -EINVAL;")
    [r] = run(drifted, diff)
    assert (r.verdict, r.method) == ("backportable", "fuzz")
    h1 = r.hunks[0]
    assert h1.status == "fuzz" and 1 <= h1.fuzz <= 2


def test_conflict_names_hunk_and_near_match(diff: bytes) -> None:
    changed = dict(OLD)
    changed["fs/b.c"] = changed["fs/b.c"].replace("\tif (!ctx->ready3)", "\tif (unlikely(!ctx->ready3))")
    changed["fs/b.c"] = changed["fs/b.c"].replace("\t\treturn -4;", "\t\treturn -ENODEV;")
    changed["fs/b.c"] = changed["fs/b.c"].replace("\tint ret3 = 0;", "\tlong ret3 = 0;")
    [r] = run(changed, diff)
    assert r.verdict == "conflicting"
    bad = [h for h in r.hunks if h.status == "failed"]
    assert [(h.file, h.index) for h in bad] == [("fs/b.c", 1)]  # patch(1) numbers hunks per file
    assert bad[0].line is not None and "context differs" in (bad[0].reason or "")
    assert bad[0].near and "ENODEV" in bad[0].near
    assert "fs/b.c" in r.evidence


def test_missing_one_file_is_conflicting(diff: bytes) -> None:
    [r] = run({"fs/a.c": OLD["fs/a.c"]}, diff)
    assert r.verdict == "conflicting"
    assert [h.status for h in r.hunks if h.file == "fs/b.c"] == ["missing-file"]


def test_all_files_missing_is_not_applicable(diff: bytes) -> None:
    [r] = run({"fs/other.c": c_file("o")}, diff)
    assert r.verdict == "not-applicable"
    assert "fs/a.c" in r.evidence and "fs/b.c" in r.evidence


def test_partially_present(diff: bytes) -> None:
    half = dict(OLD)
    half["fs/b.c"] = fixed(OLD)["fs/b.c"]
    [r] = run(half, diff)
    assert r.verdict == "partially-present"
    assert [h.status for h in r.hunks] == ["clean", "clean", "present"]
    assert "missing" in r.evidence


def test_modified_backport_is_present(diff: bytes) -> None:
    backport = fixed(OLD)
    # the backport renamed a nearby variable and reworded context
    backport["fs/a.c"] = backport["fs/a.c"].replace("\tctx->count1 += ret1;", "\tctx->total1 += ret1;")
    [r] = run(backport, diff)
    assert (r.verdict, r.method) == ("present", "modified")
    assert "hunk #1" in r.evidence


def test_fuzz_next_to_own_lines_is_not_backportable(tmp_path: Path) -> None:
    # a pure addition whose added line is already there, with drifted context: fuzz 2 would
    # land it again next to itself
    new = dict(OLD)
    new["fs/a.c"] = OLD["fs/a.c"].replace("\tctx->count2 += ret2;", "\tctx->count2 += ret2;\n\tctx_check(ctx, 2);")
    d = make_diff(tmp_path, OLD, new)
    tree = dict(new)
    tree["fs/a.c"] = new["fs/a.c"].replace("\tret2 = a_helper2(ctx, arg2);", "\tret2 = a_helper2_v2(ctx);")
    [r] = run(tree, d)
    assert r.verdict == "present"
    assert r.hunks[0].status == "present"


def test_series_patch_two_builds_on_patch_one(tmp_path: Path) -> None:
    mid = dict(OLD)
    mid["fs/a.c"] = OLD["fs/a.c"].replace("\tint ret1 = 0;", "\tint ret1 = 0;\n\tint extra1 = 0;")
    end = dict(mid)
    end["fs/a.c"] = mid["fs/a.c"].replace("\tint extra1 = 0;", "\tint extra1 = arg1;")
    d1, d2 = make_diff(tmp_path, OLD, mid), make_diff(tmp_path, mid, end)
    r1, r2 = run(OLD, d1, d2)
    assert (r1.verdict, r2.verdict) == ("backportable", "backportable")
    # on a tree that has patch 1 only, patch 1 is present and patch 2 still applies
    r1, r2 = run(mid, d1, d2)
    assert (r1.verdict, r2.verdict) == ("present", "backportable")
    r1, r2 = run(end, d1, d2)
    assert r2.verdict == "present"


def test_new_file_patch(tmp_path: Path) -> None:
    new = dict(OLD, **{"fs/new.c": c_file("n", 2)})
    d = make_diff(tmp_path, OLD, new)
    [r] = run(OLD, d)
    assert (r.verdict, r.method) == ("backportable", "clean")
    [r] = run(new, d)
    assert r.verdict == "present"


def test_never_reads_untouched_files(diff: bytes) -> None:
    tree = DictTree(dict(OLD, **{"fs/unrelated.c": "x\n"}))
    check_series(tree, series_of(diff), Fix(msgid="k@x"))
    assert set(tree.reads) == {"fs/a.c", "fs/b.c"}


def test_crlf_and_non_utf8_survive(tmp_path: Path) -> None:
    old = {"fs/w.c": b"line one\r\nline two \xff\r\nline three\r\nline four\r\n"}
    new = {"fs/w.c": b"line one\r\nline two \xff\r\nline 3\r\nline four\r\n"}
    d = make_diff(tmp_path, old, new)
    [r] = run(old, d)  # type: ignore[arg-type]
    assert r.verdict == "backportable"
    [r] = run(new, d)  # type: ignore[arg-type]
    assert r.verdict == "present"


def test_malformed_patch_is_error() -> None:
    bad = b"diff --git a/fs/a.c b/fs/a.c\n--- a/fs/a.c\n+++ b/fs/a.c\n@@ -1,9 +1,9 @@\n x\n-y\n+z\n"
    [r] = run(OLD, bad)
    assert r.verdict == "error" and "malformed" in (r.error or "")
    with pytest.raises(MalformedPatch):
        parse_diff(b"just words, no diff\n")


def test_touched_paths(diff: bytes) -> None:
    assert touched_paths(series_of(diff)) == {"fs/a.c", "fs/b.c"}


def test_find_block_prefers_nearest() -> None:
    lines = [b"a", b"b", b"x", b"a", b"b"]
    assert find_block(lines, [b"a", b"b"], 4) == 3
    assert find_block(lines, [b"a", b"b"], 0) == 0
    assert find_block(lines, [b"q"], 0) is None


def test_buggy_code_absent_is_not_applicable(tmp_path: Path) -> None:
    # the tree's fs/a.c never had the lines the fix removes
    new = {"fs/a.c": OLD["fs/a.c"].replace("\tret2 = a_helper2(ctx, arg2);", "\tret2 = a_safe2(ctx);")}
    d = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, new)
    other = {"fs/a.c": c_file("q")}
    [r] = run(other, d)
    assert r.verdict == "not-applicable" and "buggy code absent" in r.evidence


def test_rename_and_delete_already_done(tmp_path: Path) -> None:
    old = {"fs/a.c": OLD["fs/a.c"], "fs/gone.c": c_file("g", 1)}
    new = {"fs/a_renamed.c": OLD["fs/a.c"].replace("\tint ret0 = 0;", "\tint ret0 = -1;")}
    d = make_diff(tmp_path, old, new)
    assert b"rename from" in d and b"deleted file" in d
    [r] = run(old, d)
    assert r.verdict == "backportable"
    [r] = run(new, d)
    assert r.verdict == "present", r.evidence


def test_3way_with_object_store(tmp_path: Path) -> None:
    from patchcheck.engine.check import TreeContext

    up = tmp_path / "up"
    (up / "fs").mkdir(parents=True)
    base = "".join(f"int v{i} = {i};\n" for i in range(1, 40))
    (up / "fs/f.c").write_text(base)
    init(up)
    (up / "fs/f.c").write_text(base.replace("int v20 = 20;", "int v20 = 200;"))
    d = git(up, "diff", "-U6", "--full-index").encode() + b"\n"
    # the tree changed lines 16 and 24, inside the hunk's 6-line context beyond what fuzz 2
    # can drop: plain apply and fuzz fail, a 3-way merge resolves it
    tree = {"fs/f.c": base.replace("int v16 = 16;", "long v16 = 16;").replace("int v24 = 24;", "long v24 = 24;")}
    [r] = check_series(DictTree(tree), series_of(d), Fix(msgid="k@x"))
    assert r.verdict == "conflicting"
    ctx = TreeContext(object_dirs=(up / ".git" / "objects",))
    [r] = check_series(DictTree(tree), series_of(d), Fix(msgid="k@x"), ctx)
    assert (r.verdict, r.method) == ("backportable", "3way"), r.evidence
    assert [h.status for h in r.hunks] == ["3way"]


class _FakeHistory:
    def __init__(self, commits: set[str]) -> None:
        self.commits = commits

    def has_commit(self, sha: str) -> bool:
        return any(c.startswith(sha) for c in self.commits)

    def find_fix(self, *, upstream, subject, diff, paths, cves=()):  # type: ignore[no-untyped-def]
        return None


def test_introduced_by_absent_is_not_applicable(diff: bytes) -> None:
    from patchcheck.engine.check import TreeContext

    fix = Fix(msgid="k@x", introduced_by=("0ee288e69d03",))
    ctx = TreeContext(history=_FakeHistory({"aaaa" * 10}))  # type: ignore[arg-type]
    [r] = check_series(DictTree(OLD), series_of(diff), fix, ctx)
    assert r.verdict == "not-applicable" and "introduced_by" in r.evidence
    ctx = TreeContext(history=_FakeHistory({"0ee288e69d03" + "0" * 28}))  # type: ignore[arg-type]
    [r] = check_series(DictTree(OLD), series_of(diff), fix, ctx)
    assert r.verdict == "backportable"


def test_no_newline_at_end_of_file(tmp_path: Path) -> None:
    old = {"fs/n.c": "int a;\nint b;\nint c;"}
    new = {"fs/n.c": "int a;\nint b2;\nint c;"}
    d = make_diff(tmp_path, old, new)
    assert b"\\ No newline at end of file" in d
    [r] = run(old, d)
    assert (r.verdict, r.method) == ("backportable", "clean")
    [r] = run(new, d)
    assert r.verdict == "present"


def test_failed_hunk_reports_patch_line(diff: bytes) -> None:
    changed = {k: "/* a */\n" * 5 + v for k, v in OLD.items()}
    changed["fs/b.c"] = changed["fs/b.c"].replace("\tif (!ctx->ready3)", "\tif (ctx->state3 != READY)")
    changed["fs/b.c"] = changed["fs/b.c"].replace("\t\treturn -4;", "\t\treturn -ENODEV;")
    [r] = run(changed, diff)
    failed = [h for h in r.hunks if h.status == "failed"]
    assert failed and failed[0].patch_line is not None
    assert failed[0].line is not None and failed[0].line != failed[0].patch_line


def test_deletion_on_an_empty_tree_is_not_present(tmp_path: Path) -> None:
    # a series: patch 1 deletes a file, patch 2 changes another; the tree has neither
    old = {"fs/gone.c": c_file("g", 1), "fs/a.c": OLD["fs/a.c"]}
    d1 = make_diff(tmp_path, old, {"fs/a.c": OLD["fs/a.c"]})
    d2 = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, {"fs/a.c": fixed(OLD)["fs/a.c"]})
    rs = run({"Makefile": "VERSION = 4\n"}, d1, d2)
    assert [r.verdict for r in rs] == ["not-applicable", "not-applicable"]
    assert "deleted already, or never there" in rs[0].evidence
    assert bug_verdict(rs)[0] == "not-applicable"
    # where patch 2's file is there with the fix in it, the series is present
    rs = run({"fs/a.c": fixed(OLD)["fs/a.c"]}, d1, d2)
    assert bug_verdict(rs)[0] == "present"


def test_removal_done_in_another_form_is_present(tmp_path: Path) -> None:
    # hunk 2 only removes lines; the tree removed them too, and reworded a context line
    new = {
        "fs/a.c": OLD["fs/a.c"]
        .replace("\tint ret0 = 0;", "\tint ret0 = -1;")
        .replace("\tif (!ctx->ready4)\n\t\treturn -5;\n", "")
    }
    d = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, new)
    tree = {"fs/a.c": new["fs/a.c"].replace("\tint ret4 = 0;", "\tlong ret4 = 0;")}
    [r] = run(tree, d)
    assert [h.status for h in r.hunks] == ["present", "present"], r.evidence
    assert (r.verdict, r.method) == ("present", "modified")
    # where the removed lines are still there, it is not
    tree = {"fs/a.c": OLD["fs/a.c"].replace("\tint ret0 = 0;", "\tint ret0 = -1;")}
    tree["fs/a.c"] = tree["fs/a.c"].replace("\tint ret4 = 0;", "\tlong ret4 = 0;")
    [r] = run(tree, d)
    assert r.verdict != "present"


def test_fix_with_a_blank_line_more_elsewhere_is_present(tmp_path: Path) -> None:
    new = {"fs/a.c": OLD["fs/a.c"].replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")}
    d = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, new)
    # the fix is in, with one blank line more, and the code moved 60 lines down
    moved = "".join(f"/* note {i} */\n" for i in range(60)) + new["fs/a.c"].replace(
        "\t\treturn 0;\n\treturn ret1;", "\t\treturn 0;\n\n\treturn ret1;"
    )
    [r] = run({"fs/a.c": moved}, d)
    assert [h.status for h in r.hunks] == ["present"], r.hunks
    assert (r.verdict, r.method) == ("present", "modified")
    assert r.hunks[0].line is not None and r.hunks[0].line > 60
