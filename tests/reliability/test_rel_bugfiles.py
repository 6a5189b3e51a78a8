"""Bad known-bug files and bad options, through the real command: exit 2, one stderr line
naming the file, the key and what was expected, never a traceback.

Every run loads (and strictly validates) the whole bugs folder, so a bad file stops
``bugs validate`` and ``check`` alike, before any network or tree work. The runs go side
by side (``run_many``): the suite's time is mostly Python start-up.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing.kfixtures import MAKEFILE, write_tree
from testing.offline import NO_LORE
from testing.rig import Completed, bug_file, no_traceback, one_line_error, run_many

NO_SERVER = NO_LORE  # nothing listens there; these runs never get that far
FIX = '[[fix]]\nmsgid = "a1@example.org"\n'
HEAD = 'id = "x"\ntitle = "t"\n'


def _pc(*args: str) -> list[str]:
    return [sys.executable, "-m", "patchcheck", *args]


@dataclass(frozen=True)
class Case:
    text: str | bytes  # the content of bugs/x.toml
    words: tuple[str, ...]  # what the one error line must say (besides the file name)


CASES: dict[str, Case] = {
    "invalid-toml": Case('id = "x\n', ("invalid TOML", "line 1")),
    "not-utf8": Case(b'id = "x"\ntitle = "caf\xe9"\n' + FIX.encode(), ("invalid TOML", "UTF-8")),
    "unknown-key": Case(HEAD + "colour = 1\n" + FIX, ("colour", "unknown key", "expected one of")),
    "unknown-fix-key": Case(HEAD + FIX + "pach = [1]\n", ("fix[1].pach", "unknown key")),
    "unknown-signature-key": Case(HEAD + FIX + "[signature]\nfunc = []\n", ("signature.func", "unknown key")),
    "wrong-type-title": Case('id = "x"\ntitle = 1\n' + FIX, ("title", "expected a string", "integer")),
    "wrong-type-patches": Case(HEAD + FIX + 'patches = "1"\n', ("fix[1].patches", "list of patch numbers")),
    "wrong-type-optional": Case(HEAD + FIX + 'optional = "yes"\n', ("fix[1].optional", "true or false")),
    "wrong-type-cves": Case(HEAD + 'cves = "CVE-2024-1234"\n' + FIX, ("cves", "list of strings")),
    "wrong-type-fix": Case(HEAD + "fix = 3\n", ("fix", "[[fix]] tables")),
    "fix-not-array": Case(HEAD + '[fix]\nmsgid = "a1@example.org"\n', ("fix", "[[fix]] tables")),
    "revision-zero": Case(HEAD + FIX + "revision = 0\n", ("fix[1].revision", ">= 1")),
    "patches-zero": Case(HEAD + FIX + "patches = [0]\n", ("fix[1].patches", "1-based")),
    "patches-empty": Case(HEAD + FIX + "patches = []\n", ("fix[1].patches", "non-empty")),
    "patches-twice": Case(HEAD + FIX + "patches = [1, 1]\n", ("fix[1].patches", "once")),
    "id-not-file-name": Case('id = "y"\ntitle = "t"\n' + FIX, ("id", "'y'", "differs from the file name", "'x'")),
    "id-missing": Case('title = "t"\n' + FIX, ("id", "required key is missing")),
    "title-two-lines": Case('id = "x"\ntitle = """a\nb"""\n' + FIX, ("title", "single line")),
    "msgid-angle-brackets": Case(
        HEAD + '[[fix]]\nmsgid = "<a1@example.org>"\n', ("fix[1].msgid", "<a1@example.org>", "angle brackets")
    ),
    "msgid-space": Case(
        HEAD + '[[fix]]\nmsgid = "a 1@example.org"\n', ("fix[1].msgid", "a 1@example.org", "no spaces")
    ),
    "msgid-no-at": Case(HEAD + '[[fix]]\nmsgid = "a1.example.org"\n', ("fix[1].msgid", "local-part@domain")),
    "msgid-second-fix": Case(HEAD + FIX + '[[fix]]\nmsgid = "b@c d"\n', ("fix[2].msgid",)),
    "sha-not-hex": Case(HEAD + FIX + 'upstream = ["xyz"]\n', ("fix[1].upstream", "'xyz'", "git commit id")),
    "sha-uppercase": Case(
        HEAD + FIX + 'upstream = ["ABCDEF0123"]\n', ("fix[1].upstream", "ABCDEF0123", "lowercase hex")
    ),
    "sha-too-long": Case(
        HEAD + FIX + f'introduced_by = ["{"a" * 41}"]\n', ("fix[1].introduced_by", "git commit id")
    ),
    "duplicate-key": Case(HEAD + 'title = "again"\n' + FIX, ("invalid TOML", "line 3")),
    "duplicate-fix-key": Case(HEAD + FIX + 'msgid = "b@example.org"\n', ("invalid TOML",)),
    "empty-fix": Case(HEAD + "[[fix]]\n", ("fix[1]", "empty [[fix]]")),
    "empty-second-fix": Case(HEAD + FIX + "[[fix]]\n", ("fix[2]", "empty [[fix]]")),
    "fix-missing": Case(HEAD, ("fix", "at least one [[fix]]")),
    "fix-without-source": Case(HEAD + '[[fix]]\nnote = "n"\n', ("fix[1].msgid", "missing")),
    "all-optional": Case(HEAD + FIX + "optional = true\n", ("fix", "every fix is optional")),
    "bad-severity": Case(HEAD + 'severity = "urgent"\n' + FIX, ("severity", "'urgent'")),
    "bad-cve": Case(HEAD + 'cves = ["CVE-24-1"]\n' + FIX, ("cves", "CVE-YYYY-NNNN")),
}


# run as real processes too, `bugs validate` and `check` (the rest run in-process: the same
# code from argv to exit code, without ~0.4 s of start-up each)
IN_A_PROCESS = (
    "invalid-toml",
    "unknown-key",
    "id-not-file-name",
    "msgid-angle-brackets",
    "sha-not-hex",
    "empty-fix",
)


def _write_case(root: Path, name: str) -> tuple[Path, Path]:
    bugs = root / name
    bugs.mkdir()
    bug_file(bugs, "good", 'msgid = "g1@example.org"')
    path = bugs / "x.toml"
    text = CASES[name].text
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return bugs, path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_bug_file(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from patchcheck.cli import main

    bugs, path = _write_case(tmp_path, name)
    rc = main(["bugs", "validate", "--bugs-dir", str(bugs)])
    out, err = capsys.readouterr()
    one_line_error(Completed([], rc, out, err), 2, str(path), *CASES[name].words)
    assert out == ""


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Completed, ...]]:
    root = tmp_path_factory.mktemp("badbugs")
    tree = write_tree(root / "linux", {"Makefile": MAKEFILE})
    argvs: list[list[str]] = []
    for name in IN_A_PROCESS:
        bugs, _ = _write_case(root, name)
        common = ["--bugs-dir", str(bugs), "--cache-dir", str(root / "cache"), "--lore-url", NO_SERVER]
        argvs.append(_pc("bugs", "validate", *common))
        # a run that does not even select the bad bug: the folder is validated whole
        argvs.append(_pc("--tree", str(tree), "--bug", "good", *common))
    done = run_many(argvs, cwd=root)
    return {name: (done[2 * i], done[2 * i + 1]) for i, name in enumerate(IN_A_PROCESS)}


@pytest.mark.parametrize("name", IN_A_PROCESS)
def test_bad_bug_file_stops_every_verb(
    processes: dict[str, tuple[Completed, ...]], tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    validate, check = processes[name]
    line = one_line_error(validate, 2, f"{name}/x.toml", *CASES[name].words)
    assert one_line_error(check, 2) == line
    assert validate.stdout == check.stdout == ""


# -- bad input that is not a malformed file ------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    bugs = tmp_path / "bugs"
    bugs.mkdir()
    bug_file(bugs, "good", 'mbox = "fixes/g.mbox"')
    return bugs


def test_missing_local_mbox_is_named(folder: Path, tmp_path: Path) -> None:
    """``bugs validate`` finds an ``mbox =`` file that is not there; a check of that bug
    names the file and stops with exit 2 before any work."""
    tree = write_tree(tmp_path / "linux", {"Makefile": MAKEFILE})
    (folder / "fixes").mkdir()
    (folder / "fixes" / "g.mbox").mkdir()  # a folder where the mbox file should be
    bug_file(folder, "x", 'mbox = "fixes/nope.mbox"')
    common = ["--bugs-dir", str(folder), "--cache-dir", str(tmp_path / "c"), "--lore-url", NO_SERVER]
    validate, check, check_dir = run_many(
        [
            _pc("bugs", "validate", *common),
            _pc("--tree", str(tree), "--bug", "x", *common),
            _pc("--tree", str(tree), "--bug", "good", *common),
        ],
        cwd=tmp_path,
    )
    # validate names every error of every file (issue 15 item 8), then a count
    assert validate.returncode == 2 and validate.stdout == "", validate.stderr
    lines = validate.stderr.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "patchcheck: 2 errors in 2 files", lines
    assert "good.toml: fix[1].mbox" in lines[0] and "g.mbox: not a regular file" in lines[0]
    assert "x.toml: fix[1].mbox" in lines[1] and "nope.mbox: no such file" in lines[1]
    one_line_error(check, 2, str(folder / "fixes" / "nope.mbox"), "cannot read")
    one_line_error(check_dir, 2, str(folder / "fixes" / "g.mbox"))
    (folder / "fixes" / "g.mbox").rmdir()
    (folder / "x.toml").unlink()
    (validate,) = run_many([_pc("bugs", "validate", *common)], cwd=tmp_path)
    one_line_error(validate, 2, "good.toml", "fix[1].mbox", "no such file")


BAD_OPTIONS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "unknown-bug": (["--bug", "nope"], ("unknown bug id 'nope'", "known: good")),
    "bug-and-all": (["--bug", "good", "--all"], ("either --bug", "--all")),
    "no-selection": ([], ("which bugs",)),
    "timeout-zero": (["--bug", "good", "--timeout", "0"], ("--timeout", "positive")),
    "timeout-word": (["--bug", "good", "--timeout", "soon"], ("--timeout", "'soon'")),
    "jobs-zero": (["--bug", "good", "-j", "0"], ("--jobs", ">= 1")),
    "format": (["--bug", "good", "--format", "pdf"], ("--format", "pdf")),
    "fail-on": (["--bug", "good", "--fail-on", "present,bogus"], ("--fail-on", "bogus")),
    "lore-url": (["--bug", "good", "--lore-url", "ftp://example.org"], ("ftp://example.org", "http(s)")),
    "no-filter-match": (["--all", "--severity", "critical"], ("no known bug matches",)),
    "unknown-option": (["--bug", "good", "--colour", "red"], ("--colour",)),
}


def test_bad_options_and_ids(folder: Path, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "linux", {"Makefile": MAKEFILE})
    base = ["--tree", str(tree), "--bugs-dir", str(folder), "--cache-dir", str(tmp_path / "c")]
    names = list(BAD_OPTIONS)
    # --lore-url is given last so that the bad-URL case's own value wins
    done = run_many(
        [_pc(*base, *BAD_OPTIONS[n][0], *([] if n == "lore-url" else ["--lore-url", NO_SERVER])) for n in names],
        cwd=tmp_path,
    )
    for name, cp in zip(names, done, strict=True):
        one_line_error(cp, 2, *BAD_OPTIONS[name][1])


def test_bad_bugs_dir(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "linux", {"Makefile": MAKEFILE})
    (tmp_path / "afile").write_text("x")
    missing, is_file = run_many(
        [
            _pc("--tree", str(tree), "--bug", "b", "--bugs-dir", str(tmp_path / "absent")),
            _pc("bugs", "list", "--bugs-dir", str(tmp_path / "afile")),
        ],
        cwd=tmp_path,
    )
    one_line_error(missing, 2, str(tmp_path / "absent"), "does not exist")
    one_line_error(is_file, 2, str(tmp_path / "afile"))


def test_same_bug_twice_is_judged_once(folder: Path, tmp_path: Path) -> None:
    """Duplicate ids on the command line (and the same fix listed twice in a file) are
    one result, not an error and not a crash."""
    from testing.mailgen import make_mbox, make_patch_mail, simple_diff

    tree = write_tree(
        tmp_path / "linux", {"Makefile": MAKEFILE, "fs/foo.c": "".join(f"l{i}\n" for i in range(20))}
    )
    (folder / "fixes").mkdir()
    (folder / "fixes" / "g.mbox").write_bytes(
        make_mbox([make_patch_mail("foo: fix", simple_diff("fs/foo.c", "a", "b"), "g1@example.org")])
    )
    bug_file(folder, "twice", 'mbox = "fixes/g.mbox"', 'mbox = "fixes/g.mbox"')
    (cp,) = run_many(
        [
            _pc(
                "--tree",
                str(tree),
                "--bug",
                "good",
                "--bug",
                "good",
                "--bug",
                "twice",
                "--bugs-dir",
                str(folder),
                "--cache-dir",
                str(tmp_path / "c"),
                "--lore-url",
                NO_SERVER,
                "--format",
                "json",
            )
        ],
        cwd=tmp_path,
    )
    no_traceback(cp)
    results = json.loads(cp.stdout)["results"]
    assert [r["bug"] for r in results] == ["good", "twice"]
    verdicts = {r["verdict"] for r in results}
    assert len(verdicts) == 1 and "error" not in verdicts, results
