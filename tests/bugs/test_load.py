"""Known-bug files: strict validation with errors naming file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.bugs.load import (
    MIN_FILES_FOR_PROCESSES,
    BugFileErrors,
    default_bugs_dir,
    load_bug,
    load_bugs,
    scan_bugs,
)
from patchcheck.errors import BadInput, BugFileError

GOOD = """id = "{id}"
title = "a bug"
severity = "high"
subsystem = "nfsd"
cves = ["CVE-2024-50264"]

[signature]
functions = ["__queue_work"]

[[fix]]
msgid = "20241104135518.978956692@infradead.org"
patches = [13]
upstream = ["c5b96789575b670b1e776071bb243e0ed3d3abaa"]

[[fix]]
msgid = "x-1@example.org"
optional = true
note = "why"
"""


def write(tmp_path: Path, text: str, name: str = "b1") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def test_good_file_loads(tmp_path: Path) -> None:
    b = load_bug(write(tmp_path, GOOD.format(id="b1")))
    assert b.id == "b1" and b.severity == "high"
    assert b.fixes[0].patches == (13,) and b.fixes[1].optional
    assert [f.msgid for f in b.required_fixes] == ["20241104135518.978956692@infradead.org"]
    assert b.signature and b.signature.functions == ("__queue_work",)


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda t: t.replace('id = "b1"', 'id = "other"'), "id", "differs from the file name"),
        (lambda t: t + "\nbogus = 1\n", "bogus", "unknown key"),
        (lambda t: t.replace("patches = [13]", 'patches = "13"'), "fix[1].patches", "list of patch"),
        (lambda t: t.replace("patches = [13]", "patches = [0]"), "fix[1].patches", "1-based"),
        (
            lambda t: t.replace(
                '"20241104135518.978956692@infradead.org"', '"<20241104135518.978956692@infradead.org>"'
            ),
            "fix[1].msgid",
            "angle",
        ),
        (lambda t: t.replace('"x-1@example.org"', '"x 1@example.org"'), "fix[2].msgid", "no spaces"),
        (
            lambda t: t.replace("c5b96789575b670b1e776071bb243e0ed3d3abaa", "xyz"),
            "fix[1].upstream",
            "not a git commit id",
        ),
        (lambda t: t.replace('severity = "high"', 'severity = "huge"'), "severity", "not one of"),
        (lambda t: t.replace('title = "a bug"', "title = 3"), "title", "expected a string"),
        (lambda t: t.replace('"CVE-2024-50264"', '"CVE-24"'), "cves", "not a CVE id"),
        (lambda t: t.replace("optional = true", 'optional = "yes"'), "fix[2].optional", "true or false"),
        (
            lambda t: t.replace('[signature]\nfunctions = ["__queue_work"]', "[signature]\nfunc = []"),
            "signature.func",
            "unknown key",
        ),
        (lambda t: t.split("[[fix]]")[0], "fix", "at least one"),
        (lambda t: t.replace('title = "a bug"\n', ""), "title", "required key is missing"),
        (lambda t: t + "\n[[fix]]\n", "fix[3]", "empty [[fix]]"),
        (lambda t: t.replace("patches = [13]", "patches = [1, 1]"), "fix[1].patches", "once"),
    ],
)
def test_bad_files_name_file_key_and_expectation(tmp_path: Path, edit, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    p = write(tmp_path, edit(GOOD.format(id="b1")))
    with pytest.raises(BugFileError) as ei:
        load_bug(p)
    msg = str(ei.value)
    assert str(p) in msg and key in msg and words in msg, msg
    assert "\n" not in msg


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(BugFileError, match="invalid TOML"):
        load_bug(write(tmp_path, 'id = "b1\n'))


def test_all_optional_rejected(tmp_path: Path) -> None:
    text = GOOD.format(id="b1").replace("patches = [13]", "patches = [13]\noptional = true")
    with pytest.raises(BugFileError, match="every fix is optional"):
        load_bug(write(tmp_path, text))


def test_mbox_relative_to_bug_file(tmp_path: Path) -> None:
    text = 'id = "b1"\ntitle = "t"\n[[fix]]\nmbox = "fixes/a.mbox"\n'
    b = load_bug(write(tmp_path, text))
    assert b.fixes[0].mbox == (tmp_path / "fixes" / "a.mbox").resolve()
    assert b.fixes[0].msgid is None


def test_unknown_id_lists_known(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="b1"))
    bs = load_bugs(tmp_path)
    with pytest.raises(BadInput, match="unknown bug id 'nope'.*known: b1"):
        bs.get("nope")


def test_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_bugs(tmp_path / "absent")


def test_shipped_definitions_are_valid() -> None:
    bs = load_bugs(default_bugs_dir())
    assert {
        "nfsd-callback-wq",
        "perf-bpf-prog-detach",
        "nf-ct-lookup-opts",
        "nfsd-cb-xprt-double-put",
        "sunrpc-listen-data-ready-uaf",
    } <= set(bs.bugs)
    for b in bs.all():
        assert b.signature and b.signature.functions, b.id
        assert b.required_fixes and all(f.msgid for f in b.fixes)
        assert all(f.note for f in b.fixes if f.optional), b.id
    nf = bs.get("nf-ct-lookup-opts")
    assert nf.required_fixes[0].upstream == ("6f6183a39533d727deaa5061cadae6dd9e6744d0",)
    assert [f.upstream[0] for f in nf.fixes if f.optional] == ["ece4b296904167336d0aaab26bd7122018835202"]


def test_every_error_of_a_file_is_kept(tmp_path: Path) -> None:
    text = 'id = "Other"\ntitle = "two\\nlines"\nseverity = "huge"\ncolour = 1\n[[fix]]\nmsgid = "<a@b>"\n'
    with pytest.raises(BugFileErrors) as exc:
        load_bug(write(tmp_path, text, "b1"))
    keys = [p.key for p in exc.value.problems]
    assert keys == ["colour", "id", "title", "severity", "fix[1].msgid"]
    # as one line it is the first error, with a count of the rest
    assert str(exc.value).startswith(f"{tmp_path / 'b1.toml'}: colour: unknown key")
    assert str(exc.value).endswith("(and 4 more errors in this file)") and "\n" not in str(exc.value)


def test_folders_combine_and_ids_stay_unique(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a, GOOD.format(id="b1"), "b1")
    write(b, GOOD.format(id="b2"), "b2")
    assert sorted(load_bugs([a, b]).bugs) == ["b1", "b2"]
    write(b, GOOD.format(id="b1"), "b1")
    bugs, errors = scan_bugs([a, b])
    assert sorted(bugs.bugs) == ["b1", "b2"] and len(errors) == 1
    msg = str(errors[0])
    assert str(b / "b1.toml") in msg and str(a / "b1.toml") in msg and "--no-shipped-bugs" in msg
    with pytest.raises(BugFileError, match="also defined by"):
        load_bugs([a, b])


def test_many_files_load_alike_in_worker_processes(tmp_path: Path) -> None:
    """A release audit's folder is read in worker processes: the same bugs, and the same
    errors (every problem of a file, duplicates across folders) in the same order."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for n in range(MIN_FILES_FOR_PROCESSES):
        write(a, GOOD.format(id=f"b{n:03d}"), f"b{n:03d}")
    write(a, 'id = "Other"\ntitle = "two\\nlines"\ncolour = 1\n[[fix]]\nmsgid = "<a@b>"\n', "b100x")
    write(b, GOOD.format(id="b007"), "b007")
    one, errors1 = scan_bugs([a, b], jobs=1)
    two, errors2 = scan_bugs([a, b], jobs=2)
    assert two.bugs == one.bugs and len(two.bugs) == MIN_FILES_FOR_PROCESSES
    assert [(type(e), str(e)) for e in errors2] == [(type(e), str(e)) for e in errors1]
    assert [p.key for p in errors2[0].problems] == [p.key for p in errors1[0].problems]  # type: ignore[attr-defined]
    assert len(errors2) == 2 and "also defined by" in str(errors2[1])


@pytest.mark.parametrize("files", [3, MIN_FILES_FOR_PROCESSES])
def test_meanwhile_runs_once_here_small_folder_or_large(tmp_path: Path, files: int) -> None:
    """The caller's work runs once in this process, with the workers (a large folder) or
    before this process parses a small one: the same bugs either way."""
    import os

    for n in range(files):
        write(tmp_path, GOOD.format(id=f"b{n:03d}"), f"b{n:03d}")
    ran: list[int] = []
    bugs = load_bugs(tmp_path, jobs=2, meanwhile=lambda: ran.append(os.getpid()))
    assert ran == [os.getpid()] and len(bugs.bugs) == files
    assert bugs.bugs == load_bugs(tmp_path).bugs


def test_shards_split_cells_once_and_stably() -> None:
    from patchcheck.bugs.select import Shard

    cells = [(f"bug-{i}", t) for i in range(60) for t in ("linux-4.19", "ky10", "/srv/t.tar.xz")]
    shards = [Shard(k, 4) for k in range(1, 5)]
    owners = [[s for s in shards if s.takes(*c)] for c in cells]
    assert all(len(o) == 1 for o in owners)  # every cell in exactly one shard
    sizes = [sum(1 for o in owners if o[0] == s) for s in shards]
    assert min(sizes) >= 25  # 180 cells spread, none starved
    # a cell's shard depends on its bug and tree only: the same on every call, in any run
    assert [s.takes("bug-1", "ky10") for s in shards] == [s.takes("bug-1", "ky10") for s in shards]
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
    for bad in ("0/4", "5/4", "x", "1/", "-1/2"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
