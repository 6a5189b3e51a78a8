"""Fixtures of the reliability suite (bad input, faults, the user's tree left alone)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pi_server import PIServer  # noqa: E402
from rig import Rig, make_rig  # noqa: E402


@pytest.fixture
def rig(tmp_path: Path, pi_server: PIServer) -> Rig:
    return make_rig(tmp_path, pi_server)
