"""The bug's origin checked by content (issue 17 item 3): a synthetic upstream repository
whose fix names, by ``Fixes:``, the commit that brought the bug; folder trees with and
without that commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchcheck.engine.check import check_series
from patchcheck.evidence.origin import origin_shas
from patchcheck.model import Fix, PatchMail, PatchResult, Series
from patchcheck.pipeline import tree_context
from patchcheck.trees.folder import FolderTree
from testing.gitrepo import commit, git, init
from testing.rig import env

MAKEFILE = "VERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\nEXTRAVERSION =\nNAME = fixture\n"
BASE = """\
#include <linux/slab.h>

struct frob {
\tint users;
};

static int frob_count(struct frob *f)
{
\treturn f->users;
}

static void frob_put(struct frob *f)
{
\tf->users--;
}

int frob_init(void)
{
\treturn 0;
}
"""
# the bug: a cache that frob_put frees while a user may still hold it
BUGGY = BASE.replace(
    "static void frob_put(struct frob *f)\n{\n\tf->users--;\n}\n",
    "static struct frob *frob_cache;\n\n"
    "static void frob_put(struct frob *f)\n{\n\tf->users--;\n\tkfree(frob_cache);\n\tfrob_cache = NULL;\n}\n",
)
FIXED = BUGGY.replace(
    "\tf->users--;\n\tkfree(frob_cache);\n", "\tif (--f->users)\n\t\treturn;\n\tkfree(frob_cache);\n"
)
INTRO_SUBJECT = "frob: cache the last frob"
FIX_SUBJECT = "frob: free the cache only with its last user"


@dataclass
class Upstream:
    repo: Path
    base: str
    intro: str
    fix: str
    mail: PatchMail


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    repo = tmp_path_factory.mktemp("up") / "linux"
    base = init(repo, {"Makefile": MAKEFILE, "drivers/frob/frob.c": BASE})
    intro = commit(repo, f"{INTRO_SUBJECT}\n\nSaves a lookup.\n", {"drivers/frob/frob.c": BUGGY})
    msg = f'{FIX_SUBJECT}\n\nFixes: {intro[:12]} ("{INTRO_SUBJECT}")\nSigned-off-by: A <a@example.org>\n'
    fix = commit(repo, msg, {"drivers/frob/frob.c": FIXED})
    diff = git(repo, "show", "--format=", fix).encode() + b"\n"
    mail = PatchMail(
        msgid="frob-fix@example.org",
        subject=FIX_SUBJECT,
        author="A <a@example.org>",
        counter=1,
        expected=1,
        diff=diff,
        fixes=(f'{intro[:12]} ("{INTRO_SUBJECT}")',),
    )
    return Upstream(repo, base, intro, fix, mail)


def _folder(up: Upstream, rev: str, dest: Path, edit: tuple[str, str] | None = None) -> FolderTree:
    """The upstream tree at ``rev`` as a plain folder (no history), optionally edited."""
    dest.mkdir(parents=True)
    for rel in ("Makefile", "drivers/frob/frob.c"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        text = git(up.repo, "show", f"{rev}:{rel}") + "\n"
        if edit is not None and rel.endswith(".c"):
            text = text.replace(*edit)
        (dest / rel).write_text(text)
    return FolderTree(dest, name=dest.name)


def _check(up: Upstream, tree: FolderTree, repo: Path | None, fix: Fix | None = None) -> PatchResult:
    fix = fix or Fix(msgid=up.mail.msgid)
    series = Series(up.mail.msgid, up.mail.msgid, 1, FIX_SUBJECT, (up.mail,), "lore")
    [r] = check_series(tree, series, fix, tree_context(tree, None, repo))
    return r


def test_fixes_trailer_names_the_origin(upstream: Upstream) -> None:
    assert origin_shas(Fix(msgid="x"), upstream.mail) == [upstream.intro[:12]]
    # the bug file's introduced_by comes first
    assert origin_shas(Fix(msgid="x", introduced_by=("ab" * 20,)), upstream.mail) == ["ab" * 20]


def test_origin_absent_is_not_applicable_with_proof(upstream: Upstream, tmp_path: Path) -> None:
    tree = _folder(upstream, upstream.base, tmp_path / "old")
    without = _check(upstream, tree, None)
    assert without.verdict == "conflicting", without.evidence  # the lines it fixes are not there
    assert "could not be checked (no --upstream-repo)" in without.evidence
    r = _check(upstream, tree, upstream.repo)
    assert r.verdict == "not-applicable" and r.method is None, r.evidence
    assert r.evidence.startswith(
        f'the bug came with {upstream.intro[:12]} ("{INTRO_SUBJECT}"); its lines are not in this tree'
        " (rule: bug origin absent)"
    ), r.evidence


def test_origin_present_keeps_the_fix_verdict(upstream: Upstream, tmp_path: Path) -> None:
    tree = _folder(upstream, upstream.intro, tmp_path / "buggy")
    r = _check(upstream, tree, upstream.repo)
    assert (r.verdict, r.method) == ("backportable", "clean"), r.evidence
    assert (
        f'the bug came with {upstream.intro[:12]} ("{INTRO_SUBJECT}"), whose lines are in this tree' in r.evidence
    )


def test_fixed_tree_is_present_whatever_the_origin(upstream: Upstream, tmp_path: Path) -> None:
    tree = _folder(upstream, upstream.fix, tmp_path / "fixed")
    r = _check(upstream, tree, upstream.repo)
    assert r.verdict == "present", r.evidence
    assert "bug came with" not in r.evidence


def test_origin_that_conflicts_is_no_proof(upstream: Upstream, tmp_path: Path) -> None:
    # a vendor rewrote frob_put: neither the origin's pre-image nor its lines are there
    edit = (
        "static void frob_put(struct frob *f)\n{\n\tf->users--;\n}",
        "static void frob_put(struct frob *f, int n)\n{\n"
        "\tspin_lock(&f->lock);\n\tf->users--;\n\tspin_unlock(&f->lock);\n}",
    )
    tree = _folder(upstream, upstream.base, tmp_path / "vendor", edit)
    r = _check(upstream, tree, upstream.repo)
    assert r.verdict == "conflicting", r.evidence
    assert "neither in this tree nor cleanly absent" in r.evidence and "no proof either way" in r.evidence


def test_introduced_by_wins_and_unknown_commit_is_no_proof(upstream: Upstream, tmp_path: Path) -> None:
    tree = _folder(upstream, upstream.base, tmp_path / "old")
    r = _check(upstream, tree, upstream.repo, Fix(msgid=upstream.mail.msgid, introduced_by=("0123456789ab",)))
    assert r.verdict == "conflicting", r.evidence
    assert "0123456789ab is not in the upstream repository" in r.evidence


def test_bare_upstream_clone(upstream: Upstream, tmp_path: Path) -> None:
    bare = tmp_path / "linux.git"
    git(tmp_path, "clone", "-q", "--bare", str(upstream.repo), str(bare))
    tree = _folder(upstream, upstream.base, tmp_path / "old")
    assert _check(upstream, tree, bare).verdict == "not-applicable"
    shutil.rmtree(bare)


def test_cli_upstream_repo_makes_it_not_applicable(upstream: Upstream, tmp_path: Path) -> None:
    """End to end: ``patchcheck check --upstream-repo`` on a folder tree, the fix a local mbox."""
    _folder(upstream, upstream.base, tmp_path / "old")
    bugs = tmp_path / "bugs"
    (bugs / "fixes").mkdir(parents=True)
    mail = git(upstream.repo, "format-patch", "-1", "--stdout", upstream.fix) + "\n"
    (bugs / "fixes" / "frob.mbox").write_text(mail)
    (bugs / "frob-cache.toml").write_text(
        'id = "frob-cache"\ntitle = "frob cache freed early"\n\n[[fix]]\nmbox = "fixes/frob.mbox"\n'
    )
    base = [sys.executable, "-m", "patchcheck", "check", "--tree", str(tmp_path / "old"), "--bug", "frob-cache"]
    base += ["--bugs-dir", str(bugs), "--no-shipped-bugs", "--cache-dir", str(tmp_path / "cache")]
    base += ["--offline", "--format", "json"]
    out = {}
    for label, extra in (("with", ["--upstream-repo", str(upstream.repo)]), ("without", [])):
        cp = subprocess.run([*base, *extra], capture_output=True, text=True, env=env(), timeout=120)
        assert cp.stdout.strip(), cp.stderr
        out[label] = (cp.returncode, json.loads(cp.stdout)["results"][0])
    code, res = out["with"]
    assert (code, res["verdict"]) == (0, "not-applicable"), res
    assert "its lines are not in this tree (rule: bug origin absent)" in res["patches"][0]["evidence"]
    code, res = out["without"]
    assert (code, res["verdict"]) == (1, "conflicting"), res
    assert "could not be checked (no --upstream-repo)" in res["patches"][0]["evidence"]
