"""Shared by the fetch tests: a Fetcher on the test server, error and request checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchcheck.errors import SeriesError
from patchcheck.fetch.fetcher import Fetcher
from testing.pi_server import PIServer

REPO = Path(__file__).resolve().parents[2]


def fetcher(tmp_path: Path, server: PIServer | str, **kw: object) -> Fetcher:
    url = server if isinstance(server, str) else server.url
    return Fetcher(tmp_path / "cache", url, **kw)  # type: ignore[arg-type]


def expect_error(fn: object, *needles: str, exc: type[Exception] = SeriesError) -> str:
    with pytest.raises(exc) as ei:
        fn()  # type: ignore[operator]
    msg = str(ei.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def tmbox_requests(server: PIServer) -> list[str]:
    return [r for r in server.requests if r.endswith("t.mbox.gz")]


def snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else None
    return out


def child(code: str, home: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


FETCH_CODE = """
from pathlib import Path
from patchcheck.model import Fix
from patchcheck.fetch.fetcher import Fetcher
s = Fetcher(Path({cache!r}), {url!r}, timeout={timeout}).get(
    Fix(msgid={msgid!r}))
print(s.source, len(s.patches))
"""
