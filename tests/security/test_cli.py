"""The command line's boundary against hostile or mistaken input (issue 12): the real
`python -m patchcheck`, run with a private $HOME, $TMPDIR and working folder (a decoy), each
case asserting the exit code, one line on stderr, no traceback, and that nothing outside the
cache changed: $HOME, the decoy, $TMPDIR, the tree and the bugs folder stay byte-identical."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.pi_server import PIServer
from testing.rig import Completed, Rig, bug_file, interrupt, make_rig, one_line_error, wait_for
from testing.rig import env as rig_env
from testing.treegen import snapshot, write_tar


@dataclass
class Bench:
    rig: Rig
    home: Path
    decoy: Path
    tmpdir: Path

    def env(self, **extra: str) -> dict[str, str]:
        e = {k: v for k, v in rig_env().items() if not k.startswith("XDG_")}
        return {**e, "HOME": str(self.home), "TMPDIR": str(self.tmpdir), **extra}

    def argv(self, *args: str, **kw: Any) -> list[str]:
        return self.rig.argv(*args, **kw)

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        **kw: Any,
    ) -> Completed:
        return subprocess.run(
            self.argv(*args, **kw),
            capture_output=True,
            text=True,
            env=env or self.env(),
            cwd=self.decoy,
            timeout=120,
            preexec_fn=preexec,
        )

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, **kw),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.decoy,
        )

    def state(self) -> dict[str, object]:
        """Everything a run may not change (the cache is the one place it writes)."""
        return {str(p): snapshot(p) for p in (self.home, self.decoy, self.tmpdir, self.rig.tree, self.rig.bugs)}


@pytest.fixture
def bench(tmp_path: Path, pi_server: PIServer) -> Bench:
    rig = make_rig(tmp_path, pi_server)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".profile").write_text("# the user's\n")
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "notes.txt").write_text("the user's working folder\n")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    return Bench(rig=rig, home=home, decoy=decoy, tmpdir=tmpdir)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


# -- item 11: -o is written atomically ------------------------------------------------------


def test_output_on_a_full_disk_keeps_the_old_report(bench: Bench, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    report = out_dir / "report.html"
    check = ("check", "--tree", str(bench.rig.tree), "--bug", "b-good", "--format", "html", "-o", str(report))
    cp = bench.run(*check)
    assert cp.returncode == 1, cp.stderr
    old = report.read_bytes()
    assert len(old) > 4096
    before = bench.state()
    # files may not grow past 4 KiB (EFBIG, as a full disk would refuse): the report does
    cp = bench.run(*check, offline=True, preexec=_fsize_limit(4096))
    one_line_error(cp, 2, str(report), "cannot write the output")
    assert report.read_bytes() == old
    assert os.listdir(out_dir) == ["report.html"]
    assert bench.state() == before


# -- item 9: -o never overwrites an input -----------------------------------------------------


def _inputs(bench: Bench, tmp_path: Path) -> dict[str, Path]:
    """Every kind of input a run reads, each a real file or folder of this bench."""
    rig = bench.rig
    files = {p.relative_to(rig.tree).as_posix(): p.read_bytes() for p in rig.tree.rglob("*") if p.is_file()}
    archive = write_tar(tmp_path / "linux-4.19.tar.gz", files, "linux-4.19", "w:gz")
    mboxes = tmp_path / "mboxes"
    mboxes.mkdir()
    (mboxes / "vendor.mbox").write_bytes((rig.bugs / "fixes" / "local.mbox").read_bytes())
    bug_file(rig.bugs, "b-vendor", 'mbox = "../mboxes/vendor.mbox"')
    trees = tmp_path / "trees.toml"
    trees.write_text(f'[vendor]\npath = "{archive}"\n')
    (rig.cache / "series").mkdir(parents=True)
    (rig.cache / "series" / "entry.json").write_text("{}")
    return {"archive": archive, "mbox": mboxes / "vendor.mbox", "trees": trees}


def _targets(bench: Bench, tmp_path: Path, inputs: dict[str, Path]) -> dict[str, Path]:
    hard = tmp_path / "hard.tar.gz"
    os.link(inputs["archive"], hard)
    soft = tmp_path / "soft.tar.gz"
    soft.symlink_to(inputs["archive"])
    return {
        "the tree archive": inputs["archive"],
        "a hard link to it": hard,
        "a symlink to it": soft,
        "a bug file": bench.rig.bugs / "b-good.toml",
        "the bugs folder": bench.rig.bugs,
        "a new file in the bugs folder": bench.rig.bugs / "report.toml",
        "a bug's mbox": inputs["mbox"],
        "the trees file": inputs["trees"],
        "a cache file": bench.rig.cache / "series" / "entry.json",
        "the folder tree": bench.rig.tree / "report.json",
    }


def test_output_over_an_input_is_refused(bench: Bench, tmp_path: Path) -> None:
    inputs = _inputs(bench, tmp_path)
    targets = _targets(bench, tmp_path, inputs)
    digests = {k: snapshot(v.parent) for k, v in inputs.items()}
    cache = snapshot(bench.rig.cache)
    before = bench.state()
    common = ("--bug", "b-good", "--bug", "b-vendor", "--format", "json", "--trees-file", str(inputs["trees"]))
    runs = [
        ("audit", "--tree", "vendor", "--tree", str(bench.rig.tree), *common),
        ("check", "--tree", str(inputs["archive"]), *common),
    ]
    for what, target in targets.items():
        for argv in runs if "archive" in what or "link" in what else runs[:1]:
            cp = bench.run(*argv, "-o", str(target))
            one_line_error(cp, 2, f"-o {target}", "refusing to overwrite an input")
        assert bench.state() == before, what
        assert {k: snapshot(v.parent) for k, v in inputs.items()} == digests, what
        assert snapshot(bench.rig.cache) == cache, what
    # the same runs with an output elsewhere work
    for argv in runs:
        assert bench.run(*argv, "-o", str(bench.rig.root / "out.json")).returncode == 1


def test_triage_output_over_the_crash_log_is_refused(bench: Bench, tmp_path: Path) -> None:
    log = tmp_path / "vmcore-dmesg.txt"
    log.write_text("BUG: kernel NULL pointer dereference, address: 0000000000000000\n")
    cp = bench.run("triage", str(log), "-o", str(log))
    one_line_error(cp, 2, "the crash log", "refusing")
    assert log.read_text().startswith("BUG: kernel NULL pointer")


# -- item 12: SIGTERM / SIGHUP end the run cleanly ----------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_run_leaves_no_scratch_copies(bench: Bench, sig: signal.Signals) -> None:
    """Sent while the bugs are being checked (scratch copies of tree files exist in
    $TMPDIR): the exit-time cleanups run, nothing is left behind."""
    many = [f"b-many-{i:03d}" for i in range(MANY)]
    for b in many:
        bug_file(bench.rig.bugs, b, 'mbox = "fixes/local.mbox"')
    before = bench.state()
    argv = ["check", "--tree", str(bench.rig.tree), "--format", "json"]
    for b in many:
        argv += ["--bug", b]
    run = bench.popen(*argv)
    wait_for(lambda: run.poll() is not None or any(n.startswith("patchcheck-") for n in os.listdir(bench.tmpdir)))
    assert run.poll() is None, "the run ended before it could be interrupted: raise MANY"
    rc, out, err = interrupt(run, sig)
    assert os.listdir(bench.tmpdir) == []
    assert rc == 128 + sig, (rc, err)
    assert err.strip().splitlines() == [f"patchcheck: terminated by {sig.name}"], err
    assert out == ""
    assert bench.state() == before


MANY = 300


# -- item 14: impossible timeouts and URLs are bad options -------------------------------------

BAD_TIMEOUTS = ["inf", "-inf", "1e308", "nan", "0", "-1", "86401", "soon"]
BAD_URLS = [
    "http://[::1",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:0",
    "http://127.0.0.1:port",
    "ftp://127.0.0.1",
    "not a url",
    "http://",
    "http://127.0.0.1/?q=1",
]


@pytest.mark.parametrize("value", BAD_TIMEOUTS)
def test_impossible_timeout_is_a_bad_option(bench: Bench, value: str) -> None:
    before = bench.state()
    cp = bench.run("check", "--tree", str(bench.rig.tree), "--bug", "b-good", f"--timeout={value}")
    one_line_error(cp, 2, "--timeout", repr(value))
    assert bench.state() == before and not bench.rig.cache.exists()


@pytest.mark.parametrize("value", BAD_URLS)
def test_impossible_lore_url_is_a_bad_option(bench: Bench, value: str) -> None:
    before = bench.state()
    cp = bench.run("check", "--tree", str(bench.rig.tree), "--bug", "b-good", lore=value)
    one_line_error(cp, 2, "--lore-url", repr(value))
    # the same from the environment
    argv = [
        sys.executable,
        "-m",
        "patchcheck",
        "fetch",
        "--all",
        "--no-shipped-bugs",
        "--bugs-dir",
        str(bench.rig.bugs),
    ]
    argv += ["--cache-dir", str(bench.rig.cache)]
    env = bench.env(PATCHCHECK_LORE_URL=value)
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=bench.decoy, timeout=60)
    one_line_error(cp, 2, "PATCHCHECK_LORE_URL", repr(value))
    assert bench.state() == before and not bench.rig.cache.exists()
    assert bench.rig.server.requests == []


def test_triage_threshold_must_be_a_fraction(bench: Bench, tmp_path: Path) -> None:
    log = tmp_path / "dmesg.txt"
    log.write_text("BUG: kernel NULL pointer dereference, address: 0000000000000000\n")
    for value in ("nan", "inf", "-0.1", "2"):
        one_line_error(bench.run("triage", str(log), f"--threshold={value}"), 2, "--threshold", repr(value))


# -- item 15: a deeply nested bug file is a bad bug file ---------------------------------------


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a = ", "}")])
def test_deeply_nested_bug_file_names_the_file(bench: Bench, opening: str, closing: str) -> None:
    depth = 50_000
    bad = bench.rig.bugs / "b-deep.toml"
    value = f"{opening * depth}1{closing * depth}"
    bad.write_text(f'id = "b-deep"\ntitle = "deep"\nseverity = "high"\naffects = {value}\n')
    before = bench.state()
    for argv in (("bugs", "validate"), ("check", "--tree", str(bench.rig.tree), "--bug", "b-deep")):
        cp = bench.run(*argv)
        one_line_error(cp, 2, str(bad), "nested too deeply")
    assert bench.state() == before


# -- item 17: an internal error has its own exit code and a log -----------------------------------

# A defect planted in the running patchcheck (the bug-file parser raises), then the real
# command-line boundary runs as `python -m patchcheck` would run it.
_DEFECT = """
import sys
import patchcheck.bugs.load as load
def broken(path, data):
    raise ZeroDivisionError("planted defect\\nsecond line")
load.parse_bug = broken
from patchcheck.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_internal_error_exits_4_and_logs_the_traceback(bench: Bench) -> None:
    before = bench.state()
    args = bench.argv("check", "--tree", str(bench.rig.tree), "--bug", "b-good")[3:]  # past "python -m patchcheck"
    argv = [sys.executable, "-c", _DEFECT, *args]
    state = bench.tmpdir.parent / "state"
    cp = subprocess.run(
        argv, capture_output=True, text=True, env=bench.env(XDG_STATE_HOME=str(state)), cwd=bench.decoy, timeout=60
    )
    assert cp.returncode == 4, (cp.returncode, cp.stderr)
    assert cp.stdout == "" and "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    assert "internal error" in lines[0] and "ZeroDivisionError: planted defect" in lines[0]
    # never in the series cache, which a packaging repository may commit
    assert not (bench.rig.cache / "logs").exists()
    logs = list((state / "patchcheck" / "logs").iterdir())
    assert len(logs) == 1 and f"traceback in {logs[0]}" in lines[0]
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: planted defect" in text
    assert "in broken" in text  # the frame of the defect
    assert bench.state() == before
