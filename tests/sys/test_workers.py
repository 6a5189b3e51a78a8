"""sys/workers.py: forked workers see the caller's shared data, answer in item order, and
hand a worker's error back to the caller."""

from __future__ import annotations

import os

import pytest

from patchcheck.errors import BugFileError
from patchcheck.sys import workers


def _square_with_shared(n: int) -> tuple[int, int, int]:
    return n * n, workers.shared()["offset"], os.getpid()


def _fail(n: int) -> int:
    raise BugFileError(f"/bugs/b{n}.toml", "title", "a string")


def test_answers_in_item_order_from_other_processes() -> None:
    seen: list[tuple[int, int, int]] = []
    got = workers.fork_map(_square_with_shared, list(range(20)), {"offset": 7}, 2, seen.append)
    assert [g[0] for g in got] == [n * n for n in range(20)]
    assert {g[1] for g in got} == {7}
    assert os.getpid() not in {g[2] for g in got}
    assert sorted(seen) == sorted(got)


def test_a_workers_error_reaches_the_caller_whole() -> None:
    with pytest.raises(BugFileError) as e:
        workers.fork_map(_fail, [3], None, 1)
    assert str(e.value) == "/bugs/b3.toml: title: a string" and e.value.key == "title"


def test_chunks_cover_every_item_in_order() -> None:
    items = list(range(101))
    parts = workers.chunks(items, 2, 8)
    assert [x for p in parts for x in p] == items and 12 <= len(parts) <= 17
    assert workers.chunks([1], 4, 8) == [[1]]


def _threshold(_n: int) -> int:
    import gc

    return gc.get_threshold()[0]


def test_workers_collect_garbage_less_often_and_the_caller_unchanged() -> None:
    import gc

    before = gc.get_threshold()
    assert workers.fork_map(_threshold, [1, 2], None, 2) == [workers.GC_THRESHOLD] * 2
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
