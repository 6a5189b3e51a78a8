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
