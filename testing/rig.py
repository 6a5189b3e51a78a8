"""The reliability suite's test bench: a small kernel-like tree, a bugs folder, a cache and
the local public-inbox server, and the ``patchcheck`` command run as a user runs it (a
subprocess, ``python -m patchcheck``), with the assertions every case shares."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_mbox, make_patch_mail
from testing.offline import child_env
from testing.pi_server import PIServer

REPO = Path(__file__).resolve().parents[1]
OLD = {"Makefile": MAKEFILE, "fs/a.c": c_file("a"), "fs/b.c": c_file("b")}
HUNK_A = ("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")
HUNK_B = ("\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)")
GOOD = "good-1@example.org"  # on the server: backportable on the tree (fs/a.c)
LOCAL = "b-local"  # a bug whose fix is a local mbox: judged with no network at all

Completed = subprocess.CompletedProcess[str]
Results = dict[str, dict[str, Any]]


def edit(files: dict[str, str], path: str, old: str, new: str) -> dict[str, str]:
    out = dict(files)
    assert old in out[path]
    out[path] = out[path].replace(old, new)
    return out


def patchcheck_args(
    *args: str,
    bugs: Path,
    cache: Path,
    lore: str | None,
    tree_cache: Path | None = None,
    shipped: bool = False,
    jobs: int | None = 2,
    offline: bool = False,
    timeout: float | None = None,
) -> list[str]:
    """patchcheck's arguments ``ARGS`` on a test's own bug folder, cache and archive
    (``lore`` None: no --lore-url, e.g. for --offline runs; ``jobs`` None: no -j)."""
    cmd = [*args, "--bugs-dir", str(bugs)]
    if not shipped:
        cmd.append("--no-shipped-bugs")
    cmd += ["--cache-dir", str(cache)]
    if tree_cache is not None:
        cmd += ["--tree-cache", str(tree_cache)]
    if lore is not None:
        cmd += ["--lore-url", lore]
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    if offline:
        cmd.append("--offline")
    if timeout is not None:
        cmd += ["--timeout", f"{timeout:g}"]
    return cmd


def patchcheck_argv(*args: str, **kw: Any) -> list[str]:
    """``python -m patchcheck`` with ``patchcheck_args``."""
    return [sys.executable, "-m", "patchcheck", *patchcheck_args(*args, **kw)]


def env() -> dict[str, str]:
    return child_env(PYTHONPATH=str(REPO))


def no_traceback(cp: Completed) -> None:
    for stream in (cp.stdout, cp.stderr):
        assert "Traceback" not in (stream or ""), stream
        assert "internal error" not in (stream or ""), stream


def hints(stderr: str) -> list[str]:
    """The ``hint: ...`` lines of ``stderr``, which must hold nothing else but the one-line
    summaries of error cells (``patchcheck: error: ...``)."""
    lines = stderr.splitlines()
    assert all(line.startswith(("hint: ", "patchcheck: error: ")) for line in lines), stderr
    return [line for line in lines if line.startswith("hint: ")]


def one_line_error(cp: Completed, code: int, *words: str) -> str:
    """Exit ``code``, nothing on stdout, one line on stderr holding every word (hint lines may
    follow it)."""
    no_traceback(cp)
    assert cp.returncode == code, (cp.returncode, cp.stdout, cp.stderr)
    lines = cp.stderr.strip().splitlines()
    assert lines, cp.stderr
    hints("\n".join(lines[1:]))
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def bug_file(d: Path, bug_id: str, *fixes: str) -> Path:
    body = f'id = "{bug_id}"\ntitle = "test bug {bug_id}"\nseverity = "high"\n'
    for f in fixes:
        body += f"\n[[fix]]\n{f}\n"
    path = d / f"{bug_id}.toml"
    path.write_text(body)
    return path


@dataclass
class Rig:
    root: Path
    tree: Path
    bugs: Path
    cache: Path
    server: PIServer
    diff_a: bytes
    diff_b: bytes

    def argv(
        self, *args: str, lore: str | None = None, offline: bool = False, timeout: float | None = None
    ) -> list[str]:
        # the tree cache inside the series cache, as in the default layout: a fresh cache is
        # cold for both
        return patchcheck_argv(
            *args,
            bugs=self.bugs,
            cache=self.cache,
            tree_cache=self.cache / "trees",
            lore=lore or self.server.url,
            offline=offline,
            timeout=timeout,
        )

    def run(
        self,
        *args: str,
        lore: str | None = None,
        offline: bool = False,
        timeout: float | None = None,
        limit: float = 90,
    ) -> Completed:
        return subprocess.run(
            self.argv(*args, lore=lore, offline=offline, timeout=timeout),
            capture_output=True,
            text=True,
            env=env(),
            timeout=limit,
            cwd=self.root,
        )

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, **kw),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
            cwd=self.root,
        )

    def check(self, *bugs: str, tree: Path | None = None, **kw: Any) -> tuple[Completed, Results]:
        """``patchcheck check --format json``: the process and its results by bug."""
        args = ["check", "--tree", str(tree or self.tree), "--format", "json"]
        for b in bugs:
            args += ["--bug", b]
        cp = self.run(*args, **kw)
        no_traceback(cp)
        assert cp.stdout.strip(), (cp.returncode, cp.stderr)
        data = json.loads(cp.stdout)
        return cp, {r["bug"]: r for r in data["results"]}

    def serve(self, msgid: str, diff: bytes | str, subject: str = "fix it", **kw: Any) -> None:
        """A one-patch thread ``msgid`` on the server."""
        self.server.add_thread(make_mbox([make_patch_mail(subject, diff, msgid, **kw)]))

    def fix_bug(self, bug_id: str, msgid: str, extra: str = "") -> None:
        bug_file(self.bugs, bug_id, f'msgid = "{msgid}"\n{extra}')


def make_rig(tmp_path: Path, server: PIServer) -> Rig:
    work = tmp_path / "gen"
    work.mkdir()
    tree = write_tree(tmp_path / "linux", OLD)
    diff_a = make_diff(work, OLD, edit(OLD, "fs/a.c", *HUNK_A))
    diff_b = make_diff(work, OLD, edit(OLD, "fs/b.c", *HUNK_B))
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    (bugs / "fixes" / "local.mbox").write_bytes(
        make_mbox([make_patch_mail("b: guard ctx", diff_b, "local-1@example.org")])
    )
    bug_file(bugs, LOCAL, 'mbox = "fixes/local.mbox"')
    rig = Rig(
        root=tmp_path, tree=tree, bugs=bugs, cache=tmp_path / "cache", server=server, diff_a=diff_a, diff_b=diff_b
    )
    rig.serve(GOOD, diff_a, "a: clamp ret1")
    rig.fix_bug("b-good", GOOD)
    return rig


def wait_for(cond: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals, limit: float = 20.0) -> tuple[int, str, str]:
    """Send ``sig`` to a running patchcheck; its exit code and output (bounded wait)."""
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"patchcheck still running {limit:g}s after {sig.name}: {err}") from None
    return proc.returncode, out, err


def run_many(argvs: list[list[str]], cwd: Path, limit: float = 60, workers: int = 4) -> list[Completed]:
    """Several independent patchcheck runs side by side (each start costs ~0.4 s of imports)."""

    def one(argv: list[str]) -> Completed:
        return subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=limit, cwd=cwd)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, argvs))


def drop_dac() -> list[str]:
    """A command prefix under which permissions bite even for root (CAP_DAC_* dropped), or []
    when not root; pytest.skip when root and setpriv is missing."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be made to bite")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
