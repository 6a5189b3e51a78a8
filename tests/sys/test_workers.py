"""sys/workers.py: forked workers (and the caller, from the back) see the caller's shared
data, answer in item order, and hand a worker's error back to the caller."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from patchcheck.errors import BugFileError
from patchcheck.sys import workers


def _square_with_shared(n: int) -> tuple[int, int, int]:
    return n * n, workers.shared()["offset"], os.getpid()


def _fail(n: int) -> int:
    raise BugFileError(f"/bugs/b{n}.toml", "title", "a string")


def _slow_square(n: int) -> tuple[int, int, int]:
    time.sleep(0.02)  # long enough for every process to take some items
    return _square_with_shared(n)


def test_answers_in_item_order_from_a_worker_and_this_process() -> None:
    seen: list[tuple[int, int, int]] = []
    got = workers.fork_map(_slow_square, list(range(20)), {"offset": 7}, 2, seen.append)
    assert [g[0] for g in got] == [n * n for n in range(20)]
    assert {g[1] for g in got} == {7}
    pids = [g[2] for g in got]
    # the worker takes items from the front, this process from the back
    assert pids[0] != os.getpid() and pids[-1] == os.getpid()
    assert len(set(pids)) == 2
    assert sorted(seen) == sorted(got)


def test_with_one_job_the_worker_takes_every_item() -> None:
    got = workers.fork_map(_square_with_shared, list(range(5)), {"offset": 0}, 1)
    assert os.getpid() not in {g[2] for g in got} and len({g[2] for g in got}) == 1


def _mark_done(path: str) -> int:
    Path(path).write_text("done")
    return os.getpid()


def test_meanwhile_runs_here_while_the_workers_work(tmp_path: Path) -> None:
    """``meanwhile`` runs after the workers started: it sees an answer a worker wrote (had
    the workers waited for it, it would wait in vain)."""
    flag = tmp_path / "flag"
    ran: list[bool] = []

    def meanwhile() -> None:
        deadline = time.monotonic() + 20
        while not flag.exists():
            assert time.monotonic() < deadline, "no worker ran while meanwhile did"
            time.sleep(0.01)
        ran.append(True)

    got = workers.fork_map(_mark_done, [str(flag)], None, 2, meanwhile=meanwhile)
    assert ran == [True] and got[0] != os.getpid()


def test_an_error_of_this_process_stops_the_workers() -> None:
    with pytest.raises(BugFileError):
        workers.fork_map(_fail_here, list(range(6)), os.getpid(), 2)
    assert multiprocessing.active_children() == []


def _fail_here(n: int) -> int:
    if os.getpid() == workers.shared():
        raise BugFileError(f"/bugs/b{n}.toml", "title", "a string")
    time.sleep(0.05)
    return n


def test_a_workers_error_reaches_the_caller_whole() -> None:
    with pytest.raises(BugFileError) as e:
        workers.fork_map(_fail, [3], None, 1)
    assert str(e.value) == "/bugs/b3.toml: title: a string" and e.value.key == "title"


def test_chunks_cover_every_item_in_order() -> None:
    items = list(range(101))
    parts = workers.chunks(items, 2, 8)
    assert [x for p in parts for x in p] == items and 12 <= len(parts) <= 17
    assert workers.chunks([1], 4, 8) == [[1]]
    assert workers.chunks([], 2, 8) == [] and workers.chunks([1, 2], 1, 8) == [[1, 2]]


@pytest.mark.parametrize("n,jobs", [(1819, 2), (1819, 4), (100, 3), (7, 2)])
def test_chunks_shrink_toward_where_workers_and_this_process_meet(n: int, jobs: int) -> None:
    """The workers' share (front) falls in size, this process's (back) rises: the last
    chunks either side takes are the small ones."""
    parts = workers.chunks(list(range(n)), jobs, 8)
    sizes = [len(p) for p in parts]
    assert all(sizes) and sum(sizes) == n
    front = n * (jobs - 1) // jobs
    cut = next(k for k in range(len(sizes) + 1) if sum(sizes[:k]) >= front)
    assert sum(sizes[:cut]) == front
    assert sizes[:cut] == sorted(sizes[:cut], reverse=True)
    assert sizes[cut:] == sorted(sizes[cut:])
    if n > 100:
        assert max(sizes) >= 4 * min(sizes)


def _threshold(_n: int) -> int:
    import gc

    return gc.get_threshold()[0]


def test_workers_collect_garbage_less_often_and_the_caller_unchanged() -> None:
    import gc

    before = gc.get_threshold()
    assert workers.fork_map(_threshold, [1, 2], None, 2) == [workers.GC_THRESHOLD] * 2
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
