"""sys/atomic.py: a failed write leaves the old file and no temp file; the user's output keeps
its mode, is written through a symlink and straight into a device; inputs are never
overwritten by an output."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from patchcheck.errors import BadInput
from patchcheck.sys.atomic import atomic_file, atomic_write, refuse_overwrite, replace_file

REPO = Path(__file__).resolve().parents[2]


def test_atomic_write_replaces(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "f"
    atomic_write(p, b"one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(p.parent) == ["f"]


def test_a_failed_block_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(p) as f:
        f.write(b"new, half")
        raise RuntimeError("disk full")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def _write_limited(path: Path, data_len: int, limit: int) -> subprocess.CompletedProcess[str]:
    """replace_file in a child whose files may not grow past ``limit`` bytes (EFBIG: what a
    full disk looks like to the writer)."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from patchcheck.sys.atomic import replace_file\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "try:\n"
        f"    replace_file(Path({str(path)!r}), b'x' * {data_len})\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "    sys.exit(2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_replace_file_on_a_full_disk_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "report.html"
    p.write_bytes(b"the old report\n")
    cp = _write_limited(p, 1 << 20, 4096)
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert cp.stdout.startswith("BadInput ") and str(p) in cp.stdout and "too large" in cp.stdout.lower()
    assert p.read_bytes() == b"the old report\n"
    assert os.listdir(tmp_path) == ["report.html"]
    assert _write_limited(p, 100, 4096).returncode == 0
    assert p.read_bytes() == b"x" * 100


def test_replace_file_keeps_mode_and_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"{}")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    replace_file(link, b"[1]")
    assert link.is_symlink() and real.read_bytes() == b"[1]"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.json"
    old = os.umask(0o027)
    try:
        replace_file(fresh, b"[]")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_replace_file_writes_into_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    replace_file(fifo, b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("where", ["missing/report.json", "."])
def test_replace_file_errors_name_the_path(tmp_path: Path, where: str) -> None:
    target = tmp_path / where
    with pytest.raises(BadInput, match=f"^{target}: cannot write the output: "):
        replace_file(target, b"x")


def test_refuse_overwrite(tmp_path: Path) -> None:
    archive = tmp_path / "linux.tar.xz"
    archive.write_bytes(b"archive")
    tree = tmp_path / "tree"
    (tree / "fs").mkdir(parents=True)
    hard = tmp_path / "hard"
    os.link(archive, hard)
    soft = tmp_path / "soft"
    soft.symlink_to(archive)
    inputs = [(archive, "the tree"), (tree, "the tree"), (tmp_path / "gone", "the cache")]
    for bad in (archive, hard, soft, tree, tree / "fs" / "report.json", tmp_path / "x" / ".." / "linux.tar.xz"):
        with pytest.raises(BadInput, match="refusing to overwrite an input"):
            refuse_overwrite(bad, inputs)
    refuse_overwrite(tmp_path / "report.json", inputs)
    refuse_overwrite(tmp_path / "gone2" / "r.json", inputs)
