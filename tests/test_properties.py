"""Property tests (hypothesis): the patch parser never crashes, and a generated fix always
reads as backportable on its pre-image and present on its post-image."""

from __future__ import annotations

import contextlib
import difflib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchcheck.engine.blocks import find_block
from patchcheck.engine.check import check_series
from patchcheck.model import Fix, PatchMail, PatchResult, Series, Verdict
from patchcheck.text.diff import MalformedPatch, parse_diff
from patchcheck.verdict import bug_verdict
from testing.kfixtures import DictTree

_settings = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@st.composite
def file_and_edit(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A file of distinct C-ish lines and an edited copy (replace / insert / delete runs)."""
    n = draw(st.integers(min_value=8, max_value=60))
    tokens = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    old = [f"\tstate_{t} = compute_{t}(ctx, {t % 97});" for t in tokens]
    new = list(old)
    for _ in range(draw(st.integers(1, 3))):
        if not new:
            break
        i = draw(st.integers(0, len(new) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        tag = draw(st.integers(0, 10**6))
        if kind == "replace":
            new[i] = f"\tfixed_{tag} = guard_{tag}(ctx);"
        elif kind == "insert":
            new.insert(i, f"\tif (!ctx_{tag})\n\t\treturn -{tag % 50 + 1};")
        elif len(new) > 4:
            del new[i]
    new = "\n".join(new).split("\n")
    return old, new


def as_git_diff(path: str, old: list[str], new: list[str]) -> bytes:
    body = difflib.unified_diff([x + "\n" for x in old], [x + "\n" for x in new], f"a/{path}", f"b/{path}", n=3)
    return (f"diff --git a/{path} b/{path}\n" + "".join(body)).encode()


def one_patch(diff: bytes) -> Series:
    return Series(
        key="k",
        msgid="k",
        revision=1,
        subject="s",
        source="mbox",
        patches=(PatchMail("p@x", "p", "A", 1, 1, diff),),
    )


@_settings
@given(file_and_edit())
def test_generated_fix_backportable_then_present(fe: tuple[list[str], list[str]]) -> None:
    old, new = fe
    if old == new:
        return
    diff = as_git_diff("fs/gen.c", old, new)
    old_tree = DictTree({"fs/gen.c": "\n".join(old) + "\n"})
    new_tree = DictTree({"fs/gen.c": "\n".join(new) + "\n"})
    [fwd] = check_series(old_tree, one_patch(diff), Fix(msgid="k@x"))
    assert (fwd.verdict, fwd.method) == ("backportable", "clean"), fwd.evidence
    [rev] = check_series(new_tree, one_patch(diff), Fix(msgid="k@x"))
    assert rev.verdict == "present", rev.evidence


@_settings
@given(st.binary(max_size=2000))
def test_parser_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedPatch):
        parse_diff(data)


@_settings
@given(
    st.lists(
        st.sampled_from(
            [
                " ctx;",
                "-old;",
                "+new;",
                "@@ -1,3 +1,3 @@",
                "--- a/x.c",
                "+++ b/x.c",
                "diff --git a/x.c b/x.c",
                "\\ No newline at end of file",
                "",
                "GIT binary patch",
                "rename from x.c",
                "rename to y.c",
            ]
        ),
        max_size=30,
    )
)
def test_parser_never_crashes_on_diffish_lines(lines: list[str]) -> None:
    try:
        files = parse_diff("\n".join(lines).encode() + b"\n")
    except MalformedPatch:
        return
    for fp in files:
        for h in fp.hunks:
            assert len(h.before) == len(h.removed) + (len(h.after) - len(h.added))


_patch = st.builds(
    lambda v, opt: PatchResult(
        msgid="m",
        subject="s",
        upstream=None,
        verdict=v,
        method={"present": "exact", "backportable": "clean"}.get(v),
        evidence="",
        optional=opt,
    ),
    st.sampled_from(tuple(Verdict)),
    st.booleans(),
)


@_settings
@given(st.lists(_patch, min_size=1, max_size=8))
def test_bug_verdict_laws(patches: list[PatchResult]) -> None:
    verdict, _, error = bug_verdict(patches)
    required = [p for p in patches if not p.optional]
    assert verdict in tuple(Verdict)
    # optional patches never decide
    assert bug_verdict(required or patches[:0])[0] == verdict or not required
    if required and all(p.verdict == "present" for p in required):
        assert verdict == "present"
    if any(p.verdict == "error" for p in required):
        assert verdict == "error" and error


@settings(max_examples=400, deadline=None)  # cheap: no tools run
@given(
    st.lists(st.sampled_from([b"a", b"b", b"", b"a b", b"}", b"\tx;"]), max_size=30),
    st.lists(st.sampled_from([b"a", b"b", b"", b"}"]), min_size=1, max_size=4),
    st.integers(-5, 40),
    st.booleans(),
)
def test_indexed_block_search_matches_a_plain_scan(
    lines: list[bytes], block: list[bytes], near: int, final_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    split = data.splitlines()
    # the plain scan: every start, the nearest wins, the earlier one on a tie
    hits = [i for i in range(len(split)) if split[i : i + len(block)] == block]
    want = min(hits, key=lambda i: (abs(i - near), i)) if hits else None
    assert find_block(split, block, near) == want
