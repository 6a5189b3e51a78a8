"""The CI examples run as their CI would run them: a kernel packaging repository built here
(spec + patches + tarball, and a debian/ folder), the lines of each example's script run with
bash in order, patchcheck installed from a wheel of this checkout into a fresh venv, and lore
played by the local public-inbox server. apt-get is a stand-in that checks each package name
with apt-cache and "installs" it by exposing the programs of the real, installed package, so
an example that forgets a tool fails here as it would in CI."""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import string
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from testing import treegen
from testing.dists import Dists, clean_env, session_dists
from testing.mailgen import make_mbox, make_patch_mail
from testing.pi_server import PIServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"

# msgid -> the diff of its one-patch thread on the test lore
PRESENT = "clp-1@example.org"  # = the spec's first patch: present in the tree
MISSING = "untouched-1@example.org"  # not in the tree, applies cleanly
GONE = "gone-1@example.org"  # not on the server: fetch fails
UNTOUCHED_FIX = (
    b"diff --git a/mm/untouched.c b/mm/untouched.c\n--- a/mm/untouched.c\n+++ b/mm/untouched.c\n"
    b"@@ -1 +1 @@\n-void untouched(void) {}\n+void untouched(void) { barrier(); }\n"
)
PACKAGE_MANAGERS = ("apt-get", "apt", "dnf", "yum", "sudo", "patchcheck")

APT_STUB = """#!/bin/bash
[ "$1" = update ] && exit 0
[ "$1" = install ] || {{ echo "apt-get stand-in: $1 is not supported" >&2; exit 100; }}
for p in "$@"; do
  case "$p" in -*|install) continue ;; esac
  echo "$p" >> {log}
  {apt_cache} show "$p" >/dev/null 2>&1 || {{ echo "E: Unable to locate package $p" >&2; exit 100; }}
  {dpkg} -L "$p" | grep -E '/s?bin/[^/]+$' | while read -r f; do ln -sf "$f" {bin}/"${{f##*/}}"; done
done
"""


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return session_dists(tmp_path_factory)


def add_bug(d: Path, bug_id: str, severity: str, msgid: str) -> None:
    (d / f"{bug_id}.toml").write_text(
        f'id = "{bug_id}"\ntitle = "{bug_id} in the fixture tree"\nseverity = "{severity}"\n'
        f'subsystem = "test"\n\n[[fix]]\nmsgid = "{msgid}"\n'
    )


def _diff_of(mail: bytes) -> bytes:
    return mail.split(b"\n---\n", 1)[1]


@dataclass
class Pipeline:
    """A packaging repository and the environment one CI job sees."""

    repo: Path
    tmp: Path
    server: PIServer
    dists: Dists
    bin: Path = field(init=False)
    apt_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin = self.tmp / "sysbin"
        self.apt_log = self.tmp / "apt-get.log"

    def bugs(self, **severity_by_msgid: str) -> None:
        """The repository's own known bugs: one per msgid, named after it."""
        d = self.repo / "known_bugs"
        d.mkdir(exist_ok=True)
        for msgid, severity in severity_by_msgid.items():
            add_bug(d, msgid.split("-")[0], severity, msgid)

    def system(self, hide: Iterable[str] = ()) -> str:
        """A PATH with every program of this machine except ``hide`` and the package managers,
        and the apt-get stand-in."""
        hidden = set(hide) | set(PACKAGE_MANAGERS)
        self.bin.mkdir()
        for d in clean_env()["PATH"].split(os.pathsep):
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                p = Path(d) / name
                if name in hidden or (self.bin / name).exists() or not os.access(p, os.X_OK) or p.is_dir():
                    continue
                (self.bin / name).symlink_to(p)
        stub = self.bin / "apt-get"
        stub.write_text(
            APT_STUB.format(
                log=self.apt_log,
                bin=self.bin,
                apt_cache=shutil.which("apt-cache"),
                dpkg=shutil.which("dpkg"),
            )
        )
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
        return str(self.bin)

    def env(self, path: str, **settings: str) -> dict[str, str]:
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        return clean_env(
            PATH=path,
            HOME=str(home),
            TMPDIR=str(self.tmp),
            PATCHCHECK_PIP_SPEC=str(self.dists.wheel),
            PATCHCHECK_LORE_URL=self.server.url,
            PATCHCHECK_BUGS_DIR=str(self.repo / "known_bugs"),
            PATCHCHECK_NO_SHIPPED_BUGS="1",  # the shipped bugs' series are not on the test's lore
            **settings,
        )

    def apt_installs(self) -> list[str]:
        """The packages the example asked apt-get to install."""
        return self.apt_log.read_text().split() if self.apt_log.exists() else []

    # -- the three examples, each run as its CI runs it ------------------------------------

    def gitlab(
        self, env: dict[str, str], name: str = "patchcheck", node: tuple[int, int] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Job ``name``'s before_script + script lines in one bash session under
        ``set -eo pipefail`` (GitLab's shell executor), the YAML ``variables`` exported first;
        ``env`` plays the project's CI/CD variables, which win over the YAML's. ``node`` is
        (CI_NODE_INDEX, CI_NODE_TOTAL) of a ``parallel`` job, whose count it must match."""
        doc = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
        job = doc[name]
        assert "after_script" not in job
        assert job.get("parallel") == (node and node[1]), (job.get("parallel"), node)
        variables = {**doc.get("variables", {}), **job.get("variables", {})}
        exports = [f"export {k}={_dq(str(v))}" for k, v in variables.items() if k not in env]
        lines = [*job["before_script"], *job["script"]]
        ci = {"CI_PROJECT_DIR": str(self.repo)}
        if node:
            ci |= {"CI_NODE_INDEX": str(node[0]), "CI_NODE_TOTAL": str(node[1])}
        cp = run_bash("\n".join(exports + lines), self.repo, {**env, **ci}, "-eo", "pipefail")
        reports = job["artifacts"].get("reports", {})
        for artefact in [*job["artifacts"]["paths"], *reports.values()]:
            path = string.Template(artefact).substitute(ci)
            assert (self.repo / path).is_file(), (path, cp.stdout, cp.stderr)
        return cp

    def github(
        self, env: dict[str, str], name: str = "patchcheck", matrix: dict[str, str] | None = None
    ) -> tuple[int, list[str], str]:
        """Each ``run:`` step of job ``name`` with ``bash --noprofile --norc -eo pipefail``
        (GitHub's default shell), with the workflow ``env`` and what earlier steps wrote to
        $GITHUB_ENV; after a failed step only ``!cancelled()`` / ``always()`` steps run; ``uses:``
        steps are skipped. ``env`` plays the repository's settings, which replace the workflow's
        values; ``matrix`` is this run's ``matrix`` context (``${{ matrix.X }}`` and
        ``${{ strategy.job-total }}`` are expanded in the job's ``env``).
        Returns the job's exit code (its first failed step's), the steps run, and their output."""
        doc = yaml.safe_load((EXAMPLES / "github-workflow.yml").read_text())
        job = doc["jobs"][name]
        axes = job.get("strategy", {}).get("matrix", {})
        assert set(axes) == set(matrix or {}), (axes, matrix)
        context = {f"matrix.{k}": v for k, v in (matrix or {}).items()}
        context["strategy.job-total"] = str(math.prod(len(v) for v in axes.values()))
        job_env = {
            k: re.sub(r"\$\{\{ *([\w.-]+) *\}\}", lambda m: context[m[1]], str(v))
            for k, v in job.get("env", {}).items()
        }
        base = {**{k: str(v) for k, v in doc.get("env", {}).items()}, **job_env, **env}
        github_env = self.tmp / "github_env"
        github_env.write_text("")
        rc, ran, log = 0, [], ""
        for step in job["steps"]:
            cond = step.get("if", "")
            if rc and not ("!cancelled()" in cond or "always()" in cond):
                continue
            if "uses" in step:
                continue
            assert cond == "" and "${{" not in step["run"], f"the runner here cannot evaluate {step}"
            added = dict(ln.split("=", 1) for ln in github_env.read_text().splitlines() if ln)
            assert not set(added) & set(base), f"$GITHUB_ENV would fight the workflow env: {added}"
            step_env = {**base, **added, "GITHUB_ENV": str(github_env), "GITHUB_WORKSPACE": str(self.repo)}
            cp = run_bash(step["run"], self.repo, step_env, "-eo", "pipefail")
            ran.append(step["name"])
            log += f"## {step['name']} (exit {cp.returncode})\n{cp.stdout}{cp.stderr}"
            rc = rc or cp.returncode
        return rc, ran, log

    def shell(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_bash(f"exec {EXAMPLES / 'patchcheck-ci.sh'}", self.repo, env)

    def junit(self) -> dict[str, str]:
        """bug id -> pass | failure | error | skipped, from the example's patchcheck.xml."""
        out = {}
        for case in ET.parse(self.repo / "patchcheck.xml").getroot().iter("testcase"):
            kids = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            out[case.attrib["name"]] = kids[0] if kids else "pass"
        return out


def make_repo(root: Path) -> Path:
    """spec + patches + tarball (RPM) and debian/ + orig tarball (Debian) of one kernel."""
    root.mkdir()
    (root / "kernel.spec").write_text(treegen.SPEC.replace("%s", treegen.CHANGELOG_ENTRY))
    patches = {"0001-nfsd-check-clp.patch": treegen.PATCH1, "0002-nfsd-add-callback-wq.patch": treegen.PATCH2}
    for name, data in patches.items():
        (root / name).write_bytes(data)
    (root / "config-x86_64").write_text("CONFIG_NFSD=y\n")
    treegen.write_tar(root / "linux-4.19.90.tar.xz", treegen.BASE, treegen.TOP, "w:xz")
    treegen.write_tar(root / "linux_4.19.90.orig.tar.xz", treegen.BASE, treegen.TOP, "w:xz")
    deb = root / "debian"
    (deb / "source").mkdir(parents=True)
    (deb / "source" / "format").write_text("3.0 (quilt)\n")
    (deb / "changelog").write_text(
        f"linux (4.19.90-1) unstable; urgency=medium\n\n  * {treegen.CHANGELOG_ENTRY}\n\n"
        " -- Dev <dev@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n"
    )
    (deb / "control").write_text(
        "Source: linux\nMaintainer: Dev <dev@example.org>\n\n"
        "Package: linux-source\nArchitecture: all\nDescription: fake\n fake\n"
    )
    (deb / "rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    (deb / "patches").mkdir()
    for name, data in patches.items():
        (deb / "patches" / name).write_bytes(data)
    (deb / "patches" / "series").write_text("\n".join(patches) + "\n")
    return root


@pytest.fixture
def pipeline(tmp_path: Path, pi_server: PIServer, dists: Dists) -> Pipeline:
    pi_server.add_thread(
        make_mbox([make_patch_mail("nfsd: check clp in cb_7", _diff_of(treegen.PATCH1), PRESENT)])
    )
    pi_server.add_thread(make_mbox([make_patch_mail("mm: tidy untouched", UNTOUCHED_FIX, MISSING)]))
    return Pipeline(make_repo(tmp_path / "repo"), tmp_path, pi_server, dists)


def _dq(value: str) -> str:
    """``value`` in double quotes: bash expands its $VARIABLES, as GitLab does."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def run_bash(script: str, cwd: Path, env: Mapping[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", *flags, "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
    )
