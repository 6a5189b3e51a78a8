"""run_matrix in forked worker processes: the same results as one process, in the same
order, and no scratch folder left behind by the workers."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from patchcheck.cli import main
from patchcheck.pipeline import MIN_CELLS_FOR_PROCESSES
from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail

N = 12  # bugs; x 2 trees = 24 cells, enough for the worker processes


def audit(capsys: pytest.CaptureFixture[str], trees: list[Path], bugs: Path, jobs: int) -> list[dict]:
    args = ["audit", *[a for t in trees for a in ("--tree", str(t))], "--all", "--bugs-dir", str(bugs)]
    args += ["--no-shipped-bugs", "--offline", "--format", "json", "-j", str(jobs), "-q"]
    assert main(args) == 1  # findings: the old tree lacks every fix
    doc = json.loads(capsys.readouterr().out)
    return doc["results"]  # type: ignore[no-any-return]


def test_workers_agree_with_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert 2 * N >= MIN_CELLS_FOR_PROCESSES
    old = {"Makefile": MAKEFILE, **{f"fs/f{i}.c": c_file(f"f{i}") for i in range(N)}}
    new = {
        k: v.replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;") for k, v in old.items()
    }
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    for i in range(N):
        diff = make_diff(tmp_path / f"d{i}", {"a.c": old[f"fs/f{i}.c"]}, {"a.c": new[f"fs/f{i}.c"]})
        diff = diff.replace(b"a/a.c", f"a/fs/f{i}.c".encode()).replace(b"b/a.c", f"b/fs/f{i}.c".encode())
        (bugs / "fixes" / f"b{i}.mbox").write_bytes(make_patch_mail(f"fs: fix f{i}", diff, f"b{i}@x.org"))
        (bugs / f"b{i:02d}.toml").write_text(f'id = "b{i:02d}"\ntitle = "t"\n[[fix]]\nmbox = "fixes/b{i}.mbox"\n')
    trees = [write_tree(tmp_path / "old", old), write_tree(tmp_path / "new", new)]
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_tmp))
    monkeypatch.setenv("PATCHCHECK_CACHE_DIR", str(tmp_path / "cache"))

    two = audit(capsys, trees, bugs, jobs=2)
    assert list(scratch_tmp.iterdir()) == []  # the workers removed their scratch folders
    one = audit(capsys, trees, bugs, jobs=1)
    assert two == one
    assert [(r["tree"], r["bug"]) for r in two] == [(str(t), f"b{i:02d}") for t in trees for i in range(N)]
    verdicts = [r["verdict"] for r in two]
    assert verdicts.count("backportable") == N and verdicts.count("present") == N
