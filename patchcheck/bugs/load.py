"""Known-bug files: load, strictly validate, and expose as frozen dataclasses."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchcheck.errors import BadInput, BugFileError
from patchcheck.model import Bug, Fix, Signature
from patchcheck.text.trailers import is_cve, is_sha

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# A Message-Id's left and right parts: printable ASCII, no spaces or angle brackets.
_MSGID_RE = re.compile(r"^[!-;=?-~]+@[!-;=?-~]+$")


def default_bugs_dir() -> Path:
    """The known_bugs/ shipped inside the package (works from a checkout and a wheel)."""
    return Path(__file__).resolve().parent.parent / "known_bugs"


# ---- validation helpers: each returns the typed value or raises BugFileError ----------


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str | None, expected: str) -> BugFileError:
        return BugFileError(self.path, key, expected)

    def no_unknown(self, table: dict[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
        allowed = set(allowed)
        for key in table:
            if key not in allowed:
                raise self.fail(prefix + key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def string(
        self, table: dict[str, Any], key: str, prefix: str = "", required: bool = False, one_line: bool = False
    ) -> str | None:
        if key not in table:
            if required:
                raise self.fail(prefix + key, "required key is missing (expected a string)")
            return None
        val = table[key]
        if not isinstance(val, str):
            raise self.fail(prefix + key, f"expected a string, got {_tname(val)}")
        if required and not val.strip():
            raise self.fail(prefix + key, "expected a non-empty string")
        if one_line and "\n" in val:
            raise self.fail(prefix + key, "expected a single line")
        return val

    def str_list(self, table: dict[str, Any], key: str, prefix: str = "") -> tuple[str, ...]:
        val = table.get(key, [])
        if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
            raise self.fail(prefix + key, f"expected a list of strings, got {_tname(val)}")
        return tuple(val)

    def shas(self, table: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
        vals = self.str_list(table, key, prefix)
        for v in vals:
            if not is_sha(v):
                raise self.fail(prefix + key, f"{v!r} is not a git commit id (7 to 40 lowercase hex)")
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


def _parse_fix(c: _Checker, raw: object, n: int) -> Fix:
    pre = f"fix[{n}]."
    if not isinstance(raw, dict):
        raise c.fail(f"fix[{n}]", f"expected a table, got {_tname(raw)}")
    if not raw:
        raise c.fail(f"fix[{n}]", "empty [[fix]] table (expected at least msgid or mbox)")
    c.no_unknown(raw, _FIX_KEYS, pre)
    msgid = c.string(raw, "msgid", pre)
    mbox = c.string(raw, "mbox", pre)
    if msgid is None and mbox is None:
        raise c.fail(pre + "msgid", "required key is missing (or give mbox = a local file)")
    if msgid is not None:
        why = check_msgid(msgid)
        if why:
            raise c.fail(pre + "msgid", f"{msgid!r} is not a Message-Id (expected one {why})")
    mbox_path: Path | None = None
    if mbox is not None:
        if not mbox.strip():
            raise c.fail(pre + "mbox", "expected a path to an mbox file")
        mbox_path = (c.path.parent / mbox).resolve()
    patches: tuple[int, ...] | None = None
    if "patches" in raw:
        pv = raw["patches"]
        if (
            not isinstance(pv, list)
            or not pv
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pv)
        ):
            raise c.fail(pre + "patches", "expected a non-empty list of patch numbers (1-based)")
        if any(x < 1 for x in pv):
            raise c.fail(pre + "patches", "patch numbers are 1-based (expected integers >= 1)")
        if len(set(pv)) != len(pv):
            raise c.fail(pre + "patches", "expected each patch number once")
        patches = tuple(pv)
    revision: int | None = None
    if "revision" in raw:
        rv = raw["revision"]
        if not isinstance(rv, int) or isinstance(rv, bool) or rv < 1:
            raise c.fail(pre + "revision", f"expected a series revision >= 1, got {rv!r}")
        revision = rv
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise c.fail(pre + "optional", f"expected true or false, got {_tname(optional)}")
    return Fix(
        msgid=msgid,
        patches=patches,
        revision=revision,
        upstream=c.shas(raw, "upstream", pre),
        introduced_by=c.shas(raw, "introduced_by", pre),
        optional=optional,
        note=c.string(raw, "note", pre),
        mbox=mbox_path,
    )


def parse_bug(path: Path, data: dict[str, Any]) -> Bug:
    c = _Checker(path)
    c.no_unknown(data, _TOP_KEYS)
    bug_id = c.string(data, "id", required=True)
    assert bug_id is not None
    if bug_id != path.stem:
        raise c.fail("id", f"{bug_id!r} differs from the file name (expected {path.stem!r})")
    if not _ID_RE.match(bug_id):
        raise c.fail("id", f"{bug_id!r} is not a valid id (expected lowercase letters, digits, . _ -)")
    title = c.string(data, "title", required=True, one_line=True)
    assert title is not None
    severity = c.string(data, "severity") or "medium"
    if severity not in SEVERITIES:
        raise c.fail("severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    cves = c.str_list(data, "cves")
    for cve in cves:
        if not is_cve(cve):
            raise c.fail("cves", f"{cve!r} is not a CVE id (expected CVE-YYYY-NNNN)")
    signature: Signature | None = None
    if "signature" in data:
        sig = data["signature"]
        if not isinstance(sig, dict):
            raise c.fail("signature", f"expected a table, got {_tname(sig)}")
        c.no_unknown(sig, ("functions", "message"), "signature.")
        signature = Signature(
            functions=c.str_list(sig, "functions", "signature."),
            message=c.string(sig, "message", "signature."),
        )
    raw_fixes = data.get("fix")
    if raw_fixes is None:
        raise c.fail("fix", "required: at least one [[fix]] table")
    if not isinstance(raw_fixes, list) or not raw_fixes:
        raise c.fail("fix", "expected one or more [[fix]] tables")
    fixes = tuple(_parse_fix(c, f, i + 1) for i, f in enumerate(raw_fixes))
    if all(f.optional for f in fixes):
        raise c.fail("fix", "every fix is optional (expected at least one required fix)")
    return Bug(
        id=bug_id,
        title=title,
        fixes=fixes,
        path=path,
        severity=severity,
        subsystem=c.string(data, "subsystem") or "",
        cves=cves,
        references=c.str_list(data, "references"),
        affects=c.str_list(data, "affects"),
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
    """All known bugs of a folder, by id."""

    directory: Path
    bugs: dict[str, Bug] = field(default_factory=dict)

    def get(self, bug_id: str) -> Bug:
        try:
            return self.bugs[bug_id]
        except KeyError:
            known = ", ".join(sorted(self.bugs)) or "none"
            raise BadInput(
                f"unknown bug id {bug_id!r} (no {bug_id}.toml in {self.directory}; known: {known})"
            ) from None

    def select(self, ids: Iterable[str]) -> list[Bug]:
        return [self.get(i) for i in ids]

    def all(self) -> list[Bug]:
        return [self.bugs[k] for k in sorted(self.bugs)]


def load_bugs(directory: Path | str | None = None) -> BugSet:
    """Load and validate every ``*.toml`` of ``directory``; the first bad file raises."""
    d = Path(directory) if directory is not None else default_bugs_dir()
    if not d.is_dir():
        raise BadInput(f"{d}: bugs directory does not exist (expected a folder of <id>.toml files)")
    out = BugSet(d)
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        raise BadInput(f"{d}: cannot read bugs directory: {e.strerror or e}") from e
    for name in names:
        if not name.endswith(".toml"):
            continue
        # ids must equal file names, so they are unique within a folder
        bug = load_bug(d / name)
        out.bugs[bug.id] = bug
    return out
