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
from testing.kfixtures import TWO_FILES, DictTree, c_file, make_diff, three_hunk_fix

OLD = TWO_FILES
fixed = three_hunk_fix


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


def test_failed_hunk_in_an_existing_file_is_never_not_applicable(tmp_path: Path) -> None:
    # issue 11 item 3: the line the fix removes carries a vendor edit (a trailing comment);
    # the old "buggy code absent" rule called that not-applicable
    new = {"fs/a.c": OLD["fs/a.c"].replace("\tret2 = a_helper2(ctx, arg2);", "\tret2 = a_safe2(ctx);")}
    d = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, new)
    vendor = {
        "fs/a.c": OLD["fs/a.c"].replace("\tret2 = a_helper2(ctx, arg2);", "\tret2 = a_helper2(ctx, arg2); /* v */")
    }
    [r] = run(vendor, d)
    assert r.verdict == "conflicting", r.evidence
    [h] = r.hunks
    assert h.status == "failed" and h.line == h.patch_line and h.near and "/* v */" in h.near
    assert "similar" in (h.reason or "")
    # a file with none of the fix's code is no proof either: only absent files are
    [r] = run({"fs/a.c": c_file("q")}, d)
    assert r.verdict == "conflicting", r.evidence
    [r] = run({"fs/b.c": c_file("q")}, d)
    assert r.verdict == "not-applicable" and "none of the files" in r.evidence


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
    # the same fix from a mail sent with CRLF line ends
    [r] = check_series(DictTree(tree), series_of(d.replace(b"\n", b"\r\n")), Fix(msgid="k@x"), ctx)
    assert (r.verdict, r.method) == ("backportable", "3way"), r.evidence


class _FakeHistory:
    def __init__(self, commits: set[str]) -> None:
        self.commits = commits

    def has_commit(self, sha: str) -> bool:
        return any(c.startswith(sha) for c in self.commits)

    def find_fix(self, *, upstream, subject, diff, paths, cves=()):  # type: ignore[no-untyped-def]
        self.diffs = [*getattr(self, "diffs", []), diff]
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
    # history is asked with the diff as LF, also for a CRLF mail (patch-ids would differ)
    [r] = check_series(DictTree(OLD), series_of(diff.replace(b"\n", b"\r\n")), fix, ctx)
    assert r.verdict == "backportable"
    assert ctx.history is not None and [b"\r" in d for d in ctx.history.diffs] == [False, False]  # type: ignore[attr-defined]


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


def _funcs(*bodies: tuple[str, str, str]) -> str:
    """A file of functions (name, return value of the early exit, the count line)."""
    out = ""
    for name, early, count in bodies:
        out += f"static int {name}(struct c *ctx)\n{{\n\tint ret = 0;\n\n\tif (!ctx->ready)\n"
        out += f"\t\treturn {early};\n\tret = helper(ctx);\n\t{count}\n\treturn ret;\n}}\n\n"
        out += "".join(f"/* filler {name} {i} */\n" for i in range(12))
    return out


def test_landing_outside_the_function_the_header_names(tmp_path: Path) -> None:
    # issue 11 item 6: a fuzzed landing, or the fix's lines found by a reverse offset, in
    # another function than the one the hunk's @@ header names is not the fix's place
    fix, bad = "ctx->count += ret & 0xff;", "ctx->count += ret;"
    old = _funcs(("foo", "-1", bad), ("bar", "-1", bad))
    d = make_diff(tmp_path, {"fs/f.c": old}, {"fs/f.c": old.replace(bad, fix, 1)})
    assert b"@@ static int foo(struct c *ctx)" in d
    vendor = "ctx->count += ret; /* vendor */"
    # foo was edited by the vendor; bar looks like foo's pre-image but for its early exit
    tree = _funcs(("foo", "-1", vendor), ("bar", "-2", bad))
    [r] = run({"fs/f.c": tree}, d)
    assert r.verdict == "conflicting", r.evidence
    [h] = r.hunks
    assert h.status == "failed" and "not in foo()" in (h.reason or "") and "fuzz" in (h.reason or "")
    # in the right function the same fuzz is fine
    [r] = run({"fs/f.c": _funcs(("foo", "-2", bad), ("bar", "-2", vendor))}, d)
    assert (r.verdict, r.method) == ("backportable", "fuzz"), r.evidence
    # bar has the fix's lines, foo has not: that is no presence
    [r] = run({"fs/f.c": _funcs(("foo", "-1", vendor), ("bar", "-1", fix))}, d)
    assert r.verdict == "conflicting", r.evidence
    assert "resulting lines are at line" in (r.hunks[0].reason or "")
    [r] = run({"fs/f.c": _funcs(("bar", "-1", bad), ("foo", "-1", fix))}, d)
    assert (r.verdict, r.method) == ("present", "offset"), r.evidence
    # the fix's lines at the patch's own line numbers, but in bar: no presence either
    [r] = run({"fs/f.c": _funcs(("bar", "-2", fix), ("foo", "-1", vendor))}, d)
    assert r.verdict == "conflicting", r.evidence


def test_fuzzed_landing_without_a_function_stays_near(tmp_path: Path) -> None:
    # a hunk whose @@ header names no function (no line above it at column 0) may land
    # with fuzz only within decide.LANDING_WINDOW lines of its place
    body = ["\t/* table */"] + [f"\tv{i} = {i};" for i in range(1, 900)]
    block = ["\ta = 1;", "\tb = 2;", "\tc = 3;", "\tx = 0;", "\td = 4;", "\te = 5;", "\tf = 6;"]
    old = "\n".join(body[:10] + block + body[10:]) + "\n"
    d = make_diff(tmp_path, {"fs/t.c": old}, {"fs/t.c": old.replace("\tx = 0;", "\tx = 1;")})
    assert b"@@ -11,7 +11,7 @@\n" in d  # no heading
    far = ["\ta = 9;", *block[1:6], "\tf = 9;"]  # the outer context differs: fuzz 1 places it
    near_edit = [*block[:3], "\tx = 0; /* v */", *block[4:]]
    [r] = run({"fs/t.c": "\n".join(body[:10] + near_edit + body[10:800] + far + body[800:]) + "\n"}, d)
    assert r.verdict == "conflicting", r.evidence
    assert "more than 400 lines from line 11" in (r.hunks[0].reason or "")
    [r] = run({"fs/t.c": "\n".join(body[:10] + near_edit + body[10:200] + far + body[200:]) + "\n"}, d)
    assert (r.verdict, r.method) == ("backportable", "fuzz"), r.evidence
