"""Fixtures of the triage tests: the known-bug files of ``oopses.BUG_FILES``."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.bugs.load import load_bugs
from patchcheck.model import Bug
from tests.triage.oopses import write_bugs


@pytest.fixture
def bugs_dir(tmp_path: Path) -> Path:
    return write_bugs(tmp_path / "bugs")


@pytest.fixture
def bugs(bugs_dir: Path) -> list[Bug]:
    return load_bugs(bugs_dir).all()
