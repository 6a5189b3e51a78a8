"""The format zoo end to end: every real-world shape of a fix mail, served by the local
public-inbox server, fetched by real b4, parsed and judged by the real CLI on three trees:
without the fix (backportable, clean), with it (present), and without it but shifted by
seven lines (backportable, offset)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testing import zoo
from testing.kfixtures import MAKEFILE, c_file, write_tree
from testing.pi_server import PIServer
from testing.rig import bug_file, env, no_traceback

A_OLD, A_NEW = "\treturn ret1;", "\tif (ret1 < 0)\n\t\treturn 0;\n\treturn ret1;"
R_OLD, R_NEW = "\tif (!ctx->ready2)", "\tif (!ctx || !ctx->ready2)"
BLOB = bytes(range(256)) * 8
OLD: dict[str, str | bytes] = {
    "Makefile": MAKEFILE,
    "fs/a.c": c_file("a"),
    "fs/r.c": c_file("r"),
    "fs/d.c": c_file("d"),
    "fw/blob.bin": BLOB,
}
SHIFT = "".join(f"/* local note {i} */\n" for i in range(7))


def _edit(files: dict[str, str | bytes], path: str, old: str, new: str) -> dict[str, str | bytes]:
    text = files[path]
    assert isinstance(text, str) and old in text
    return {**files, path: text.replace(old, new)}


def _shift(text: str | bytes) -> str:
    assert isinstance(text, str)
    head, _, rest = text.partition('#include "state.h"\n')
    return head + '#include "state.h"\n' + SHIFT + rest


FIXED_A = _edit(OLD, "fs/a.c", A_OLD, A_NEW)
# each special fix: (what it does to OLD)
CHANGES: dict[str, Callable[[dict[str, str | bytes]], dict[str, str | bytes]]] = {
    "a": lambda f: _edit(f, "fs/a.c", A_OLD, A_NEW),
    "rename": lambda f: {
        **{k: v for k, v in f.items() if k != "fs/r.c"},
        "fs/r2.c": _edit(f, "fs/r.c", R_OLD, R_NEW)["fs/r.c"],
    },
    "new-deleted": lambda f: {
        **{k: v for k, v in _edit(f, "fs/a.c", A_OLD, A_NEW).items() if k != "fs/d.c"},
        "fs/n.c": c_file("n", 2),
    },
    "binary": lambda f: {**_edit(f, "fs/a.c", A_OLD, A_NEW), "fw/blob.bin": BLOB[::-1]},
}


def _new_tree() -> dict[str, str | bytes]:
    files = dict(OLD)
    for change in CHANGES.values():
        after = change(OLD)
        for k in OLD:
            if k not in after:
                files.pop(k, None)
        files.update({k: v for k, v in after.items() if OLD.get(k) != v})
    return files


def _mails(work: Path) -> list[zoo.ZooMail]:
    diffs = {name: zoo.git_diff(work, OLD, change(OLD)) for name, change in CHANGES.items()}
    fix = zoo.Fix("a: clamp a negative count", diffs["a"])
    mails = [gen(fix, f"zoo-{name}-0-1@example.org") for name, gen in zoo.SIMPLE.items()]
    for form in ("upstream-line", "bracket"):
        mails.append(zoo.stable_review(fix, f"zoo-stable-{form}-002@example.org", form))
    lone = zoo.stable_review(fix, "zoo-stable-lone-002@example.org", "upstream-line")
    mails.append(zoo.ZooMail("stable-review-named-patch", lone.mbox, lone.fix_msgid))
    for name in ("rename", "new-deleted", "binary"):
        m = zoo.format_patch(zoo.Fix(f"fs: {name} fix", diffs[name]), f"zoo-{name}-0-1@example.org")
        mails.append(zoo.ZooMail(name, m.mbox, m.msgid))
    q = zoo.quilt(zoo.Fix("fs: new and deleted files", diffs["new-deleted"]), "zoo-quilt-nd-0-1@example.org")
    mails.append(zoo.ZooMail("quilt-new-deleted", q.mbox, q.msgid))
    return mails


# Shapes that still fail end to end, and the module that must change for them.
XFAIL: dict[str, str] = {}
TREES = ("old", "new", "shifted")
EXPECTED = {"old": ("backportable", "clean"), "new": ("present", None), "shifted": ("backportable", "offset")}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    """One CLI run per tree judging every shape: {(shape, tree): bug result, with the
    Message-Id of the fix's own mail under "want_msgid"}."""
    root = tmp_path_factory.mktemp("zoo")
    trees = {
        "old": write_tree(root / "old", OLD),
        "new": write_tree(root / "new", _new_tree()),
        "shifted": write_tree(
            root / "shifted", {**OLD, "fs/a.c": _shift(OLD["fs/a.c"]), "fs/r.c": _shift(OLD["fs/r.c"])}
        ),
    }
    bugs = root / "bugs"
    bugs.mkdir()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with PIServer() as server:
        mails = {m.shape: m for m in _mails(root)}
        for m in mails.values():
            server.add_thread(m.mbox)
            bug_file(bugs, f"zoo-{m.shape}", f'msgid = "{m.msgid}"\n{m.fix_keys}')
        for tree, path in trees.items():
            argv = [sys.executable, "-m", "patchcheck", "check", "--tree", str(path), "--all", "--format", "json"]
            argv += [
                "--no-shipped-bugs",
                "--bugs-dir",
                str(bugs),
                "--cache-dir",
                str(root / "cache"),
                "--lore-url",
                server.url,
                "-j",
                "2",
            ]
            cp = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=300, cwd=root)
            no_traceback(cp)
            for r in json.loads(cp.stdout)["results"]:
                shape = r["bug"].removeprefix("zoo-")
                out[(shape, tree)] = {**r, "want_msgid": mails[shape].fix_msgid}
    yield out


SHAPES = [*zoo.SIMPLE, "stable-review-upstream-line", "stable-review-bracket", "stable-review-named-patch"]
SHAPES += ["rename", "new-deleted", "binary", "quilt-new-deleted"]


@pytest.mark.parametrize("tree", TREES)
@pytest.mark.parametrize(
    "shape",
    [pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=XFAIL[s])) if s in XFAIL else s for s in SHAPES],
)
def test_shape(verdicts: dict[tuple[str, str], dict[str, Any]], shape: str, tree: str) -> None:
    r = verdicts[(shape, tree)]
    want_verdict, want_method = EXPECTED[tree]
    assert [p["msgid"] for p in r["patches"]] == [r["want_msgid"]], r
    assert r["verdict"] == want_verdict, r
    if want_method is not None:
        assert r["method"] == want_method, r
    if shape.startswith("stable-review"):
        assert r["patches"][0]["upstream"] == zoo.UPSTREAM, r


def test_each_mail_has_its_shape(tmp_path: Path) -> None:
    """The generators make what they claim (so a passing zoo means those shapes work)."""
    mails = {m.shape: m.mbox for m in _mails(tmp_path)}
    for shape in ("quilt", "quilt-index", "quilt-new-deleted", "stable-review-bracket"):
        assert b"diff --git" not in mails[shape] and b"\n+++ " in mails[shape], shape
    assert b"\nIndex: linux-4.19/fs/a.c\n" in mails["quilt-index"]
    assert b"\n--- linux-4.19.orig/fs/a.c\t2024" in mails["quilt-index"]
    assert b"\n--- /dev/null\n+++ b/fs/n.c\n" in mails["quilt-new-deleted"]
    assert b"\n--- a/fs/d.c\n+++ /dev/null\n" in mails["quilt-new-deleted"]
    assert b"[ Upstream commit " + zoo.UPSTREAM.encode() + b" ]" in mails["stable-review-bracket"]
    assert b"[PATCH 6.12 002/003]" in mails["stable-review-bracket"]
    assert (
        b"Content-Transfer-Encoding: base64" in mails["mime-base64"]
        and b"\ndiff --git" not in mails["mime-base64"]
    )
    assert b"=3D" in mails["mime-quoted-printable"] and b"quoted-printable" in mails["mime-quoted-printable"]
    assert b"Content-Type: text/x-diff" in mails["mime-inline-x-diff"]
    body = mails["crlf"].split(b"\n", 1)[1].removesuffix(b"\n")  # the mbox From and blank lines are LF
    assert body.count(b"\n") == body.count(b"\r\n") > 20
    assert b"\n>From the trace:" in mails["mboxrd-from"] and b"\n>>From the other" in mails["mboxrd-from"]
    assert b"\nrename from fs/r.c\nrename to fs/r2.c\n" in mails["rename"]
    assert b"\nGIT binary patch\n" in mails["binary"]
    assert b"\nbase-commit: " in mails["b4-cover-trailers"] and b"Tested-by: " in mails["b4-cover-trailers"]
    assert b"User-Agent: StGit" in mails["stgit"] and b"---\n\n fs/a.c |" in mails["stgit"]
