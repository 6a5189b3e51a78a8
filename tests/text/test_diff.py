"""The diff parser on every unified form git apply or GNU patch -p1 accepts, and on what
both refuse. Each form asserts the exact sections and hunks; the table at the end checks
the parser against the real tools on a small tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcheck.sys import proc
from patchcheck.text.diff import FilePatch, Hunk, MalformedPatch, normalise_eol, parse_diff


def hunk(
    index: int,
    old: tuple[int, int],
    new: tuple[int, int],
    lines: list[str],
    file_index: int = 1,
    section: bytes = b"",
) -> Hunk:
    """A Hunk from diff body lines (" ctx", "-old", "+new")."""
    h = Hunk(index, old[0], old[1], new[0], new[1], [], [], [], [], file_index, section)
    for ln in lines:
        kind, text = ln[0], ln[1:].encode()
        if kind in " -":
            h.before.append(text)
        if kind in " +":
            h.after.append(text)
        if kind == "-":
            h.removed.append(text)
        if kind == "+":
            h.added.append(text)
    return h


ABC = [" a", "-b", "+B", " c"]
BODY = "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"


def test_git_format_patch_section() -> None:
    d = (
        b"diff --git a/kernel/events/core.c b/kernel/events/core.c\n"
        b"index 1111111..2222222 100644\n"
        b"--- a/kernel/events/core.c\n"
        b"+++ b/kernel/events/core.c\n"
        b"@@ -10,3 +10,4 @@ static int perf_x(struct perf_event *event)\n"
        b" \tint x;\n"
        b"-\told;\n"
        b"+\tnew;\n"
        b"+\tmore;\n"
        b" \treturn x;\n"
        b"@@ -40 +41 @@\n"
        b"-y\n"
        b"+z\n"
    )
    assert parse_diff(d) == [
        FilePatch(
            old_path="kernel/events/core.c",
            new_path="kernel/events/core.c",
            raw=d,
            hunks=[
                hunk(
                    1,
                    (10, 3),
                    (10, 4),
                    [" \tint x;", "-\told;", "+\tnew;", "+\tmore;", " \treturn x;"],
                    section=b"static int perf_x(struct perf_event *event)",
                ),
                hunk(2, (40, 1), (41, 1), ["-y", "+z"], file_index=2),
            ],
        )
    ]


def test_hunk_index_runs_across_files_and_file_index_within() -> None:
    d = f"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n{BODY}{BODY}"
    d += f"diff --git a/y.c b/y.c\n--- a/y.c\n+++ b/y.c\n{BODY}"
    files = parse_diff(d.encode())
    assert [(fp.path, h.index, h.file_index) for fp in files for h in fp.hunks] == [
        ("x.c", 1, 1),
        ("x.c", 2, 2),
        ("y.c", 3, 1),
    ]


# ---- no `diff --git` line: quilt, stgit, Index:, hand-made ------------------------------


def test_plain_a_b_diff_is_a_change_not_a_new_file() -> None:
    d = b"--- a/kernel/events/core.c\n+++ b/kernel/events/core.c\n" + BODY.encode()
    assert parse_diff(d) == [
        FilePatch(
            old_path="kernel/events/core.c",
            new_path="kernel/events/core.c",
            raw=d,
            hunks=[hunk(1, (1, 3), (1, 3), ABC)],
        )
    ]


def test_quilt_orig_paths_and_index_headers() -> None:
    first = (
        b"--- linux-4.19.orig/kernel/x.c\t2024-01-01 10:00:00.000000000 +0100\n"
        b"+++ linux-4.19/kernel/x.c\t2024-01-02 10:00:00.000000000 +0100\n" + BODY.encode()
    )
    second = b"--- /dev/null\n+++ linux-4.19/kernel/y.c\n@@ -0,0 +1 @@\n+new\n"
    rule = b"=" * 67 + b"\n"
    d = b"Index: linux-4.19/kernel/x.c\n" + rule + first + b"Index: linux-4.19/kernel/y.c\n" + rule + second
    assert parse_diff(d) == [
        FilePatch(old_path="kernel/x.c", new_path="kernel/x.c", raw=first, hunks=[hunk(1, (1, 3), (1, 3), ABC)]),
        FilePatch(
            old_path=None,
            new_path="kernel/y.c",
            raw=second,
            created=True,
            hunks=[hunk(2, (0, 0), (1, 1), ["+new"])],
        ),
    ]


def test_diff_command_lines_and_signature_around_sections_are_noise() -> None:
    sec = b"--- linux/kernel/x.c 2024-01-01 10:00:00.000000000 +0100\n+++ linux.new/kernel/x.c\n" + BODY.encode()
    d = b"diff -urN linux/kernel/x.c linux.new/kernel/x.c\n" + sec + b"-- \n2.43.0\n\n"
    [fp] = parse_diff(d)
    assert (fp.old_path, fp.new_path, fp.raw) == ("kernel/x.c", "kernel/x.c", sec)


def test_deleted_file_plain() -> None:
    d = b"--- a/x.c\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"
    assert parse_diff(d) == [
        FilePatch(
            old_path="x.c", new_path=None, raw=d, deleted=True, hunks=[hunk(1, (1, 2), (0, 0), ["-a", "-b"])]
        )
    ]


def test_epoch_timestamps_mark_created_and_deleted_files() -> None:
    # GNU diff -N writes the epoch for an absent file; git and patch read it so
    d = (
        b"--- a/n.c\t1970-01-01 00:00:00.000000000 +0000\n+++ b/n.c\t2024-01-01 00:00:00 +0000\n"
        b"@@ -0,0 +1 @@\n+x\n"
        b"--- a/d.c\t2024-01-01 00:00:00 +0000\n+++ b/d.c\t1970-01-01 01:00:00 +0100\n@@ -1 +0,0 @@\n-x\n"
    )
    assert [(f.old_path, f.new_path, f.created, f.deleted) for f in parse_diff(d)] == [
        (None, "n.c", True, False),
        ("d.c", None, False, True),
    ]


def test_empty_range_alone_does_not_make_a_new_file() -> None:
    # only /dev/null, "new file mode" (and the epoch) say a file is created
    [fp] = parse_diff(b"--- a/n.c\n+++ b/n.c\n@@ -0,0 +1 @@\n+x\n")
    assert (fp.old_path, fp.new_path, fp.created) == ("n.c", "n.c", False)


def test_names_differing_after_strip_take_git_rule() -> None:
    d = b"--- a/x.c.orig\n+++ b/x.c\n" + BODY.encode()
    assert [(f.old_path, f.new_path) for f in parse_diff(d)] == [("x.c", "x.c")]
    d = b"--- a/x.c\n+++ b/x.c.new\n" + BODY.encode()
    assert [(f.old_path, f.new_path) for f in parse_diff(d)] == [("x.c", "x.c")]


def test_plain_names_with_spaces_and_timestamps() -> None:
    tab = b"--- a/my file.c\t2024-01-01 00:00:00 +0000\n+++ b/my file.c\t2024-01-01 00:00:00 +0000\n"
    space = b"--- a/my file.c 2024-01-01 00:00:00.000000000 +0000\n+++ b/my file.c\n"
    quoted = b'--- "a/my\\tfile.c"\n+++ "b/my\\tfile.c"\n'
    assert [f.path for hdr in (tab, space) for f in parse_diff(hdr + BODY.encode())] == ["my file.c", "my file.c"]
    assert [f.path for f in parse_diff(quoted + BODY.encode())] == ["my\tfile.c"]


@pytest.mark.parametrize(
    ("diff", "why"),
    [
        (b"--- Makefile\n+++ Makefile\n" + BODY.encode(), "no leading component"),
        (b"--- a/../x.c\n+++ b/../x.c\n" + BODY.encode(), "unsafe file name"),
        (b"--- a/\xffx.c\n+++ b/\xffx.c\n" + BODY.encode(), "not UTF-8"),
        (b"--- /dev/null\n+++ /dev/null\n" + BODY.encode(), "both file names are /dev/null"),
        (b"--- a/x.c\n+++ b/x.c\nnot a hunk\n", "without hunks"),
    ],
)
def test_unreadable_names_are_errors(diff: bytes, why: str) -> None:
    with pytest.raises(MalformedPatch, match=why):
        parse_diff(diff)


# ---- git sections ----------------------------------------------------------------------


def test_git_section_without_minus_plus_lines() -> None:
    d = b"diff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n" + BODY.encode()
    assert parse_diff(d) == [
        FilePatch(old_path="x.c", new_path="x.c", raw=d, hunks=[hunk(1, (1, 3), (1, 3), ABC)])
    ]


def test_git_section_with_only_plus_line() -> None:
    # git apply wants both lines; GNU patch takes it ("Target without source" in unidiff)
    d = b"diff --git a/f b/f\n+++ a/f\n" + BODY.encode()
    assert [(f.old_path, f.new_path, len(f.hunks)) for f in parse_diff(d)] == [("f", "f", 1)]


def test_new_and_deleted_files_git() -> None:
    new = b"diff --git a/n.c b/n.c\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/n.c\n"
    new += b"@@ -0,0 +1,2 @@\n+a\n+b\n"
    gone = b"diff --git a/d.c b/d.c\ndeleted file mode 100755\nindex 1111111..0000000\n--- a/d.c\n+++ /dev/null\n"
    gone += b"@@ -1 +0,0 @@\n-a\n"
    empty = b"diff --git a/e.c b/e.c\nnew file mode 100644\nindex 0000000..e69de29\n"
    assert parse_diff(new + gone + empty) == [
        FilePatch(None, "n.c", new, [hunk(1, (0, 0), (1, 2), ["+a", "+b"])], created=True, new_mode="100644"),
        FilePatch("d.c", None, gone, [hunk(2, (1, 1), (0, 0), ["-a"])], deleted=True, old_mode="100755"),
        FilePatch(None, "e.c", empty, [], created=True, new_mode="100644"),
    ]


def test_mode_only_with_spaces_in_the_name() -> None:
    d = b"diff --git a/my file.sh b/my file.sh\nold mode 100644\nnew mode 100755\n"
    assert parse_diff(d) == [
        FilePatch("my file.sh", "my file.sh", d, mode_only=True, old_mode="100644", new_mode="100755")
    ]


def test_quoted_git_names() -> None:
    d = b'diff --git "a/t\\303\\244st\\tx.sh" "b/t\\303\\244st\\tx.sh"\nold mode 100644\nnew mode 100755\n'
    d += b'diff --git a/plain.sh "b/plain.sh"\nold mode 100644\nnew mode 100755\n'
    assert [f.path for f in parse_diff(d)] == ["t\u00e4st\tx.sh", "plain.sh"]


def test_git_names_that_differ_need_other_lines() -> None:
    with pytest.raises(MalformedPatch, match="cannot read the file names"):
        parse_diff(b"diff --git a/x.c b/y.c\nold mode 100644\nnew mode 100755\n")


def test_rename_without_hunks_and_with() -> None:
    pure = b"diff --git a/old name.c b/new.c\nsimilarity index 100%\nrename from old name.c\nrename to new.c\n"
    edit = b"diff --git a/p.c b/q.c\nsimilarity index 90%\nrename from p.c\nrename to q.c\n"
    edit += b"index 1111111..2222222 100644\n--- a/p.c\n+++ b/q.c\n" + BODY.encode()
    assert parse_diff(pure + edit) == [
        FilePatch("old name.c", "new.c", pure, rename=True),
        FilePatch("p.c", "q.c", edit, [hunk(1, (1, 3), (1, 3), ABC)], rename=True),
    ]


def test_change_and_copy_of_the_same_path_are_both_kept_in_order() -> None:
    change = b"diff --git a/a.c b/a.c\nindex 1111111..2222222 100644\n--- a/a.c\n+++ b/a.c\n" + BODY.encode()
    copy = b"diff --git a/a.c b/b.c\nsimilarity index 80%\ncopy from a.c\ncopy to b.c\n"
    copy += b"index 1111111..3333333 100644\n--- a/a.c\n+++ b/b.c\n@@ -1,3 +1,3 @@\n a\n b\n-c\n+C\n"
    assert parse_diff(change + copy) == [
        FilePatch("a.c", "a.c", change, [hunk(1, (1, 3), (1, 3), ABC)]),
        FilePatch("a.c", "b.c", copy, [hunk(2, (1, 3), (1, 3), [" a", " b", "-c", "+C"])], copy=True),
    ]


def test_binary_sections_keep_their_bytes() -> None:
    data = (
        b"diff --git a/fw.bin b/fw.bin\nindex 1111111..2222222 100644\nGIT binary patch\n"
        b"literal 12\nTcmZ?wbhEHbRA5kGU|;|M2%!M_\n\nliteral 12\nTcmZ?wbhEHbRA5kGU|;|M2%!M_\n\n"
    )
    short = b"diff --git a/logo.png b/logo.png\nindex 1111111..2222222 100644\n"
    short += b"Binary files a/logo.png and b/logo.png differ\n"
    text = b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n" + BODY.encode()
    files = parse_diff(data + short + text)
    assert [(f.path, f.binary, f.raw) for f in files] == [
        ("fw.bin", True, data),
        ("logo.png", True, short),
        ("x.c", False, text),
    ]
    assert files[2].hunks == [hunk(1, (1, 3), (1, 3), ABC)]


# ---- hunks -----------------------------------------------------------------------------


def test_removed_signature_like_lines_stay_in_the_hunk() -> None:
    # removing "- ", "-" and "-- x" gives the hunk lines "-- ", "--" and "--- x"
    d = b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,4 +1,2 @@\n a\n-- \n--\n--- x\n+c\n"
    sig = b"-- \n2.43.0\n\n"
    assert parse_diff(d + sig) == [
        FilePatch("x.c", "x.c", d, [hunk(1, (1, 4), (1, 2), [" a", "-- ", "--", "--- x", "+c"])])
    ]


def test_no_newline_markers() -> None:
    nonl = b"\\ No newline at end of file\n"
    d = b"--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n a\n-b\n" + nonl + b"+B\n" + nonl
    assert parse_diff(d) == [FilePatch("x.c", "x.c", d, [hunk(1, (1, 2), (1, 2), [" a", "-b", "+B"])])]


def test_blank_context_line_without_its_space() -> None:
    d = b"--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n"
    assert parse_diff(d)[0].hunks == [hunk(1, (1, 3), (1, 3), [" a", " ", "-b", "+B"])]


def test_blank_context_chopped_at_the_end_is_read_as_patch_reads_it() -> None:
    # GNU patch reads up to 3 lines missing at the very end as blank context; more is an error
    d = b"--- a/x.c\n+++ b/x.c\n@@ -1,4 +1,4 @@\n a\n-b\n+B\n"
    assert parse_diff(d)[0].hunks == [hunk(1, (1, 4), (1, 4), [" a", "-b", "+B", " ", " "])]
    with pytest.raises(MalformedPatch, match="x.c: line 6: hunk #1 is shorter than expected"):
        parse_diff(b"--- a/x.c\n+++ b/x.c\n@@ -1,6 +1,6 @@\n a\n-b\n+B\n")


@pytest.mark.parametrize(
    ("diff", "why"),
    [
        # combined-diff style garbage under diff --git: git says "patch with only garbage"
        (
            b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@@ -1,1 +1,1 @@\n-a\n+b\n",
            r"x.c: line 4: not a hunk header",
        ),
        (b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,x +1 @@\n-a\n+b\n", "not a hunk header"),
        # a @@ after text that ended the section
        (
            b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\njunk\n@@ -3 +3 @@\n-c\n+C\n",
            "line 8: hunk header outside a file section",
        ),
        (b"@@ -1 +1 @@\n-a\n+b\n", "hunk header outside"),
        # counts
        (b"--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n a\n-b\n+B\ndiff --git a/y b/y\n", "shorter than expected"),
        (b"--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,3 @@\n a\n-b\n c\n+B\n", "longer than its header says"),
        (b"--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,3 @@\n a\n-b\n", "shorter than expected"),
        # sections that change nothing
        (b"diff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n", "changes nothing"),
        (b"diff --git a/x.c b/x.c\nGIT binary patch\nzzz\n", "without literal or delta"),
        (b"just words, no diff\n", "no diff found"),
    ],
)
def test_malformed(diff: bytes, why: str) -> None:
    with pytest.raises(MalformedPatch, match=why):
        parse_diff(diff)


# ---- line endings ----------------------------------------------------------------------


def test_crlf_mail_is_read_as_lf() -> None:
    lf = b"diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n" + BODY.encode()
    crlf = lf.replace(b"\n", b"\r\n")
    assert normalise_eol(crlf) == lf
    assert parse_diff(crlf) == parse_diff(lf) == [FilePatch("x.c", "x.c", lf, [hunk(1, (1, 3), (1, 3), ABC)])]


def test_mixed_endings_keep_their_bytes() -> None:
    # a patch to a CRLF file in an LF mail: the \r is the file's
    d = b"--- a/w.c\n+++ b/w.c\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n"
    assert normalise_eol(d) == d
    [fp] = parse_diff(d)
    assert fp.raw == d and fp.hunks == [hunk(1, (1, 2), (1, 2), [" a\r", "-b\r", "+B\r"])]


def test_lone_carriage_return_is_content() -> None:
    d = b"--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\rb\n+c\n"
    assert parse_diff(d)[0].hunks[0].removed == [b"a\rb"]


# ---- the real tools agree --------------------------------------------------------------

_OK = [
    (
        "git",
        b"diff --git a/kernel/x.c b/kernel/x.c\nindex 1111111..2222222 100644\n"
        b"--- a/kernel/x.c\n+++ b/kernel/x.c\n",
    ),
    ("git-no-minus-plus", b"diff --git a/kernel/x.c b/kernel/x.c\nindex 1111111..2222222 100644\n"),
    ("git-bare-header", b"diff --git a/kernel/x.c b/kernel/x.c\n"),
    ("git-plus-only", b"diff --git a/kernel/x.c b/kernel/x.c\n+++ a/kernel/x.c\n"),
    ("quilt-ab", b"--- a/kernel/x.c\n+++ b/kernel/x.c\n"),
    (
        "quilt-orig",
        b"Index: linux/kernel/x.c\n" + b"=" * 67 + b"\n--- linux.orig/kernel/x.c\n+++ linux/kernel/x.c\n",
    ),
    ("spaces-git", b"diff --git a/my file.c b/my file.c\n--- a/my file.c\n+++ b/my file.c\n"),
    ("spaces-tab", b"--- a/my file.c\t2024-01-01 00:00:00 +0000\n+++ b/my file.c\t2024-01-01 00:00:00 +0000\n"),
    ("quoted", b'diff --git "a/my file.c" "b/my file.c"\n--- "a/my file.c"\n+++ "b/my file.c"\n'),
]
_BAD = [
    (
        "garbage-hunk",
        b"diff --git a/kernel/x.c b/kernel/x.c\n--- a/kernel/x.c\n+++ b/kernel/x.c\n",
        b"@@@ -1,3 +1,3 @@@\n",
    ),
    ("cut-short", b"--- a/kernel/x.c\n+++ b/kernel/x.c\n", b"@@ -1,3 +1,3 @@\n a\n-b\n+B\n-- \n2.43.0\n"),
]


def _tools_accept(tmp: Path, diff: bytes) -> bool:
    for name in ("kernel/x.c", "my file.c"):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(b"a\nb\nc\n")
    git = proc.run(
        ["git", "apply", "--check", "-"], cwd=tmp, input=diff, env={"GIT_CEILING_DIRECTORIES": str(tmp)}
    )
    gnu = proc.run(["patch", "-p1", "--dry-run", "-f"], cwd=tmp, input=diff)
    # GNU patch exits 0 when it found nothing to do: it must have found the file
    return git.ok or (gnu.ok and b"checking file" in gnu.stdout)


@pytest.mark.parametrize(("name", "header"), _OK, ids=[n for n, _ in _OK])
def test_forms_the_tools_accept_parse(tmp_path: Path, name: str, header: bytes) -> None:
    d = header + BODY.encode()
    assert _tools_accept(tmp_path, d), name
    [fp] = parse_diff(d)
    assert fp.path in ("kernel/x.c", "my file.c") and fp.hunks == [hunk(1, (1, 3), (1, 3), ABC)]


@pytest.mark.parametrize(("name", "header", "body"), _BAD, ids=[n for n, _, _ in _BAD])
def test_forms_the_tools_refuse_are_errors(tmp_path: Path, name: str, header: bytes, body: bytes) -> None:
    assert not _tools_accept(tmp_path, header + body), name
    with pytest.raises(MalformedPatch):
        parse_diff(header + body)


# ---- any line content round-trips --------------------------------------------------------

_TRICKY = st.sampled_from(
    [b"", b"-", b"- ", b"-- ", b"-- x", b"+", b"++ b/x.c", b"@@ -1 +1 @@", b"diff --git a/x b/x", b"\\", b"x\r"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(" -+"), _TRICKY | st.binary(max_size=12)), min_size=1, max_size=25))
def test_any_hunk_lines_round_trip(lines: list[tuple[str, bytes]]) -> None:
    """Whatever a line holds (a signature, a header, a hunk header), the counts place it."""
    lines = [(k, t.replace(b"\n", b"")) for k, t in lines]
    old = sum(k != "+" for k, _ in lines)
    new = sum(k != "-" for k, _ in lines)
    body = b"".join(k.encode() + t + b"\n" for k, t in lines)
    d = b"--- a/x.c\n+++ b/x.c\n@@ -1,%d +1,%d @@\n" % (old, new) + body + b"-- \n2.43.0\n"
    [fp] = parse_diff(d)
    [h] = fp.hunks
    assert h.before == [t for k, t in lines if k != "+"]
    assert h.after == [t for k, t in lines if k != "-"]
    assert fp.raw == d[: -len(b"-- \n2.43.0\n")]
