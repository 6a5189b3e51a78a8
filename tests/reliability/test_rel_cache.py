"""Cache safety: entries are written whole (temp folder + rename), so an interrupted run
leaves nothing a later run trusts; concurrent runs share one good entry; a damaged entry is
re-fetched, or reported when offline. ``patchcheck cache verify`` is the judge."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from patchcheck.fetch.cache import safe_name
from testing.rig import GOOD, LOCAL, Rig, bug_file, env, interrupt, no_traceback, wait_for


def _entry(rig: Rig, msgid: str = GOOD) -> Path:
    return rig.cache / "series" / safe_name(msgid)


def _fetches(rig: Rig) -> int:
    return sum(r.endswith("t.mbox.gz") for r in rig.server.requests)


def _sound(rig: Rig) -> None:
    cp = rig.run("cache", "verify")
    no_traceback(cp)
    assert cp.returncode == 0 and cp.stdout.strip().endswith("cache is sound"), cp.stdout


def _later_run_is_good(rig: Rig, offline: bool = False) -> None:
    cp, res = rig.check("b-good", LOCAL, offline=offline)
    assert cp.returncode == 1, cp.stderr
    assert {b: r["verdict"] for b, r in res.items()} == {"b-good": "backportable", LOCAL: "backportable"}


@pytest.mark.parametrize("mode", ["drip", "stall"])
def test_sigkill_mid_fetch(rig: Rig, mode: str) -> None:
    if mode == "drip":  # the answer is coming, a byte at a time
        rig.server.fault, rig.server.fault_seconds = "drip", 20
    else:  # the server has the request and says nothing yet
        rig.server.delay = 20
    proc = rig.popen("check", "--tree", str(rig.tree), "--bug", "b-good", "--format", "json")
    wait_for(lambda: _fetches(rig) > 0)
    time.sleep(0.3)
    rc, _, err = interrupt(proc, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert not _entry(rig).exists()
    rig.server.fault, rig.server.delay = None, 0
    _sound(rig)
    _later_run_is_good(rig)
    _sound(rig)


def test_sigint_mid_fetch_is_prompt_and_clean(rig: Rig) -> None:
    """Ctrl-C while a fetch waits on the network: exit 130 and one line at once, not after
    the network timeout (30 s by default; the server here would answer in 20 s)."""
    rig.server.delay = 20
    proc = rig.popen("check", "--tree", str(rig.tree), "--bug", "b-good", "--bug", LOCAL)
    wait_for(lambda: _fetches(rig) > 0)
    time.sleep(0.3)
    t0 = time.monotonic()
    rc, out, err = interrupt(proc, signal.SIGINT, limit=10)
    assert time.monotonic() - t0 < 5
    assert rc == 130
    assert err.strip().splitlines() == ["patchcheck: interrupted"]
    assert "Traceback" not in err and out == ""
    assert not _entry(rig).exists()
    rig.server.delay = 0
    _sound(rig)
    _later_run_is_good(rig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_fetch_in_a_worker_is_prompt_and_clean(rig: Rig, tmp_path: Path, sig: signal.Signals) -> None:
    """An audit large enough for worker processes fetches in them: a signal to patchcheck
    (not to its workers) still ends the run at once, the workers' fetches cut, nothing
    queued run after it, no scratch copy left behind."""
    for i in range(8):
        bug_file(rig.bugs, f"b-local-{i}", 'mbox = "fixes/local.mbox"')
    other = tmp_path / "linux2"
    shutil.copytree(rig.tree, other)
    rig.server.delay = 20
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    argv = rig.argv("audit", "--tree", str(rig.tree), "--tree", str(other), "--all")  # -j 2
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env(), "TMPDIR": str(tmpdir)}
    )
    wait_for(lambda: _fetches(rig) > 0)
    time.sleep(0.3)
    t0 = time.monotonic()
    rc, out, err = interrupt(proc, sig, limit=10)
    assert time.monotonic() - t0 < 5
    assert rc == 128 + sig
    assert err.strip().splitlines()[-1] in ("patchcheck: interrupted", f"patchcheck: terminated by {sig.name}")
    assert "Traceback" not in err and out == ""
    assert not _entry(rig).exists() and os.listdir(tmpdir) == []


def test_leftovers_of_a_killed_store_are_never_trusted(rig: Rig) -> None:
    """What a kill inside the store step leaves: a temp folder with part of a thread, or a
    folder with no meta.json. Neither is used; the series is fetched again and stored
    whole; verify names the leftover; prune drops it once it is stale."""
    series = rig.cache / "series"
    tmp = series / f".tmp-{safe_name(GOOD)[:40]}-abc123"
    tmp.mkdir(parents=True)
    (tmp / "thread.mbox").write_bytes(b"From mboxrd@z Thu Jan  1 00:00:00 1970\nSubject: [PA")
    torn = _entry(rig)
    torn.mkdir()
    (torn / "thread.mbox").write_bytes(b"From mboxrd@z Thu Jan  1 00:00:00 1970\nSubject: [PA")

    cp = rig.run("cache", "verify")
    assert cp.returncode == 3
    assert f"{tmp.name}: leftover of an interrupted fetch (never used)" in cp.stdout
    assert f"{torn.name}: meta.json missing" in cp.stdout

    _later_run_is_good(rig)
    assert _fetches(rig) == 1
    meta = json.loads((torn / "meta.json").read_text())
    assert meta["msgid"] == GOOD
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3 and cp.stdout.count("\n") == 1 and tmp.name in cp.stdout
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    cp = rig.run("cache", "prune")
    assert f"removed {tmp.name}" in cp.stdout
    _sound(rig)


def test_two_runs_fetching_the_same_series_at_once(rig: Rig) -> None:
    rig.server.delay = 0.8  # both requests are in flight together
    procs = [rig.popen("check", "--tree", str(rig.tree), "--bug", "b-good", "--format", "json") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 1 and "Traceback" not in err, err
        assert json.loads(out)["results"][0]["verdict"] == "backportable"
    assert _fetches(rig) == 2
    assert [e.name for e in (rig.cache / "series").iterdir()] == [safe_name(GOOD)]
    _sound(rig)
    rig.server.stop()
    _later_run_is_good(rig, offline=True)


def test_corrupt_entry_is_refetched_or_reported_offline(rig: Rig) -> None:
    _later_run_is_good(rig)
    thread = _entry(rig) / "thread.mbox"
    thread.write_bytes(thread.read_bytes().replace(b"clamp", b"CLAMP"))
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3
    assert "thread.mbox checksum does not match meta.json" in cp.stdout

    cp, res = rig.check("b-good", LOCAL, offline=True)
    assert cp.returncode == 3
    err = res["b-good"]["error"]
    assert GOOD in err and "corrupt" in err and "checksum" in err and "offline" in err
    assert res[LOCAL]["verdict"] == "backportable"

    n = _fetches(rig)
    _later_run_is_good(rig)  # online: fetched again, stored whole
    assert _fetches(rig) == n + 1
    _sound(rig)
    assert not any(p.name.startswith((".tmp-", ".trash-")) for p in (rig.cache / "series").iterdir())


def test_cache_entry_for_another_msgid_is_not_trusted(rig: Rig) -> None:
    """A folder whose meta.json names another thread (a copy gone wrong)."""
    _later_run_is_good(rig)
    meta_path = _entry(rig) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["msgid"] = "someone-else@example.org"
    meta_path.write_text(json.dumps(meta))
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3 and "does not match its msgid" in cp.stdout
    n = _fetches(rig)
    _later_run_is_good(rig)
    assert _fetches(rig) == n + 1
    _sound(rig)
