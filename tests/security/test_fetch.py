"""Hostile archives and mail cannot reach outside (issue 12, the fetch room).

Each case drives the real CLI (``python -m patchcheck``) against the local public-inbox
server in a hostile mode, and checks: the exit code, a one-line error naming the limit or
the URLs, no traceback, nothing created or changed outside the cache and the scratch folder
(a decoy folder, ``$HOME``, the bugs folder and the user's tree are snapshotted before and
after), and for the resource cases the child's peak RSS (``wait4``'s rusage, the same
figure ``getrusage(RUSAGE_CHILDREN)`` reports) and wall time.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.mailgen import make_mbox, make_patch_mail, make_reply
from testing.pi_server import PIServer
from testing.rig import GOOD, Rig, bug_file, drop_dac, env, make_rig

MAX_RSS_MB = 300
# The CLI runs under a small launcher: a fresh process, so the peak RSS it reads with
# getrusage(RUSAGE_CHILDREN) is patchcheck's, not the high-water mark a child forked from
# pytest inherits. It also caps the address space, far above MAX_RSS_MB: a build without
# the limits dies of MemoryError instead of taking the machine down with it.
_ADDRESS_SPACE = 4 << 30
_LAUNCH = """
import resource, subprocess, sys
space, timeout, report = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
try:
    code = subprocess.run(sys.argv[4:], preexec_fn=cap, timeout=timeout).returncode
except subprocess.TimeoutExpired:
    code = 124
with open(report, "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Run:
    code: int
    out: str
    err: str
    rss_mb: float
    seconds: float

    def clean(self) -> None:
        for stream in (self.out, self.err):
            assert "Traceback" not in stream, stream
            assert "internal error" not in stream, stream

    def results(self) -> dict[str, dict[str, object]]:
        return {r["bug"]: r for r in json.loads(self.out)["results"]}


def _snapshot(root: Path, skip: set[str]) -> dict[str, object]:
    """Every entry beneath ``root`` (but the ``skip`` top-level names): its kind and mode,
    and a regular file's bytes. FIFOs and devices are never opened."""
    out: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for name in [*dirs, *files]:
            p = Path(dirpath) / name
            st = p.lstat()
            key = str(rel_dir / name)
            if stat.S_ISREG(st.st_mode) and st.st_size > 1 << 20:
                out[key] = ("big file", st.st_mode, st.st_size, st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                out[key] = ("file", st.st_mode, p.read_bytes())
            elif stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(p))
            else:
                out[key] = ("other", st.st_mode)
    return out


class World:
    """The rig (tree, bugs, cache, server) plus a $HOME, a decoy folder and a scratch TMPDIR."""

    def __init__(self, tmp_path: Path, server: PIServer) -> None:
        self.rig: Rig = make_rig(tmp_path, server)
        self.root = tmp_path
        self.server = server
        self.home = tmp_path / "home"
        (self.home / ".config").mkdir(parents=True)
        (self.home / ".gitconfig").write_text("[user]\n\tname = someone\n")
        self.decoy = tmp_path / "decoy"
        self.decoy.mkdir()
        (self.decoy / "keep.txt").write_text("not yours\n")
        self.scratch = tmp_path / "scratch"
        self.scratch.mkdir()

    def outside(self) -> dict[str, object]:
        return _snapshot(self.root, {"cache", "scratch"})

    def run(self, *args: str, prefix: tuple[str, ...] = (), limit: float = 60, **environ: str) -> Run:
        """The CLI as a user runs it; the snapshot outside cache/scratch must not change."""
        before = self.outside()
        report = self.scratch / "maxrss"
        launch = [sys.executable, "-c", _LAUNCH, str(_ADDRESS_SPACE), str(limit), str(report)]
        argv = [*prefix, *launch, *self.rig.argv(*args)]
        e = {**env(), "HOME": str(self.home), "TMPDIR": str(self.scratch), **environ}
        for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            e.pop(var, None)
        t0 = time.monotonic()
        cp = subprocess.run(argv, capture_output=True, text=True, env=e, cwd=self.root, timeout=limit + 30)
        seconds = time.monotonic() - t0
        assert cp.returncode != 124, f"patchcheck {' '.join(args)} still running after {limit:g}s"
        r = Run(cp.returncode, cp.stdout, cp.stderr, int(report.read_text()) / 1024, seconds)
        report.unlink()
        r.clean()
        assert self.outside() == before, "something outside the cache and scratch changed"
        return r

    def check(self, *bugs: str, opts: tuple[str, ...] = (), limit: float = 60, **environ: str) -> Run:
        args = ["check", "--tree", str(self.rig.tree), "--format", "json", *opts]
        for b in bugs:
            args += ["--bug", b]
        return self.run(*args, limit=limit, **environ)


@pytest.fixture
def world(tmp_path: Path, pi_server: PIServer) -> World:
    return World(tmp_path, pi_server)


def _series_error(r: Run, bug: str) -> str:
    """The bug's verdict is ``error``; its error text."""
    assert r.code == 3, (r.code, r.out, r.err)
    res = r.results()[bug]
    assert res["verdict"] == "error", res
    return json.dumps(res)


def gzip_bomb(total: int) -> bytes:
    """A gzipped thread of one mail whose body is ``total`` zero bytes (~1 KB per MiB):
    full-flushed deflate blocks of the same MiB are the same bytes, so it is built in a blink."""
    mib = bytes(1 << 20)
    head = b"From mboxrd@z Thu Jan  1 00:00:00 1970\nMessage-Id: <good-1@example.org>\nSubject: x\n\n"
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    n = total >> 20
    crc = zlib.crc32(head)
    for _ in range(n):
        crc = zlib.crc32(mib, crc)
    size = (len(head) + n * len(mib)) & 0xFFFFFFFF
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + first + block * n + c.flush() + struct.pack("<II", crc, size)


# ---- 8: a redirect to another origin -------------------------------------------------------


def test_redirect_to_another_origin_is_refused(world: World) -> None:
    thread = make_mbox([make_patch_mail("a: clamp ret1", world.rig.diff_a, GOOD)])
    with PIServer() as other:
        other.add_thread(thread)  # following the redirect would find the thread
        world.server.fault = "redirect"
        world.server.redirect_to = other.url
        text = _series_error(world.check("b-good"), "b-good")
        assert other.requests == []
    assert "another origin" in text
    assert f"{world.server.url}/all/good-1%40example.org/t.mbox.gz" in text
    assert f"{other.url}/moved/all/good-1%40example.org/t.mbox.gz" in text
    # within the archive's own origin a redirect is followed
    world.server.redirect_to = None
    r = world.check("b-good")
    assert (r.code, r.results()["b-good"]["verdict"]) == (1, "backportable")


# ---- 10: fetch that cannot store ------------------------------------------------------------


def test_fetch_that_stores_nothing_is_exit_3(world: World) -> None:
    prefix = tuple(drop_dac())  # as root, permissions bite only without CAP_DAC_OVERRIDE
    cache = world.rig.cache
    cache.mkdir()
    cache.chmod(0o555)
    try:
        r = world.run("fetch", "--bug", "b-good", prefix=prefix)
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o755)
    assert r.code == 3, (r.out, r.err)
    [line] = [ln for ln in r.out.splitlines() if "b-good" in ln]
    assert GOOD in line and "not stored in the cache" in line and str(cache) in line
    # what the message warns about: an offline run finds nothing
    off = world.run("check", "--tree", str(world.rig.tree), "--bug", "b-good", "--offline")
    assert off.code == 3


# ---- 18: a gzip bomb from the archive -------------------------------------------------------


def test_gzip_bomb_is_refused_in_bounded_memory(world: World) -> None:
    world.server.fault = "body"
    world.server.body = gzip_bomb(2 << 30)  # 2 GiB of zeros in ~2 MB
    r = world.check("b-good", limit=60)
    text = _series_error(r, "b-good")
    assert "--max-thread-bytes (256 MiB)" in text and "raise it with --max-thread-bytes" in text
    assert r.rss_mb < MAX_RSS_MB, r.rss_mb
    assert r.seconds < 30
    assert not world.rig.cache.exists() or not any((world.rig.cache / "series").glob("good-1*"))
    # the limit is the user's to raise (here: lower)
    world.server.body = gzip_bomb(8 << 20)
    r = world.check("b-good", PATCHCHECK_MAX_THREAD_BYTES="4M")
    assert "--max-thread-bytes (4 MiB)" in _series_error(r, "b-good")


# ---- 19: an endless HTTP answer -------------------------------------------------------------


def test_endless_answer_is_cut_at_the_answer_limit(world: World) -> None:
    world.server.fault = "endless"
    world.server.fault_seconds = 60
    r = world.check("b-good", opts=("--timeout", "30"), limit=60)
    text = _series_error(r, "b-good")
    assert "--max-answer-bytes (64 MiB)" in text and "raise it with --max-answer-bytes" in text
    assert r.rss_mb < MAX_RSS_MB, r.rss_mb
    assert r.seconds < 20
    r = world.check("b-good", opts=("--max-answer-bytes", "1M"))
    assert "--max-answer-bytes (1 MiB)" in _series_error(r, "b-good")


# ---- 21: mbox = a FIFO, a device, a huge file ------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_mbox_must_be_a_bounded_regular_file(world: World, kind: str) -> None:
    path = world.rig.bugs / "fixes" / "hostile.mbox"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(8 << 30)  # sparse: 8 GiB that take no disk
    bug_file(world.rig.bugs, "b-hostile", f'mbox = "{path}"')
    r = world.check("b-hostile", "b-good", limit=30)
    assert r.code == 2, (r.out, r.err)
    [line] = r.err.strip().splitlines()
    assert str(path) in line
    if kind == "huge":
        assert "--max-mbox-bytes (64 MiB)" in line and "raise it with --max-mbox-bytes" in line
    else:
        assert "not a regular file" in line
    assert r.seconds < 20 and r.rss_mb < MAX_RSS_MB, (r.seconds, r.rss_mb)


# ---- mails per thread -------------------------------------------------------------------------


def test_thread_with_too_many_mails_is_refused(world: World) -> None:
    patch = make_patch_mail("a: clamp ret1", world.rig.diff_a, "many-0@example.org")
    replies = [make_reply("a: clamp ret1", f"many-{i}@example.org", "many-0@example.org") for i in range(1, 40)]
    world.server.add_thread(make_mbox([patch, *replies]))
    world.rig.fix_bug("b-many", "many-0@example.org")
    r = world.check("b-many", PATCHCHECK_MAX_THREAD_MAILS="30")
    text = _series_error(r, "b-many")
    assert "thread of 40 mails exceeds --max-thread-mails (30)" in text
    r = world.check("b-many", opts=("--max-thread-mails", "40"))
    assert (r.code, r.results()["b-many"]["verdict"]) == (1, "backportable")
