"""examples/ci/*: each example, run as its CI runs it against a packaging repository, installs
the tools its tree needs, installs patchcheck from the chosen wheel, builds the source
package, writes both reports (also when a fetch fails) and exits with patchcheck's gate."""

from __future__ import annotations

import pytest

from tests.examples.conftest import GONE, MISSING, PRESENT, Pipeline

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
