"""Every git invocation goes through here (on top of proc): a neutral, locked configuration.

A tree we check may be hostile, and git still reads the repository's own ``.git/config``
(and whatever it includes): keys there can make even ``git status`` run a program
(``core.fsmonitor``, a filter driver's ``clean``), read a file outside the tree
(``core.excludesFile``, ``mailmap.file``), or reach the network (a promisor remote of a
partial clone). So every call gets:

* no system, global or user configuration: ``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL``,
  ``HOME`` and ``XDG_CONFIG_HOME`` point at /dev/null (an always-empty place nobody can add a
  file to), and no ``GIT_*`` variable of the caller's environment leaks in (``GIT_DIR``, ``GIT_CONFIG_COUNT``,
  ``GIT_CONFIG_PARAMETERS``, ``GIT_EXTERNAL_DIFF``, ``GIT_TRACE``...);
* command-scope config (``GIT_CONFIG_COUNT``; it outranks the repository's) that turns off
  every key that runs a command or reads outside: ``_LOCKED`` below, plus the keys with a
  repository-chosen name (``filter.<x>.clean``, ``diff.<x>.textconv``...), found by listing
  the repository's configuration (includes followed) before the call;
* ``--no-ext-diff --no-textconv`` for the commands that make diffs, and no look into
  submodules (``--ignore-submodules=all``: git would run itself in each, under the
  submodule's own config);
* the folder named (the call's cwd) as the work tree, whatever ``core.worktree`` says;
* no transport at all (``GIT_ALLOW_PROTOCOL`` empty): no ssh, no ``ext::``, no lazy fetch;
* ``GIT_OPTIONAL_LOCKS=0`` (``git status`` does not refresh the index: the user's tree,
  ``.git/index`` included, stays byte-identical), ``GIT_NO_REPLACE_OBJECTS=1`` (content is
  what the objects say, not what ``refs/replace`` substitutes), no terminal prompt.

``include.path``/``includeIf`` cannot be turned off from outside; what they bring in is
listed and locked like the rest (command scope is read last), and a file that never ends
(a FIFO) is bounded by the call's timeout. ``uploadpack.packObjectsHook`` and ``safe.*``
are honoured by git from protected (system/global/command) configuration only.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence

from patchcheck.sys import proc

_Where = str | os.PathLike[str] | None

# Fixed names: key -> the value that turns it off (or pins it, for reproducible output).
_LOCKED: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.useBuiltinFSMonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("core.sshCommand", "false"),
    ("core.pager", "cat"),
    ("core.editor", ":"),
    ("sequence.editor", ":"),
    ("core.askPass", ""),
    ("core.alternateRefsCommand", ":"),
    ("core.attributesFile", os.devnull),
    ("core.excludesFile", os.devnull),
    ("credential.helper", ""),  # empty resets the list of helpers
    ("diff.external", ""),
    ("diff.orderFile", os.devnull),
    ("diff.ignoreSubmodules", "all"),
    ("submodule.recurse", "false"),
    ("status.submoduleSummary", "false"),
    ("log.showSignature", "false"),
    ("log.mailmap", "false"),
    ("log.follow", "false"),
    ("mailmap.file", os.devnull),
    ("mailmap.blob", ""),
    ("gpg.program", "false"),
    ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.ssh.defaultKeyCommand", "false"),
    ("protocol.allow", "never"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("color.ui", "false"),
    ("core.quotepath", "off"),
    ("apply.whitespace", "nowarn"),
)

# Keys whose middle part the repository names (filter.<driver>.clean): matched on the
# listed configuration. Section and key come lower-cased from git; the middle is kept as is.
_NAMED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"filter\..+\.(clean|smudge|process)"), ""),  # empty: no filter runs
    (re.compile(r"filter\..+\.required"), "false"),
    (re.compile(r"diff\..+\.(command|textconv)"), ""),
    (re.compile(r"merge\..+\.driver"), ""),
    (re.compile(r"credential\..+\.helper"), ""),
    (re.compile(r"protocol\..+\.allow"), "never"),
    (re.compile(r"pager\..+"), "false"),
    (re.compile(r"gpg\..+\.program"), "false"),
)

# Options given to a subcommand right after its name. Diffs: the repository's diff drivers
# stay unused. Submodules: never looked into, since git would run `git status` inside each
# with the submodule's own config (whose drivers are not listed here), and a .gitmodules
# `ignore = none` outranks diff.ignoreSubmodules; only the command-line option outranks it.
_NO_SUBMODULES = ("--ignore-submodules=all",)
_DIFF_FLAGS = ("--no-ext-diff", "--no-textconv", *_NO_SUBMODULES)
_SUBCOMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("diff", "log", "show", "diff-tree", "diff-index", "diff-files"), _DIFF_FLAGS),
    "status": _NO_SUBMODULES,
}

_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "HOME": os.devnull,
    "XDG_CONFIG_HOME": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",  # set and empty: no askpass program (nor core.askPass, SSH_ASKPASS)
    "GIT_EDITOR": ":",
    "GIT_PAGER": "cat",
    "GIT_ALLOW_PROTOCOL": "",  # set: only the listed transports; listed: none
    "GIT_PROTOCOL_FROM_USER": "0",
}
# Inherited variables that would change what git reads or runs.
_DROP = ("SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "EDITOR", "VISUAL", "PAGER")


def _base_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k not in _DROP}
    env.update(_ENV)
    env.update(extra or {})
    return env


def _with_config(env: dict[str, str], pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``pairs`` as command-scope config: GIT_CONFIG_KEY_n / VALUE_n (no quoting to get
    wrong, unlike ``-c``: a driver name may hold '=' or spaces)."""
    out = dict(env)
    for i, (k, v) in enumerate(pairs):
        out[f"GIT_CONFIG_KEY_{i}"] = k
        out[f"GIT_CONFIG_VALUE_{i}"] = v
    out["GIT_CONFIG_COUNT"] = str(len(pairs))
    return out


def _safe_directory(cwd: str | os.PathLike[str] | None) -> list[tuple[str, str]]:
    """The ``safe.directory`` decision: git refuses a repository owned by another user (as
    a tree unpacked by someone else is, when CI runs as root) because that user's config
    could run code as us. Every such key is locked here, so the one directory patchcheck
    was asked to read (the call's cwd: the tree the user named, or a scratch repository of
    ours) is trusted, and nothing else: never '*', so a repository git would find by
    walking up from elsewhere is still refused when it is not ours."""
    if cwd is None:
        return []
    real = os.path.realpath(cwd)
    if "*" in real:  # '*' means "everything" to git (and a prefix pattern to newer gits)
        return []
    return [("safe.directory", real)]


def _named_keys(listing: bytes) -> list[tuple[str, str]]:
    """The repository-named keys to lock, from ``config --list --show-scope --name-only -z``
    (scope NUL name NUL ...); our own command-scope keys are skipped."""
    fields = listing.split(b"\0")
    out: list[tuple[str, str]] = []
    for scope, raw in zip(fields[0::2], fields[1::2], strict=False):
        if scope == b"command":
            continue
        name = raw.decode("utf-8", "surrogateescape")
        for pattern, value in _NAMED:
            if pattern.fullmatch(name):
                out.append((name, value))
                break
    return out


def _config_stamp(cwd: _Where, git_dir: _Where) -> tuple[object, ...]:
    """What the repository's own config file looks like now (a change means: list again).
    A file it includes is not followed here: one run reads a tree once."""
    places = [os.path.join(git_dir, "config")] if git_dir is not None else []
    if cwd is not None and git_dir is None:
        places += [os.path.join(cwd, ".git", "config"), os.path.join(cwd, ".git"), os.path.join(cwd, "config")]
    stamp: list[object] = []
    for p in places:
        try:
            st = os.stat(p)
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


_listed: dict[tuple[object, ...], list[tuple[str, str]]] = {}
_listed_lock = threading.Lock()


def _listed_keys(
    argv: list[str],
    cwd: _Where,
    git_dir: _Where,
    base: dict[str, str],
    fixed: list[tuple[str, str]],
    timeout: float,
) -> list[tuple[str, str]]:
    """The repository-named keys to lock, listed with the call's own setting (cached per
    repository while its config file stays the same: git apply runs once per patch)."""
    where = (
        None if cwd is None else os.path.realpath(cwd),
        None if git_dir is None else os.path.realpath(git_dir),
        tuple(sorted(base.items())),
    )
    key = (where, _config_stamp(cwd, git_dir))
    with _listed_lock:
        hit = _listed.get(key)
    if hit is not None:
        return hit
    listing = proc.run(
        [*argv, "config", "--list", "--show-scope", "--name-only", "-z"],
        cwd=cwd,
        env=_with_config(base, fixed),
        inherit_env=False,
        timeout=timeout,
        max_output=16 << 20,
    )
    # a config git cannot parse fails the real call the same way: nothing to add then
    named = _named_keys(listing.stdout) if listing.ok else []
    with _listed_lock:
        if len(_listed) > 256:
            _listed.clear()
        _listed[key] = named
    return named


def command(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    git_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = proc.DEFAULT_TIMEOUT,
) -> tuple[list[str], dict[str, str]]:
    """The argv and the complete environment of one locked git call (see the module doc)."""
    argv: list[str] = ["git"]
    if git_dir is not None:
        argv += ["--git-dir", str(git_dir)]
    base = _base_env(env)
    if cwd is not None and git_dir is None and os.path.lexists(os.path.join(cwd, ".git")):
        # the folder named is the work tree, whatever core.worktree in its config says
        base.setdefault("GIT_WORK_TREE", os.path.abspath(cwd))
    fixed = [*_LOCKED, *_safe_directory(cwd)]
    named = _listed_keys(argv, cwd, git_dir, base, fixed, timeout)
    rest = [str(a) for a in args]
    if rest:
        rest[1:1] = _SUBCOMMAND_FLAGS.get(rest[0], ())
    return [*argv, *rest], _with_config(base, [*fixed, *named])


def git(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    git_dir: str | os.PathLike[str] | None = None,
    input: bytes | None = None,
    timeout: float = proc.DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
    check: bool = False,
    max_output: int | None = proc.DEFAULT_MAX_OUTPUT,
) -> proc.Result:
    argv, full_env = command(args, cwd=cwd, git_dir=git_dir, env=env, timeout=timeout)
    return proc.run(
        argv,
        cwd=cwd,
        input=input,
        timeout=timeout,
        env=full_env,
        check=check,
        max_output=max_output,
        inherit_env=False,
    )


@contextlib.contextmanager
def stream(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    git_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[proc.Stream]:
    """``proc.stream`` for git: output too large to buffer (a kernel's whole log)."""
    argv, full_env = command(args, cwd=cwd, git_dir=git_dir, env=env)
    with proc.stream(argv, cwd=cwd, timeout=timeout, env=full_env, inherit_env=False) as s:
        yield s
