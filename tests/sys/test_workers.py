"""sys/workers.py: forked workers (and the caller) see the caller's shared data, answer in
item order, run their start and stop, and hand a worker's error (or its death) back to the
caller, which leaves no worker behind."""

from __future__ import annotations

import os
import signal
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


def test_answers_in_item_order_from_the_workers_and_this_process() -> None:
    seen: list[tuple[int, int, int]] = []
    got = workers.fork_map(_slow_square, list(range(20)), {"offset": 7}, 3, seen.append)
    assert [g[0] for g in got] == [n * n for n in range(20)]
    assert {g[1] for g in got} == {7}
    pids = {g[2] for g in got}
    assert os.getpid() in pids and len(pids) == 3
    assert sorted(seen) == sorted(got)


def test_with_one_job_this_process_takes_every_item() -> None:
    got = workers.fork_map(_square_with_shared, list(range(5)), {"offset": 0}, 1)
    assert {g[2] for g in got} == {os.getpid()} and [g[0] for g in got] == [0, 1, 4, 9, 16]


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

    # two items: the worker takes the first while this process runs meanwhile
    got = workers.fork_map(_mark_done, [str(flag), str(tmp_path / "other")], None, 2, meanwhile=meanwhile)
    assert ran == [True] and got[0] != os.getpid()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        assert time.monotonic() < deadline, f"no worker wrote {path}"
        time.sleep(0.01)


def _note_pid_then_fail_here(n: int) -> int:
    folder, parent = workers.shared()
    if os.getpid() == parent:
        _wait_for(Path(folder) / "taken")  # the worker has taken the other item
        raise BugFileError(f"/bugs/b{n}.toml", "title", "a string")
    (Path(folder) / str(os.getpid())).write_text("")
    (Path(folder) / "taken").write_text("")
    time.sleep(30)  # stopped by the caller long before
    return n


def test_an_error_of_this_process_ends_the_workers(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(BugFileError):
        workers.fork_map(_note_pid_then_fail_here, [1, 2], (str(tmp_path), os.getpid()), 2)
    pids = [int(p.name) for p in tmp_path.iterdir() if p.name != "taken"]
    assert len(pids) == 1 and _gone(pids[0]) and time.monotonic() - start < 20


def _worker_fails(n: int) -> int:
    folder, parent = workers.shared()
    if os.getpid() != parent:
        (Path(folder) / "taken").write_text("")
        raise BugFileError(f"/bugs/b{n}.toml", "title", "a string")
    _wait_for(Path(folder) / "taken")
    return n


def test_a_workers_error_reaches_the_caller_whole_with_where_it_was_raised(tmp_path: Path) -> None:
    with pytest.raises(BugFileError) as e:
        workers.fork_map(_worker_fails, [1, 2], (str(tmp_path), os.getpid()), 2)
    assert str(e.value) in ("/bugs/b1.toml: title: a string", "/bugs/b2.toml: title: a string")
    assert e.value.key == "title"
    assert isinstance(e.value.__cause__, workers.WorkerTraceback)
    assert "_worker_fails" in str(e.value.__cause__)


def _die_in_worker(n: int) -> int:
    folder, parent = workers.shared()
    if os.getpid() != parent:
        (Path(folder) / "taken").write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
    _wait_for(Path(folder) / "taken")
    return n


def test_a_worker_killed_midway_is_an_error_not_a_missing_answer(tmp_path: Path) -> None:
    with pytest.raises(workers.WorkerLost, match="killed by SIGKILL"):
        workers.fork_map(_die_in_worker, [1, 2], (str(tmp_path), os.getpid()), 2)


def _big(n: int) -> bytes:
    if os.getpid() == workers.shared():
        time.sleep(0.5)  # the worker's answers pile up meanwhile
    return bytes([n]) * 3_000_000


def test_answers_larger_than_the_pipe_arrive_whole() -> None:
    got = workers.fork_map(_big, list(range(6)), os.getpid(), 2)
    assert [len(g) for g in got] == [3_000_000] * 6 and [g[-1] for g in got] == list(range(6))


def test_each_worker_runs_start_and_stop(tmp_path: Path) -> None:
    def start() -> None:
        (tmp_path / f"start-{os.getpid()}").write_text("")

    def stop() -> None:
        (tmp_path / f"stop-{os.getpid()}").write_text("")

    workers.fork_map(_slow_square, list(range(4)), {"offset": 0}, 2, start=start, stop=stop)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].split("-")[1] == names[1].split("-")[1] != str(os.getpid())
    assert [n.split("-")[0] for n in names] == ["start", "stop"]


def test_too_many_items_are_refused_before_any_fork() -> None:
    with pytest.raises(ValueError, match="at most"):
        workers.fork_map(_fail, list(range(workers.MAX_ITEMS + 1)), None, 2)


def test_chunks_cover_every_item_in_order() -> None:
    items = list(range(101))
    parts = workers.chunks(items, 2, 8)
    assert [x for p in parts for x in p] == items and 12 <= len(parts) <= 17
    assert workers.chunks([1], 4, 8) == [[1]]
    assert workers.chunks([], 2, 8) == [] and workers.chunks([1, 2], 1, 8) == [[1, 2]]


@pytest.mark.parametrize("n,jobs", [(1819, 2), (1819, 4), (100, 3), (7, 2)])
def test_chunks_fall_in_size(n: int, jobs: int) -> None:
    """Every process takes the next chunk: the last ones taken are the small ones."""
    sizes = [len(p) for p in workers.chunks(list(range(n)), jobs, 8)]
    assert all(sizes) and sum(sizes) == n
    assert sizes == sorted(sizes, reverse=True)
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
