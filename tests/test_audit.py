"""`patchcheck audit`: 5 bugs x 3 trees through the real CLI, every report format read back
for content, exit codes across --fail-on / --min-severity, offline reruns, cache verbs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail
from testing.pi_server import PIServer
from testing.rig import patchcheck_argv

REPO = Path(__file__).resolve().parents[1]
BASE = {"Makefile": MAKEFILE, "fs/a.c": c_file("a"), "fs/b.c": c_file("b"), "net/c.c": c_file("c")}

# bug id -> (severity, file, old line, new line)
FIXES = {
    "crit-a": ("critical", "fs/a.c", "\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;"),
    "high-b": ("high", "fs/b.c", "\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)"),
    "med-c": ("medium", "net/c.c", "\tctx->count2 += ret2;", "\tctx->count2 += ret2 & 0xff;"),
    "low-a": ("low", "fs/a.c", "\tint ret4 = 0;", "\tint ret4 = -1;"),
    "high-net": ("high", "net/c.c", "\t\treturn -5;", "\t\treturn -EIO;"),
}


def applied(files: dict[str, str], *bugs: str) -> dict[str, str]:
    out = dict(files)
    for b in bugs:
        _, path, old, new = FIXES[b]
        out[path] = out[path].replace(old, new)
    return out


@dataclass
class Audit:
    tmp: Path
    trees: list[Path]
    bugs: Path
    cache: Path
    server: PIServer

    def run(self, *args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = patchcheck_argv(*args, bugs=self.bugs, cache=self.cache, lore=self.server.url, offline=offline)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert "Traceback" not in cp.stderr, cp.stderr
        return cp

    def audit(self, *args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
        trees = [a for t in self.trees for a in ("--tree", str(t))]
        return self.run("audit", *trees, "--all", *args, offline=offline)


@pytest.fixture
def audit(tmp_path: Path, pi_server: PIServer) -> Audit:
    work = tmp_path / "w"
    work.mkdir()
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    for bug, (sev, _path, _old, _new) in FIXES.items():
        diff = make_diff(work, BASE, applied(BASE, bug))
        mid = f"{bug}-1@example.org"
        pi_server.add_thread(make_patch_mail(f"fix {bug} for good", diff, mid))
        subsystem = "net" if bug in ("med-c", "high-net") else "fs"
        cves = '"CVE-2024-1000"' if bug == "crit-a" else ""
        (bugs / f"{bug}.toml").write_text(
            f'id = "{bug}"\ntitle = "bug {bug}"\nseverity = "{sev}"\n'
            f'subsystem = "{subsystem}"\ncves = [{cves}]\n[[fix]]\nmsgid = "{mid}"\n'
        )
    old = write_tree(tmp_path / "t-old", BASE)
    mid_tree = write_tree(tmp_path / "t-mid", applied(BASE, "crit-a", "high-b", "med-c"))
    new = write_tree(
        tmp_path / "t-new", {k: v for k, v in applied(BASE, *FIXES).items() if not k.startswith("net/")}
    )
    return Audit(tmp_path, [old, mid_tree, new], bugs, tmp_path / "cache", pi_server)


EXPECTED = {
    # bug: (t-old, t-mid, t-new)
    "crit-a": ("backportable", "present", "present"),
    "high-b": ("backportable", "present", "present"),
    "med-c": ("backportable", "present", "not-applicable"),
    "low-a": ("backportable", "backportable", "present"),
    "high-net": ("backportable", "backportable", "not-applicable"),
}


def grid(results: list[dict], trees: list[Path]) -> dict[str, tuple[str, ...]]:
    by = {(r["bug"], r["tree"]): r["verdict"] for r in results}
    return {b: tuple(by[(b, str(t))] for t in trees) for b in EXPECTED}


def test_matrix_json_and_offline(audit: Audit) -> None:
    cp = audit.audit("--format", "json")
    assert cp.returncode == 1, cp.stderr
    doc = json.loads(cp.stdout)
    assert len(doc["results"]) == 15
    assert grid(doc["results"], audit.trees) == EXPECTED
    # each series fetched once for the whole audit, however many trees
    fetched = [p for p in audit.server.requests if "t.mbox.gz" in p]
    assert len(fetched) == len(FIXES)
    audit.server.stop()
    cp2 = audit.audit("--format", "json", offline=True)
    assert grid(json.loads(cp2.stdout)["results"], audit.trees) == EXPECTED


def test_every_renderer_has_the_content(audit: Audit) -> None:
    out = audit.tmp / "out"
    out.mkdir()
    for fmt in ("markdown", "html", "junit", "table"):
        cp = audit.audit("--format", fmt, "-o", str(out / f"r.{fmt}"))
        assert cp.returncode == 1 and cp.stdout == "", cp.stderr
    md = (out / "r.markdown").read_text()
    for bug, verdicts in EXPECTED.items():
        row = next(ln for ln in md.splitlines() if ln.startswith("|") and bug in ln)
        cells = [c.strip() for c in row.strip("|").split("|")]
        got = [c for c in cells if any(c.startswith(v) for v in ("backportable", "present", "not-applicable"))]
        assert [g.split()[0] for g in got] == list(verdicts), row
    root = ET.parse(out / "r.junit").getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 3
    for suite, col in zip(suites, range(3), strict=True):
        cases = suite.findall("testcase")
        assert len(cases) == 5
        fails = sum(1 for v in EXPECTED.values() if v[col] == "backportable")
        skips = sum(1 for v in EXPECTED.values() if v[col] == "not-applicable")
        assert len(suite.findall("testcase/failure")) == fails == int(suite.get("failures", -1))
        assert len(suite.findall("testcase/skipped")) == skips == int(suite.get("skipped", -1))
    html = (out / "r.html").read_text()
    assert 'id="matrix"' in html and html.count('class="verdict v-present"') >= 6
    assert "<script" not in html and "http://" not in html.split("<body", 1)[1].split("cve.org")[0]
    table = (out / "r.table").read_text()
    assert "summary:" in table and "\x1b[" not in table


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), 1),
        (("--fail-on", "conflicting"), 0),
        (("--fail-on", "backportable", "--min-severity", "critical"), 1),
        (("--min-severity", "critical", "--bug", "low-a", "--bug", "high-b"), 0),
        (("--fail-on", "not-applicable", "--bug", "med-c"), 1),
        (("--fail-on", "present,partially-present", "--min-severity", "high", "--bug", "low-a"), 0),
    ],
)
def test_exit_codes(audit: Audit, args: tuple[str, ...], code: int) -> None:
    trees = [a for t in audit.trees for a in ("--tree", str(t))]
    sel = () if "--bug" in args else ("--all",)
    cp = audit.run("audit", *trees, *sel, *args, "--format", "json")
    assert cp.returncode == code, (args, cp.stderr)


def test_bad_fail_on_is_exit_2(audit: Audit) -> None:
    cp = audit.audit("--fail-on", "bogus")
    assert cp.returncode == 2 and "bogus" in cp.stderr and len(cp.stderr.splitlines()) == 1


def test_filters(audit: Audit) -> None:
    trees = ["--tree", str(audit.trees[0])]
    for args, want in [
        (("--subsystem", "net"), {"med-c", "high-net"}),
        (("--severity", "high"), {"high-b", "high-net"}),
        (("--cve", "cve-2024-1000"), {"crit-a"}),
    ]:
        cp = audit.run("audit", *trees, *args, "--format", "json")
        assert {r["bug"] for r in json.loads(cp.stdout)["results"]} == want, args


def test_cache_verify_and_prune(audit: Audit) -> None:
    assert audit.run("fetch", "--all").returncode == 0
    cp = audit.run("cache", "verify")
    assert cp.returncode == 0 and "sound" in cp.stdout
    (audit.bugs / "low-a.toml").unlink()
    cp = audit.run("cache", "prune")
    assert cp.returncode == 0 and "low-a" in cp.stdout
    entries = list((audit.cache / "series").iterdir())
    assert len(entries) == 4
    # corrupt one entry: verify says so (exit 3)
    victim = next(p for p in entries[0].iterdir() if p.name == "thread.mbox")
    victim.write_bytes(victim.read_bytes() + b"x")
    cp = audit.run("cache", "verify")
    assert cp.returncode == 3 and entries[0].name in cp.stdout


# ---- --shard K/N and merge -----------------------------------------------------------------


def merge(*args: str) -> subprocess.CompletedProcess[str]:
    """``patchcheck merge``: reports in, no bugs, cache or network."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "patchcheck", "merge", *args]
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert "Traceback" not in cp.stderr, cp.stderr
    return cp


def test_shards_merge_into_the_whole_audit(audit: Audit) -> None:
    whole = audit.audit("--format", "json")
    parts = []
    for k in (1, 2, 3):
        out = audit.tmp / f"shard{k}.json"
        before = len([p for p in audit.server.requests if "t.mbox.gz" in p])
        cp = audit.audit("--shard", f"{k}/3", "--format", "json", "-o", str(out), "--fail-on", "conflicting")
        assert cp.returncode == 0 and cp.stdout == "", cp.stderr
        doc = json.loads(out.read_text())
        assert doc["shard"] == f"{k}/3" and len(doc["bugs"]) == 5 and len(doc["trees"]) == 3
        parts.append(out)
        # a shard fetches the series of its own cells' bugs only (the rest is cached by then)
        assert len([p for p in audit.server.requests if "t.mbox.gz" in p]) - before <= len(
            {r["bug"] for r in doc["results"]}
        )
    cells = [(r["bug"], r["tree"]) for p in parts for r in json.loads(p.read_text())["results"]]
    assert len(cells) == len(set(cells)) == 15  # every cell in exactly one shard
    assert all(json.loads(p.read_text())["results"] for p in parts)  # 15 cells spread over 3

    cp = merge(*map(str, parts), "--format", "json")
    assert cp.returncode == whole.returncode == 1, cp.stderr
    merged, single = json.loads(cp.stdout), json.loads(whole.stdout)
    assert grid(merged["results"], audit.trees) == EXPECTED
    # the same cells in the same order as one run, with the same detail
    assert merged["results"] == single["results"]
    # any format, and the exit code follows --fail-on / --min-severity as for one run
    for fmt in ("table", "markdown", "html", "junit"):
        cp = merge(*map(str, parts), "--format", fmt, "-o", str(audit.tmp / f"m.{fmt}"))
        assert cp.returncode == 1 and cp.stdout == "", (fmt, cp.stderr)
    root = ET.parse(audit.tmp / "m.junit").getroot()
    assert int(root.get("tests", -1)) == 15 and int(root.get("failures", -1)) == 7
    assert merge(*map(str, parts), "--fail-on", "conflicting").returncode == 0
    # a shard left out: merged all the same, with a warning naming it
    cp = merge(str(parts[0]), str(parts[2]), "--format", "json")
    assert cp.returncode in (0, 1) and "shard 2/3" in cp.stderr


def test_shards_are_stable_when_a_bug_is_added(audit: Audit) -> None:
    def cells(k: int) -> set[tuple[str, str]]:
        cp = audit.audit("--shard", f"{k}/2", "--format", "json")
        return {(r["bug"], r["tree"]) for r in json.loads(cp.stdout)["results"]}

    before = {k: cells(k) for k in (1, 2)}
    (audit.bugs / "zz-new.toml").write_text(
        'id = "zz-new"\ntitle = "new"\n[[fix]]\nmsgid = "crit-a-1@example.org"\n'
    )
    after = {k: cells(k) for k in (1, 2)}
    for k in (1, 2):
        assert {c for c in after[k] if c[0] != "zz-new"} == before[k]


def test_merge_refuses_mixed_versions_overlaps_and_non_reports(audit: Audit) -> None:
    a, b = audit.tmp / "a.json", audit.tmp / "b.json"
    assert audit.audit("--shard", "1/2", "--format", "json", "-o", str(a)).returncode in (0, 1)
    assert audit.audit("--shard", "2/2", "--format", "json", "-o", str(b)).returncode in (0, 1)
    cp = merge(str(a), str(a))
    assert cp.returncode == 2 and "also in" in cp.stderr and len(cp.stderr.splitlines()) == 1
    doc = json.loads(b.read_text())
    doc["patchcheck"] = "0.0.1-other"
    b.write_text(json.dumps(doc))
    cp = merge(str(a), str(b))
    assert cp.returncode == 2 and "0.0.1-other" in cp.stderr and str(b) in cp.stderr and str(a) in cp.stderr
    b.write_text("<html>")
    cp = merge(str(a), str(b))
    assert cp.returncode == 2 and str(b) in cp.stderr and "not JSON" in cp.stderr
    b.write_text(json.dumps({"patchcheck": "x", "results": [{"bug": 1}]}))
    cp = merge(str(b))
    assert cp.returncode == 2 and "results[0].bug" in cp.stderr


def test_bad_shard_is_exit_2(audit: Audit) -> None:
    for bad in ("0/3", "4/3", "1", "a/b", "1/0"):
        cp = audit.audit("--shard", bad)
        assert cp.returncode == 2 and "--shard" in cp.stderr and len(cp.stderr.splitlines()) == 1, bad
