"""The engine on the shapes a patch section takes beyond a plain change: renames, copies,
deletions, one path named by two sections, binary data, diffs the tools refuse (issue 11
items 10 to 13)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from patchcheck.engine.check import check_series
from patchcheck.model import Fix, PatchMail, PatchResult, Series
from testing.kfixtures import DictTree, c_file, make_diff

OLD = {"fs/a.c": c_file("a")}


def run(files: dict[str, str] | dict[str, bytes], *diffs: bytes) -> list[PatchResult]:
    n = len(diffs)
    mails = tuple(
        PatchMail(msgid=f"p{i}@x", subject=f"patch {i}", author="A", counter=i, expected=n, diff=d)
        for i, d in enumerate(diffs, 1)
    )
    series = Series(key="k", msgid="k", revision=1, subject="s", source="mbox", patches=mails)
    return check_series(DictTree(files), series, Fix(msgid="k@x"))


def test_rename_only_already_done_is_present(tmp_path: Path) -> None:
    # issue 11 item 10: a rename without hunks, already done, was backportable/fuzz
    d = make_diff(tmp_path, {"fs/a.c": OLD["fs/a.c"]}, {"fs/a_new.c": OLD["fs/a.c"]})
    assert b"rename from fs/a.c" in d and b"@@" not in d
    [r] = run({"fs/a_new.c": OLD["fs/a.c"]}, d)
    assert (r.verdict, r.method) == ("present", "exact"), r.evidence
    assert [(h.status, h.reason) for h in r.hunks] == [("present", "already renamed from fs/a.c")]
    [r] = run({"fs/a.c": OLD["fs/a.c"]}, d)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence


def test_deleting_a_file_whose_content_differs_is_conflicting(tmp_path: Path) -> None:
    # issue 11 item 11: GNU patch places the hunk with fuzz but does not delete the file
    old = {"fs/gone.c": c_file("g", 2), "fs/a.c": OLD["fs/a.c"]}
    d = make_diff(tmp_path, old, {"fs/a.c": OLD["fs/a.c"]})
    assert b"deleted file mode" in d
    [r] = run(old, d)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence
    for content in ("/* vendor */\n" + c_file("g", 2), c_file("g", 2) + "int extra;\n"):
        [r] = run({**old, "fs/gone.c": content}, d)
        assert r.verdict == "conflicting", r.evidence
        [h] = r.hunks
        assert h.status == "failed" and "not deleting the file" in (h.reason or "")
    # an empty file deleted (no hunks): only an empty file is that file
    d = make_diff(tmp_path, {"fs/e.c": "", "fs/a.c": "x\n"}, {"fs/a.c": "x\n"})
    assert b"deleted file mode" in d and b"@@" not in d
    [r] = run({"fs/e.c": "", "fs/a.c": "x\n"}, d)
    assert r.verdict == "backportable", r.evidence
    [r] = run({"fs/e.c": "int x;\n", "fs/a.c": "x\n"}, d)
    assert r.verdict == "conflicting", r.evidence


def test_two_sections_for_one_path(tmp_path: Path) -> None:
    # issue 11 item 12: only the first section per path got a tool result
    a = OLD["fs/a.c"]
    a1 = a.replace("\tint ret0 = 0;", "\tint ret0 = -1;")
    a2 = a1.replace("\tctx->count5 += ret5;", "\tctx->count5 += ret5 & 1;")
    twice = make_diff(tmp_path, {"fs/a.c": a}, {"fs/a.c": a1}) + make_diff(
        tmp_path, {"fs/a.c": a1}, {"fs/a.c": a2}
    )
    assert twice.count(b"diff --git a/fs/a.c b/fs/a.c") == 2
    [r] = run({"fs/a.c": a}, twice)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence
    [r] = run({"fs/a.c": a2}, twice)
    assert (r.verdict, r.method) == ("present", "exact"), r.evidence
    [r] = run({"fs/a.c": a1}, twice)
    assert r.verdict == "partially-present", r.evidence
    # a change to fs/a.c plus a copy fs/a.c -> fs/c.c with a change of its own
    c = a.replace("\treturn ret3;", "\treturn ret3 ? ret3 : -1;")
    copy = make_diff(tmp_path, {"fs/a.c": a}, {"fs/a.c": a1}) + (
        b"diff --git a/fs/a.c b/fs/c.c\nsimilarity index 95%\ncopy from fs/a.c\ncopy to fs/c.c\n"
        + make_diff(tmp_path, {"fs/x.c": a}, {"fs/x.c": c}).split(b"\n--- ", 1)[1].join([b"--- ", b""])
    ).replace(b"--- a/fs/x.c\n+++ b/fs/x.c", b"--- a/fs/a.c\n+++ b/fs/c.c")
    [r] = run({"fs/a.c": a}, copy)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence
    assert [h.status for h in r.hunks] == ["clean", "clean"]
    [r] = run({"fs/a.c": a1, "fs/c.c": c}, copy)
    assert r.verdict == "present", r.evidence


def _binary_diff(tmp: Path, old: dict[str, bytes], new: dict[str, bytes]) -> bytes:
    (tmp / "_a").mkdir()
    (tmp / "_b").mkdir()
    for root, files in ((tmp / "_a", old), (tmp / "_b", new)):
        for k, v in files.items():
            (root / k).parent.mkdir(parents=True, exist_ok=True)
            (root / k).write_bytes(v)
    argv = ["git", "diff", "--no-index", "--binary", "--full-index", "_a", "_b"]
    out = subprocess.run(argv, cwd=tmp, capture_output=True, check=False).stdout
    return out.replace(b"a/_a/", b"a/").replace(b"b/_b/", b"b/")


def test_binary_sections_are_applied_and_graded(tmp_path: Path) -> None:
    # issue 11 item 13: binary sections were never applied nor checked
    blob, blob2 = bytes(range(256)) * 4, bytes(reversed(range(256))) * 4
    blob3 = bytes((b * 7 + 3) % 256 for b in blob)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    d1 = _binary_diff(tmp_path / "1", {"fw/b.bin": blob}, {"fw/b.bin": blob2})
    d2 = _binary_diff(tmp_path / "2", {"fw/b.bin": blob2}, {"fw/b.bin": blob3})
    assert b"GIT binary patch" in d1 and b"GIT binary patch" in d2
    [r] = run({"fw/b.bin": blob}, d1)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence
    [r] = run({"fw/b.bin": blob2}, d1)
    assert (r.verdict, r.method) == ("present", "exact"), r.evidence
    [r] = run({"fw/b.bin": blob3}, d1)
    assert r.verdict == "conflicting" and "binary patch does not apply" in (r.hunks[0].reason or ""), r.evidence
    # patch 2 of a series changes what patch 1 made: it is checked on top of patch 1
    assert [r.verdict for r in run({"fw/b.bin": blob}, d1, d2)] == ["backportable", "backportable"]
    assert [r.verdict for r in run({"fw/b.bin": blob3}, d1, d2)] == ["conflicting", "present"]


def test_a_diff_the_tools_refuse_is_an_error() -> None:
    # binary data git calls corrupt (GNU patch reads no binary data): no verdict but error
    bad = (
        b"diff --git a/x.bin b/x.bin\nindex " + b"1" * 40 + b".." + b"2" * 40 + b" 100644\n"
        b"GIT binary patch\nliteral 12\nzcmZ!!!!!!!!!!!!!!!\n\nliteral 0\nHcmV?d00001\n\n"
    )
    [r] = run({"x.bin": b"abc"}, bad)
    assert r.verdict == "error" and "corrupt binary patch" in (r.error or ""), r.evidence
