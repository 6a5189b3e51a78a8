"""Server and network failures (fetch/http.py): one-line errors, bounded time."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from patchcheck.fetch.fetcher import Fetcher
from patchcheck.fetch.http import Watch
from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer
from tests.fetch.helpers import expect_error, fetcher


def test_404(pi_server: PIServer, tmp_path: Path) -> None:
    msg = expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid="gone@example.org")), "gone@example.org", "404"
    )
    assert pi_server.url in msg
    # liblore retries a 404 with a HEAD on the bare origin (list path discovery)
    assert pi_server.requests == ["/all/gone%40example.org/t.mbox.gz", "/gone%40example.org/"]


def test_found_under_other_list_via_redirect(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("lst", 1, cover=False)
    pi_server.add_thread(spec.mbox)
    f = Fetcher(tmp_path / "cache", pi_server.url + "/linux-nfs")
    s = f.get(Fix(msgid=spec.patch_msgids[0]))
    assert s.patches[0].subject == "lst: fix part 1"
    assert pi_server.requests[0].startswith("/linux-nfs/")


@pytest.mark.parametrize(
    "fault,needle",
    [
        ("500", "HTTP 500"),
        ("html200", "HTML page"),
        ("corrupt-gzip", "corrupt gzip"),
        ("redirect-loop", "redirect"),
    ],
)
def test_server_faults(
    pi_server: PIServer, tmp_path: Path, fault: str, needle: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pi_server.fault = fault
    msg = expect_error(lambda: fetcher(tmp_path, pi_server, timeout=5).get(Fix(msgid="f@example.org")), needle)
    assert pi_server.url in msg and "f%40example.org" in msg
    assert capfd.readouterr() == ("", "")  # our one-line error only, nothing from b4/liblore


def test_connection_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    expect_error(
        lambda: fetcher(tmp_path, url, timeout=5).get(Fix(msgid="r@example.org")), url, "connection refused"
    )
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("fault", ["hang", "drip"])
def test_hang_and_drip_bounded_by_total_timeout(pi_server: PIServer, tmp_path: Path, fault: str) -> None:
    pi_server.fault = fault
    t0 = time.monotonic()
    expect_error(
        lambda: fetcher(tmp_path, pi_server, timeout=1.5).get(Fix(msgid="slow@example.org")),
        "timed out",
        pi_server.url,
    )
    assert time.monotonic() - t0 < 4
    assert not (tmp_path / "cache").exists()


def _serve_one(server: PIServer, name: str) -> str:
    msgid = f"{name}@example.org"
    server.add_thread(mailgen.make_mbox([mailgen.make_patch_mail(f"{name}: fix", mailgen.simple_diff(), msgid)]))
    return msgid


def test_series_share_one_kept_alive_connection(pi_server: PIServer, tmp_path: Path) -> None:
    f = fetcher(tmp_path, pi_server)
    for name in ("ka1", "ka2", "ka3"):
        assert f.get(Fix(msgid=_serve_one(pi_server, name))).patches[0].subject == f"{name}: fix"
    assert (len(pi_server.requests), pi_server.connections) == (3, 1)


def test_kept_alive_connection_closed_by_the_server_is_retried_once(pi_server: PIServer, tmp_path: Path) -> None:
    f = fetcher(tmp_path, pi_server)
    f.get(Fix(msgid=_serve_one(pi_server, "first")))
    pi_server.fault = "close-kept"  # closes the kept-alive connection on its next request
    assert f.get(Fix(msgid=_serve_one(pi_server, "second"))).patches[0].subject == "second: fix"
    assert (len(pi_server.requests), pi_server.connections) == (3, 2)


def test_a_failed_download_leaves_no_connection_behind(pi_server: PIServer, tmp_path: Path) -> None:
    f = fetcher(tmp_path, pi_server, timeout=5)
    pi_server.fault = "500"
    expect_error(lambda: f.get(Fix(msgid=_serve_one(pi_server, "bad"))), "HTTP 500")
    pi_server.fault = None
    f.get(Fix(msgid=_serve_one(pi_server, "good")))
    assert pi_server.connections == 2


@pytest.mark.parametrize("fault", ["hang", "drip"])
def test_kept_alive_connection_is_bounded_by_the_next_total_timeout(
    pi_server: PIServer, tmp_path: Path, fault: str
) -> None:
    f = fetcher(tmp_path, pi_server, timeout=1.5)
    f.get(Fix(msgid=_serve_one(pi_server, "quick")))
    pi_server.fault = fault
    t0 = time.monotonic()
    expect_error(lambda: f.get(Fix(msgid="slow@example.org")), "timed out", pi_server.url)
    assert time.monotonic() - t0 < 4
    assert pi_server.connections == 1  # the slow answer came over the kept-alive connection


def test_watch_cuts_its_sockets_at_its_deadline_and_none_after_its_fetch() -> None:
    a1, a2 = socket.socketpair()
    b1, b2 = socket.socketpair()
    with a1, a2, b1, b2:
        with Watch(0.3) as early:
            early.add(a1)  # its fetch ends in time: a kept-alive socket lives on
        with Watch(0.3) as late:
            late.add(b1)
            time.sleep(0.8)
        assert (early.expired, late.expired) == (False, True)
        a1.sendall(b"x")
        assert a2.recv(1) == b"x"
        assert b2.recv(1) == b""  # shut down


def test_watch_fires_in_a_forked_child() -> None:
    with Watch(30):
        pass  # the watchdog thread runs in this process
    pid = os.fork()
    if pid == 0:  # the child has its own watchdog
        code = 1
        try:
            with Watch(0.2) as w:
                time.sleep(1)
            code = 0 if w.expired else 1
        finally:
            os._exit(code)
    assert _exit_code(pid) == 0


def _exit_code(pid: int) -> int:
    """The forked child's exit code; it is killed (and the test fails) after 10 s."""
    deadline = time.monotonic() + 10
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the forked child hung")
    return os.waitstatus_to_exitcode(done[1])


def test_a_forked_child_never_uses_its_parents_connection(pi_server: PIServer, tmp_path: Path) -> None:
    f = fetcher(tmp_path, pi_server, timeout=5)
    f.get(Fix(msgid=_serve_one(pi_server, "parent1")))
    child = _serve_one(pi_server, "child")
    pid = os.fork()
    if pid == 0:  # a pipeline worker: fetches with the Fetcher it inherited
        code = 1
        try:
            code = 0 if f.get(Fix(msgid=child)).patches[0].subject == "child: fix" else 1
        finally:
            os._exit(code)
    assert _exit_code(pid) == 0
    assert pi_server.connections == 2
    assert f.get(Fix(msgid=_serve_one(pi_server, "parent2"))).patches[0].subject == "parent2: fix"
    assert (len(pi_server.requests), pi_server.connections) == (3, 2)


def test_proxy_environment_is_honoured(
    pi_server: PIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session reads the environment once (requests would on every request): a proxy
    there is used, and no_proxy still exempts the archive."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", dead)
    f = fetcher(tmp_path, pi_server, timeout=5)
    for name in ("px1", "px2"):  # the second over the same session
        expect_error(lambda: f.get(Fix(msgid=_serve_one(pi_server, name))), "connect")  # noqa: B023
    assert pi_server.requests == []
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert fetcher(tmp_path, pi_server).get(Fix(msgid=_serve_one(pi_server, "px3"))).patches
