"""Bad series through the whole pipeline (real b4 against the local public-inbox server):
no crash, no traceback; a series that cannot be used is exit 3 with the bug's verdict
``error`` saying which message and why, and the other bug of the run (a local-mbox fix,
``b-local``) still gets its verdict. Odd but usable patches (binary, CRLF, non-UTF-8, 5 MB)
get a sensible verdict."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from testing.kfixtures import make_diff, write_tree
from testing.mailgen import make_cover, make_mbox, make_patch_mail, make_reply, make_series
from testing.rig import LOCAL, Rig


def _judged(rig: Rig, bug: str, code: int) -> dict[str, Any]:
    """Run ``bug`` with b-local; exit ``code``; b-local judged; ``bug``'s result."""
    cp, res = rig.check(bug, LOCAL)
    assert cp.returncode == code, (cp.returncode, cp.stderr, res)
    # stderr: one line per error cell (issue 11 item 9), nothing else
    assert len(cp.stderr.splitlines()) == sum(r["verdict"] == "error" for r in res.values()), cp.stderr
    assert (res[LOCAL]["verdict"], res[LOCAL]["method"]) == ("backportable", "clean")
    return res[bug]


def _error(rig: Rig, bug: str, *words: str) -> str:
    r = _judged(rig, bug, 3)
    assert r["verdict"] == "error", r
    for w in words:
        assert w in r["error"], (w, r["error"])
    assert "\n" not in r["error"]
    return str(r["error"])


def _url(rig: Rig, msgid: str) -> str:
    return f"{rig.server.url}/all/{msgid.replace('@', '%40')}/t.mbox.gz"


# -- series that cannot be used: exit 3, verdict error, the reason -----------------------


def _empty(rig: Rig) -> tuple[str, tuple[str, ...]]:
    mid = "empty-1@example.org"
    rig.server.add_thread(b"", [mid])
    return mid, ("empty mbox", _url(rig, mid))


def _no_patches(rig: Rig) -> tuple[str, tuple[str, ...]]:
    mid = "talk-0@example.org"
    rig.server.add_thread(
        make_mbox([make_cover("x: an idea", mid, 2), make_reply("x: an idea", "talk-1@example.org", mid)])
    )
    return mid, ("no patches in the thread", "2 messages")


def _no_diff(rig: Rig) -> tuple[str, tuple[str, ...]]:
    mid = "nodiff-1@example.org"
    rig.server.add_thread(make_mbox([make_patch_mail("x: words only", b"", mid)]))
    return mid, ("patch 1/1", "has no diff")


def _second_has_no_diff(rig: Rig) -> tuple[str, tuple[str, ...]]:
    s = make_series("nd", 2, diffs=[rig.diff_a, b""])
    rig.server.add_thread(s.mbox)
    assert s.cover_msgid
    return s.cover_msgid, ("patch 2/2 of v1", "nd-v1-2@example.org", "has no diff")


def _hunk_counts_wrong(rig: Rig) -> tuple[str, tuple[str, ...]]:
    mid = "counts-1@example.org"
    bad, n = re.subn(
        rb"@@ -(\d+),(\d+) \+(\d+),(\d+) @@",
        lambda m: b"@@ -%s,%d +%s,%d @@" % (m[1], int(m[2]) + 4, m[3], int(m[4]) + 4),
        rig.diff_a,
        count=1,
    )
    assert n == 1
    rig.server.add_thread(make_mbox([make_patch_mail("a: clamp", bad, mid)]))
    return mid, ("malformed patch", "fs/a.c", "shorter than expected")


def _other_thread(rig: Rig) -> tuple[str, tuple[str, ...]]:
    mid = "asked-1@example.org"
    rig.server.add_thread(make_mbox([make_patch_mail("a: clamp", rig.diff_a, "other-1@example.org")]), [mid])
    return mid, ("returned a different thread", "none with that Message-Id", _url(rig, mid))


BAD: dict[str, Callable[[Rig], tuple[str, tuple[str, ...]]]] = {
    "empty-mbox": _empty,
    "thread-without-patches": _no_patches,
    "patch-without-diff": _no_diff,
    "series-patch-without-diff": _second_has_no_diff,
    "malformed-hunk-counts": _hunk_counts_wrong,
    "msgid-maps-to-another-thread": _other_thread,
}


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_series(rig: Rig, case: str) -> None:
    mid, words = BAD[case](rig)
    rig.fix_bug("x", mid)
    r = _judged(rig, "x", 3)
    assert r["verdict"] == "error" and "\n" not in r["error"], r
    for w in words:
        assert w in r["error"], (w, r["error"])
    # which message: in the error, or (a patch that was fetched but not parsed) its record
    assert mid in r["error"] or [p["msgid"] for p in r["patches"]] == [mid], r


def test_patches_out_of_range(rig: Rig) -> None:
    s = make_series("rg", 2, diffs=[rig.diff_a, rig.diff_b])
    rig.server.add_thread(s.mbox)
    rig.fix_bug("x", str(s.cover_msgid), "patches = [1, 3]")
    rig.fix_bug("y", str(s.cover_msgid), "revision = 4")
    _error(rig, "x", "patch 3 requested but v1 has 2 patches")
    _error(rig, "y", "revision v4 is not in the thread", "it has v1")
    # the fetched thread is fine: a selection inside it works, offline too
    rig.fix_bug("z", str(s.cover_msgid), "patches = [2]")
    cp, res = rig.check("z", offline=True)
    assert cp.returncode == 1 and res["z"]["verdict"] == "backportable"


def test_fetch_verb_reports_unusable_series(rig: Rig) -> None:
    mid, words = _no_patches(rig)
    rig.fix_bug("x", mid)
    cp = rig.run("fetch", "--bug", "x", "--bug", "b-good")
    assert cp.returncode == 3 and "Traceback" not in cp.stderr
    lines = cp.stdout.splitlines()
    assert any(ln.startswith(f"x: {mid}: error: ") and words[0] in ln for ln in lines), lines
    assert any(ln.startswith("b-good: good-1@example.org: v1, 1 patch(es)") for ln in lines), lines


# -- odd but usable patches: a verdict, through the full pipeline --------------------------

# a real git binary patch of fw/blob.bin, 00 01 02 03 04 -> 00 01 02 fd fc
BINARY = (
    b"diff --git a/fw/blob.bin b/fw/blob.bin\n"
    b"index 85025d98693fe77b700bcf818dfd8fcd13c4e961..ea22d0a35d1f583f94f38f951de0ff631e30ac0d 100644\n"
    b"GIT binary patch\nliteral 5\nMcmZQzWcvFD00RX9{Qv*}\n\nliteral 5\nMcmZQzWMXCk000>P3jhEB\n\n"
)


def test_binary_patch(rig: Rig) -> None:
    """A binary hunk is checked by git apply: on a blob it was not made for, it fails and
    says so, not ignored."""
    (rig.tree / "fw").mkdir()
    (rig.tree / "fw/blob.bin").write_bytes(b"\x00\x01\x02\xff\xfe")
    rig.serve("bin-1@example.org", BINARY + rig.diff_a)
    rig.fix_bug("x", "bin-1@example.org")
    r = _judged(rig, "x", 1)
    assert r["verdict"] == "conflicting", r
    hunks = {h["file"]: h for h in r["patches"][0]["hunks"]}
    assert hunks["fs/a.c"]["status"] == "clean"
    assert hunks["fw/blob.bin"]["status"] == "failed"
    assert "binary patch" in hunks["fw/blob.bin"]["reason"]


def test_binary_patch_for_a_file_the_tree_lacks(rig: Rig) -> None:
    rig.serve("bin-2@example.org", BINARY + rig.diff_a)
    rig.fix_bug("x", "bin-2@example.org")
    r = _judged(rig, "x", 1)
    hunks = {h["file"]: h for h in r["patches"][0]["hunks"]}
    assert hunks.get("fw/blob.bin", {}).get("status") == "missing-file", r


def test_crlf_mail(rig: Rig) -> None:
    rig.serve("crlf-1@example.org", rig.diff_a, crlf=True)
    rig.fix_bug("x", "crlf-1@example.org")
    r = _judged(rig, "x", 1)
    assert r["verdict"] == "backportable", r
    assert [h["status"] for h in r["patches"][0]["hunks"]] == ["clean"]


def test_non_utf8_patch_and_tree(rig: Rig) -> None:
    """Latin-1 bytes in the mail, the diff and the tree: compared byte for byte."""
    work = rig.root / "l1"
    work.mkdir()
    old = {"fs/c.c": b"/* caf\xe9 */\nint c0;\nint c1;\nint c2;\nint c3;\nint c4;\n"}
    new = {"fs/c.c": old["fs/c.c"].replace(b"int c2;", b"int c2; /* na\xefve */")}
    write_tree(rig.tree, old)
    rig.serve("latin-1@example.org", make_diff(work, old, new), "c: caf\xe9 fix", charset="iso-8859-1")
    rig.fix_bug("x", "latin-1@example.org")
    r = _judged(rig, "x", 1)
    assert (r["verdict"], r["method"]) == ("backportable", "clean"), r
    # and once it is in the tree, it reads as present
    write_tree(rig.tree, new)
    cp, res = rig.check("x", offline=True)
    assert cp.returncode == 0 and (res["x"]["verdict"], res["x"]["method"]) == ("present", "exact")


def test_five_megabyte_patch(rig: Rig) -> None:
    # 100 new files of 500 long lines (long lines: the size without a parser's worth of rows)
    pad = b"x" * 80
    files = [
        b"diff --git a/big/f%d.c b/big/f%d.c\nnew file mode 100644\nindex 0000000..1111111\n"
        b"--- /dev/null\n+++ b/big/f%d.c\n@@ -0,0 +1,500 @@\n"
        % (i, i, i)
        + b"".join(b"+int big_%03d_%03d; /* %s */\n" % (i, j, pad) for j in range(500))
        for i in range(100)
    ]
    diff = rig.diff_a + b"".join(files)
    assert len(diff) > 5_000_000
    rig.serve("big-1@example.org", diff)
    rig.fix_bug("x", "big-1@example.org")
    t0 = time.monotonic()
    r = _judged(rig, "x", 1)
    assert time.monotonic() - t0 < 40
    assert (r["verdict"], r["method"]) == ("backportable", "clean"), r["error"]
    assert len(r["patches"][0]["hunks"]) == 101
