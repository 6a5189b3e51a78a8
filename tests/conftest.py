"""Shared pytest fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from testing.offline import NO_LORE
from testing.pi_server import PIServer

# ---- fetch stage (lore.py): a local public-inbox server ------------------------------


@pytest.fixture
def pi_server() -> Iterator[PIServer]:
    """A public-inbox-compatible server on 127.0.0.1; stopped after the test."""
    server = PIServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _own_user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree cache defaults to $XDG_CACHE_HOME/patchcheck/trees: each test gets its own,
    outside its tmp_path (tests snapshot that), never the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def _never_lore(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches lore.kernel.org (patchcheck's default archive): every run, in this
    process or a child, that is not pointed at a test server gets an address where nothing
    listens; and no socket of this process may leave the loopback."""
    monkeypatch.setenv("PATCHCHECK_LORE_URL", NO_LORE)
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            try:
                loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise OSError(f"test tried to connect to {host}: only the loopback is allowed")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def fds_past_1024() -> Iterator[None]:
    """1,100 more files open: this process's next fds are past 1024, which select() refuses."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("cannot open 1200 files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
