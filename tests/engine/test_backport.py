"""The adapted patch: made from what the engine accepted (offset, fuzz, 3-way), proven to apply
exactly with git apply and patch -F0, and giving the files the original gives with fuzz."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.engine.adapt import NotExact, _verify, adapt, relabel
from patchcheck.engine.backport import Backporter, hunk_texts
from patchcheck.engine.check import TreeContext
from patchcheck.engine.scratch import Scratch
from patchcheck.model import Fix, PatchMail
from patchcheck.text.diff import parse_diff
from testing.gitrepo import git, init
from testing.kfixtures import TWO_FILES, DictTree, make_diff, three_hunk_fix, write_tree
from testing.upstream import apply_with_fuzz, exact_apply

OLD = TWO_FILES
fixed = three_hunk_fix
FIX = Fix(msgid="k@x")


def mail(diff: bytes, n: int = 1) -> PatchMail:
    return PatchMail(msgid=f"p{n}@x", subject=f"fs: patch {n}", author="A <a@x>", counter=n, expected=n, diff=diff)


def written(tree: dict[str, str], *diffs: bytes) -> list[bytes | None]:
    """Each patch's adapted diff (None when none is written), stepped in order."""
    with Backporter(DictTree(tree)) as bp:
        return [
            s.adapted.diff if s.adapted else None for s in (bp.step(mail(d, i), FIX) for i, d in enumerate(diffs))
        ]


def check_exact(tmp: Path, tree: dict[str, str], original: bytes, adapted: bytes) -> None:
    """The adapted diff applies exactly to the tree, giving what the original gives with fuzz."""
    root = write_tree(tmp / "check-tree", tree)
    assert exact_apply(root, adapted) == apply_with_fuzz(root, original)


@pytest.fixture
def diff(tmp_path: Path) -> bytes:
    return make_diff(tmp_path, OLD, fixed(OLD))


def test_clean_patch_is_written_as_it_applies(tmp_path: Path, diff: bytes) -> None:
    [got] = written(OLD, diff)
    assert got is not None
    check_exact(tmp_path, OLD, diff, got)
    assert got.count(b"\n+") == diff.count(b"\n+")


def test_offset_gets_the_trees_line_numbers(tmp_path: Path, diff: bytes) -> None:
    tree = {k: "/* one */\n/* two */\n/* three */\n" + v for k, v in OLD.items()}
    [got] = written(tree, diff)
    assert got is not None
    check_exact(tmp_path, tree, diff, got)
    first_old = [ln for ln in diff.splitlines() if ln.startswith(b"@@")][0]
    first_new = [ln for ln in got.splitlines() if ln.startswith(b"@@")][0]
    assert first_old != first_new  # moved by the three lines


def test_fuzz_gets_the_trees_context(tmp_path: Path, diff: bytes) -> None:
    tree = dict(OLD)
    tree["fs/a.c"] = tree["fs/a.c"].replace("\t\treturn -2;", "\t\treturn -2; /* local */")
    with Backporter(DictTree(tree)) as bp:
        s = bp.step(mail(diff), FIX)
    assert (s.result.verdict, s.result.method) == ("backportable", "fuzz")
    assert s.adapted is not None
    assert b" \t\treturn -2; /* local */\n" in s.adapted.diff  # the tree's line as context
    check_exact(tmp_path, tree, diff, s.adapted.diff)
    assert "fs/a.c" in s.adapted.stat and "2 files changed" in s.adapted.stat


def test_3way_result_is_in_the_patch(tmp_path: Path) -> None:
    up = tmp_path / "up"
    base = "".join(f"int v{i} = {i};\n" for i in range(1, 40))
    write_tree(up, {"fs/f.c": base})
    init(up)
    (up / "fs/f.c").write_text(base.replace("int v20 = 20;", "int v20 = 200;"))
    d = git(up, "diff", "-U6", "--full-index").encode() + b"\n"
    tree = {"fs/f.c": base.replace("int v16 = 16;", "long v16 = 16;").replace("int v24 = 24;", "long v24 = 24;")}
    ctx = TreeContext(object_dirs=(up / ".git" / "objects",))
    with Backporter(DictTree(tree), ctx) as bp:
        s = bp.step(mail(d), FIX)
    assert (s.result.verdict, s.result.method) == ("backportable", "3way"), s.result.evidence
    assert s.adapted is not None
    root = write_tree(tmp_path / "t", tree)
    after = exact_apply(root, s.adapted.diff)
    assert after["fs/f.c"] == tree["fs/f.c"].replace("int v20 = 20;", "int v20 = 200;").encode()


def test_later_patches_build_on_the_written_ones(tmp_path: Path) -> None:
    one = fixed(OLD)
    two = dict(one)
    two["fs/a.c"] = one["fs/a.c"].replace("\t\treturn 0;\n", "\t\treturn 0; /* clamp */\n")
    d1, d2 = make_diff(tmp_path, OLD, one), make_diff(tmp_path, one, two)
    tree = {k: "/* shifted */\n" + v for k, v in OLD.items()}
    got1, got2 = written(tree, d1, d2)
    assert got1 is not None and got2 is not None
    root = write_tree(tmp_path / "t", tree)
    mid = exact_apply(root, got1)
    write_tree(tmp_path / "t2", {k: v for k, v in mid.items()})
    end = exact_apply(tmp_path / "t2", got2)
    assert end["fs/a.c"].decode() == "/* shifted */\n" + two["fs/a.c"]
    # the second alone does not apply to the tree: it really was checked on top
    with Backporter(DictTree(tree)) as bp:
        assert bp.step(mail(d2), FIX).result.verdict != "backportable"


def test_present_and_conflicting_write_nothing(tmp_path: Path, diff: bytes) -> None:
    with Backporter(DictTree(fixed(OLD))) as bp:
        s = bp.step(mail(diff), FIX)
    assert s.adapted is None and s.rejects is None and "already in the tree" in s.why
    tree = dict(OLD)
    tree["fs/b.c"] = tree["fs/b.c"].replace(
        "\tif (!ctx->ready3)\n\t\treturn -4;", "\tif (ctx->gone3)\n\t\treturn -9;"
    )
    with Backporter(DictTree(tree)) as bp:
        s = bp.step(mail(diff), FIX)
    assert s.result.verdict == "conflicting" and s.adapted is None and s.rejects is not None
    text = s.rejects.decode()
    assert "# hunk #1 at fs/b.c" in text and "near match" in text
    assert "\n--- a/fs/b.c\n+++ b/fs/b.c\n@@ " in text
    assert "+\tif (!ctx || !ctx->ready3)\n" in text
    assert "fs/a.c\n@@" not in text  # hunks that place are not rejects


def test_new_deleted_renamed_crlf_and_no_newline(tmp_path: Path) -> None:
    old = {
        "fs/gone.c": "bye\n",
        "fs/moved.c": "".join(f"line {i}\n" for i in range(30)),
        "fs/dos.c": "".join(f"dos {i}\r\n" for i in range(20)),
        "fs/tail.c": "a\nb\nc",
    }
    new = {
        "fs/new.c": "hello\n",
        "fs/renamed.c": old["fs/moved.c"].replace("line 15\n", "line fifteen\n"),
        "fs/dos.c": old["fs/dos.c"].replace("dos 10\r\n", "dos ten\r\n"),
        "fs/tail.c": "a\nb\nC",
    }
    d = make_diff(tmp_path, old, new)
    assert b"rename from" in d
    tree = {k: "/* x */\n" + v if k != "fs/dos.c" else "/* x */\r\n" + v for k, v in old.items()}
    tree["fs/gone.c"] = old["fs/gone.c"]
    [got] = written(tree, d)
    assert got is not None
    assert b"rename from fs/moved.c\nrename to fs/renamed.c\n" in got
    assert b"new file mode" in got and b"deleted file mode" in got
    check_exact(tmp_path, tree, d, got)


def test_a_deletion_of_other_content_is_refused(tmp_path: Path) -> None:
    old = {"fs/gone.c": "bye\n"}
    d = make_diff(tmp_path, old, {})
    tree = DictTree({"fs/gone.c": "/* x */\nbye\n"})
    with Backporter(tree) as bp:
        s = bp.step(mail(d), FIX)
    assert s.adapted is None and "not deleting" in s.why.lower(), s.why
    # and should a check ever let it through, the adapted patch is not made: GNU patch
    # removes the line but keeps the file, so the original does not do what it says
    with Scratch(tree) as sc, pytest.raises(NotExact, match="Not deleting"):
        adapt(sc, parse_diff(d), d)


def test_relabel_keeps_hunks_and_rewrites_quoted_names() -> None:
    raw = (
        b'diff --git "a/a/fs/t\\tab.c" "b/b/fs/t\\tab.c"\n'
        b"index 1..2 100644\n"
        b'--- "a/a/fs/t\\tab.c"\n'
        b'+++ "b/b/fs/t\\tab.c"\n'
        b"@@ -1 +1 @@\n"
        b"-a/a/x\n"
        b"+b/b/y\n"
        b"diff --git a/a/old.c b/b/new.c\n"
        b"similarity index 100%\n"
        b"rename from a/old.c\n"
        b"rename to b/new.c\n"
    )
    got = relabel(raw)
    assert got.startswith(b'diff --git "a/fs/t\\tab.c" "b/fs/t\\tab.c"\n')
    assert b'--- "a/fs/t\\tab.c"\n+++ "b/fs/t\\tab.c"\n' in got
    assert b"-a/a/x\n+b/b/y\n" in got  # hunk lines untouched
    assert b"diff --git a/old.c b/new.c\n" in got and b"rename from old.c\nrename to new.c\n" in got


def test_verify_refuses_an_offset_or_other_files(tmp_path: Path, diff: bytes) -> None:
    tree = {k: "/* one */\n" + v for k, v in OLD.items()}
    before: dict[str, bytes | None] = {k: v.encode() for k, v in tree.items()}
    after: dict[str, bytes | None] = {k: ("/* one */\n" + v).encode() for k, v in fixed(OLD).items()}
    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(NotExact, match="exactly"):
        _verify(ws, tmp_path, before, after, diff)  # the original lands one line later
    with Scratch(DictTree(tree)) as sc:
        good = adapt(sc, parse_diff(diff), diff)
    wrong = dict(after, **{"fs/b.c": b"something else\n"})
    for sub in ("git", "patch"):
        (ws / sub).rename(tmp_path / f"old-{sub}")
    with pytest.raises(NotExact, match="other files"):
        _verify(ws, tmp_path, before, wrong, good.diff)


def test_adapt_leaves_the_scratch_alone(diff: bytes) -> None:
    with Scratch(DictTree(OLD)) as sc:
        adapt(sc, parse_diff(diff), diff)
        assert sc.data("fs/a.c") == OLD["fs/a.c"].encode()


def test_hunk_texts_and_rejects_of_a_missing_file(tmp_path: Path, diff: bytes) -> None:
    [fa, fb] = parse_diff(diff)
    texts = hunk_texts(fa)
    assert sorted(texts) == [1, 2] and all(t.startswith(b"@@ ") for t in texts.values())
    with Backporter(DictTree({"fs/a.c": OLD["fs/a.c"]})) as bp:
        s = bp.step(mail(diff), FIX)
    assert s.result.verdict == "conflicting"  # fs/b.c is not in the tree
    assert s.rejects is not None and b"+++ b/fs/b.c" in s.rejects and b"file not in tree" in s.rejects
