"""sys/proc.py: timeouts that hold (a child ignoring SIGTERM, a grandchild keeping the pipes
open), bounded output, the environment a command sees, and no child outliving a run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from patchcheck.errors import ToolError
from patchcheck.sys import proc, workers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _dies(pidfile: Path, within: float = 5) -> bool:
    """The process whose pid is in ``pidfile`` is gone, or goes within a few seconds (a
    SIGKILL is delivered asynchronously; a loaded machine takes its time)."""
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_output_and_exit_code() -> None:
    res = proc.run(["sh", "-c", "printf out; printf err >&2; exit 3"])
    assert (res.returncode, res.stdout, res.stderr, res.ok) == (3, b"out", b"err", False)


def test_large_input_and_output_do_not_deadlock() -> None:
    data = os.urandom(8 << 20)
    res = proc.run(["cat"], input=data, timeout=30)
    assert res.ok and res.stdout == data


def test_input_ignored_by_the_command_is_not_an_error() -> None:
    res = proc.run(["true"], input=b"x" * (4 << 20))
    assert res.ok


def test_check_raises_with_the_last_stderr_line() -> None:
    with pytest.raises(ToolError, match="sh -c .* failed: second"):
        proc.run(["sh", "-c", "echo first >&2; echo second >&2; exit 1"], check=True)


def test_missing_command() -> None:
    with pytest.raises(ToolError, match="no-such-tool-xyz: command not found"):
        proc.run(["no-such-tool-xyz"])


def test_timeout_stops_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done"
    start = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 0.5s"):
        proc.run(["sh", "-c", script], timeout=0.5)
    took = time.monotonic() - start
    assert took < 15, took  # the child would loop forever
    assert _dies(pidfile)


def test_timeout_stops_what_the_child_started(tmp_path: Path) -> None:
    """A grandchild holding stdout open must not make the timeout wait for it."""
    pidfile = tmp_path / "pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    with pytest.raises(ToolError, match="timed out"):
        proc.run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - start < 15  # not the grandchild's 60 s
    assert _dies(pidfile)


def test_timeout_holds_for_a_child_that_closed_its_pipes(tmp_path: Path) -> None:
    """The wait after the pipes close keeps the deadline."""
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; exec >&- 2>&-; sleep 60"
    start = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 2.5s"):
        proc.run(["sh", "-c", script], timeout=2.5)
    assert time.monotonic() - start < 20
    assert _dies(pidfile)


_MASK_SIZE = [sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"]
_CPUS = len(getattr(os, "sched_getaffinity", lambda _p: ())(0))


@pytest.mark.skipif(_CPUS < 2, reason="one CPU: nothing to hold")
def test_outside_a_map_a_command_starts_with_every_cpu() -> None:
    assert proc.run(_MASK_SIZE).stdout.strip() == str(_CPUS).encode()
    with proc.stream(_MASK_SIZE) as s:
        assert s.stdout.read().strip() == str(_CPUS).encode()
        assert s.wait() == 0


def _mask_after_a_while(_n: int) -> tuple[bool, bytes, bool]:
    mask = os.sched_getaffinity(0)
    late = [*_MASK_SIZE[:2], "import os, time; time.sleep(0.5); print(len(os.sched_getaffinity(0)))"]
    res = proc.run(late)
    return workers.busy(), res.stdout.strip(), os.sched_getaffinity(0) == mask


@pytest.mark.skipif(_CPUS < 2, reason="one CPU: nothing to hold")
def test_in_a_map_a_command_and_its_caller_get_every_cpu_back() -> None:
    """In a fork_map a command starts on its caller's CPU (a one-CPU mask as it starts),
    then both have the whole mask again: a command may use every core."""
    got = workers.fork_map(_mask_after_a_while, [0, 1], None, 2)
    assert got == [(True, str(_CPUS).encode(), True)] * 2
    assert not workers.busy()


def test_the_exit_is_seen_when_the_caller_has_fds_past_1024(fds_past_1024: None) -> None:
    """select() refuses fds >= 1024: the waits poll instead."""
    assert proc.run(["true"]).ok


def test_a_background_child_does_not_outlive_a_finished_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    res = proc.run(["sh", "-c", f"sleep 60 >/dev/null 2>&1 & echo $! > {pidfile}"], timeout=10)
    assert res.ok
    assert _dies(pidfile)


def test_output_cap() -> None:
    start = time.monotonic()
    with pytest.raises(ToolError, match="more than 1000000 bytes of output"):
        proc.run(["yes"], max_output=1_000_000)
    assert time.monotonic() - start < 15  # `yes` never ends by itself


def test_stderr_keeps_its_tail() -> None:
    res = proc.run(["sh", "-c", "yes noise | head -c 5000000 >&2; echo LAST >&2"])
    assert res.stderr.endswith(b"LAST\n")
    assert len(res.stderr) <= 2 * (64 << 10)


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PC_INHERITED", "yes")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    env = proc.run(["env"], env={"PC_GIVEN": "1"}).out().splitlines()
    assert "PC_INHERITED=yes" in env and "PC_GIVEN=1" in env and "LC_ALL=C" in env
    env = proc.run(["/usr/bin/env"], env={"PC_GIVEN": "1"}, inherit_env=False).out().splitlines()
    assert sorted(env) == ["LANG=C", "LC_ALL=C", "PC_GIVEN=1"]


def test_stream_reads_and_times_out() -> None:
    with proc.stream(["seq", "1", "100000"]) as s:
        assert s.stdout.read().count(b"\n") == 100000
        assert s.wait() == 0
    start = time.monotonic()
    with proc.stream(["sh", "-c", "trap '' TERM; sleep 30"], timeout=0.3) as s:
        s.stdout.read()
        s.wait()
    assert s.timed_out and time.monotonic() - start < 15  # not 30 s


def test_terminate_all_stops_running_commands_and_refuses_new_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "_stopping", False)
    errors: list[BaseException] = []
    results: list[proc.Result] = []

    def worker() -> None:
        try:
            results.append(proc.run(["sh", "-c", "trap '' TERM; sleep 30"], timeout=60))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    t = threading.Thread(target=worker)
    t.start()
    deadline = time.monotonic() + 10
    while not proc._live and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    proc.terminate_all()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - start < 15  # not 30 s
    assert results and results[0].returncode == -signal.SIGKILL, (results, errors)
    with pytest.raises(ToolError, match="stopping"):
        proc.run(["true"])
