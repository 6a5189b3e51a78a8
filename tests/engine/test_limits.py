"""The engine's guards against hostile diffs: unsafe paths, links left by a patch, too many
hunks, searches that would take the tools minutes, and the near-match budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchcheck.engine import grade, tools
from patchcheck.engine.check import check_series, touched_paths
from patchcheck.engine.scratch import Scratch
from patchcheck.errors import SeriesError
from patchcheck.model import Fix, PatchMail, Series
from patchcheck.text.diff import parse_diff
from testing.kfixtures import DictTree


def series_of(*diffs: str) -> Series:
    n = len(diffs)
    return Series(
        key="k",
        msgid="k",
        revision=1,
        subject="s",
        source="mbox",
        patches=tuple(PatchMail(f"p{i}@x", f"patch {i}", "A", i, n, d.encode()) for i, d in enumerate(diffs, 1)),
    )


def blocks(n: int, tag: str = "v") -> str:
    return "".join(f"/* {i} */\n\tint a{i};\n\t{tag}{i} = 0;\n\tint c{i};\n\n\n" for i in range(n))


def hunks(n: int, old: str = "v", new: str = "w", ctx: str = "a") -> str:
    out = "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n"
    for i in range(n):
        out += f"@@ -{i * 6 + 2},3 +{i * 6 + 2},3 @@\n \tint {ctx}{i};\n"
        out += f"-\t{old}{i} = 0;\n+\t{new}{i} = 0;\n \tint c{i};\n"
    return out


def test_unsafe_paths_are_an_error_before_any_scratch_work(tmp_path: Path) -> None:
    victim = tmp_path / "victim.c"
    victim.write_text("keep me\n")
    # -p1 reads "a//tmp/x" as "tmp/x" (slashes squeezed, as patch(1) does): ".." is the way out
    out = f"../../../../../../../../..{victim}"
    bad = f"diff --git a/{out} b/{out}\nnew file mode 100644\n--- /dev/null\n+++ b/{out}\n"
    bad += "@@ -0,0 +1 @@\n+x\n"
    tree = DictTree({"f.c": blocks(2)})
    [r] = check_series(tree, series_of(bad), Fix(msgid="k@x"))
    assert r.verdict == "error" and r.error_code == 3
    assert r.error is not None and "p1@x" in r.error and "unsafe" in r.error
    assert victim.read_text() == "keep me\n" and tree.reads == []
    assert touched_paths(series_of(bad, hunks(1))) == {"f.c"}


def test_links_a_patch_made_are_swept_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("\tint a0;\n\tv0 = 0;\n\tint c0;\n")
    link = (
        "diff --git a/f.c b/f.c\nnew file mode 120000\nindex 0000000..1234567\n--- /dev/null\n+++ b/f.c\n"
        f"@@ -0,0 +1 @@\n+{secret}\n\\ No newline at end of file\n"
    )
    with Scratch(DictTree({})) as scratch:
        assert not scratch.ensure("f.c")
        scratch.apply(parse_diff(link.encode()), fuzz=2)
        assert not os.path.lexists(scratch.work / "f.c")  # GNU patch made it; the sweep took it
        assert scratch.read("f.c") is None
    # through the engine: patch 2 never sees the secret's lines
    [_, r2] = check_series(DictTree({}), series_of(link, hunks(1)), Fix(msgid="k@x"))
    assert r2.verdict == "not-applicable" and all("v0" not in (h.near or "") for h in r2.hunks)


def test_hunk_cap() -> None:
    s = series_of(hunks(30))
    with pytest.raises(SeriesError, match=r"30 hunks.*--max-hunks 30"):
        check_series(DictTree({"f.c": blocks(30)}), s, Fix(msgid="k@x"), max_hunks=29)
    assert touched_paths(s, max_hunks=29) == set()
    [r] = check_series(DictTree({"f.c": blocks(30)}), s, Fix(msgid="k@x"), max_hunks=30)
    assert (r.verdict, r.method) == ("backportable", "clean")


def test_costly_fuzz_search_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # every hunk's first context line differs: each needs fuzz, which GNU patch looks for
    # over the whole file
    diff = hunks(40, ctx="q")
    [r] = check_series(DictTree({"f.c": blocks(40)}), series_of(diff), Fix(msgid="k@x"))
    assert (r.verdict, r.method) == ("backportable", "fuzz")
    monkeypatch.setattr(tools, "TOOL_WORK", 40 * 240)
    [r] = check_series(DictTree({"f.c": blocks(40)}), series_of(diff), Fix(msgid="k@x"))
    assert r.verdict == "error" and r.error_code == 3 and "too costly" in (r.error or "")


def test_hunks_that_cannot_apply_are_not_handed_to_gnu_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    real = Scratch.run_patch

    def spy(self: Scratch, diff: bytes, **kw: object) -> object:
        seen.append(diff)
        return real(self, diff, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Scratch, "run_patch", spy)
    diff = hunks(3).replace("-\tv1 = 0;", "-\tu1 = 0;")  # hunk 2's removed line exists nowhere
    [r] = check_series(DictTree({"f.c": blocks(3)}), series_of(diff), Fix(msgid="k@x"))
    assert [h.status for h in r.hunks] == ["clean", "failed", "clean"]
    assert seen and all(b"u1 = 0" not in d for d in seen)


def test_near_search_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grade, "NEAR_SEARCHES", 2)
    diff = hunks(4, old="u")  # no hunk's removed line is in the file
    [r] = check_series(DictTree({"f.c": blocks(4) + "\tu9 = 0;\n"}), series_of(diff), Fix(msgid="k@x"))
    assert [h.status for h in r.hunks] == ["failed"] * 4
    assert [h.near is not None for h in r.hunks] == [True, True, False, False]
    assert "no near-match search" in (r.hunks[3].reason or "")
