"""Where things are cached, and `patchcheck cache verify | prune` on both caches (real CLI).

The series cache (``--cache-dir``, ``./cache`` of a checkout) may be committed: it holds series
only. What is read out of trees (archive members, applied patch queues, git history indexes)
goes to the tree cache: ``$XDG_CACHE_HOME/patchcheck/trees``, ``--tree-cache`` or
``PATCHCHECK_TREE_CACHE``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchcheck.fetch.cache import safe_name, seal, unseal
from testing.kfixtures import c_file, make_diff
from testing.offline import child_env
from testing.pi_server import PIServer
from testing.rig import GOOD, LOCAL, OLD, REPO, Rig, make_rig, no_traceback
from testing.treegen import write_tar

DAY = 86400.0


def pc(
    rig: Rig, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """patchcheck as a user runs it; no --tree-cache unless ``args`` give one."""
    cmd = [
        sys.executable,
        "-m",
        "patchcheck",
        *args,
        "--no-shipped-bugs",
        "--bugs-dir",
        str(rig.bugs),
        "--lore-url",
        rig.server.url,
    ]
    full = child_env(PYTHONPATH=str(REPO), **(env or {}))
    cp = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=120, cwd=cwd or rig.root)
    no_traceback(cp)
    return cp


@pytest.fixture
def rig(tmp_path: Path, pi_server: PIServer) -> Rig:
    return make_rig(tmp_path, pi_server)


def tarball(rig: Rig, name: str = "linux-4.19.tar.gz", files: dict[str, str] | None = None) -> Path:
    data = {k: v.encode() for k, v in (files or OLD).items()}
    return write_tar(rig.root / name, data, mode="w:gz")


def git_tree(rig: Rig) -> Path:
    repo = rig.root / "linux-git"
    repo.mkdir()
    for rel, text in OLD.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a"}
    env["GIT_COMMITTER_EMAIL"] = "a@b"
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    return repo


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


# -- item 3: where each cache lives ------------------------------------------------------------


def test_a_checkout_cache_holds_series_only_trees_go_to_the_user_cache(rig: Rig) -> None:
    """In a checkout with a committable cache/, a tarball and a git tree are read: cache/ gets
    the series, the tree cache ($XDG_CACHE_HOME/patchcheck/trees) the members and the history."""
    work = rig.root / "packaging"
    (work / "cache").mkdir(parents=True)
    xdg = rig.root / "xdg"
    tar, repo = tarball(rig), git_tree(rig)
    env = {"XDG_CACHE_HOME": str(xdg)}
    for tree in (tar, repo):
        cp = pc(rig, "check", "--tree", str(tree), "--bug", "b-good", "--format", "json", cwd=work, env=env)
        assert cp.returncode == 1, cp.stderr
        assert json.loads(cp.stdout)["results"][0]["verdict"] == "backportable"
    assert entries(work / "cache") == {"series"}
    assert entries(work / "cache" / "series") == {safe_name(GOOD)}
    trees = xdg / "patchcheck" / "trees"
    got = entries(trees)
    assert {"keys", "history"} <= got and any(n.startswith("tarball-") for n in got), got
    assert [p.suffix for p in (trees / "history").iterdir()] == [".json"]
    # the series went into ./cache, not next to the trees
    assert not (xdg / "patchcheck" / "series").exists()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_tree_cache_option_and_environment(rig: Rig, how: str) -> None:
    tar = tarball(rig)
    chosen = rig.root / "tc"
    args = ["check", "--tree", str(tar), "--bug", LOCAL, "--cache-dir", str(rig.cache)]
    if how == "option":
        cp = pc(rig, *args, "--tree-cache", str(chosen))
    else:
        cp = pc(rig, *args, env={"PATCHCHECK_TREE_CACHE": str(chosen)})
    assert cp.returncode == 1, cp.stderr
    assert any(n.startswith("tarball-") for n in entries(chosen))
    assert not rig.cache.exists()  # a local mbox: nothing fetched, nothing in the series cache
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "patchcheck").exists()


# -- item 3: cache verify checks stored selections -----------------------------------------------


def _selection_file(rig: Rig) -> Path:
    [path] = (rig.cache / "series" / safe_name(GOOD)).glob("sel-*.json")
    return path


def test_verify_checks_stored_selections(rig: Rig) -> None:
    cp = rig.run("fetch", "--bug", "b-good")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    sel = _selection_file(rig)
    good = sel.read_bytes()
    cp = rig.run("cache", "verify")
    assert cp.returncode == 0 and cp.stdout.strip().endswith("cache is sound"), cp.stdout

    # a selection whose diff was changed would be trusted by every warm run: verify catches it
    doc = json.loads(unseal(good) or b"")
    other = make_diff(rig.root / "gen", OLD, {**OLD, "fs/b.c": OLD["fs/b.c"].replace("ready3", "ready9")})
    doc["patches"][0]["diff"] = base64.b64encode(other).decode()
    sel.write_bytes(seal(json.dumps(doc).encode()))
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3, cp.stdout
    line = cp.stdout.strip()
    assert line.startswith(f"{safe_name(GOOD)}/{sel.name}: does not match thread.mbox: patch 1"), line
    assert "its diff differs" in line and "rebuilds it" in line and len(cp.stdout.splitlines()) == 1

    sel.write_bytes(good[: len(good) // 2])  # torn
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3 and "damaged selection (its checksum does not match)" in cp.stdout, cp.stdout

    sel.write_bytes(seal(b"{not json"))  # sealed, but no selection
    cp = rig.run("cache", "verify")
    assert cp.returncode == 3 and "unreadable selection" in cp.stdout, cp.stdout

    # stale (made from other thread bytes): never read, so no problem
    doc = json.loads(unseal(good) or b"")
    doc["sha256"] = "0" * 64
    sel.write_bytes(seal(json.dumps(doc).encode()))
    assert rig.run("cache", "verify").returncode == 0

    # deleted, as the message says: the next run rebuilds it, equal to the first
    sel.unlink()
    cp, res = rig.check("b-good", offline=True)
    assert res["b-good"]["verdict"] == "backportable"
    assert json.loads(unseal(sel.read_bytes()) or b"")["patches"] == json.loads(unseal(good) or b"")["patches"]
    assert rig.run("cache", "verify").returncode == 0


# -- item 3: cache prune on the tree cache -------------------------------------------------------


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_prune_drops_unused_tree_entries_and_history_and_says_what_it_freed(rig: Rig) -> None:
    tc = rig.cache / "trees"  # the rig's tree cache
    old_tar = tarball(rig, "old.tar.gz")
    new_files = {**OLD, "fs/c.c": c_file("c")}
    new_tar = tarball(rig, "new.tar.gz", new_files)
    repo = git_tree(rig)
    for tree in (old_tar, new_tar, repo):
        assert rig.run("check", "--tree", str(tree), "--bug", LOCAL).returncode == 1
    tar_entries = sorted(n for n in entries(tc) if n.startswith("tarball-"))
    assert len(tar_entries) == 2 and len(entries(tc / "keys")) == 2
    [history] = list((tc / "history").iterdir())
    foreign = tc / "notes.txt"  # not ours: never touched
    foreign.write_text("mine")
    for p in [*(tc / n for n in tar_entries), history, foreign]:
        _age(p, 40)
    for p in (tc / "keys").iterdir():
        _age(p, 40)

    # a warm run of the new tarball marks its entry used (without writing anything)
    assert rig.run("check", "--tree", str(new_tar), "--bug", LOCAL).returncode == 1
    used = next(n for n in tar_entries if time.time() - (tc / n).stat().st_mtime < DAY)
    stale = next(n for n in tar_entries if n != used)
    stale_size = sum(p.stat().st_size for p in (tc / stale).rglob("*") if p.is_file())

    # without --older-than: tree entries are kept, and it says so
    cp = rig.run("cache", "prune")
    assert cp.returncode == 0, cp.stderr
    assert "freed 0 B: 0 series, 0 tree cache entries, 0 history indexes" in cp.stdout
    assert f"kept the tree cache {tc}" in cp.stdout and "--older-than" in cp.stdout
    assert stale in entries(tc)

    cp = rig.run("cache", "prune", "--older-than", "30d")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert f"removed tree cache entry {stale} (unused for 40 days)" in out
    assert f"removed history index {history.name} (unused for 40 days)" in out
    assert used in entries(tc) and stale not in entries(tc) and not history.exists()
    assert foreign.read_text() == "mine"
    # the key of the removed archive goes with it; the used one's stays
    keys = [p.read_text().strip() for p in (tc / "keys").iterdir()]
    assert keys == [used.split("-", 1)[1]]
    [freed] = [line for line in out.splitlines() if line.startswith("freed ")]
    assert freed.endswith(": 0 series, 1 tree cache entries, 1 history indexes"), freed
    n = float(freed.split()[1])
    unit = freed.split()[2].rstrip(":")
    in_bytes = n * {"B": 1, "KiB": 1024, "MiB": 1024**2}[unit]
    assert stale_size <= in_bytes < stale_size + 100_000, (freed, stale_size)

    # the series cache is untouched by the age: series of known bugs stay
    assert rig.run("fetch", "--bug", "b-good").returncode == 0
    _age(rig.cache / "series" / safe_name(GOOD), 400)
    cp = rig.run("cache", "prune", "--older-than", "1d")
    assert (rig.cache / "series" / safe_name(GOOD)).is_dir() and "0 series" in cp.stdout


def test_prune_counts_the_series_it_drops(rig: Rig) -> None:
    assert rig.run("fetch", "--bug", "b-good").returncode == 0
    size = sum(p.stat().st_size for p in (rig.cache / "series").rglob("*") if p.is_file())
    (rig.bugs / "b-good.toml").unlink()
    cp = rig.run("cache", "prune")
    assert f"removed {safe_name(GOOD)}" in cp.stdout
    [freed] = [line for line in cp.stdout.splitlines() if line.startswith("freed ")]
    assert ": 1 series, 0 tree cache entries" in freed
    assert freed.startswith(f"freed {size / 1024:.1f} KiB") or freed.startswith(f"freed {size} B"), (freed, size)


@pytest.mark.parametrize("bad", ["30x", "d", "1y", ""])
def test_older_than_needs_an_age(rig: Rig, bad: str) -> None:
    cp = rig.run("cache", "prune", "--older-than", bad)
    assert cp.returncode == 2 and "--older-than" in cp.stderr and "expected an age" in cp.stderr, cp.stderr


def test_prune_clears_tree_data_left_in_the_series_cache_by_older_versions(rig: Rig) -> None:
    """Before the tree cache, members and history indexes lived in the series cache
    (cache/trees/, cache/history/): prune takes them out, whatever their age; a file of
    another shape stays."""
    assert rig.run("fetch", "--bug", "b-good").returncode == 0
    digest = "ab" * 32
    old_entry = rig.cache / "trees" / f"tarball-{digest}"
    (old_entry / "members" / "files").mkdir(parents=True)
    (old_entry / "members" / "files" / "Makefile").write_bytes(b"x" * 5000)
    (rig.cache / "trees" / "keys").mkdir()
    (rig.cache / "trees" / "keys" / ("cd" * 32)).write_text(digest)
    (rig.cache / "history").mkdir()
    (rig.cache / "history" / f"{'e' * 40}.json").write_bytes(b"{}" * 1000)
    (rig.cache / "trees" / "README").write_text("not patchcheck's")
    cp = pc(rig, "cache", "prune", "--cache-dir", str(rig.cache))
    assert cp.returncode == 0, cp.stderr
    new_home = Path(os.environ["XDG_CACHE_HOME"]) / "patchcheck" / "trees"
    assert f"removed tree cache entry tarball-{digest} (tree data now lives in {new_home})" in cp.stdout
    assert f"removed history index {'e' * 40}.json" in cp.stdout
    assert "freed 6.9 KiB: 0 series, 1 tree cache entries, 1 history indexes" in cp.stdout, cp.stdout
    assert entries(rig.cache) == {"series", "trees"} and entries(rig.cache / "trees") == {"README"}
    assert entries(rig.cache / "series") == {safe_name(GOOD)}
