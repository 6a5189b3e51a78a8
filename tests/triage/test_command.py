"""`patchcheck triage` through the real command line."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.model import Bug
from patchcheck.triage.score import triage_text
from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail
from testing.pi_server import PIServer
from tests.triage.oopses import ARM64_419, CRASH_BT, EXT4_NULL, KASAN_SUNRPC, NO_OOPS, X86_68, X86_419

# ---- the command ---------------------------------------------------------------------------


def triage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bugs_dir: Path, log: str, *args: str
) -> tuple[int, str, str]:
    """``patchcheck triage`` through the real command line: (exit code, stdout, stderr)."""
    argv = [
        "triage",
        log,
        "--bugs-dir",
        str(bugs_dir),
        "--no-shipped-bugs",
        "--cache-dir",
        str(tmp_path / "c"),
        "--offline",
        *args,
    ]
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def read_back(fmt: str, text: str) -> set[str]:
    """The matched bug ids, read from a triage report in ``fmt``."""
    if fmt == "json":
        return {m["bug"] for m in json.loads(text)["matches"]}
    if fmt == "junit":
        root = ET.fromstring(text)
        return {c.get("name", "") for c in root.findall("testsuite[@name='triage']/testcase")}
    if fmt == "markdown":
        lines = text.splitlines()
        head = lines.index("| Score | Bug | Severity | Title | Why |")
        rows = itertools.takewhile(lambda ln: ln.startswith("|"), lines[head + 2 :])
        return {ln.split("|")[2].strip().strip("`") for ln in rows}
    if fmt == "html":
        table = text.split('<table id="matches">', 1)[1].split("</table>", 1)[0]
        return set(re.findall(r'<th scope="row"><code>([^<]+)</code>', table))
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("score"))
    rows = itertools.takewhile(str.strip, lines[head + 1 :])
    return {ln.split()[1] for ln in rows if re.match(r"\d\.\d\d ", ln)}  # not a wrapped "why" line


def kernel_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\n")
    return tree


def test_command_table(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "vmcore-dmesg.txt"
    log.write_text(X86_419)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log))
    assert rc == 0
    assert "bpf_prog_array_copy" in out
    assert "4.19.90-2102.2.0.0068.ctl2.x86_64" in out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("score"))
    assert lines[header + 1].split()[1] == "perf-bpf-prog-detach"


def test_command_json(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_68)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert set(doc) == {"oops", "matches"}
    assert {"headline", "function", "trace", "release", "comm"} <= set(doc["oops"])
    assert doc["oops"]["function"] == "__bpf_nf_ct_lookup"
    assert isinstance(doc["oops"]["trace"], list)
    assert doc["matches"][0]["bug"] == "nf-ct-lookup-opts"
    assert set(doc["matches"][0]) == {"bug", "score", "why"}
    assert 0.35 <= doc["matches"][0]["score"] <= 1.0


@pytest.mark.parametrize("fmt", ["markdown", "html", "junit"])
def test_command_every_format_without_tree(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), "--format", fmt)
    assert rc == 0 and err == ""
    assert read_back(fmt, out) == {"perf-bpf-prog-detach"}
    assert "bpf_prog_array_copy" in out  # the faulting function is shown


def test_command_no_oops(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(NO_OOPS)
    for fmt in ("table", "json"):
        rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), "--format", fmt)
        assert rc == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "no oops found" in lines[0] and str(log) in lines[0], err


def test_command_stdin(
    tmp_path: Path, bugs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = io.TextIOWrapper(io.BytesIO(CRASH_BT.encode() + b"\xff\xfe junk\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, "-", "--format", "json")
    assert rc == 0
    assert json.loads(out)["matches"][0]["bug"] == "nfsd-callback-wq"


def test_command_unreadable_file(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(tmp_path / "missing.log"))
    assert rc == 2 and out == ""
    assert "missing.log" in err and len(err.strip().splitlines()) == 1


def test_command_tree_checks_the_top_matches(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(ARM64_419)
    tree = kernel_tree(tmp_path)
    report = tmp_path / "r.json"
    args = ("--tree", str(tree), "--top", "1", "--format", "json", "-o", str(report))
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), *args)
    # offline with an empty cache: the one matched bug is checked, and its series is missing
    assert rc == 3, err
    doc = json.loads(report.read_text())
    assert [r["bug"] for r in doc["results"]] == ["nfsd-callback-wq"]


def test_command_tree_without_matches_skips_check(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(EXT4_NULL)
    # a tree that does not exist: opening it would be exit 2, so 0 says no check was tried
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tmp_path / "absent"))
    assert rc == 0 and "no known bug matches" in out


def test_triage_text_api(bugs: list[Bug]) -> None:
    oops, matches = triage_text(KASAN_SUNRPC, bugs)
    assert oops is not None and matches[0].bug == "sunrpc-listen-data-ready-uaf"
    assert triage_text(NO_OOPS, bugs) == (None, [])


def test_command_output_file(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(KASAN_SUNRPC)
    report = tmp_path / "triage.json"
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--format", "json", "-o", str(report))
    assert rc == 0 and out == ""
    assert json.loads(report.read_text())["matches"][0]["bug"] == "sunrpc-listen-data-ready-uaf"


def test_command_tree_json_is_one_document(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    tree = kernel_tree(tmp_path)
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tree), "--format", "json")
    assert rc == 3
    doc = json.loads(out)
    assert doc["matches"][0]["bug"] == "perf-bpf-prog-detach"
    assert doc["oops"]["function"] == "bpf_prog_array_copy"
    assert doc["results"][0]["bug"] == "perf-bpf-prog-detach"
    # the error (series not cached, offline) is summarised on stderr, in one line, then a hint
    errors = [ln for ln in err.splitlines() if not ln.startswith("hint: ")]
    assert len(errors) == 1 and "perf-bpf-prog-detach" in errors[0]


def test_command_tree_goes_on_to_check(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    tree = kernel_tree(tmp_path)
    # offline with an empty cache: the matched bug is checked, and its series is missing
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tree), "--format", "json")
    assert rc == 3
    assert '"verdict": "error"' in out and "not in cache (offline)" in out


# ---- --tree in every format, with a real fetch from the local public-inbox server -----------


def test_command_tree_every_format_real_fetch(tmp_path: Path, bugs_dir: Path, pi_server: PIServer) -> None:
    old = {"Makefile": MAKEFILE, "kernel/events/core.c": c_file("core")}
    new = dict(old)
    new["kernel/events/core.c"] = old["kernel/events/core.c"].replace(
        "\treturn ret1;", "\treturn ret1 ?: -EINVAL;"
    )
    work = tmp_path / "w"
    work.mkdir()
    mid = "perf-fix-1@example.org"
    pi_server.add_thread(make_patch_mail("perf: keep the prog array alive", make_diff(work, old, new), mid))
    bug = bugs_dir / "perf-bpf-prog-detach.toml"
    bug.write_text(bug.read_text().replace("20241104135518.978956692@infradead.org", mid))
    tree = write_tree(tmp_path / "linux", old)
    log = tmp_path / "vmcore-dmesg.txt"
    log.write_text(X86_419)
    base = [
        sys.executable,
        "-m",
        "patchcheck",
        "triage",
        str(log),
        "--tree",
        str(tree),
        "--bugs-dir",
        str(bugs_dir),
        "--no-shipped-bugs",
    ]
    base += ["--cache-dir", str(tmp_path / "c"), "--lore-url", pi_server.url, "-j", "2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for fmt in ("table", "json", "markdown", "html", "junit"):
        out = tmp_path / f"triage.{fmt}"
        cp = subprocess.run([*base, "--format", fmt, "-o", str(out)], capture_output=True, text=True, env=env)
        # the fix applies: a finding, exit 1; nothing on stdout, nothing to say on stderr
        assert (cp.returncode, cp.stdout, cp.stderr) == (1, "", ""), (fmt, cp.stderr)
        text = out.read_text()
        assert read_back(fmt, text) == {"perf-bpf-prog-detach"}, fmt
        assert "backportable" in text, fmt
        if fmt == "json":
            r = json.loads(text)["results"][0]
            assert (r["bug"], r["verdict"], r["method"]) == ("perf-bpf-prog-detach", "backportable", "clean")
        if fmt == "junit":
            failed = ET.fromstring(text).findall("testsuite/testcase/failure")
            assert [f.get("type") for f in failed] == ["backportable"]
    # one fetch, then the cache
    assert len([p for p in pi_server.requests if "t.mbox.gz" in p]) == 1
