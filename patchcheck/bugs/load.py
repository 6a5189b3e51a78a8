"""Known-bug files: load, strictly validate, and expose as frozen dataclasses."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchcheck.errors import BadInput, BugFileError
from patchcheck.model import Bug, Fix, Signature
from patchcheck.sys import workers
from patchcheck.text.trailers import is_cve, is_sha

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# A Message-Id's left and right parts: printable ASCII, no spaces or angle brackets.
_MSGID_RE = re.compile(r"^[!-;=?-~]+@[!-;=?-~]+$")


def default_bugs_dir() -> Path:
    """The known_bugs/ shipped inside the package (works from a checkout and a wheel)."""
    return Path(__file__).resolve().parent.parent / "known_bugs"


# ---- validation helpers: each records what is wrong and returns a usable stand-in ------------


class BugFileErrors(BugFileError):
    """Every error of one bug file; its message is the first, with a count of the rest."""

    def __init__(self, path: Path, problems: Sequence[tuple[str | None, str]]) -> None:
        key, expected = problems[0]
        rest = len(problems) - 1
        more = f" (and {rest} more error{'s' if rest > 1 else ''} in this file)" if rest else ""
        super().__init__(path, key, expected + more)
        self.problems = [BugFileError(path, k, e) for k, e in problems]


class _Checker:
    """Validates one file's tables, noting every error rather than stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[tuple[str | None, str]] = []

    def fail(self, key: str | None, expected: str) -> None:
        self.problems.append((key, expected))

    def done(self) -> None:
        if self.problems:
            raise BugFileErrors(self.path, self.problems)

    def no_unknown(self, table: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in table:
            if key not in allowed:
                self.fail(prefix + key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def string(
        self, table: dict[str, Any], key: str, prefix: str = "", required: bool = False, one_line: bool = False
    ) -> str | None:
        if key not in table:
            if required:
                self.fail(prefix + key, "required key is missing (expected a string)")
            return None
        val = table[key]
        if not isinstance(val, str):
            self.fail(prefix + key, f"expected a string, got {_tname(val)}")
            return None
        if required and not val.strip():
            self.fail(prefix + key, "expected a non-empty string")
        elif one_line and "\n" in val:
            self.fail(prefix + key, "expected a single line")
        return val

    def str_list(self, table: dict[str, Any], key: str, prefix: str = "") -> tuple[str, ...]:
        val = table.get(key, [])
        if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
            self.fail(prefix + key, f"expected a list of strings, got {_tname(val)}")
            return ()
        return tuple(val)

    def shas(self, table: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
        vals = self.str_list(table, key, prefix)
        for v in vals:
            if not is_sha(v):
                self.fail(prefix + key, f"{v!r} is not a git commit id (7 to 40 lowercase hex)")
        return vals


def _tname(val: object) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(val), type(val).__name__)


def check_msgid(msgid: str) -> str | None:
    """Return why ``msgid`` is not a bare Message-Id, or None when it is fine."""
    if msgid.startswith("<") or msgid.endswith(">"):
        return "without angle brackets"
    if not _MSGID_RE.match(msgid):
        return "of the form local-part@domain with no spaces"
    return None


_TOP_KEYS = ("id", "title", "severity", "subsystem", "cves", "references", "affects", "signature", "fix")
_FIX_KEYS = ("msgid", "patches", "revision", "upstream", "introduced_by", "optional", "note", "mbox")


def _patches(c: _Checker, raw: dict[str, Any], pre: str) -> tuple[int, ...] | None:
    if "patches" not in raw:
        return None
    pv = raw["patches"]
    if not isinstance(pv, list) or not pv or not all(isinstance(x, int) and not isinstance(x, bool) for x in pv):
        c.fail(pre + "patches", "expected a non-empty list of patch numbers (1-based)")
    elif any(x < 1 for x in pv):
        c.fail(pre + "patches", "patch numbers are 1-based (expected integers >= 1)")
    elif len(set(pv)) != len(pv):
        c.fail(pre + "patches", "expected each patch number once")
    else:
        return tuple(pv)
    return None


def _parse_fix(c: _Checker, raw: object, n: int) -> Fix | None:
    pre = f"fix[{n}]."
    if not isinstance(raw, dict):
        c.fail(f"fix[{n}]", f"expected a table, got {_tname(raw)}")
        return None
    if not raw:
        c.fail(f"fix[{n}]", "empty [[fix]] table (expected at least msgid or mbox)")
        return None
    c.no_unknown(raw, _FIX_KEYS, pre)
    msgid = c.string(raw, "msgid", pre)
    mbox = c.string(raw, "mbox", pre)
    upstream = c.shas(raw, "upstream", pre)
    if "msgid" not in raw and "mbox" not in raw:
        if not upstream:
            c.fail(pre + "msgid", "required key is missing (or give mbox = a local file, or upstream = commits)")
        # the commits are the patches (taken from --upstream-repo): nothing to select from
        for key in ("patches", "revision"):
            if key in raw:
                c.fail(pre + key, "selects from a mail series; a fix given by upstream alone takes each commit")
    if msgid is not None and (why := check_msgid(msgid)):
        c.fail(pre + "msgid", f"{msgid!r} is not a Message-Id (expected one {why})")
    mbox_path: Path | None = None
    if mbox is not None:
        if mbox.strip():
            mbox_path = (c.path.parent / mbox).resolve()
        else:
            c.fail(pre + "mbox", "expected a path to an mbox file")
    revision: int | None = None
    if "revision" in raw:
        rv = raw["revision"]
        if not isinstance(rv, int) or isinstance(rv, bool) or rv < 1:
            c.fail(pre + "revision", f"expected a series revision >= 1, got {rv!r}")
        else:
            revision = rv
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        c.fail(pre + "optional", f"expected true or false, got {_tname(optional)}")
        optional = False
    return Fix(
        msgid=msgid,
        patches=_patches(c, raw, pre),
        revision=revision,
        upstream=upstream,
        introduced_by=c.shas(raw, "introduced_by", pre),
        optional=optional,
        note=c.string(raw, "note", pre),
        mbox=mbox_path,
    )


def _signature(c: _Checker, data: dict[str, Any]) -> Signature | None:
    if "signature" not in data:
        return None
    sig = data["signature"]
    if not isinstance(sig, dict):
        c.fail("signature", f"expected a table, got {_tname(sig)}")
        return None
    c.no_unknown(sig, ("functions", "message"), "signature.")
    return Signature(
        functions=c.str_list(sig, "functions", "signature."),
        message=c.string(sig, "message", "signature."),
    )


def _fixes(c: _Checker, data: dict[str, Any]) -> tuple[Fix, ...]:
    raw_fixes = data.get("fix")
    if raw_fixes is None:
        c.fail("fix", "required: at least one [[fix]] table")
        return ()
    if not isinstance(raw_fixes, list) or not raw_fixes:
        c.fail("fix", "expected one or more [[fix]] tables")
        return ()
    parsed = [_parse_fix(c, f, i + 1) for i, f in enumerate(raw_fixes)]
    fixes = tuple(f for f in parsed if f is not None)
    if len(fixes) == len(parsed) and all(f.optional for f in fixes):
        c.fail("fix", "every fix is optional (expected at least one required fix)")
    return fixes


def parse_bug(path: Path, data: dict[str, Any]) -> Bug:
    """The bug of one file's TOML tables; every error found raises as one BugFileErrors."""
    c = _Checker(path)
    c.no_unknown(data, _TOP_KEYS)
    bug_id = c.string(data, "id", required=True)
    if bug_id is not None and bug_id != path.stem:
        c.fail("id", f"{bug_id!r} differs from the file name (expected {path.stem!r})")
    elif bug_id is not None and not _ID_RE.match(bug_id):
        c.fail("id", f"{bug_id!r} is not a valid id (expected lowercase letters, digits, . _ -)")
    title = c.string(data, "title", required=True, one_line=True)
    severity = c.string(data, "severity") or "medium"
    if severity not in SEVERITIES:
        c.fail("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    cves = c.str_list(data, "cves")
    for cve in cves:
        if not is_cve(cve):
            c.fail("cves", f"{cve!r} is not a CVE id (expected CVE-YYYY-NNNN)")
    signature = _signature(c, data)
    fixes = _fixes(c, data)
    subsystem = c.string(data, "subsystem") or ""
    references = c.str_list(data, "references")
    affects = c.str_list(data, "affects")
    c.done()
    assert bug_id is not None and title is not None  # done() raised otherwise
    return Bug(
        id=bug_id,
        title=title,
        fixes=fixes,
        path=path,
        severity=severity,
        subsystem=subsystem,
        cves=cves,
        references=references,
        affects=affects,
        signature=signature,
    )


def load_bug(path: Path) -> Bug:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise BugFileError(path, None, f"invalid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise BugFileError(path, None, "invalid TOML: not UTF-8 text") from e
    except RecursionError:  # tomllib recurses per nesting level
        raise BugFileError(path, None, "invalid TOML: arrays or tables nested too deeply") from None
    except OSError as e:
        raise BugFileError(path, None, f"cannot read: {e.strerror or e}") from e
    return parse_bug(path, data)


@dataclass
class BugSet:
    """All known bugs of one or more folders, by id."""

    directories: tuple[Path, ...]
    bugs: dict[str, Bug] = field(default_factory=dict)

    def get(self, bug_id: str) -> Bug:
        try:
            return self.bugs[bug_id]
        except KeyError:
            known = ", ".join(sorted(self.bugs)) or "none"
            where = ", ".join(str(d) for d in self.directories) or "no folder"
            raise BadInput(f"unknown bug id {bug_id!r} (no {bug_id}.toml in {where}; known: {known})") from None

    def select(self, ids: Iterable[str]) -> list[Bug]:
        return [self.get(i) for i in ids]

    def all(self) -> list[Bug]:
        return [self.bugs[k] for k in sorted(self.bugs)]


def _bug_files(d: Path) -> list[Path]:
    if not d.is_dir():
        raise BadInput(f"{d}: bugs directory does not exist (expected a folder of <id>.toml files)")
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        raise BadInput(f"{d}: cannot read bugs directory: {e.strerror or e}") from e
    return [d / n for n in names if n.endswith(".toml")]


MIN_FILES_FOR_PROCESSES = 256  # fewer: forking costs more than parsing them here (~70 us each)


def _load_part(paths: Sequence[Path]) -> list[Bug | BugFileError]:
    out: list[Bug | BugFileError] = []
    for path in paths:
        try:
            out.append(load_bug(path))
        except BugFileError as e:
            out.append(e)
    return out


def _load_files(
    paths: list[Path], jobs: int, meanwhile: Callable[[], None] | None = None
) -> list[Bug | BugFileError]:
    """Each file's bug or error, in order; a large release audit's files in ``jobs``
    forked workers (tomllib is pure Python), which start before ``meanwhile`` runs here."""
    if jobs <= 1 or len(paths) < MIN_FILES_FOR_PROCESSES or not workers.can_fork():
        if meanwhile is not None:
            meanwhile()
        return _load_part(paths)
    parts = workers.chunks(paths, jobs, 4)
    return [got for part in workers.fork_map(_load_part, parts, None, jobs, meanwhile=meanwhile) for got in part]


def scan_bugs(
    directories: Sequence[Path], jobs: int = 1, meanwhile: Callable[[], None] | None = None
) -> tuple[BugSet, list[BugFileError]]:
    """Every valid bug of ``directories``, and each bad file's error (in file order; a
    :class:`BugFileErrors` holds all of its file's ``problems``). ``meanwhile``: work of
    the caller's to run while workers parse the files.

    A folder that is missing or unreadable raises at once: there is nothing to scan.
    An id defined in two folders is an error naming both files.
    """
    out = BugSet(tuple(directories))
    errors: list[BugFileError] = []
    paths = [path for d in directories for path in _bug_files(d)]
    for bug in _load_files(paths, jobs, meanwhile):
        if isinstance(bug, BugFileError):
            errors.append(bug)
            continue
        if (first := out.bugs.get(bug.id)) is not None:
            errors.append(
                BugFileError(
                    bug.path,
                    "id",
                    f"{bug.id!r} is also defined by {first.path} (expected each id once across the bug "
                    "folders; --no-shipped-bugs leaves the shipped ones out)",
                )
            )
            continue
        out.bugs[bug.id] = bug
    return out, errors


def load_bugs(
    directories: Path | str | Sequence[Path] | None = None,
    jobs: int = 1,
    meanwhile: Callable[[], None] | None = None,
) -> BugSet:
    """Load and validate every ``*.toml`` of the folder(s) (in ``jobs`` workers when there
    are many, while this process runs ``meanwhile``); the first bad file raises (its first
    error, with a count of the others)."""
    if directories is None:
        dirs: Sequence[Path] = (default_bugs_dir(),)
    elif isinstance(directories, str | Path):
        dirs = (Path(directories),)
    else:
        dirs = directories
    bugs, errors = scan_bugs(dirs, jobs, meanwhile)
    if errors:
        raise errors[0]
    return bugs
