"""LineIndex.find: the byte search and the line-position search give the plain scan's answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from patchcheck.engine.blocks import LineIndex, find_block


def plain(lines: list[bytes], block: list[bytes], near: int) -> int | None:
    hits = [i for i in range(len(lines)) if lines[i : i + len(block)] == block]
    return min(hits, key=lambda i: (abs(i - near), i)) if hits else None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"b", b"", b"a b", b"ba", b"x\ny"]), max_size=40),
    st.lists(st.lists(st.sampled_from([b"a", b"b", b"", b"x"]), min_size=1, max_size=3), min_size=1, max_size=6),
    st.integers(-5, 45),
)
def test_one_index_answers_every_lookup_like_a_plain_scan(
    lines: list[bytes], blocks: list[list[bytes]], near: int
) -> None:
    index = LineIndex(lines)  # a line holding an LF ("x\ny") turns the byte search off
    for block in blocks:
        assert index.find(block, near) == plain(lines, block, near)


def test_many_partial_matches_hand_over_to_the_line_positions() -> None:
    lines = [b"xa", b"ax"] * 200 + [b"a"] + [b"xa"] * 200
    index = LineIndex(lines)
    assert index.find([b"a"], 0) == 400  # 400 partial matches on the way
    assert index.find([b"a"], 800) == 400
    assert index.find([b"ax", b"xa"], 401) == plain(lines, [b"ax", b"xa"], 401) == 397


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"b", b"", b"a b", b"\r", b"\n", b"\r\n"]), max_size=40),
    st.lists(st.sampled_from([b"a", b"b", b""]), min_size=1, max_size=3),
    st.integers(-5, 45),
)
def test_an_index_of_a_file_s_bytes_answers_like_a_plain_scan(
    parts: list[bytes], block: list[bytes], near: int
) -> None:
    data = b"".join(parts)
    lines = data.splitlines()
    assert LineIndex(lines, data).find(block, near) == plain(lines, block, near)


def test_one_empty_line_block_is_found_nearest() -> None:
    """An empty block line matched at every byte offset (and a reverse search ran off the
    start of the file): the nearest blank line must win, as a plain scan says."""
    assert find_block([b"a", b"", b"", b"a"], [b""], 1) == 1


def test_absent_block_far_from_its_place_is_still_found() -> None:
    """The byte search looks only near the expected place; the line index finds the rest."""
    lines = [b"x%d" % i for i in range(10_000)]
    assert find_block(lines, [b"x9000", b"x9001"], 10) == 9000
    assert find_block(lines, [b"x3", b"x4"], 9_999) == 3
    assert find_block(lines, [b"absent"], 5_000) is None
