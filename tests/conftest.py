"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
