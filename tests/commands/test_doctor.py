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
from testing.offline import child_env

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


def test_core_tools_only_is_ready_for_every_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """git and GNU patch are all a check needs: SRPMs are read in Python (rpmfile, our cpio
    reader); the decompressors only speed archives up, zstd aside."""
    monkeypatch.setenv("PATH", only(tmp_path, "git", "patch"))
    rc, out, _ = doctor(capsys)
    assert rc == 0
    real_git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"\d+(?:\.\d+)+", real_git)
    assert version and f"ok {version.group(0)}" in row(out, "git")
    assert "MISSING" in row(out, "zstd") and "zstd" in row(out, "zstd").split("MISSING")[1]
    for name in ("git", "folder", "tarball", "deb", "srpm", "dsc"):
        assert kind(out, name).split()[1] == "yes", kind(out, name)


def test_a_kind_asked_for_must_be_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", only(tmp_path, "patch"))
    rc, _, err = doctor(capsys, "--kind", "srpm")
    assert rc == 1
    assert "missing git" in err
    monkeypatch.setenv("PATH", only(tmp_path, "git", "patch"))
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
        proc.run(["zstd", "-dc"])
    msg = str(ex.value)
    assert "\n" not in msg
    assert "zstd: command not found" in msg
    assert "apt-get install zstd" in msg and "dnf install zstd" in msg
    with pytest.raises(
        ToolError, match=r"^patch: command not found, needed for every check; .*apt-get install patch"
    ):
        require("patch", "every check")
    assert require("git") == str(tmp_path / "bin-git" / "git")


def _check(tree: Path, tmp_path: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = child_env(PATH=path, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "patchcheck", "--tree", str(tree), "--bug", "demo-nfsd-callback-wq"]
        + ["--no-shipped-bugs", "--bugs-dir", str(EXAMPLE_BUGS), "--cache-dir", str(tmp_path / "cache"), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_srpm_needs_no_rpm_tools(tmp_path: Path) -> None:
    """An SRPM is read with git and patch alone on PATH (the demo fix is a local mbox)."""
    if not treegen.have("rpmbuild"):
        pytest.skip("rpmbuild is needed to build the test SRPM")
    srpm = treegen.build_srpm(tmp_path / "work", tmp_path / "srpms")
    cp = _check(srpm, tmp_path, only(tmp_path, "git", "patch"))
    assert cp.returncode in (0, 1), (cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr and "command not found" not in cp.stderr


def test_zstd_tarball_without_zstd_says_which_package(tmp_path: Path) -> None:
    """The user-facing run: a .tar.zst tree on a machine without zstd is a one-line error,
    exit 2, naming the package."""
    if not treegen.have("zstd"):
        pytest.skip("zstd is needed to build the test tarball")
    tar = treegen.write_tar(tmp_path / "linux.tar", treegen.FINAL, treegen.TOP)
    subprocess.run(["zstd", "-q", "--rm", str(tar)], check=True)
    cp = _check(tmp_path / "linux.tar.zst", tmp_path, only(tmp_path, "git", "patch"))
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    assert "zstd: command not found" in lines[0] and "apt-get install zstd" in lines[0]


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
