"""End to end: the patchcheck command, real b4 against the local public-inbox server,
real git/patch on a tree the test builds. Also the one-line errors and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.kfixtures import MAKEFILE, c_file, make_diff, write_tree
from testing.mailgen import make_patch_mail, make_series
from testing.pi_server import PIServer
from testing.rig import patchcheck_argv

OLD = {"Makefile": MAKEFILE, "fs/a.c": c_file("a"), "fs/b.c": c_file("b")}


def edit(files: dict[str, str], path: str, old: str, new: str) -> dict[str, str]:
    out = dict(files)
    assert old in out[path]
    out[path] = out[path].replace(old, new)
    return out


def tree_digest(root: Path) -> str:
    """Every file's path, bytes and mtime: any write into the tree changes it."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        h.update(str(p.relative_to(root)).encode())
        h.update(str(st.st_mtime_ns).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@dataclass
class World:
    tree: Path
    bugs: Path
    cache: Path
    server: PIServer

    def run(self, *args: str, offline: bool = False, lore: str | None = None) -> subprocess.CompletedProcess[str]:
        # the shipped bugs stay in: these runs name their bugs
        cmd = patchcheck_argv(
            *args, bugs=self.bugs, cache=self.cache, lore=lore or self.server.url, shipped=True, offline=offline
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    def check(self, *bugs: str, offline: bool = False) -> tuple[int, dict[str, dict]]:
        args = ["--tree", str(self.tree), "--format", "json"]
        for b in bugs:
            args += ["--bug", b]
        cp = self.run(*args, offline=offline)
        assert "Traceback" not in cp.stderr, cp.stderr
        data = json.loads(cp.stdout)
        return cp.returncode, {r["bug"]: r for r in data["results"]}


def bug_file(d: Path, bug_id: str, *fixes: str) -> None:
    body = f'id = "{bug_id}"\ntitle = "test bug {bug_id}"\nseverity = "high"\n'
    for f in fixes:
        body += f"\n[[fix]]\n{f}\n"
    (d / f"{bug_id}.toml").write_text(body)


@pytest.fixture
def world(tmp_path: Path, pi_server: PIServer) -> World:
    wtmp = tmp_path / "w"
    wtmp.mkdir()
    # the tree: fix "present" already applied, the rest not
    hunk_a = ("\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;")
    hunk_b = ("\tif (!ctx->ready3)", "\tif (!ctx || !ctx->ready3)")
    hunk_p = ("\tctx->count4 += ret4;", "\tctx->count4 += ret4 & 0xff;")
    tree_files = edit(OLD, "fs/a.c", *hunk_p)
    tree = write_tree(tmp_path / "linux", tree_files)

    d_a = make_diff(wtmp, OLD, edit(OLD, "fs/a.c", *hunk_a))
    d_b = make_diff(wtmp, OLD, edit(OLD, "fs/b.c", *hunk_b))
    d_missing = make_diff(
        wtmp, {"net/x.c": c_file("x")}, {"net/x.c": c_file("x").replace("arg0)", "arg0, int flags)")}
    )
    d_present = make_diff(wtmp, OLD, edit(OLD, "fs/a.c", *hunk_p))
    # posted against a fs/b.c whose context around the change differs from the tree's
    drifted = edit(
        edit(OLD, "fs/b.c", "\tint ret3 = 0;", "\tlong ret3 = 0;"),
        "fs/b.c",
        "\t\treturn -4;",
        "\t\treturn -ENODEV;",
    )
    d_conflict = make_diff(wtmp, drifted, edit(drifted, "fs/b.c", *hunk_b))

    # a 3-patch series with a cover letter
    s = make_series("ser", 3, diffs=[d_a, d_b, d_missing])
    pi_server.add_thread(s.mbox)
    # single patches
    for mid, diff in (("present-1@example.org", d_present), ("conflict-1@example.org", d_conflict)):
        pi_server.add_thread(make_patch_mail(f"fix {mid}", diff, mid))
    # two revisions in one thread: v1 is the already-present change, v2 the hunk_a change
    v1 = make_series("rev", 1, revision=1, cover=False, diffs=[d_present])
    v2 = make_series("rev", 1, revision=2, cover=False, diffs=[d_a], in_reply_to=v1.patch_msgids[0])
    pi_server.add_thread(v1.mbox + v2.mbox)

    bugs = tmp_path / "bugs"
    bugs.mkdir()
    cover = s.cover_msgid
    bug_file(bugs, "b-clean", f'msgid = "{cover}"\npatches = [1, 2]')
    bug_file(bugs, "b-na", f'msgid = "{cover}"\npatches = [3]')
    bug_file(bugs, "b-series", f'msgid = "{cover}"')
    bug_file(bugs, "b-present", 'msgid = "present-1@example.org"')
    bug_file(bugs, "b-conflict", 'msgid = "conflict-1@example.org"')
    bug_file(bugs, "b-latest", f'msgid = "{v1.patch_msgids[0]}"')
    bug_file(bugs, "b-pinned", f'msgid = "{v1.patch_msgids[0]}"\nrevision = 1')
    bug_file(
        bugs,
        "b-optional",
        'msgid = "present-1@example.org"',
        'msgid = "conflict-1@example.org"\noptional = true\nnote = "hardening"',
    )
    bug_file(bugs, "b-404", 'msgid = "nowhere-1@example.org"')
    return World(tree=tree, bugs=bugs, cache=tmp_path / "cache", server=pi_server)


ALL_OK = ["b-clean", "b-na", "b-series", "b-present", "b-conflict", "b-latest", "b-pinned", "b-optional"]


def test_end_to_end_verdicts_then_offline(world: World) -> None:
    before = tree_digest(world.tree)
    rc, res = world.check(*ALL_OK)
    assert rc == 1
    got = {b: (r["verdict"], r["method"]) for b, r in res.items()}
    assert got == {
        "b-clean": ("backportable", "clean"),
        "b-na": ("not-applicable", None),
        "b-series": ("backportable", "clean"),
        "b-present": ("present", "exact"),
        "b-conflict": ("conflicting", None),
        "b-latest": ("backportable", "clean"),
        "b-pinned": ("present", "exact"),
        "b-optional": ("present", "exact"),
    }
    # per-patch and per-hunk detail is there, as the interface describes
    clean = res["b-clean"]["patches"]
    assert [p["subject"] for p in clean] == ["ser: fix part 1", "ser: fix part 2"]
    assert clean[0]["hunks"][0] == {**clean[0]["hunks"][0], "file": "fs/a.c", "status": "clean"}
    assert all(p["evidence"] for r in res.values() for p in r["patches"])
    opt = res["b-optional"]["patches"]
    assert [p["verdict"] for p in opt] == ["present", "conflicting"]
    assert tree_digest(world.tree) == before

    # offline, server gone: the same answers from the cache, no request made
    world.server.stop()
    rc2, res2 = world.check(*ALL_OK, offline=True)
    assert rc2 == 1
    assert {b: (r["verdict"], r["method"]) for b, r in res2.items()} == got
    assert tree_digest(world.tree) == before


def test_second_run_makes_no_request(world: World) -> None:
    world.check("b-present")
    n = len(world.server.requests)
    assert n > 0
    rc, res = world.check("b-present")
    assert rc == 0 and res["b-present"]["verdict"] == "present"
    assert len(world.server.requests) == n


def test_present_only_exits_zero_and_table_default(world: World) -> None:
    cp = world.run("--tree", str(world.tree), "--bug", "b-present", "--bug", "b-na")
    assert cp.returncode == 0, cp.stderr
    assert "present" in cp.stdout and "not-applicable" in cp.stdout


def test_series_error_is_exit_3_and_others_still_judged(world: World) -> None:
    rc, res = world.check("b-404", "b-present")
    assert rc == 3
    assert res["b-404"]["verdict"] == "error" and "nowhere-1@example.org" in res["b-404"]["error"]
    assert res["b-present"]["verdict"] == "present"


def test_offline_not_cached_is_exit_3(world: World) -> None:
    rc, res = world.check("b-present", offline=True)
    assert rc == 3 and res["b-present"]["verdict"] == "error"


def _one_line_error(cp: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert cp.returncode == code, (cp.returncode, cp.stdout, cp.stderr)
    assert "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, cp.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_unknown_bug_id(world: World) -> None:
    _one_line_error(world.run("--tree", str(world.tree), "--bug", "nope"), 2, "nope")


def test_malformed_toml(world: World) -> None:
    (world.bugs / "bad.toml").write_text('id = "bad\n')
    _one_line_error(world.run("--tree", str(world.tree), "--bug", "b-present"), 2, "bad.toml", "invalid TOML")


def test_unknown_key(world: World) -> None:
    (world.bugs / "bad.toml").write_text('id = "bad"\ntitle = "t"\ncolour = 1\n[[fix]]\nmsgid = "a@b"\n')
    _one_line_error(world.run("bugs", "validate"), 2, "bad.toml", "colour", "unknown key")


def test_bad_msgid(world: World) -> None:
    (world.bugs / "bad.toml").write_text('id = "bad"\ntitle = "t"\n[[fix]]\nmsgid = "<a@b>"\n')
    _one_line_error(world.run("bugs", "validate"), 2, "bad.toml", "fix[1].msgid", "angle brackets")


def test_missing_tree(world: World, tmp_path: Path) -> None:
    _one_line_error(world.run("--tree", str(tmp_path / "absent"), "--bug", "b-present"), 2, "absent")


def test_server_down(world: World) -> None:
    url = world.server.url
    world.server.stop()
    cp = world.run("--tree", str(world.tree), "--bug", "b-present", "--format", "json", lore=url)
    assert cp.returncode == 3 and "Traceback" not in cp.stderr
    r = json.loads(cp.stdout)["results"][0]
    assert r["verdict"] == "error" and "present-1" in r["error"] and "refused" in r["error"]


def test_corrupt_gzip(world: World) -> None:
    world.server.fault = "corrupt-gzip"
    cp = world.run("--tree", str(world.tree), "--bug", "b-present", "--format", "json")
    assert cp.returncode == 3 and "Traceback" not in cp.stderr
    assert json.loads(cp.stdout)["results"][0]["verdict"] == "error"


def test_bad_option_is_exit_2(world: World) -> None:
    _one_line_error(world.run("--tree", str(world.tree), "--bug", "b-present", "--format", "pdf"), 2, "--format")


def test_bugs_list_show_validate(world: World) -> None:
    cp = world.run("bugs", "list")
    assert cp.returncode == 0 and "b-clean" in cp.stdout and "b-404" in cp.stdout
    cp = world.run("bugs", "show", "b-optional")
    assert cp.returncode == 0 and "optional" in cp.stdout and "hardening" in cp.stdout
    cp = world.run("bugs", "validate")
    assert cp.returncode == 0 and "all valid" in cp.stdout


def test_fetch_then_offline(world: World) -> None:
    cp = world.run("fetch", "--bug", "b-clean", "--bug", "b-present")
    assert cp.returncode == 0, cp.stderr
    world.server.stop()
    rc, res = world.check("b-clean", "b-present", offline=True)
    assert res["b-clean"]["verdict"] == "backportable" and res["b-present"]["verdict"] == "present"


def test_example_runs_without_network(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cp = subprocess.run(
        [
            sys.executable,
            "-m",
            "patchcheck",
            "--tree",
            str(repo / "examples/linux"),
            "--bug",
            "demo-nfsd-callback-wq",
            "--bugs-dir",
            str(repo / "examples/known_bugs"),
            "--cache-dir",
            str(tmp_path / "c"),
            "--lore-url",
            "http://127.0.0.1:9",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert cp.returncode == 1, cp.stderr
    r = json.loads(cp.stdout)["results"][0]
    assert (r["verdict"], r["method"]) == ("backportable", "clean")


@pytest.mark.parametrize("fmt", ["json", "table", "junit"])
def test_series_error_is_summarised_on_stderr_whatever_the_format(world: World, fmt: str) -> None:
    out = world.tree.parent / f"report.{fmt}"
    cp = world.run(
        "--tree", str(world.tree), "--bug", "b-404", "--bug", "b-present", "--format", fmt, "-o", str(out)
    )
    assert cp.returncode == 3 and cp.stdout == ""
    lines = cp.stderr.strip().splitlines()
    # one line per error cell: bug, tree and why
    assert len(lines) == 1, cp.stderr
    assert "b-404" in lines[0] and str(world.tree) in lines[0] and "nowhere-1@example.org" in lines[0]
    assert "b-present" not in cp.stderr
    assert out.read_text()


SHIPPED = {"nfsd-callback-wq", "perf-bpf-prog-detach", "nf-ct-lookup-opts"}


def listed(cp: subprocess.CompletedProcess[str]) -> set[str]:
    assert cp.returncode == 0, cp.stderr
    return {ln.split()[0] for ln in cp.stdout.splitlines()[2:] if ln.strip()}


def test_bug_folders_combine_with_the_shipped_ones(world: World, tmp_path: Path) -> None:
    more = tmp_path / "more"
    more.mkdir()
    bug_file(more, "m-extra", 'msgid = "present-1@example.org"')
    # --bugs-dir adds to the shipped bugs; repeated, each folder adds
    ids = listed(world.run("bugs", "list", "--bugs-dir", str(more)))
    assert ids >= SHIPPED and {"b-clean", "b-present", "m-extra"} <= ids
    # --no-shipped-bugs leaves the shipped ones out
    ids = listed(world.run("bugs", "list", "--bugs-dir", str(more), "--no-shipped-bugs"))
    assert not SHIPPED & ids and {"b-clean", "m-extra"} <= ids
    # a bug of the second folder checks like any other
    _one_line_error(world.run("--tree", str(world.tree), "--bug", "m-extra"), 2, "unknown bug id 'm-extra'")
    cp = world.run("--tree", str(world.tree), "--bug", "m-extra", "--bugs-dir", str(more), "--format", "json")
    assert cp.returncode == 0 and json.loads(cp.stdout)["results"][0]["verdict"] == "present"
    # PATCHCHECK_BUGS_DIR: folders separated by os.pathsep, added the same way
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env["PATCHCHECK_BUGS_DIR"] = os.pathsep.join([str(world.bugs), str(more)])
    cp = subprocess.run(
        [sys.executable, "-m", "patchcheck", "bugs", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert SHIPPED | {"b-clean", "m-extra"} <= listed(cp)


def test_same_id_in_two_folders_names_both_files(world: World, tmp_path: Path) -> None:
    more = tmp_path / "more"
    more.mkdir()
    bug_file(more, "b-clean", 'msgid = "present-1@example.org"')
    cp = world.run("--tree", str(world.tree), "--bug", "b-present", "--bugs-dir", str(more))
    _one_line_error(cp, 2, str(more / "b-clean.toml"), str(world.bugs / "b-clean.toml"), "also defined")


def test_no_shipped_bugs_needs_a_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PATCHCHECK_BUGS_DIR"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    cp = subprocess.run(
        [sys.executable, "-m", "patchcheck", "bugs", "list", "--no-shipped-bugs"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    _one_line_error(cp, 2, "--no-shipped-bugs", "--bugs-dir")


def test_validate_reports_every_error_of_every_file(world: World) -> None:
    (world.bugs / "bad1.toml").write_text('id = "bad1"\ntitle = "t"\ncolour = 1\n[[fix]]\nmsgid = "<a@b>"\n')
    (world.bugs / "bad2.toml").write_text('id = "bad2\n')
    (world.bugs / "bad3.toml").write_text('id = "other"\ntitle = "t"\n[[fix]]\nmsgid = "a@b"\n')
    cp = world.run("bugs", "validate")
    assert cp.returncode == 2 and cp.stdout == "" and "Traceback" not in cp.stderr
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 5, cp.stderr
    assert "bad1.toml: colour: unknown key" in lines[0]
    assert "bad1.toml: fix[1].msgid" in lines[1] and "angle brackets" in lines[1]
    assert "bad2.toml" in lines[2] and "invalid TOML" in lines[2]
    assert "bad3.toml: id" in lines[3] and "differs from the file name" in lines[3]
    assert lines[4] == "patchcheck: 4 errors in 3 files"
    # a check stops at the first bad file, in one line that counts the rest of its errors
    cp = world.run("--tree", str(world.tree), "--bug", "b-present")
    _one_line_error(cp, 2, "bad1.toml", "colour", "and 1 more error in this file")


def run_on_tty(world: World, *args: str, env: dict[str, str]) -> str:
    """patchcheck with its stdout on a pseudo-terminal: what a user's terminal shows."""
    import pty

    main_fd, sub_fd = pty.openpty()
    cmd = [
        sys.executable,
        "-m",
        "patchcheck",
        *args,
        "--bugs-dir",
        str(world.bugs),
        "--cache-dir",
        str(world.cache),
    ]
    cmd += ["--lore-url", world.server.url, "-q"]
    proc = subprocess.Popen(cmd, stdout=sub_fd, stderr=subprocess.DEVNULL, env=env)
    os.close(sub_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main_fd)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only_and_no_color_honoured(world: World) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    args = ("--tree", str(world.tree), "--bug", "b-conflict", "--bug", "b-present")
    assert "\x1b[31mconflicting\x1b[0m" in run_on_tty(world, *args, env=env)
    assert "\x1b[" not in run_on_tty(world, *args, env={**env, "NO_COLOR": "1"})
    assert "\x1b[31m" in run_on_tty(world, *args, "--color", "always", env={**env, "NO_COLOR": "1"})
    # not a terminal: no colour
    assert "\x1b[" not in world.run(*args).stdout


def test_verbose_table_fits_columns_and_shows_failing_hunks(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--tree", str(world.tree), "--bug", "b-conflict", "--bug", "b-clean", "--bug", "b-optional")
    monkeypatch.setenv("COLUMNS", "80")
    plain, verbose = world.run(*args), world.run(*args, "-v")
    assert plain.returncode == verbose.returncode == 1, verbose.stderr
    table = verbose.stdout.split("\nsummary:")[0]
    assert all(len(ln) <= 80 for ln in table.splitlines()), table
    assert "summary: 3 bugs × 1 tree: 1 present, 1 backportable, 1 conflicting" in verbose.stdout
    # the optional fix of b-optional has a row of its own, with its verdict
    assert any(ln.startswith("+ optional") and "conflicting" in ln for ln in table.splitlines())
    # -v: per failing hunk its place, reason and the near-match diff
    assert "failed hunk #" not in plain.stdout
    details = verbose.stdout.split("\nsummary:")[1]
    assert "b-conflict on " in details and "failed hunk #1 at fs/b.c:" in details
    assert re.search(r"^ {6}-\tlong ret3 = 0;$", details, re.M), details
    assert re.search(r"^ {6}\+\tint ret3 = 0;$", details, re.M), details


def test_the_program_entry_returns_mains_code_without_a_last_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` (the console script, python -m) is ``main`` plus an exit that skips the
    collector's last pass over everything a run made (~40 ms after a release audit)."""
    import gc

    from patchcheck import __main__ as entry

    monkeypatch.setattr(entry, "main", lambda argv=None: 3)
    threshold = gc.get_threshold()
    try:
        assert gc.get_freeze_count() == 0
        assert entry.run() == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)  # the rest of this test process runs as it did
