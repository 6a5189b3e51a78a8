"""Differential property test (issue 11): random real-looking C files, random fixes, random
mutations of the tree; the engine's verdict must agree with ``git apply --check`` and
``patch --dry-run -F0..2`` in both directions wherever those tools are unambiguous, must
never be ``present`` when the fix's added lines are absent, and never ``not-applicable``
when the file it touches exists."""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchcheck.engine.blocks import significant
from patchcheck.engine.check import TreeContext, check_series
from patchcheck.evidence.history import History
from patchcheck.model import Fix, PatchMail, PatchResult, Series
from testing.gitrepo import commit, git, init
from testing.kfixtures import DictTree, make_diff

PATH = "drivers/x/x.c"
MUTATIONS = ("old", "new", "offset-old", "offset-new", "fuzz", "local-edit", "blank-drift", "elsewhere", "revert")
_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


@dataclass
class Case:
    old: str  # the file the fix was made on
    new: str  # the file with the fix
    tree: str  # the tree's file: one mutation of old or new
    added: list[str]  # the fix's added lines
    kind: str
    func: tuple[int, int]  # 1-based first and last line of the fixed function (old, and the
    # mutations that do not shift it by more than a line)


def _function(rng: random.Random, name: str, k: int) -> list[str]:
    """A function of kernel-looking lines, distinct from other functions' lines at least
    every third line (so the tools' exact landings are at the fix's place)."""
    out = [f"static int {name}(struct {name}_dev *dev, unsigned long flags)", "{", f"\tint err{k} = 0;", ""]
    for j in range(rng.randint(4, 8)):
        out += rng.choice(
            [
                [f"\terr{k} = {name}_step{j}(dev, flags & 0x{j + 1:x});"],
                [f"\tif (dev->state{j} != {name.upper()}_READY{j})", f"\t\treturn -E{name.upper()}{j};"],
                [f"\tdev->count{j} += {name}_count{j}(dev);"],
                [
                    f"\tspin_lock(&dev->{name}_lock{j});",
                    f"\tdev->val{j} = flags >> {j};",
                    f"\tspin_unlock(&dev->lock{j});",
                ],
            ]
        )
    return [*out, f"\treturn err{k};", "}", ""]


def _case(seed: int, kind: str) -> Case:
    rng = random.Random(seed)
    names = rng.sample(["probe", "remove", "reset", "open", "release", "ioctl", "poll", "flush", "mmap"], 4)
    funcs = [_function(rng, n, k) for k, n in enumerate(names)]
    head = ["// SPDX-License-Identifier: GPL-2.0", "#include <linux/x.h>", ""]
    old_lines = head + [ln for f in funcs for ln in f]
    # the fix: in one function, one statement changed and maybe a check added after it
    f = rng.randrange(len(funcs))
    start = len(head) + sum(len(x) for x in funcs[:f])
    body = [i for i in range(start + 4, start + len(funcs[f]) - 3) if old_lines[i].startswith("\t")]
    at = rng.choice(body)
    new_lines = list(old_lines)
    added = [old_lines[at].rstrip(";") + f" ?: -EFIX{seed % 1000};"]
    if rng.random() < 0.5:
        added += [f"\tif (dev->fixed{seed % 97})", f"\t\tgoto out_fix{seed % 89};"]
    new_lines[at : at + 1] = added
    old, new = "\n".join(old_lines) + "\n", "\n".join(new_lines) + "\n"
    pad = "".join(f"/* vendor note {i} */\n" for i in range(rng.randint(1, 40)))
    tree_lines = list(old_lines)
    if kind == "fuzz":  # the outermost context line above the change differs
        tree_lines[at - 3] = tree_lines[at - 3] + " /* v */" if tree_lines[at - 3] else "/* v */"
    elif kind == "local-edit":  # the line the fix removes carries a local edit
        tree_lines[at] += " /* vendor */"
    elif kind == "blank-drift":  # a blank line more inside the context
        tree_lines.insert(at - 1, "")
    elif kind == "elsewhere":  # the function the fix is in was reworked: its code is gone
        tree_lines[at - 2 : at + 3] = [f"\t/* reworked {i} */" for i in range(5)]
    tree = "\n".join(tree_lines) + "\n"
    tree = {"new": new, "offset-new": pad + new, "offset-old": pad + old}.get(kind, tree)
    return Case(old, new, tree, added, kind, (start + 1, start + len(funcs[f]) + 1))


def _tools(tree: str, diff: bytes) -> dict[str, int | bool]:
    """What git apply --check and GNU patch --dry-run (fuzz 0..2) say, both ways; "at":
    where GNU patch lands the hunk with fuzz 2 (0: it does not)."""
    out: dict[str, int | bool] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / PATH).parent.mkdir(parents=True)
        (root / PATH).write_text(tree)
        env = {**_ENV, "GIT_CEILING_DIRECTORIES": d}

        def ok(argv: list[str]) -> bool:
            cp = subprocess.run(argv, cwd=root, input=diff, capture_output=True, env=env)
            m = re.search(rb"Hunk #1 succeeded at (\d+)", cp.stdout)
            if "-F2" in argv and cp.returncode == 0:
                out["at"] = int(m.group(1)) if m else 1 << 30  # no message: at its line
            return cp.returncode == 0

        out["git"] = ok(["git", "apply", "--check", "-"])
        out["git-R"] = ok(["git", "apply", "--check", "-R", "-"])
        for fz in (0, 1, 2):
            out[f"F{fz}"] = ok(["patch", "-p1", "--dry-run", "--force", f"-F{fz}"])
        out["R-F0"] = ok(["patch", "-p1", "--dry-run", "--force", "-R", "-F0"])
    return out


def _engine(c: Case, diff: bytes) -> PatchResult:
    """The engine's verdict; for "revert", on a git tree whose history has the fix and
    then its revert (the content is the old file again)."""
    subject = "x: clamp the step result"
    mail = PatchMail(msgid="p@x", subject=subject, author="A", counter=1, expected=1, diff=diff)
    series = Series(key="k", msgid="k", revision=1, subject=subject, patches=(mail,), source="mbox")
    if c.kind != "revert":
        [r] = check_series(DictTree({PATH: c.tree}), series, Fix(msgid="k@x"))
        return r
    with tempfile.TemporaryDirectory() as d:
        repo = Path(d)
        init(repo, {PATH: c.old})
        commit(repo, subject, {PATH: c.new})
        git(repo, "revert", "--no-edit", "HEAD")
        ctx = TreeContext(history=History.load(repo / ".git", "HEAD", None))
        [r] = check_series(DictTree({PATH: c.tree}), series, Fix(msgid="k@x"), ctx)
        return r


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(MUTATIONS))
def test_engine_agrees_with_the_tools(seed: int, kind: str) -> None:
    c = _case(seed, kind)
    with tempfile.TemporaryDirectory() as d:
        diff = make_diff(Path(d), {PATH: c.old}, {PATH: c.new})
    t = _tools(c.tree, diff)
    r = _engine(c, diff)
    what = f"{kind}: {r.verdict}/{r.method}: {r.evidence}; tools {t}"
    # invariants, whatever the tools say
    tree_lines = {" ".join(ln.split()) for ln in c.tree.splitlines()}
    if not all(a in tree_lines for a in significant([x.encode() for x in c.added]) for a in [a.decode()]):
        assert r.verdict != "present", what
    assert r.verdict != "not-applicable", what  # the file is there
    # where the tools are unambiguous
    fwd_any = t["F0"] or t["F1"] or t["F2"]
    if t["git-R"] and t["R-F0"] and not fwd_any:
        assert r.verdict == "present" and r.method in ("exact", "offset"), what
    if t["git"] and t["F0"] and not t["R-F0"]:
        assert (r.verdict, r.method) in (("backportable", "clean"), ("backportable", "offset")), what
    lo, hi = c.func
    fuzz_in_func = kind in ("fuzz", "blank-drift") and (lo <= int(t.get("at", 0)) <= hi or t.get("at") == 1 << 30)
    if not t["F0"] and (t["F1"] or t["F2"]) and not t["R-F0"] and not t["git"] and fuzz_in_func:
        assert (r.verdict, r.method) == ("backportable", "fuzz"), what
    if not fwd_any and not t["R-F0"] and not t["git-R"]:
        assert r.verdict in ("conflicting", "present"), what
        if r.verdict == "present":  # only in another form, with its lines there
            assert r.method == "modified", what
    # the mutations whose outcome is known
    expect = {
        "old": {"backportable"},
        "revert": {"backportable"},  # the history names the fix, and its revert
        "offset-old": {"backportable"},
        "new": {"present"},
        "offset-new": {"present"},
        "local-edit": {"conflicting"},
        "elsewhere": {"conflicting"},
    }
    if kind in expect:
        assert r.verdict in expect[kind], what
