"""Errors that say what to do (real CLI): the error stays one line; a ``hint:`` line on stderr
names the way out (the cache and --offline, a mirror, a local mbox, the exact fetch command,
where trees files are looked for)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from testing.pi_server import PIServer
from testing.rig import GOOD, LOCAL, REPO, Rig, env, hints, make_rig, no_traceback, one_line_error


@pytest.fixture
def rig(tmp_path: Path, pi_server: PIServer) -> Rig:
    return make_rig(tmp_path, pi_server)


def test_archive_unreachable_names_offline_mirror_mbox_and_fetch(rig: Rig) -> None:
    rig.fix_bug("b-other", "other-1@example.org")
    url = rig.server.url
    rig.server.stop()
    cp, res = rig.check("b-good", "b-other", LOCAL, lore=url)
    assert cp.returncode == 3
    assert res["b-good"]["verdict"] == "error" and "connection refused" in res["b-good"]["error"]
    assert res[LOCAL]["verdict"] == "backportable"
    [hint] = hints(cp.stderr)  # one hint for both bugs
    assert hint.startswith(f"hint: {url} did not answer: ")
    fetch = "patchcheck fetch --bug b-good --bug b-other"
    fetch += f" --no-shipped-bugs --bugs-dir {rig.bugs} --cache-dir {rig.cache} --lore-url {url}"
    assert f"({fetch})" in hint, hint
    for words in ("add --offline", "--lore-url at a mirror", 'mbox = "FILE"'):
        assert words in hint, (words, hint)

    # `patchcheck fetch` itself says the same, after its one error line per bug
    cp = rig.run("fetch", "--bug", "b-good", lore=url)
    assert cp.returncode == 3 and cp.stdout.startswith("b-good: good-1@example.org: error: ")
    [hint] = hints(cp.stderr)
    assert "did not answer" in hint and "--bug b-good" in hint


def test_offline_and_not_cached_gives_the_fetch_command_to_run(rig: Rig) -> None:
    cp, res = rig.check("b-good", LOCAL, offline=True)
    assert cp.returncode == 3 and "not in cache (offline)" in res["b-good"]["error"]
    [hint] = hints(cp.stderr)
    prefix = "hint: fetch while online, then run again: "
    assert hint.startswith(prefix), hint
    command = shlex.split(hint[len(prefix) :])
    assert command[:4] == ["patchcheck", "fetch", "--bug", "b-good"] and LOCAL not in command

    # that exact command, run as given, makes the offline run work
    fetch = subprocess.run(
        [sys.executable, "-m", *command], capture_output=True, text=True, env=env(), timeout=60, cwd=rig.root
    )
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    cp, res = rig.check("b-good", LOCAL, offline=True)
    assert cp.returncode == 1 and res["b-good"]["verdict"] == "backportable" and cp.stderr == ""


def test_the_fetch_command_keeps_a_relative_cache_dir_and_quotes(rig: Rig) -> None:
    bugs = rig.root / "my bugs"
    rig.bugs.rename(bugs)
    cmd = [sys.executable, "-m", "patchcheck", "check", "--tree", str(rig.tree), "--bug", "b-good", "--offline"]
    cmd += ["--bugs-dir", str(bugs), "--cache-dir", "rel-cache", "--format", "json"]
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=60, cwd=rig.root)
    no_traceback(cp)
    [hint] = hints(cp.stderr)
    assert f"--bugs-dir '{bugs}' --cache-dir rel-cache" in hint and "--lore-url" not in hint, hint


def test_a_404_has_no_network_hint(rig: Rig) -> None:
    rig.fix_bug("gone", "nowhere-1@example.org")
    cp, res = rig.check("gone")
    assert cp.returncode == 3 and "HTTP 404" in res["gone"]["error"]
    assert hints(cp.stderr) == []


def _tree_by_name(rig: Rig, *extra: str, cwd: Path, xdg_config: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "patchcheck", "--tree", "linux-4.19", "--bug", LOCAL, "--bugs-dir", str(rig.bugs)]
    full = {**env(), "XDG_CONFIG_HOME": str(xdg_config)}
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, env=full, timeout=60, cwd=cwd)


def test_tree_name_without_a_trees_file_says_where_they_are_looked_for(rig: Rig, tmp_path: Path) -> None:
    work, conf = tmp_path / "work", tmp_path / "conf"
    work.mkdir()
    cp = _tree_by_name(rig, cwd=work, xdg_config=conf)
    line = one_line_error(cp, 2, "linux-4.19", "no such file or folder", "no trees file")
    [hint] = cp.stderr.strip().splitlines()[1:]
    assert line.startswith("patchcheck: error: linux-4.19: ")
    for where in (str(work / "trees.toml"), str(conf / "patchcheck" / "trees.toml"), "--trees-file"):
        assert where in hint, (where, hint)

    # with a trees file, the error lists its names instead, and needs no hint
    (conf / "patchcheck").mkdir(parents=True)
    (conf / "patchcheck" / "trees.toml").write_text(f'[linux-4.20]\npath = "{rig.tree}"\n')
    cp = _tree_by_name(rig, cwd=work, xdg_config=conf)
    one_line_error(cp, 2, "not a name in", "linux-4.20")
    assert len(cp.stderr.strip().splitlines()) == 1

    # a path (it has a "/") is never taken for a name: no hint
    cmd = [sys.executable, "-m", "patchcheck", "--tree", "./nope", "--bug", LOCAL, "--bugs-dir", str(rig.bugs)]
    cp = subprocess.run(
        cmd, capture_output=True, text=True, env={**env(), "XDG_CONFIG_HOME": str(tmp_path / "x")}, cwd=work
    )
    one_line_error(cp, 2, "./nope", "no such file or folder")
    assert len(cp.stderr.strip().splitlines()) == 1


def test_trees_list_without_a_trees_file_says_where_it_looked(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "patchcheck", "trees", "list"]
    full = {**env(), "XDG_CONFIG_HOME": str(tmp_path / "conf"), "PYTHONPATH": str(REPO)}
    cp = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=60, cwd=tmp_path)
    assert cp.returncode == 0
    assert (
        str(tmp_path / "trees.toml") in cp.stderr
        and str(tmp_path / "conf" / "patchcheck" / "trees.toml") in cp.stderr
    )


def test_series_error_text_is_still_one_line_in_json(rig: Rig) -> None:
    url = rig.server.url
    rig.server.stop()
    cp, res = rig.check("b-good", lore=url)
    assert "\n" not in res["b-good"]["error"] and GOOD in res["b-good"]["error"].replace("%40", "@")
    assert "hint" not in json.dumps(res)  # the hint goes to stderr, not into the report
