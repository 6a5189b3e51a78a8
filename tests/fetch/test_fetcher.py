"""The Fetcher: local mbox files, parallel fetches, processes, isolation from b4's globals.

Real b4/liblore against the local public-inbox server (never the internet)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch.cache import safe_name, verify_cache
from patchcheck.fetch.fetcher import Fetcher, series_key
from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer
from tests.fetch.helpers import FETCH_CODE, child, expect_error, fetcher, tmbox_requests


def test_mbox_file_fix(tmp_path: Path, pi_server: PIServer) -> None:
    spec = mailgen.make_series("vendor", 3)
    path = tmp_path / "fix.mbox"
    path.write_bytes(spec.mbox)
    fix = Fix(msgid=None, mbox=path, patches=(2,))
    key = series_key(fix)
    assert key == "mbox:" + hashlib.sha256(spec.mbox).hexdigest()
    s = fetcher(tmp_path, pi_server).get(fix)
    assert (s.source, s.key, s.revision) == ("mbox", key, 1)
    assert [p.subject for p in s.patches] == ["vendor: fix part 2"]
    assert pi_server.requests == []
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid=None, mbox=path, patches=(4,))),
        "patch 4 requested but v1 has 3 patches",
    )


def test_mbox_file_from_git_format_patch(tmp_path: Path, pi_server: PIServer) -> None:
    # git format-patch output: "From <sha> Mon Sep 17 ..." line and no Message-Id
    mail = mailgen.make_patch_mail("drv: vendor fix", mailgen.simple_diff(), "x@y")
    mail = b"\n".join(line for line in mail.split(b"\n") if not line.startswith(b"Message-Id"))
    path = tmp_path / "0001-drv.patch"
    path.write_bytes(b"From " + b"1" * 40 + b" Mon Sep 17 00:00:00 2001\n" + mail)
    s = fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid=None, mbox=path))
    assert [p.subject for p in s.patches] == ["drv: vendor fix"]
    assert s.patches[0].diff == mailgen.simple_diff().encode()


def test_mbox_file_missing_is_bad_input(tmp_path: Path, pi_server: PIServer) -> None:
    path = tmp_path / "known_bugs" / "fixes" / "nope.mbox"
    fix = Fix(msgid=None, mbox=path)
    expect_error(lambda: fetcher(tmp_path, pi_server).get(fix), str(path), exc=BadInput)
    expect_error(lambda: series_key(fix), str(path), exc=BadInput)


def test_get_many_fetches_each_thread_once_in_parallel(pi_server: PIServer, tmp_path: Path) -> None:
    specs = [mailgen.make_series(f"p{i}", 2) for i in range(3)]
    for s in specs:
        pi_server.add_thread(s.mbox)
    pi_server.delay = 0.6
    fixes = [Fix(msgid=s.cover_msgid) for s in specs]
    fixes.append(Fix(msgid=specs[0].cover_msgid, patches=(2,)))  # same thread again
    fixes.append(Fix(msgid="nowhere@example.org"))
    t0 = time.monotonic()
    res = fetcher(tmp_path, pi_server).get_many(fixes, jobs=4)
    elapsed = time.monotonic() - t0
    assert set(res) == {s.cover_msgid for s in specs} | {"nowhere@example.org"}
    assert isinstance(res["nowhere@example.org"], SeriesError)
    for s in specs:
        r = res[s.cover_msgid or ""]
        assert not isinstance(r, SeriesError) and len(r.patches) == 2
    reqs = tmbox_requests(pi_server)
    assert len(reqs) == len(set(reqs)) == 4
    assert elapsed < 0.6 * 4  # sequential would be >= 4 x 0.6 s (plus the 404's HEAD)


def test_get_many_with_one_job_fetches_here_one_at_a_time(pi_server: PIServer, tmp_path: Path) -> None:
    """-j 1: no pool of one thread (each thread handed over to it cost a warm audit ~0.1 ms),
    the same answers, errors included."""
    import threading

    specs = [mailgen.make_series(f"q{i}", 2) for i in range(3)]
    for s in specs:
        pi_server.add_thread(s.mbox)
    fixes = [Fix(msgid=s.cover_msgid) for s in specs] + [Fix(msgid="nowhere@example.org")]
    f = fetcher(tmp_path, pi_server)
    where: list[threading.Thread] = []
    real_get = f.get

    def get(fix: Fix) -> object:
        where.append(threading.current_thread())
        return real_get(fix)

    f.get = get  # type: ignore[method-assign]
    res = f.get_many(fixes, jobs=1)
    assert where == [threading.main_thread()] * 4
    assert isinstance(res["nowhere@example.org"], SeriesError)
    assert all(len(r.patches) == 2 for k, r in res.items() if not isinstance(r, SeriesError))
    assert sum(not isinstance(r, SeriesError) for r in res.values()) == 3


def test_two_processes_fetch_same_series(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("race", 3)
    pi_server.add_thread(spec.mbox)
    pi_server.delay = 0.3  # both are in flight at once
    code = FETCH_CODE.format(cache=str(tmp_path / "cache"), url=pi_server.url, timeout=10, msgid=spec.cover_msgid)
    procs = [child(code) for _ in range(2)]
    outs = [p.communicate(timeout=30) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.split()[1] == b"3"
        assert err == b""  # quiet: nothing from b4 or liblore
    sdir = tmp_path / "cache" / "series"
    assert [e.name for e in sdir.iterdir()] == [safe_name(spec.cover_msgid or "")]
    assert verify_cache(tmp_path / "cache") == []


def test_sigkill_mid_fetch_leaves_nothing_trusted(pi_server: PIServer, tmp_path: Path) -> None:
    pi_server.fault = "drip"
    code = FETCH_CODE.format(
        cache=str(tmp_path / "cache"), url=pi_server.url, timeout=30, msgid="kill@example.org"
    )
    proc = child(code)
    deadline = time.monotonic() + 15
    while not pi_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pi_server.requests, "child never reached the server"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    pi_server.fault = None
    expect_error(
        lambda: fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid="kill@example.org")),
        "not in cache (offline)",
    )
    sdir = tmp_path / "cache" / "series"
    assert not sdir.exists() or all(p.name.startswith(".tmp-") for p in sdir.iterdir())


def test_second_fetcher_other_url_same_process(tmp_path: Path) -> None:
    spec_a = mailgen.make_series("same", 1, cover=False)
    spec_b = mailgen.make_series("same", 2, cover=False)  # same first msgid, other content
    with PIServer() as a, PIServer() as b:
        a.add_thread(spec_a.mbox)
        b.add_thread(spec_b.mbox)
        mid = spec_a.patch_msgids[0]
        sa = Fetcher(tmp_path / "ca", a.url).get(Fix(msgid=mid))
        sb = Fetcher(tmp_path / "cb", b.url).get(Fix(msgid=mid))
        # patch 1/1 from a, patch 1/2 from b (a msgid naming one patch of a series takes it alone)
        assert [(p.counter, p.expected) for p in (*sa.patches, *sb.patches)] == [(1, 1), (1, 2)]
        assert len(tmbox_requests(a)) == 1 and len(tmbox_requests(b)) == 1


def test_b4_config_isolation(pi_server: PIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[b4]\n\tmidmask = http://bogus.invalid/%s\n\tattestation-policy = hardfail\n"
        f'[liblore "{pi_server.url}"]\n\tfallback = http://127.0.0.1:9\n'
        "\trequesttimeout = 0.001\n"
    )
    for var in ("GIT_CONFIG_GLOBAL", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    spec = mailgen.make_series("iso", 2)
    pi_server.add_thread(spec.mbox)
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=spec.cover_msgid))
    assert len(s.patches) == 2
    assert not (home / ".cache").exists()  # b4/liblore caches stay out of ~/.cache
    # and in a fresh process with that HOME, stderr stays quiet
    code = FETCH_CODE.format(cache=str(tmp_path / "c2"), url=pi_server.url, timeout=10, msgid=spec.cover_msgid)
    out, err = child(code, home).communicate(timeout=30)
    assert out.startswith(b"lore 2"), err.decode()
    assert err == b""


def test_failing_fetch_is_quiet_in_a_fresh_process(pi_server: PIServer, tmp_path: Path) -> None:
    # no logging configured at all: Python's last-resort handler would print b4/liblore
    # warnings ("Request to ... returned 500, trying next host") to stderr
    pi_server.fault = "500"
    code = (
        "from patchcheck.errors import SeriesError\n"
        "try:\n"
        + "".join(
            "    " + line + "\n"
            for line in FETCH_CODE.format(
                cache=str(tmp_path / "cache"), url=pi_server.url, timeout=5, msgid="q@example.org"
            )
            .strip()
            .splitlines()
        )
        + "except SeriesError as e:\n    print(e)\n"
    )
    out, err = child(code).communicate(timeout=30)
    assert err == b""
    assert b"HTTP 500" in out and out.count(b"\n") == 1
