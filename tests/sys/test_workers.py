"""sys/workers.py: forked workers (and the caller) see the caller's shared data, answer in
item order, run their start and stop, and hand a worker's error (or its death) back to the
caller, which leaves no worker behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
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


def _meet(n: int) -> tuple[int, int, int]:
    """The first ``meet`` (3) items wait until as many processes hold one each: each process
    takes one of them, whatever the machine's load."""
    folder, meet = Path(workers.shared()["folder"]), workers.shared().get("meet", 3)
    if n < meet:
        (folder / str(os.getpid())).write_text("")
        deadline = time.monotonic() + 20
        while len(list(folder.iterdir())) < meet:
            assert time.monotonic() < deadline, f"{meet} processes never held an item each"
            time.sleep(0.01)
    return n * n, workers.shared()["offset"], os.getpid()


def test_answers_in_item_order_from_the_workers_and_this_process(tmp_path: Path) -> None:
    seen: list[tuple[int, int, int]] = []
    got = workers.fork_map(_meet, list(range(20)), {"offset": 7, "folder": str(tmp_path)}, 3, seen.append)
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


def _threshold(n: int) -> tuple[int, int]:
    import gc

    _meet(n)  # each of the two processes holds one of the two items
    return gc.get_threshold()[0], os.getpid()


def test_workers_collect_garbage_less_often_and_the_caller_unchanged(tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    got = workers.fork_map(_threshold, [0, 1], {"offset": 0, "folder": str(tmp_path), "meet": 2}, 2)
    assert [g[0] for g in got] == [workers.GC_THRESHOLD] * 2 and len({g[1] for g in got}) == 2
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


# ---- what a map leaves behind: no worker, no open pipe, the collector as it was ----------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the workers forked during the test (this test's, no other's)."""
    pids: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return pids


def _left_as_before(fds: int, pids: list[int]) -> None:
    import gc

    assert pids and all(_gone(p) for p in pids)  # reaped: not even a zombie is left
    assert _open_fds() == fds
    assert gc.get_freeze_count() == 0 and workers._SHARED is None and not workers.busy()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_a_map_leaves_nothing_open(tmp_path: Path, forked: list[int]) -> None:
    fds = _open_fds()
    workers.fork_map(_meet, list(range(6)), {"offset": 0, "folder": str(tmp_path)}, 3)
    _left_as_before(fds, forked)


def _interrupted_here(n: int) -> int:
    folder, parent = workers.shared()
    if os.getpid() == parent:
        _wait_for(Path(folder) / "taken")
        raise KeyboardInterrupt  # Ctrl-C while this process works on an item
    (Path(folder) / "taken").write_text("")
    time.sleep(30)  # ended by the caller long before
    return n


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_ctrl_c_here_ends_and_reaps_the_workers_and_restores_everything(tmp_path: Path, forked: list[int]) -> None:
    fds = _open_fds()
    with pytest.raises(KeyboardInterrupt):
        workers.fork_map(_interrupted_here, [1, 2], (str(tmp_path), os.getpid()), 2)
    _left_as_before(fds, forked)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_an_error_of_done_here_ends_the_workers_too(tmp_path: Path, forked: list[int]) -> None:
    def done(_got: object) -> None:
        raise ValueError("shown")

    fds = _open_fds()
    with pytest.raises(ValueError, match="shown"):
        workers.fork_map(_meet, list(range(6)), {"offset": 0, "folder": str(tmp_path)}, 3, done)
    _left_as_before(fds, forked)


class _TwoArgs(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} and {b}")


def _raise_two_args(n: int) -> tuple[int, int, int]:
    got = _meet(n)  # the worker surely holds an item
    if os.getpid() != workers.shared()["parent"]:
        raise _TwoArgs("one", "two")  # pickles, but does not rebuild from its pickle
    return got


def test_a_workers_error_that_does_not_unpickle_still_reaches_the_caller(tmp_path: Path) -> None:
    shared = {"offset": 0, "folder": str(tmp_path), "meet": 2, "parent": os.getpid()}
    with pytest.raises(RuntimeError, match="_TwoArgs: one and two") as e:
        workers.fork_map(_raise_two_args, [0, 1], shared, 2)
    assert isinstance(e.value.__cause__, workers.WorkerTraceback)


def test_an_error_of_start_reaches_the_caller_and_stop_does_not_run(tmp_path: Path) -> None:
    def start() -> None:
        raise BugFileError("/bugs/start.toml", "title", "a string")

    def stop() -> None:
        (tmp_path / "stopped").write_text("")

    # the items are cheap: this process answers them all before the worker's error arrives
    with pytest.raises(BugFileError, match="start.toml"):
        workers.fork_map(_square_with_shared, list(range(4)), {"offset": 0}, 2, start=start, stop=stop)
    assert not (tmp_path / "stopped").exists()


def _leave_quietly(n: int) -> tuple[int, int, int]:
    got = _meet(n)
    if os.getpid() != workers.shared()["parent"]:
        os._exit(0)  # a worker ending "well" without its answer
    return got


@pytest.fixture
def alarm() -> Iterator[None]:
    """A hang becomes a failure (20 s)."""

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_worker_ending_without_its_answer_is_lost_not_waited_for(tmp_path: Path, alarm: None) -> None:
    shared = {"offset": 0, "folder": str(tmp_path), "meet": 2, "parent": os.getpid()}
    with pytest.raises(workers.WorkerLost, match="1 of 2 items unanswered"):
        workers.fork_map(_leave_quietly, [0, 1], shared, 2)


def test_a_map_works_with_files_open_past_1024(tmp_path: Path, fds_past_1024: None) -> None:
    got = workers.fork_map(_meet, [0, 1, 2, 3], {"offset": 0, "folder": str(tmp_path), "meet": 2}, 2)
    assert [g[0] for g in got] == [0, 1, 4, 9] and len({g[2] for g in got}) == 2


# ---- a worker never comes back into the caller's code ---------------------------------


class _Caught(Exception):
    pass


def _escaped(tmp_path: Path, me: int) -> None:
    """Run by whoever returns from fork_map: a worker that did says so and leaves."""
    if os.getpid() != me:
        (tmp_path / f"escaped-{os.getpid()}").write_text("")
        os._exit(0)


def test_a_signal_just_after_the_fork_ends_the_worker_not_the_callers_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM arriving between the fork and the worker's own handlers: the caller's handler
    (patchcheck's raises) must not run in the worker."""
    me = os.getpid()
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # at once, before anything else
        return pid

    def raising(_signum: int, _frame: object) -> None:
        raise _Caught

    monkeypatch.setattr(os, "fork", fork)
    old = signal.signal(signal.SIGTERM, raising)
    try:
        with pytest.raises(workers.WorkerLost, match="ended early"):
            workers.fork_map(_slow_square, list(range(30)), {"offset": 0}, 2)
    except BaseException:
        _escaped(tmp_path, me)
        raise
    finally:
        _escaped(tmp_path, me)
        signal.signal(signal.SIGTERM, old)
    assert list(tmp_path.iterdir()) == []


class _FlushEnds:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        raise SystemExit(143)  # as a SIGTERM arriving during the worker's last flush


def test_a_signal_in_the_workers_last_flush_does_not_bring_it_back(tmp_path: Path) -> None:
    me = os.getpid()

    def start() -> None:
        sys.stdout = _FlushEnds()  # type: ignore[assignment]

    try:
        got = workers.fork_map(_slow_square, list(range(8)), {"offset": 0}, 2, start=start)
    finally:
        _escaped(tmp_path, me)
    assert [g[0] for g in got] == [n * n for n in range(8)] and list(tmp_path.iterdir()) == []
