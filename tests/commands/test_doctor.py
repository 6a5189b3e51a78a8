"""`patchcheck doctor`, `--version`, and the "command not found" errors that name the package,
run against a PATH holding only some of the real tools."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.errors import ToolError
from patchcheck.sys import proc
from patchcheck.sys.tools import TOOLS, require
from testing import treegen

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_BUGS = REPO / "examples" / "known_bugs"
REAL_PATH = os.environ["PATH"]


def only(tmp_path: Path, *tools: str) -> str:
    """A PATH of one folder holding links to just ``tools`` (the real binaries)."""
    bin_dir = tmp_path / ("bin-" + "-".join(tools))
    bin_dir.mkdir()
    for t in tools:
        real = shutil.which(t, path=REAL_PATH)
        assert real, f"test machine lacks {t}"
        (bin_dir / t).symlink_to(real)
    return str(bin_dir)


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["doctor", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def row(out: str, first: str, table: int = 0) -> str:
    """The line of the tools table (0) or of the tree kinds table (1) that starts with ``first``."""
    part = out.split("\ntree kind")[table]
    (line,) = [ln for ln in part.splitlines() if ln.split()[:1] == [first]]
    return line


def kind(out: str, name: str) -> str:
    return row(out, name, 1)


def test_core_tools_only_is_ready_for_most_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", only(tmp_path, "git", "patch"))
    rc, out, _ = doctor(capsys)
    assert rc == 0
    real_git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"\d+(?:\.\d+)+", real_git)
    assert version and f"ok {version.group(0)}" in row(out, "git")
    assert "MISSING" in row(out, "rpm2cpio") and "rpm2cpio" in row(out, "rpm2cpio").split("MISSING")[1]
    for name in ("git", "folder", "tarball", "deb", "dsc"):
        assert kind(out, name).split()[1] == "yes", kind(out, name)
    srpm = kind(out, "srpm")
    assert "no: missing rpm, rpm2cpio, cpio, bash" in srpm
    assert "apt-get install rpm rpm2cpio cpio bash" in srpm and "dnf install rpm cpio bash" in srpm


def test_a_kind_asked_for_must_be_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", only(tmp_path, "git", "patch", "rpm", "bash"))
    rc, _, err = doctor(capsys, "--kind", "srpm")
    assert rc == 1
    assert "missing cpio, rpm2cpio" in err
    monkeypatch.setenv("PATH", only(tmp_path, "git", "patch", "rpm", "bash", "rpm2cpio", "cpio"))
    assert doctor(capsys, "--kind", "srpm", "--kind", "dsc")[0] == 0


def test_missing_core_tool_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", only(tmp_path, "patch", "xz"))
    rc, out, err = doctor(capsys)
    assert rc == 1
    assert "MISSING" in row(out, "git")
    assert "missing git" in err
    assert kind(out, "folder").split()[1:3] == ["no:", "missing"]


def test_version_names_patchcheck_and_b4(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("patchcheck 0.")
    assert f"b4 {version('b4')}" in line


def test_missing_tool_error_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", only(tmp_path, "git"))
    with pytest.raises(ToolError) as ex:
        proc.run(["rpm2cpio", "x.src.rpm"])
    msg = str(ex.value)
    assert "\n" not in msg
    assert "rpm2cpio: command not found" in msg
    assert "apt-get install rpm2cpio" in msg and "dnf install rpm" in msg
    with pytest.raises(
        ToolError, match=r"^cpio: command not found, needed for \.src\.rpm trees; .*apt-get install cpio"
    ):
        require("cpio", ".src.rpm trees")
    assert require("git") == str(tmp_path / "bin-git" / "git")


def test_srpm_without_rpm_says_which_package(tmp_path: Path) -> None:
    """The user-facing run: an SRPM tree on a machine without rpm is a one-line error, exit 2,
    naming the package (the demo bug's fix is a local mbox: no network)."""
    if not treegen.have("rpmbuild"):
        pytest.skip("rpmbuild is needed to build the test SRPM")
    srpm = treegen.build_srpm(tmp_path / "work", tmp_path / "srpms")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PATCHCHECK_")},
        "PATH": only(tmp_path, "git", "patch"),
        "PYTHONPATH": str(REPO),
    }
    cp = subprocess.run(
        [sys.executable, "-m", "patchcheck", "--tree", str(srpm), "--bug", "demo-nfsd-callback-wq"]
        + ["--bugs-dir", str(EXAMPLE_BUGS), "--cache-dir", str(tmp_path / "cache"), "--offline", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    assert "rpm: command not found" in lines[0] and "apt-get install rpm" in lines[0]


def test_readme_prerequisites_match_the_table() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Prerequisites", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[0].strip("` "): [c.strip("` ") for c in cells]
        for line in section.splitlines()
        if line.startswith("| `") and (cells := line.strip("|").split("|"))
    }
    assert set(rows) == {t.name for t in TOOLS}
    for t in TOOLS:
        assert t.apt in rows[t.name] and t.dnf in rows[t.name], (t.name, rows[t.name])
