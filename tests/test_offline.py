"""The suite's own guard: no test can reach lore.kernel.org (tests/conftest.py, testing/offline.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from patchcheck import config
from testing.offline import NO_LORE, child_env


def test_default_archive_is_replaced_in_this_process_and_its_children() -> None:
    assert config.lore_url(None) == NO_LORE
    assert child_env()["PATCHCHECK_LORE_URL"] == NO_LORE
    out = subprocess.run(
        [sys.executable, "-c", "from patchcheck import config; print(config.lore_url(None))"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=True,
    ).stdout.strip()
    assert out == NO_LORE


def test_sockets_may_not_leave_the_loopback() -> None:
    with socket.socket() as s, pytest.raises(OSError, match="only the loopback"):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", 9))
