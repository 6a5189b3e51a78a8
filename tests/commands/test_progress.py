"""Progress on the long steps (real CLI on a pseudo-terminal): bytes of an archive as it is
hashed and read, series as they are fetched, cells as they are checked; one stderr line
redrawn with \\r and cleared at the end; nothing on a pipe, nothing with --quiet."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import termios
import threading
from pathlib import Path

import pytest

from patchcheck.sys import progress
from testing.pi_server import PIServer
from testing.rig import LOCAL, OLD, Rig, env, make_rig
from testing.treegen import build_srpm, have, write_tar


@pytest.fixture
def rig(tmp_path: Path, pi_server: PIServer) -> Rig:
    return make_rig(tmp_path, pi_server)


def _on_tty(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (200 columns) and stdout on a pipe: (exit code,
    stdout, what the terminal got)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    got = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has gone
                return
            if not data:
                return
            got.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env(), cwd=cwd, text=True
        )
    finally:
        os.close(slave)
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out, got.decode("utf-8", "replace")


def _check_argv(rig: Rig, tree: Path, *extra: str) -> list[str]:
    return rig.argv("check", "--tree", str(tree), "--bug", "b-good", "--bug", LOCAL, "--format", "json", *extra)


def test_progress_on_a_terminal_not_on_a_pipe_nor_with_quiet(rig: Rig) -> None:
    tar = write_tar(rig.root / "linux-4.19.tar.gz", {k: v.encode() for k, v in OLD.items()}, mode="w:gz")
    rc, out, tty = _on_tty(_check_argv(rig, tar), rig.root)
    assert rc == 1 and json.loads(out)["results"][0]["verdict"] == "backportable", tty
    for frame in (
        "\rhashing linux-4.19.tar.gz: ",
        "\rreading linux-4.19.tar.gz: 0 B of ",
        "\rfetching series: 0 of 2",  # the server's and the local mbox
        "\rfetching series: 2 of 2",
        "\rchecking: 2 of 2 bug x tree cells",
    ):
        assert frame in tty, (frame, tty)
    assert "\n" not in tty  # one line, redrawn
    last = tty.rsplit("\r", 2)
    assert last[-1] == "" and last[-2].strip() == "", repr(tty[-80:])  # and cleared at the end
    assert "\r" not in out

    # the same run (warm now) with stderr on a pipe: not a byte of progress
    cold = rig.root / "linux-4.19-b.tar.gz"
    cold.write_bytes(tar.read_bytes() + b"\0" * 1024)
    cp = subprocess.run(_check_argv(rig, cold), capture_output=True, text=True, env=env(), timeout=120)
    assert cp.returncode == 1 and cp.stderr == "", cp.stderr

    # and on a terminal with -q / --quiet: nothing either
    for quiet in ("-q", "--quiet"):
        again = rig.root / f"linux-4.19{quiet}.tar.gz"
        again.write_bytes(tar.read_bytes() + b"\0" * 2048)
        rc, out, tty = _on_tty(_check_argv(rig, again, quiet), rig.root)
        assert rc == 1 and tty == "", repr(tty)


@pytest.mark.skipif(not have("rpmbuild"), reason="rpmbuild is not installed")
def test_srpm_payload_and_its_tarball_show_bytes_read(rig: Rig) -> None:
    srpm = build_srpm(rig.root / "rpmwork", rig.root / "srpms")
    rc, out, tty = _on_tty(rig.argv("check", "--tree", str(srpm), "--bug", LOCAL, "--format", "json"), rig.root)
    assert rc in (0, 1), tty
    assert json.loads(out)["results"][0]["tree"] == str(srpm)
    assert f"\rreading {srpm.name}: " in tty  # the SRPM's cpio payload
    assert "\rreading linux-4.19.90.tar.xz: " in tty  # the kernel tarball inside it
    assert "%)" in tty


def test_patchcheck_fetch_shows_series(rig: Rig) -> None:
    rc, out, tty = _on_tty(rig.argv("fetch", "--bug", "b-good"), rig.root)
    assert rc == 0 and "b-good" in out
    assert "\rfetching series: 1 of 1" in tty


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nested_tasks_hand_the_line_back(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Terminal()
    monkeypatch.setattr(progress, "_stream", None)
    progress.setup(quiet=False, stream=screen)
    try:
        with progress.task("checking", 4, "cells") as outer:
            outer.advance()
            with progress.task("reading big.tar.xz", 3 * 1024 * 1024, "bytes") as inner:
                inner.update(3 * 1024 * 1024)
            outer.advance(3)
    finally:
        progress.setup(quiet=True)
    frames = screen.getvalue().split("\r")
    shown = [f.strip() for f in frames if f.strip()]
    assert shown == [
        "checking: 0 of 4 cells",
        "reading big.tar.xz: 0 B of 3.0 MiB (0%)",
        "reading big.tar.xz: 3.0 MiB of 3.0 MiB (100%)",
        "checking: 1 of 4 cells",  # back to the outer task when the inner one closes
        "checking: 4 of 4 cells",
    ], shown
    assert frames[-1] == "" and frames[-2].strip() == ""


def test_off_unless_set_up() -> None:
    assert not progress.enabled()
    progress.setup(quiet=False, stream=io.StringIO())  # not a terminal
    assert not progress.enabled()
    with progress.task("x", 2) as t:
        t.advance(2)  # a no-op, and no error
