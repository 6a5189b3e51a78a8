"""The one diff parser: a patch's diff into per-file sections and hunks, on bytes.

It reads every unified form that ``git apply`` or GNU ``patch -p1`` accepts: git diffs
(``diff --git`` with extended headers, with or without ``---``/``+++`` lines, binary data)
and traditional ones (``---``/``+++`` pairs as diff -u, quilt, stgit and hand-made diffs
write them, ``Index:`` headers around them being noise). Hunks end by their line counts, so
a removed ``--`` or ``-- `` line is a removed line; only text after the hunks is noise (a
mail signature). Kernel patches carry CRLF, non-UTF-8 bytes and binary data, so everything
stays bytes; a diff whose every line ends in CRLF (a CRLF mail) is read as LF.

What git and patch would both refuse, or what cannot be read without guessing (a file name
that cannot be stripped, a ``@@`` line that is no hunk header), is MalformedPatch naming the
line and the reason.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from patchcheck.errors import PatchcheckError
from patchcheck.sys.paths import norm_relpath


class MalformedPatch(PatchcheckError):
    """The diff cannot be read (bad hunk header or counts, unreadable file name, no diff)."""


@dataclass
class Hunk:
    index: int  # 1-based within the patch: the key the engine files results under
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    before: list[bytes]  # context + removed, in order (the pre-image)
    after: list[bytes]  # context + added, in order (the post-image)
    removed: list[bytes]
    added: list[bytes]
    file_index: int = 1  # 1-based within its section, as patch(1) and git apply number hunks
    section: bytes = b""  # text after the second @@: the function the hunk is in


@dataclass
class FilePatch:
    old_path: str | None  # None for a created file
    new_path: str | None  # None for a deleted file
    raw: bytes  # this file's section of the diff, as the tools should see it
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    rename: bool = False
    mode_only: bool = False  # a git section that changes the file mode and nothing else
    copy: bool = False
    created: bool = False
    deleted: bool = False
    old_mode: str | None = None
    new_mode: str | None = None

    @property
    def path(self) -> str:
        """The path the fix is about: the old one, or the new one for a new file."""
        return self.old_path or self.new_path or "?"


# git and GNU patch read "@@ -1 +1 @@" as one-line ranges
_HUNK_HDR = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*?)\r?\n?$", re.S)
# GNU patch reads up to this many lines missing at the very end of a diff as blank context
# lines (mailers and editors drop trailing blank lines); git refuses them
_MAX_CHOPPED_BLANKS = 3
_BIN_SIZE = re.compile(rb"^(?:literal|delta) \d+\r?\n?$")
_BIN_DATA = re.compile(rb"^[A-Za-z][0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+\r?\n?$")
# a diff -u timestamp after a name, when no tab separates them (git's rule)
_STAMP = re.compile(
    rb" +(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: ?[+-]\d\d:?\d\d)?"
    rb"|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})$"
)
_ISO_STAMP = re.compile(rb"^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))? ?([+-])(\d\d):?(\d\d)")
_CTIME_EPOCH = re.compile(rb"^[A-Z][a-z]{2} Jan  1 00:00:00 1970$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_C_ESCAPES = {b"a": 7, b"b": 8, b"f": 12, b"n": 10, b"r": 13, b"t": 9, b"v": 11, b'"': 34, b"\\": 92}
_DEV_NULL = b"/dev/null"


def normalise_eol(diff: bytes) -> bytes:
    """LF endings for a diff whose every line ends in CRLF (a mail sent or stored with CRLF);
    a diff with mixed endings keeps its bytes (it changes a CRLF file)."""
    n = diff.count(b"\n")
    if n and diff.count(b"\r\n") == n:
        return diff.replace(b"\r\n", b"\n")
    return diff


def _split_lines(data: bytes) -> list[bytes]:
    """Lines with their ``\\n``; a lone ``\\r`` is content (bytes.splitlines would cut there)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _chomp(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


# ---- file names ------------------------------------------------------------------------


def _unquote(text: bytes, at: int, lineno: int) -> tuple[bytes, int]:
    """A C-style quoted name (as git writes names with unusual bytes) starting at ``text[at]``
    (the opening quote): the name and the index after the closing quote."""
    out = bytearray()
    i = at + 1
    while i < len(text):
        c = text[i : i + 1]
        if c == b'"':
            return bytes(out), i + 1
        if c == b"\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _C_ESCAPES:
                out.append(_C_ESCAPES[nxt])
                i += 2
                continue
            octal = text[i + 1 : i + 4]
            if re.fullmatch(rb"[0-3][0-7][0-7]", octal):
                out.append(int(octal, 8))
                i += 4
                continue
            raise MalformedPatch(f"line {lineno}: bad escape in quoted file name {text!r}")
        out += c
        i += 1
    raise MalformedPatch(f"line {lineno}: unterminated quoted file name {text!r}")


def _decode(name: bytes, lineno: int) -> str:
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPatch(f"line {lineno}: file name {name!r} is not UTF-8") from None
    norm = norm_relpath(text)
    if norm is None:
        raise MalformedPatch(f"line {lineno}: unsafe file name {text!r} (absolute, '..' or empty)")
    return norm


def _strip1(name: bytes, lineno: int) -> str:
    """The name with its first component dropped, as ``patch -p1`` does."""
    slash = name.find(b"/")
    if slash < 0:
        raise MalformedPatch(
            f"line {lineno}: file name {name.decode('utf-8', 'replace')!r} has no leading "
            f"component to strip (read as patch -p1)"
        )
    rest = name[slash + 1 :]
    if rest.startswith(b"/"):
        # "a//etc/x": GNU patch would quietly read "etc/x"; an absolute path behind the
        # prefix is no honest diff, so it is refused, not guessed
        raise MalformedPatch(f"line {lineno}: unsafe file name {name.decode('utf-8', 'replace')!r} (absolute)")
    return _decode(rest, lineno)


def _is_epoch(stamp: bytes) -> bool:
    """Whether a diff -u timestamp is the epoch: GNU diff -N writes it for an absent file,
    and git and patch both read it so."""
    stamp = stamp.strip()
    if _CTIME_EPOCH.match(stamp):
        return True
    m = _ISO_STAMP.match(stamp)
    if not m or (m.group(7) and m.group(7).strip(b"0")):
        return False
    try:
        y, mo, d, h, mi, s = (int(m.group(k)) for k in range(1, 7))
        offset = timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
        at = datetime(y, mo, d, h, mi, s, tzinfo=UTC) - (offset if m.group(8) == b"+" else -offset)
    except ValueError:
        return False
    return at == _EPOCH


def _header_name(text: bytes, lineno: int) -> tuple[bytes, bool]:
    """The name on a ``---``/``+++`` line (before any strip) and whether its timestamp is the
    epoch. The name ends at a tab; without one, a trailing timestamp is cut (git's rule), so
    names may hold spaces."""
    text = _chomp(text)
    if text.startswith(b'"'):
        name, end = _unquote(text, 0, lineno)
        return name, _is_epoch(text[end:])
    name, tab, stamp = text.partition(b"\t")
    if not tab:
        m = _STAMP.search(name)
        if m:
            name, stamp = name[: m.start()], m.group(0)
    return name.rstrip(b" "), _is_epoch(stamp)


def _git_header_names(rest: bytes, lineno: int) -> str | None:
    """The one path a ``diff --git X Y`` line names when X and Y are the same file (both
    stripped as -p1), else None: the other header lines then name the files. An unquoted
    name may hold spaces; the split that makes both halves equal is the one (as git does)."""
    rest = _chomp(rest)
    if rest.startswith(b'"') or rest.endswith(b'"'):
        if rest.startswith(b'"'):
            first, end = _unquote(rest, 0, lineno)
            second_txt = rest[end:].lstrip(b" \t")
        else:
            cut = rest.rfind(b' "')
            if cut < 0:
                return None
            first, second_txt = rest[:cut], rest[cut + 1 :]
        second = _unquote(second_txt, 0, lineno)[0] if second_txt.startswith(b'"') else second_txt
        a, b = (_strip1(x, lineno) for x in (first, second))
        return a if a == b else None
    for i, ch in enumerate(rest):
        if ch not in (0x20, 0x09):
            continue
        first, second = rest[:i], rest[i + 1 :]
        fa, fb = first.find(b"/"), second.find(b"/")
        if fa >= 0 and fb >= 0 and first[fa:].lstrip(b"/") == second[fb:].lstrip(b"/"):
            return _strip1(first, lineno)
    return None


# ---- hunks -----------------------------------------------------------------------------


def _parse_hunk(lines: list[bytes], i: int, index: int, file_index: int, path: str) -> tuple[Hunk, int]:
    """The hunk whose header is ``lines[i]``; it ends where its line counts say."""
    m = _HUNK_HDR.match(lines[i])
    if not m:
        raise MalformedPatch(f"{path}: line {i + 1}: not a hunk header: {_chomp(lines[i])[:80]!r}")
    old_start, new_start = int(m.group(1)), int(m.group(3))
    old_len = int(m.group(2)) if m.group(2) is not None else 1
    new_len = int(m.group(4)) if m.group(4) is not None else 1
    section = m.group(5)
    func = section.removeprefix(b" ").rstrip()
    h = Hunk(index, old_start, old_len, new_start, new_len, [], [], [], [], file_index, func)
    old_left, new_left = old_len, new_len
    i += 1
    n = len(lines)
    # bound once: this loop runs for every line of every patch of an audit
    before, after, removed, added = h.before.append, h.after.append, h.removed.append, h.added.append
    while old_left > 0 or new_left > 0:
        if i >= n and not 0 < old_left == new_left <= _MAX_CHOPPED_BLANKS:
            raise MalformedPatch(
                f"{path}: line {i}: hunk #{file_index} is shorter than expected: the diff ends "
                f"with {old_left} old and {new_left} new lines missing"
            )
        ln = lines[i] if i < n else b"\n"
        if ln == b"\n":  # a blank context line whose lone space was dropped
            kind, text = b" ", b""
        else:
            kind = ln[:1]
            text = ln[1:-1] if ln[-1:] == b"\n" else ln[1:]
        if kind == b" ":
            if old_left == 0 or new_left == 0:
                raise MalformedPatch(f"{path}: line {i + 1}: hunk #{file_index} is longer than its header says")
            before(text)
            after(text)
            old_left -= 1
            new_left -= 1
        elif kind == b"-":
            if old_left == 0:
                raise MalformedPatch(f"{path}: line {i + 1}: hunk #{file_index} is longer than its header says")
            before(text)
            removed(text)
            old_left -= 1
        elif kind == b"+":
            if new_left == 0:
                raise MalformedPatch(f"{path}: line {i + 1}: hunk #{file_index} is longer than its header says")
            after(text)
            added(text)
            new_left -= 1
        elif kind == b"\\":
            pass
        else:
            raise MalformedPatch(
                f"{path}: line {i + 1}: hunk #{file_index} is shorter than expected ({old_left} old "
                f"and {new_left} new lines missing before {_chomp(ln)[:60]!r})"
            )
        i += 1
    if i < len(lines) and lines[i].startswith(b"\\"):
        i += 1  # "\ No newline at end of file" after the last line
    return h, min(i, len(lines))


def _parse_hunks(lines: list[bytes], i: int, fp: FilePatch, counter: list[int]) -> int:
    """Every hunk from ``lines[i]`` on: each ``@@`` line is a hunk or an error."""
    while i < len(lines) and lines[i].startswith(b"@@"):
        counter[0] += 1
        h, i = _parse_hunk(lines, i, counter[0], len(fp.hunks) + 1, fp.path)
        fp.hunks.append(h)
    return i


def _skip_binary(lines: list[bytes], i: int) -> int:
    """Past the data of a ``GIT binary patch`` (``lines[i]`` is the line after it): a forward
    block and an optional reverse one, each ``literal|delta N``, base85 lines, a blank line."""
    blocks = 0
    while blocks < 2 and i < len(lines) and _BIN_SIZE.match(lines[i]):
        i += 1
        while i < len(lines) and _BIN_DATA.match(lines[i]):
            i += 1
        if i < len(lines) and not _chomp(lines[i]):
            i += 1
        blocks += 1
    if not blocks:
        raise MalformedPatch(f"line {i}: GIT binary patch without literal or delta data")
    return i


# ---- sections --------------------------------------------------------------------------

_GIT_EXT = (
    b"old mode ",
    b"new mode ",
    b"deleted file mode ",
    b"new file mode ",
    b"copy from ",
    b"copy to ",
    b"rename from ",
    b"rename to ",
    b"rename old ",
    b"rename new ",
    b"similarity index ",
    b"dissimilarity index ",
    b"index ",
    b"--- ",
    b"+++ ",
)


def _bare_name(value: bytes, lineno: int) -> str:
    """A name on a rename/copy line: the whole rest of the line, no prefix to strip."""
    value = _chomp(value)
    if value.startswith(b'"'):
        value = _unquote(value, 0, lineno)[0]
    return _decode(value, lineno)


def _git_section(lines: list[bytes], start: int, counter: list[int]) -> tuple[FilePatch, int]:
    default = _git_header_names(lines[start][len(b"diff --git ") :], start + 1)
    old: str | None = default
    new: str | None = default
    fp = FilePatch(old_path=None, new_path=None, raw=b"")
    i = start + 1
    while i < len(lines):
        ln = lines[i]
        key = next((k for k in _GIT_EXT if ln.startswith(k)), None)
        if key is None:
            break
        value = ln[len(key) :]
        lineno = i + 1
        i += 1
        if key in (b"--- ", b"+++ "):
            name, _ = _header_name(value, lineno)
            if name == _DEV_NULL:
                fp.created, fp.deleted = fp.created or key == b"--- ", fp.deleted or key == b"+++ "
            elif key == b"--- ":
                old = _strip1(name, lineno)
            else:
                new = _strip1(name, lineno)
        elif key in (b"rename from ", b"rename old ", b"copy from "):
            old = _bare_name(value, lineno)
            fp.rename, fp.copy = fp.rename or key != b"copy from ", fp.copy or key == b"copy from "
        elif key in (b"rename to ", b"rename new ", b"copy to "):
            new = _bare_name(value, lineno)
        elif key == b"new file mode ":
            fp.created, fp.new_mode = True, _chomp(value).decode("ascii", "replace")
        elif key == b"deleted file mode ":
            fp.deleted, fp.old_mode = True, _chomp(value).decode("ascii", "replace")
        elif key == b"old mode ":
            fp.old_mode = _chomp(value).decode("ascii", "replace")
        elif key == b"new mode ":
            fp.new_mode = _chomp(value).decode("ascii", "replace")
    if fp.created and fp.deleted:
        raise MalformedPatch(f"line {start + 1}: a section that both creates and deletes its file")
    fp.old_path = None if fp.created else old
    fp.new_path = None if fp.deleted else new
    if (not fp.created and fp.old_path is None) or (not fp.deleted and fp.new_path is None):
        raise MalformedPatch(
            f"line {start + 1}: cannot read the file names of {_chomp(lines[start])[:100]!r} "
            f"(the two names differ and no ---/+++ or rename lines name them)"
        )
    if i < len(lines) and _chomp(lines[i]) == b"GIT binary patch":
        fp.binary = True
        i = _skip_binary(lines, i + 1)
    elif i < len(lines) and lines[i].startswith(b"Binary files ") and _chomp(lines[i]).endswith(b" differ"):
        fp.binary = True
        i += 1
    else:
        i = _parse_hunks(lines, i, fp, counter)
    changes_mode = fp.old_mode is not None and fp.new_mode is not None and not (fp.created or fp.deleted)
    fp.mode_only = changes_mode and not (fp.hunks or fp.binary or fp.rename or fp.copy)
    if not (fp.hunks or fp.binary or fp.rename or fp.copy or fp.created or fp.deleted or changes_mode):
        raise MalformedPatch(f"line {start + 1}: the section for {fp.path} changes nothing (no hunks)")
    fp.raw = b"".join(lines[start:i])
    return fp, i


def _plain_section(lines: list[bytes], start: int, counter: list[int]) -> tuple[FilePatch, int]:
    """A ``---``/``+++`` pair without ``diff --git``: one file, named alike on both lines
    after -p1 (the shorter when one name extends the other, as git reads them)."""
    old_raw, old_epoch = _header_name(lines[start][4:], start + 1)
    new_raw, new_epoch = _header_name(lines[start + 1][4:], start + 2)
    fp = FilePatch(old_path=None, new_path=None, raw=b"")
    if old_raw == _DEV_NULL and new_raw == _DEV_NULL:
        raise MalformedPatch(f"line {start + 1}: both file names are /dev/null")
    fp.created = old_raw == _DEV_NULL or (old_epoch and not new_epoch)
    fp.deleted = new_raw == _DEV_NULL or (new_epoch and not old_epoch)
    if fp.created:
        fp.new_path = _strip1(new_raw, start + 2)
    elif fp.deleted:
        fp.old_path = _strip1(old_raw, start + 1)
    else:
        a, b = _strip1(old_raw, start + 1), _strip1(new_raw, start + 2)
        fp.old_path = fp.new_path = a if len(a) < len(b) and b.startswith(a) else b
    i = _parse_hunks(lines, start + 2, fp, counter)
    if not fp.hunks:
        raise MalformedPatch(f"line {start + 1}: ---/+++ header for {fp.path} without hunks")
    fp.raw = b"".join(lines[start:i])
    return fp, i


def parse_diff(diff: bytes) -> list[FilePatch]:
    """Parse a patch's diff; raises MalformedPatch when it cannot be read or has no diff.

    The sections are shared between calls with the same diff (treat them as read-only):
    a run parses each patch once for the paths it touches and again per tree it checks."""
    return list(_parse_cached(diff))


@functools.lru_cache(maxsize=4096)
def _parse_cached(diff: bytes) -> tuple[FilePatch, ...]:
    lines = _split_lines(normalise_eol(diff))
    counter = [0]
    out: list[FilePatch] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith(b"diff --git "):
            fp, i = _git_section(lines, i, counter)
        elif ln.startswith(b"--- ") and i + 1 < len(lines) and lines[i + 1].startswith(b"+++ "):
            fp, i = _plain_section(lines, i, counter)
        elif ln.startswith(b"@@"):
            raise MalformedPatch(f"line {i + 1}: hunk header outside a file section: {_chomp(ln)[:80]!r}")
        else:
            i += 1  # text between sections: Index: lines, diff -u command lines, a signature
            continue
        out.append(fp)
    if not out:
        raise MalformedPatch("no diff found in the patch")
    return tuple(out)
