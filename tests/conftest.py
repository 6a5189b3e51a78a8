"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pi_server import PIServer  # noqa: E402

# ---- fetch stage (lore.py): a local public-inbox server ------------------------------


@pytest.fixture
def pi_server() -> Iterator[PIServer]:
    """A public-inbox-compatible server on 127.0.0.1; stopped after the test."""
    server = PIServer()
    try:
        yield server
    finally:
        server.stop()
