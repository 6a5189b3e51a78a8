"""run_matrix in forked worker processes: the same results as one process, in the same
order, and no scratch folder left behind by the workers."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from patchcheck import pipeline
from patchcheck.cli import main
from patchcheck.commands import common
from patchcheck.engine import scratch
from patchcheck.pipeline import MIN_CELLS_FOR_PROCESSES
from patchcheck.report.json_report import encode_result
from patchcheck.report.model import Report
from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail

N = 12  # bugs; x 2 trees = 24 cells, enough for the worker processes


def audit(capsys: pytest.CaptureFixture[str], trees: list[Path], bugs: Path, jobs: int) -> list[dict]:
    args = ["audit", *[a for t in trees for a in ("--tree", str(t))], "--all", "--bugs-dir", str(bugs)]
    args += ["--no-shipped-bugs", "--offline", "--format", "json", "-j", str(jobs), "-q"]
    assert main(args) == 1  # findings: the old tree lacks every fix
    doc = json.loads(capsys.readouterr().out)
    return doc["results"]  # type: ignore[no-any-return]


def _old_and_new(tmp_path: Path, n: int = N) -> tuple[list[Path], Path]:
    """Two trees (without and with n fixes) and the n bugs of those fixes."""
    assert 2 * n >= MIN_CELLS_FOR_PROCESSES
    old = {"Makefile": MAKEFILE, **{f"fs/f{i}.c": c_file(f"f{i}") for i in range(n)}}
    new = {
        k: v.replace("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;") for k, v in old.items()
    }
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    for i in range(n):
        diff = make_diff(tmp_path / f"d{i}", {"a.c": old[f"fs/f{i}.c"]}, {"a.c": new[f"fs/f{i}.c"]})
        diff = diff.replace(b"a/a.c", f"a/fs/f{i}.c".encode()).replace(b"b/a.c", f"b/fs/f{i}.c".encode())
        (bugs / "fixes" / f"b{i}.mbox").write_bytes(make_patch_mail(f"fs: fix f{i}", diff, f"b{i}@x.org"))
        (bugs / f"b{i:02d}.toml").write_text(f'id = "b{i:02d}"\ntitle = "t"\n[[fix]]\nmbox = "fixes/b{i}.mbox"\n')
    return [write_tree(tmp_path / "old", old), write_tree(tmp_path / "new", new)], bugs


def test_workers_agree_with_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trees, bugs = _old_and_new(tmp_path)
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_tmp))
    monkeypatch.setenv("PATCHCHECK_CACHE_DIR", str(tmp_path / "cache"))

    reports: list[Report] = []
    real = common.check_report

    def keep(*a: Any, **k: Any) -> Any:
        got = real(*a, **k)
        reports.append(got[0])
        return got

    monkeypatch.setattr(common, "check_report", keep)
    two = audit(capsys, trees, bugs, jobs=2)
    # the workers removed their scratch folders; this process keeps its own for the next
    # check until it exits
    scratch.remove_roots()
    assert list(scratch_tmp.iterdir()) == []
    one = audit(capsys, trees, bugs, jobs=1)
    assert two == one
    # the workers encoded each result (one process: the renderer does)
    assert reports[0].encoded == [encode_result(r) for r in reports[0].results]
    assert reports[1].encoded is None
    assert [(r["tree"], r["bug"]) for r in two] == [(str(t), f"b{i:02d}") for t in trees for i in range(N)]
    verdicts = [r["verdict"] for r in two]
    assert verdicts.count("backportable") == N and verdicts.count("present") == N


def test_a_shards_cells_in_workers_agree_with_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard runs each tree's cells through run_matrix (enough of them for its workers,
    which send each result without the bug and tree): the same results, in the same order,
    as one process."""
    n = MIN_CELLS_FOR_PROCESSES
    trees, bugs = _old_and_new(tmp_path, n)
    monkeypatch.setenv("PATCHCHECK_CACHE_DIR", str(tmp_path / "cache"))
    args = ["audit", *[a for t in trees for a in ("--tree", str(t))], "--all", "--bugs-dir", str(bugs)]
    args += ["--no-shipped-bugs", "--offline", "--format", "json", "-q", "--shard", "1/1"]
    outs = []
    for jobs in ("2", "1"):
        assert main([*args, "-j", jobs]) == 1
        outs.append(json.loads(capsys.readouterr().out)["results"])
    assert outs[0] == outs[1] and len(outs[0]) == 2 * n


def test_workers_report_the_series_they_could_not_get(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series are read in the workers: one a worker could not get is an error cell, the
    exit code says so and its hint names the bug, as with one process."""
    files = {"Makefile": MAKEFILE, **{f"fs/f{i}.c": c_file(f"f{i}") for i in range(N)}}
    trees = [write_tree(tmp_path / "t1", files), write_tree(tmp_path / "t2", files)]
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    for i in range(N):
        new = files[f"fs/f{i}.c"].replace("\treturn ret1;", "\treturn 0;")
        diff = make_diff(tmp_path / f"d{i}", {f"fs/f{i}.c": files[f"fs/f{i}.c"]}, {f"fs/f{i}.c": new})
        (bugs / "fixes" / f"b{i}.mbox").write_bytes(make_patch_mail(f"fs: fix f{i}", diff, f"b{i}@x.org"))
        (bugs / f"b{i:02d}.toml").write_text(f'id = "b{i:02d}"\ntitle = "t"\n[[fix]]\nmbox = "fixes/b{i}.mbox"\n')
    (bugs / "zz.toml").write_text('id = "zz"\ntitle = "t"\n[[fix]]\nmsgid = "never-fetched@x.org"\n')
    monkeypatch.setenv("PATCHCHECK_CACHE_DIR", str(tmp_path / "cache"))
    args = ["audit", *[a for t in trees for a in ("--tree", str(t))], "--all", "--bugs-dir", str(bugs)]
    args += ["--no-shipped-bugs", "--offline", "--format", "json", "-q"]
    outs = []
    for jobs in ("2", "1"):
        with monkeypatch.context() as m:
            if jobs == "2":  # the workers get the series: no fetch stage before them
                m.setattr(pipeline, "fetch_all", None)
            assert main([*args, "-j", jobs]) == 3
        out, err = capsys.readouterr()
        outs.append(json.loads(out)["results"])
        errors = [r for r in outs[-1] if r["verdict"] == "error"]
        assert [r["bug"] for r in errors] == ["zz", "zz"]
        assert "not in cache (offline)" in errors[0]["error"]
        assert "hint:" in err and "zz" in err.split("hint:", 1)[1]
    assert outs[0] == outs[1]


def test_bugs_sharing_a_thread_go_to_one_worker() -> None:
    from patchcheck.model import Bug, Fix
    from patchcheck.pipeline import _by_thread

    def bug(i: int, *ids: str) -> Bug:
        return Bug(id=f"b{i}", title="t", fixes=tuple(Fix(msgid=m) for m in ids), path=Path(f"b{i}.toml"))

    bugs = [bug(0, "a"), bug(1, "b"), bug(2, "c", "a"), bug(3, "d"), bug(4, "b")]
    assert _by_thread(bugs, lambda f: f.msgid or "") == [[0, 2], [1, 4], [3]]
    # a bug that shares one thread with each of two groups joins them into one
    bugs += [bug(5, "d", "c")]
    assert _by_thread(bugs, lambda f: f.msgid or "") == [[0, 2, 3, 5], [1, 4]]
