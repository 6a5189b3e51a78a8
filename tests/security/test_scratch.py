"""Hostile mail cannot reach outside the scratch area (issue 12, items 1, 2, 3 and 20).

Each case drives the real CLI (``python -m patchcheck``) on a fix from a local mbox, with a
decoy folder and a fake $HOME beside the tree, and checks: the exit code, no traceback,
nothing outside the scratch/cache created, changed or removed (decoy and $HOME snapshots),
and the user's tree byte-identical.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testing.kfixtures import MAKEFILE, c_file, write_tree
from testing.mailgen import make_mbox, make_patch_mail
from testing.rig import env as rig_env
from testing.rig import no_traceback
from testing.treegen import snapshot

SECRET = "hunter2-top-secret-value"
TREE = {
    "Makefile": MAKEFILE,
    "fs/a.c": c_file("a"),
    "drivers/victim.c": c_file("v"),
}


@dataclass
class Bench:
    root: Path
    tree: Path
    decoy: Path
    home: Path
    bugs: Path
    cache: Path

    def snap(self) -> tuple[dict[str, Any], ...]:
        return snapshot(self.decoy), snapshot(self.home), snapshot(self.tree)

    def bug(self, *mails: bytes, extra: str = "") -> None:
        (self.bugs / "fixes").mkdir(parents=True, exist_ok=True)
        (self.bugs / "fixes" / "h.mbox").write_bytes(make_mbox(list(mails)))
        (self.bugs / "h.toml").write_text(f'id = "h"\ntitle = "hostile"\n[[fix]]\nmbox = "fixes/h.mbox"\n{extra}')

    def run(self, *extra: str, fmt: str = "json", limit: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "patchcheck",
            "check",
            "--tree",
            str(self.tree),
            "--all",
            "--no-shipped-bugs",
            "--bugs-dir",
            str(self.bugs),
            "--cache-dir",
            str(self.cache),
            "--tree-cache",
            str(self.cache / "trees"),
            "--offline",
            "--format",
            fmt,
            "-j",
            "1",
            *extra,
        ]
        e = {**rig_env(), "HOME": str(self.home), "XDG_CACHE_HOME": str(self.home / ".cache")}
        e["XDG_CONFIG_HOME"] = str(self.home / ".config")
        cp = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=limit, cwd=self.root)
        no_traceback(cp)
        return cp


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    decoy = tmp_path / "decoy"
    (decoy / "dir").mkdir(parents=True)
    (decoy / "victim.c").write_text(c_file("v"))
    (decoy / "dir" / "victim.c").write_text(c_file("v"))
    (decoy / "secret.txt").write_text(f"password = {SECRET};\n\tint x;\n\treturn x;\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PATH\n")
    tree = write_tree(tmp_path / "linux", TREE)
    return Bench(tmp_path, tree, decoy, home, tmp_path / "bugs", tmp_path / "cache")


def _results(cp: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data = json.loads(cp.stdout)
    [res] = data["results"]
    return res  # type: ignore[no-any-return]


def _modify(path_a: str, path_b: str, body: str = "") -> str:
    """A one-hunk change of drivers/victim.c's content, under the given header names."""
    return (
        f"diff --git {path_a} {path_b}\n"
        "index 1111111..2222222 100644\n"
        f"--- {path_a}\n"
        f"+++ {path_b}\n"
        "@@ -3,3 +3,3 @@\n"
        " static int v_helper0(struct ctx *ctx, int arg0)\n"
        " {\n"
        "-\tint ret0 = 0;\n"
        "+\tint ret0 = -1;\n" + body
    )


def _hostile_sections(decoy: Path, home: Path) -> dict[str, str]:
    """Item 1: each header form that names a path outside the scratch."""
    climb = "../" * 24
    target = str(decoy / "victim.c")
    rc = str(home / ".bashrc")
    return {
        "dotdot": _modify(f"a/{climb}{target[1:]}", f"b/{climb}{target[1:]}"),
        "double-slash": _modify(f"a/{target}", f"b/{target}"),
        "rename-from-abs": (
            f"diff --git a/{rc} b/fs/renamed.c\nsimilarity index 90%\nrename from {rc}\nrename to fs/renamed.c\n"
        ),
        "new-file-abs": (
            f"diff --git a/{target} b/{target}\nnew file mode 100644\nindex 0000000..2222222\n"
            f"--- /dev/null\n+++ b/{target}\n@@ -0,0 +1 @@\n+int planted;\n"
        ),
    }


@pytest.mark.parametrize("form", ["dotdot", "double-slash", "rename-from-abs", "new-file-abs"])
def test_unsafe_paths_are_an_error_and_touch_nothing(bench: Bench, form: str) -> None:
    section = _hostile_sections(bench.decoy, bench.home)[form]
    bench.bug(make_patch_mail("fs: hostile", section, "hostile-1@example.org"))
    before = bench.snap()
    cp = bench.run()
    assert bench.snap() == before
    assert cp.returncode == 3, (cp.returncode, cp.stdout, cp.stderr)
    res = _results(cp)
    assert res["verdict"] == "error"
    [p] = res["patches"]
    assert "hostile-1@example.org" in p["error"] and "unsafe" in p["error"]
    assert "\n" not in p["error"]


def _symlink_section(name: str, target: str) -> str:
    return (
        f"diff --git a/{name} b/{name}\nnew file mode 120000\nindex 0000000..1234567\n"
        f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


def test_symlink_from_patch_one_is_never_written_through(bench: Bench) -> None:
    # patch 1 turns drivers/ into a link to the decoy folder; patch 2 changes a file in it
    p1 = _symlink_section("drivers", str(bench.decoy))
    p2 = _modify("a/drivers/victim.c", "b/drivers/victim.c")
    bench.bug(
        make_patch_mail("drivers: link", p1, "link-1@example.org", counter=1, total=2),
        make_patch_mail("drivers: fix", p2, "link-2@example.org", counter=2, total=2),
    )
    before = bench.snap()
    cp = bench.run()
    assert bench.snap() == before
    assert cp.returncode in (0, 1), (cp.returncode, cp.stderr)
    res = _results(cp)
    assert [p["verdict"] for p in res["patches"]][1] == "backportable"


@pytest.mark.parametrize("fmt", ["json", "html", "junit", "markdown"])
def test_symlink_to_a_secret_never_reaches_the_report(bench: Bench, fmt: str) -> None:
    # patch 1 makes fs/s.c a link to a secret; patch 2's context resembles the secret, so
    # a near-match diff of the link's target would quote it
    p1 = _symlink_section("fs/s.c", str(bench.decoy / "secret.txt"))
    p2 = (
        "diff --git a/fs/s.c b/fs/s.c\nindex 1111111..2222222 100644\n--- a/fs/s.c\n+++ b/fs/s.c\n"
        "@@ -1,3 +1,3 @@\n-password = changeme;\n+password = redacted;\n \tint x;\n \treturn x;\n"
    )
    bench.bug(
        make_patch_mail("fs: link", p1, "sec-1@example.org", counter=1, total=2),
        make_patch_mail("fs: fix", p2, "sec-2@example.org", counter=2, total=2),
    )
    before = bench.snap()
    cp = bench.run(fmt=fmt)
    assert bench.snap() == before
    assert cp.returncode in (0, 1), (cp.returncode, cp.stderr)
    assert SECRET not in cp.stdout and SECRET not in cp.stderr


def _many_hunks(n: int) -> tuple[str, str]:
    """A file of ``n`` 8-line blocks and a diff changing one line in each."""
    lines = []
    for i in range(n):
        lines += [f"/* block {i} */", f"\tint a{i};", f"\tint b{i};", f"\tv{i} = 0;", f"\tint c{i};", "", "", ""]
    text = "\n".join(lines) + "\n"
    out = ["diff --git a/fs/big.c b/fs/big.c\n", "index 1111111..2222222 100644\n"]
    out += ["--- a/fs/big.c\n", "+++ b/fs/big.c\n"]
    for i in range(n):
        start = i * 8 + 2  # 1-based line of "int a{i}"
        out.append(f"@@ -{start},5 +{start},5 @@\n")
        out += [f" \tint a{i};\n", f" \tint b{i};\n", f"-\tv{i} = 0;\n", f"+\tv{i} = 1;\n"]
        out += [f" \tint c{i};\n", " \n"]
    return text, "".join(out)


def test_many_hunks_are_linear_and_capped(bench: Bench) -> None:
    n = 50_000
    text, diff = _many_hunks(n)
    (bench.tree / "fs" / "big.c").write_text(text)
    bench.bug(make_patch_mail("fs: many", diff, "many-1@example.org", diffstat=False))
    before = bench.snap()
    # over the default cap: exit 3 naming the limit and how to raise it
    cp = bench.run()
    assert cp.returncode == 3, (cp.returncode, cp.stderr)
    [p] = _results(cp)["patches"]
    assert "--max-hunks" in p["error"] and "20000" in p["error"]
    # raised: every hunk placed, in a few seconds of CPU and bounded memory
    t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cp = bench.run("--max-hunks", "100000", limit=120)
    t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    res = _results(cp)
    assert (res["verdict"], res["method"]) == ("backportable", "clean")
    assert len(res["patches"][0]["hunks"]) == n
    cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
    # about 5 s of CPU in all (mail parsing, the tools, a 50,000-hunk JSON report);
    # quadratic placement took minutes
    assert cpu < 15, f"{n} hunks took {cpu:.1f}s of CPU"
    rss_mb = t1.ru_maxrss / 1024  # kB on Linux: the largest child so far
    assert rss_mb < 600, f"peak RSS {rss_mb:.0f} MB"
    assert bench.snap() == before
    assert os.path.exists(bench.tree / "fs" / "big.c")
