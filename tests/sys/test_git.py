"""sys/git.py: every git call sees a neutral, locked configuration, whatever the repository,
the user's files or the environment say."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from patchcheck.sys import git as gitmod
from patchcheck.sys.git import git


def _raw(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    (r / "a.c").write_text("int a;\n")
    _raw(r, "init", "-q", "-b", "main")
    _raw(r, "add", "-A")
    _raw(r, "commit", "-qm", "base")
    return r


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    c = tmp_path / "canary"
    c.mkdir()
    return c


def _stat_dirty(repo: Path) -> None:
    for p in repo.glob("*.c"):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))


def test_filter_driver_with_an_odd_name_is_locked(repo: Path, canary: Path) -> None:
    """The driver's name holds '=': `-c name=value` would split it at the wrong place."""
    (repo / ".git" / "info" / "attributes").write_text("*.c filter=ev=il\n")
    _raw(repo, "config", "filter.ev=il.clean", f"touch {canary}/clean; cat")
    _raw(repo, "config", "filter.ev=il.process", f"touch {canary}/process")
    _stat_dirty(repo)
    res = git(["status", "--porcelain"], cwd=repo)
    assert res.ok and res.stdout == b""
    assert os.listdir(canary) == []


def test_filter_from_an_included_file_is_locked(repo: Path, canary: Path, tmp_path: Path) -> None:
    inc = tmp_path / "inc.cfg"
    inc.write_text(f'[filter "inc"]\n\tclean = touch {canary}/inc; cat\n')
    _raw(repo, "config", "include.path", str(inc))
    (repo / ".gitattributes").write_text("*.c filter=inc\n")
    _stat_dirty(repo)
    assert git(["status", "--porcelain"], cwd=repo).ok
    assert os.listdir(canary) == []


def test_status_leaves_the_index_alone(repo: Path) -> None:
    """GIT_OPTIONAL_LOCKS=0: a stat-dirty tree does not get its index refreshed."""
    _stat_dirty(repo)
    index = repo / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    assert git(["status", "--porcelain"], cwd=repo).ok
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    assert not (repo / ".git" / "index.lock").exists()


def test_diff_commands_get_no_external_diff(repo: Path, canary: Path) -> None:
    _raw(repo, "config", "diff.external", f"touch {canary}/external")
    _raw(repo, "config", "diff.x.textconv", f"touch {canary}/textconv; cat")
    (repo / ".gitattributes").write_text("*.c diff=x\n")
    (repo / "a.c").write_text("int b;\n")
    res = git(["diff"], cwd=repo)
    assert res.ok and b"+int b;" in res.stdout
    log = git(["log", "-p", "-1", "--format=%H"], cwd=repo)
    assert log.ok and b"+int a;" in log.stdout
    assert os.listdir(canary) == []


def test_no_transport_runs(repo: Path, canary: Path) -> None:
    """A remote whose URL is a command (ext::), explicitly allowed by the repository."""
    _raw(repo, "config", "remote.origin.url", f"ext::sh -c touch% {canary}/ext")
    _raw(repo, "config", "protocol.ext.allow", "always")
    _raw(repo, "config", "core.sshCommand", f"touch {canary}/ssh")
    res = git(["ls-remote", "origin"], cwd=repo, timeout=20)
    assert not res.ok
    res = git(["ls-remote", "ssh://example.invalid/x"], cwd=repo, timeout=20)
    assert not res.ok
    assert os.listdir(canary) == []


def test_user_config_and_environment_do_not_leak(
    repo: Path, tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".gitconfig").write_text("[probe]\n\thome = yes\n")
    (home / ".config" / "git" / "config").write_text("[probe]\n\txdg = yes\n")
    glob = tmp_path / "global.cfg"
    glob.write_text("[probe]\n\tglobal = yes\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(glob))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'probe.params'='yes'")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"touch {canary}/env")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", f"touch {canary}/extdiff")
    listing = git(["config", "--list", "--show-scope"], cwd=repo)
    assert listing.ok, listing.err()
    assert b"probe." not in listing.stdout
    assert git(["status", "--porcelain"], cwd=repo).ok  # GIT_DIR was not followed
    (repo / "a.c").write_text("int c;\n")
    assert b"+int c;" in git(["diff"], cwd=repo).stdout
    assert os.listdir(canary) == []


def test_locked_keys_win_over_the_repository(repo: Path) -> None:
    _raw(repo, "config", "core.hooksPath", "/somewhere")
    _raw(repo, "config", "core.fsmonitor", "true")
    res = git(["config", "--get", "core.hooksPath"], cwd=repo)
    assert res.out().strip() == os.devnull
    assert git(["config", "--get", "core.fsmonitor"], cwd=repo).out().strip() == "false"


def test_command_shape(repo: Path) -> None:
    argv, env = gitmod.command(["log", "--format=%H"], cwd=repo)
    assert argv[:5] == ["git", "log", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all"]
    assert env["HOME"] == os.devnull and env["GIT_OPTIONAL_LOCKS"] == "0"
    keys = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert keys["safe.directory"] == os.path.realpath(repo)
    assert env["GIT_WORK_TREE"] == str(repo)
    argv, env = gitmod.command(["cat-file", "--batch"], git_dir=repo / ".git")
    assert argv == ["git", "--git-dir", str(repo / ".git"), "cat-file", "--batch"]
    assert "GIT_WORK_TREE" not in env


def test_stream_reads_a_log(repo: Path) -> None:
    with gitmod.stream(["log", "--format=%s"], git_dir=repo / ".git", timeout=20) as s:
        out = s.stdout.read()
        assert s.wait() == 0
    assert out == b"base\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_safe_directory_is_the_named_folder_only(repo: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(repo):
        for n in [*dirnames, *filenames, "."]:
            os.lchown(os.path.join(dirpath, n), 65534, 65534)
    sub = repo / "sub"
    sub.mkdir()
    os.lchown(sub, 65534, 65534)
    assert git(["rev-parse", "--git-dir"], cwd=repo).ok
    # a folder inside: git finds the repository by walking up, and that one is not trusted
    res = git(["rev-parse", "--git-dir"], cwd=sub)
    assert not res.ok and "dubious ownership" in res.err()


def test_a_config_changed_between_calls_is_listed_again(repo: Path, canary: Path) -> None:
    assert git(["status", "--porcelain"], cwd=repo).ok  # the listing is cached now
    _raw(repo, "config", "filter.late.process", f"touch {canary}/late")
    (repo / ".gitattributes").write_text("*.c filter=late\n")
    _stat_dirty(repo)
    assert git(["status", "--porcelain"], cwd=repo).ok
    assert os.listdir(canary) == []


def test_submodules_are_not_looked_into(repo: Path, canary: Path, tmp_path: Path) -> None:
    """git status would run itself in a submodule, under the submodule's own config (a
    filter there is not listed from the outer repository), and .gitmodules may say
    ignore = none to outrank diff.ignoreSubmodules."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "s.c").write_text("int s;\n")
    _raw(sub, "init", "-q", "-b", "main")
    _raw(sub, "add", "-A")
    _raw(sub, "commit", "-qm", "sub")
    _raw(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub")
    _raw(repo, "config", "-f", ".gitmodules", "submodule.sub.ignore", "none")
    _raw(repo, "commit", "-qam", "with sub")
    modules = repo / ".git" / "modules" / "sub"
    _raw(repo, "config", "-f", str(modules / "config"), "filter.x.process", f"touch {canary}/sub-process")
    (modules / "info").mkdir(exist_ok=True)
    (modules / "info" / "attributes").write_text("* filter=x\n")
    _stat_dirty(repo / "sub")
    assert git(["status", "--porcelain"], cwd=repo).ok
    assert git(["diff", "HEAD"], cwd=repo).ok
    assert os.listdir(canary) == []
