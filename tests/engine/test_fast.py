"""engine/fast.py: it answers only where git apply / GNU patch are certain, and then exactly
as they do (every case is graded both ways, see testing/fastcheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.model import HunkStatus, Verdict
from testing.fastcheck import grade_both
from testing.kfixtures import DictTree, c_file, make_diff

OLD = c_file("a")
NEW = OLD.replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;").replace(
    "\tctx->count4 += ret4;", "\tctx->count4 += ret4 & 0xff;"
)
# a change in the last line: the hunk has no trailing context, git anchors it at the end
TAIL_NEW = OLD + "/* end */\n"


@pytest.fixture
def diff(tmp_path: Path) -> bytes:
    return make_diff(tmp_path, {"fs/a.c": OLD}, {"fs/a.c": NEW})


@pytest.fixture
def tail_diff(tmp_path: Path) -> bytes:
    return make_diff(tmp_path, {"fs/a.c": OLD}, {"fs/a.c": TAIL_NEW})


def graded(files: dict[str, str | bytes], diff: bytes, *, fast: bool) -> tuple[Verdict, list[HunkStatus]]:
    b = grade_both(DictTree(files), diff)
    assert b.disagreement() is None, b.disagreement()
    assert (b.fast_runs is not None) == fast, b.fast_runs
    return b.fast.verdict, [h.status for h in b.fast.hunks]


def test_clean_is_decided_in_process(diff: bytes) -> None:
    assert graded({"fs/a.c": OLD}, diff, fast=True) == (Verdict.BACKPORTABLE, [HunkStatus.CLEAN] * 2)


def test_present_is_decided_in_process(diff: bytes) -> None:
    assert graded({"fs/a.c": NEW}, diff, fast=True) == (Verdict.PRESENT, [HunkStatus.PRESENT] * 2)


def test_offset_goes_to_the_tools(diff: bytes) -> None:
    shifted = "/* one */\n/* two */\n" + OLD
    assert graded({"fs/a.c": shifted}, diff, fast=False) == (Verdict.BACKPORTABLE, [HunkStatus.OFFSET] * 2)


def test_fuzz_and_conflict_go_to_the_tools(diff: bytes) -> None:
    fuzzed = OLD.replace("\tret1 = a_helper1(ctx, arg1);", "\tret1 = a_helper1(ctx, arg1); /* x */")
    assert graded({"fs/a.c": fuzzed}, diff, fast=False)[1][0] == HunkStatus.FUZZ
    broken = OLD.replace("\tctx->count4 += ret4;", "\tctx->count4 -= ret4;")
    assert graded({"fs/a.c": broken}, diff, fast=False)[0] == Verdict.CONFLICTING


def test_a_hunk_without_trailing_context_must_end_the_file(tail_diff: bytes) -> None:
    assert b"\n+/* end */\n" in tail_diff
    assert graded({"fs/a.c": OLD}, tail_diff, fast=True)[0] == Verdict.BACKPORTABLE
    # the pre-image is where the patch says, but no longer at the end: git looks elsewhere
    graded({"fs/a.c": OLD + "/* more */\n"}, tail_diff, fast=False)


def test_a_file_without_final_newline_goes_to_the_tools(diff: bytes) -> None:
    graded({"fs/a.c": OLD.rstrip("\n")}, diff, fast=False)


def test_crlf_files_go_to_the_tools(diff: bytes) -> None:
    graded({"fs/a.c": OLD.replace("\n", "\r\n")}, diff, fast=False)


def test_hunk_numbers_that_do_not_add_up_go_to_the_tools(diff: bytes) -> None:
    # the second hunk's new start off by one: git looks for it one line away first
    head = diff.index(b"@@ -", diff.index(b"@@ -") + 1)
    end = diff.index(b"\n", head)
    line = diff[head:end]
    plus = line.index(b"+")
    comma = line.index(b",", plus)
    bumped = line[: plus + 1] + str(int(line[plus + 1 : comma]) + 1).encode() + line[comma:]
    graded({"fs/a.c": OLD}, diff[:head] + bumped + diff[end:], fast=False)


def test_other_headers_go_to_the_tools(diff: bytes) -> None:
    renamed = diff.replace(b"index ", b"old mode 100644\nnew mode 100755\nindex ", 1)
    graded({"fs/a.c": OLD}, renamed, fast=False)


def test_the_same_file_twice_goes_to_the_tools(tmp_path: Path, diff: bytes) -> None:
    second = make_diff(tmp_path, {"fs/a.c": NEW}, {"fs/a.c": NEW.replace("ret5 = 0", "ret5 = 1")})
    graded({"fs/a.c": OLD}, diff + second, fast=False)


def test_a_new_file_goes_to_the_tools(tmp_path: Path) -> None:
    created = make_diff(tmp_path, {}, {"fs/b.c": OLD})
    graded({"fs/a.c": OLD}, created, fast=False)


def test_a_cr_in_a_hunk_goes_to_the_tools(diff: bytes) -> None:
    """A CR in any line of a section (checked once over the section's bytes) is the
    tools' to judge: an added line's, a context line's."""
    graded({"fs/a.c": OLD}, diff, fast=True)
    graded({"fs/a.c": OLD}, diff.replace(b"\n+", b"\r\n+", 1), fast=False)
    added = diff.index(b"\n+\t") + 1
    end = diff.index(b"\n", added)
    graded({"fs/a.c": OLD}, diff[:end] + b"\r" + diff[end:], fast=False)
