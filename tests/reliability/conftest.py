"""Fixtures of the reliability suite (bad input, faults, the user's tree left alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.pi_server import PIServer
from testing.rig import Rig, make_rig


@pytest.fixture
def rig(tmp_path: Path, pi_server: PIServer) -> Rig:
    return make_rig(tmp_path, pi_server)
