"""examples/ci/*: each example, run as its CI runs it against a packaging repository, installs
the tools its tree needs, installs patchcheck from the chosen wheel, builds the source
package, writes both reports (also when a fetch fails) and exits with patchcheck's gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.examples.conftest import GONE, MISSING, PRESENT, Pipeline, add_bug

pytestmark = pytest.mark.slow


def test_gitlab_job_installs_the_srpm_tools_and_gates_on_critical(pipeline: Pipeline) -> None:
    """The default tree is an SRPM (built from the spec here) on an image that has no rpm,
    rpm2cpio or cpio: the job installs them, then a missing critical fix fails it (exit 1)."""
    pipeline.bugs(**{PRESENT: "critical", MISSING: "critical"})
    system = pipeline.system(hide=("rpm", "rpmbuild", "rpm2cpio", "cpio"))
    cp = pipeline.gitlab(pipeline.env(f"{pipeline.dists.bin}:{system}"))
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    assert sorted(set(pipeline.apt_installs())) == ["cpio", "rpm", "rpm2cpio"]
    assert [p.name for p in (pipeline.repo / "SRPMS").iterdir()] == ["kernel-4.19.90-52.39.v2207.ky10.src.rpm"]
    assert pipeline.junit() == {"clp": "pass", "untouched": "failure"}
    assert "untouched" in (pipeline.repo / "patchcheck.html").read_text()
    assert "patchcheck exit 1" in cp.stdout


def test_github_workflow_builds_the_dsc_and_reports_despite_a_failed_fetch(pipeline: Pipeline) -> None:
    """A .dsc built from debian/ (dpkg-source and xz installed first); one series is not on
    lore: the fetch fails, the job goes on, both reports are written and published, the
    missing series is an `error` row, and the gate step fails with 3."""
    pipeline.bugs(**{PRESENT: "critical", MISSING: "high", GONE: "critical"})
    system = pipeline.system(hide=("dpkg-source", "xz"))
    env = pipeline.env(f"{pipeline.dists.bin}:{system}", PATCHCHECK_TREE="build/*.dsc")
    rc, ran, log = pipeline.github(env)
    assert rc == 3, log
    assert sorted(set(pipeline.apt_installs())) == ["dpkg-dev", "xz-utils"]
    assert ran[-1] == "Gate" and "Audit" in ran, ran
    assert "some fix series could not be fetched" in log
    assert (pipeline.repo / "build" / "linux_4.19.90-1.dsc").is_file()
    assert pipeline.junit() == {"clp": "pass", "untouched": "failure", "gone": "error"}
    html = (pipeline.repo / "patchcheck.html").read_text()
    assert "gone" in html and "untouched" in html


def test_shell_script_skips_present_tools_and_passes_below_the_gate(pipeline: Pipeline) -> None:
    """Every tool is there (no apt-get at all); patchcheck goes into the given venv; a missing
    *high* fix is reported but does not fail a `critical` gate: exit 0."""
    pipeline.bugs(**{PRESENT: "critical", MISSING: "high"})
    system = pipeline.system()
    cp = pipeline.shell(pipeline.env(system, PATCHCHECK_VENV=str(pipeline.dists.venv)))
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    assert pipeline.apt_installs() == []
    assert pipeline.junit() == {"clp": "pass", "untouched": "failure"}
    assert (pipeline.repo / "patchcheck.html").is_file()
    assert "patchcheck-ci: exit 0" in cp.stdout


SHARDS = 4  # the examples' `parallel: 4` / `matrix.shard: [1, 2, 3, 4]`


def _many_bugs(pipeline: Pipeline, msgids: dict[str, str]) -> None:
    """Three bugs per fix series (same verdicts, different ids), so that the cells spread
    over the shards."""
    pipeline.bugs(**msgids)
    for msgid, severity in msgids.items():
        for n in (2, 3):
            add_bug(pipeline.repo / "known_bugs", f"{msgid.split('-')[0]}{n}", severity, msgid)


def _junit_cases(path: Path) -> list[tuple[str, ...]]:
    """Every testcase as (classname, name, outcome, outcome text), in the report's order."""
    out: list[tuple[str, ...]] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        kids = [c for c in case if c.tag in ("failure", "error", "skipped")]
        kid = (kids[0].tag, kids[0].get("message", ""), kids[0].text or "") if kids else ("pass", "", "")
        out.append((case.attrib["classname"], case.attrib["name"], *kid))
    return out


def _single_then_clear(pipeline: Pipeline) -> list[tuple[str, ...]]:
    junit = _junit_cases(pipeline.repo / "patchcheck.xml")
    for report in ("patchcheck.xml", "patchcheck.html"):
        (pipeline.repo / report).unlink()
    return junit


def _shard_cells(pipeline: Pipeline) -> list[set[tuple[str, str, str]]]:
    """(bug, tree, verdict) of each shard-K.json, K = 1..SHARDS."""
    cells = []
    for k in range(1, SHARDS + 1):
        doc = json.loads((pipeline.repo / f"shard-{k}.json").read_text())
        assert doc["shard"] == f"{k}/{SHARDS}", doc["shard"]
        cells.append({(r["bug"], r["tree"], r["verdict"]) for r in doc.get("results", [])})
    return cells


def _assert_shards_partition(shards: list[set[tuple[str, str, str]]], junit: list[tuple[str, ...]]) -> None:
    assert sum(1 for c in shards if c) >= 2, shards  # else the test would not show a merge
    union = set().union(*shards)
    assert sum(len(c) for c in shards) == len(union)  # disjoint
    assert {bug for bug, _, _ in union} == {case[1] for case in junit}


def test_gitlab_sharded_jobs_merge_to_the_single_jobs_report_and_exit(pipeline: Pipeline) -> None:
    """The `patchcheck-shard` job run as each of its 4 parallel nodes, then `patchcheck-merge`
    on their shard-K.json: the same JUnit cases as the single job, the same exit code (1)."""
    _many_bugs(pipeline, {PRESENT: "critical", MISSING: "critical"})
    env = pipeline.env(f"{pipeline.dists.bin}:{pipeline.system()}")
    single = pipeline.gitlab(env)
    assert single.returncode == 1, (single.stdout, single.stderr)
    junit = _single_then_clear(pipeline)
    for k in range(1, SHARDS + 1):
        cp = pipeline.gitlab(env, "patchcheck-shard", node=(k, SHARDS))
        assert cp.returncode == 0, (k, cp.stdout, cp.stderr)  # the gate is the merge job's
    _assert_shards_partition(_shard_cells(pipeline), junit)
    merged = pipeline.gitlab(env, "patchcheck-merge")
    assert merged.returncode == single.returncode, (merged.stdout, merged.stderr)
    assert "is not among the reports merged" not in merged.stderr
    assert _junit_cases(pipeline.repo / "patchcheck.xml") == junit
    assert "untouched3" in (pipeline.repo / "patchcheck.html").read_text()


def test_github_sharded_matrix_merges_to_the_single_jobs_report_and_exit(pipeline: Pipeline) -> None:
    """`patchcheck-shard` for each matrix.shard (a .dsc tree, one series not on lore), then
    `patchcheck-merge`: the same JUnit cases as the single job, errors included, and the same
    gate (3, a series not obtained)."""
    _many_bugs(pipeline, {PRESENT: "critical", MISSING: "high", GONE: "critical"})
    env = pipeline.env(f"{pipeline.dists.bin}:{pipeline.system()}", PATCHCHECK_TREE="build/*.dsc")
    rc, _, log = pipeline.github(env)
    assert rc == 3, log
    junit = _single_then_clear(pipeline)
    for k in range(1, SHARDS + 1):
        rc_k, ran, log = pipeline.github(env, "patchcheck-shard", matrix={"shard": str(k)})
        assert rc_k == 0 and ran[-1] == "Audit shard", log
    _assert_shards_partition(_shard_cells(pipeline), junit)
    rc_merged, ran, log = pipeline.github(env, "patchcheck-merge")
    assert (rc_merged, ran) == (rc, ["Install patchcheck", "Merge", "Gate"]), log
    assert _junit_cases(pipeline.repo / "patchcheck.xml") == junit
    assert {c[1]: c[2] for c in junit}["gone2"] == "error"
