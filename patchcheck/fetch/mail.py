"""Mail parsing: a message's text, where its diff starts, and what it says about itself.

Pure functions over bytes and ``email`` messages; b4 and liblore stay in b4shim.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patchcheck.text import trailers

if TYPE_CHECKING:
    import email.message
    import email.policy

_HUNK_RE = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_GIT_DIFF_RE = re.compile(rb"^diff --git ", re.M)
_PLAIN_DIFF_RE = re.compile(rb"^--- \S[^\n]*\n\+\+\+ ", re.M)
_INBODY_FROM_RE = re.compile(r"\A\s*From:[ \t]*(\S.*?)[ \t]*$", re.M)
_MSGID_HDR_RE = re.compile(rb"^message-id:", re.I | re.M)
_GTFROM_QUOTE_RE = re.compile(rb"(?m)^(>*From )")
_MBOXRD_FROM = b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"


@dataclass(frozen=True)
class Msg:
    """One message of a thread: its id, its bytes as received, and the parsed message."""

    msgid: str
    raw: bytes
    msg: email.message.EmailMessage


def keeping_headers(policy: email.policy.EmailPolicy[email.message.EmailMessage]) -> Any:
    """``policy`` (all its settings), parsing each header value once (see keptheaders)."""
    from patchcheck.fetch.keptheaders import KeptHeaders  # the email package's policies: ~4 ms

    return KeptHeaders(**vars(policy))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_msgid(raw: bytes, fallback: str) -> bytes:
    """``raw`` with a ``Message-Id: <fallback>`` header when it has none (git format-patch
    output has none; b4 needs one per message)."""
    if _MSGID_HDR_RE.search(raw.split(b"\n\n", 1)[0]):
        return raw
    return f"Message-Id: <{fallback}>\n".encode() + raw


def mboxrd(raws: Sequence[bytes]) -> bytes:
    """Messages as an mboxrd (``git am --patch-format=mboxrd``), bytes as received."""
    out = bytearray()
    for raw in raws:
        out += _MBOXRD_FROM
        out += _GTFROM_QUOTE_RE.sub(rb">\1", raw.rstrip(b"\r\n")) + b"\n\n"
    return bytes(out)


# The parts a patch arrives in: the body, or an attachment (inline or not) of one of these
# types, in any transfer encoding and charset.
_TEXT_TYPES = ("text/plain", "text/x-patch", "text/x-diff")
_B4_TYPE = "text/x-patch"
# Charsets that are not ASCII supersets: their bytes hide "diff --git" and the hunk marks
_WIDE_CHARSETS = ("utf-16", "utf-32", "utf16", "utf32", "ucs-2", "ucs2")


def _part_bytes(part: email.message.Message) -> bytes | None:
    """A text part's content as bytes: the transfer encoding (base64, quoted-printable)
    undone, the charset kept (a diff stays byte-exact: CRLF, Latin-1, binary patches), save
    for a wide one (UTF-16/32), which is re-encoded as UTF-8 to be read at all."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    charset = (part.get_content_charset() or "").lower()
    if charset.startswith(_WIDE_CHARSETS):
        try:
            return data.decode(charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            return data
    return data


def text_parts(msg: email.message.Message) -> list[bytes]:
    """The message's text parts (``_TEXT_TYPES``) as bytes, in order."""
    out: list[bytes] = []
    for part in msg.walk():
        if part.get_content_type() in _TEXT_TYPES:
            data = _part_bytes(part)
            if data is not None:
                out.append(data)
    return out


def show_diff_parts(msg: email.message.Message) -> None:
    """Retype every ``text/x-diff`` part as ``text/x-patch``, in place: b4 reads text/plain
    and text/x-patch parts only, so a patch in a text/x-diff part would read "has no diff".
    Only the parsed message changes (its charset and encoding stay); the bytes as received
    are what the cache keeps."""
    for part in msg.walk():
        if part.get_content_type() == "text/x-diff":
            part.set_type(_B4_TYPE)


def find_diff(text: bytes) -> int | None:
    m = _GIT_DIFF_RE.search(text) or _PLAIN_DIFF_RE.search(text)
    return m.start() if m else None


def cut_signature(diff: bytes) -> bytes:
    """Drop the ``-- `` mail signature after the last hunk (hunk-aware: ``-- `` is also
    a valid removed line inside a hunk)."""
    old = new = 0
    pos = 0
    size = len(diff)
    while pos < size:
        nl = diff.find(b"\n", pos)
        end = size if nl < 0 else nl + 1
        line = diff[pos:end].rstrip(b"\r\n")
        if old > 0 or new > 0:
            c = line[:1]
            if c == b"-":
                old -= 1
            elif c == b"+":
                new -= 1
            elif c != b"\\":
                old -= 1
                new -= 1
        elif line == b"-- ":
            return diff[:pos]
        else:
            m = _HUNK_RE.match(line)
            if m:
                old = int(m.group(1)) if m.group(1) is not None else 1
                new = int(m.group(2)) if m.group(2) is not None else 1
        pos = end
    return diff


@dataclass(frozen=True)
class Facts:
    """What a patch message says about itself (trailers and mentions)."""

    fixes: tuple[str, ...]
    links: tuple[str, ...]
    cves: tuple[str, ...]
    upstream: str | None
    inbody_from: str | None
    message: str = ""  # the commit message (commit_message)


_INBODY_HEADER_RE = re.compile(r"^(?:From|Date|Subject):[ \t]")


def commit_message(text: str) -> str:
    """What ``git am`` keeps as the commit message: the text before the diff without in-body
    From/Date/Subject lines at its top, cut at the first ``---`` line (diffstat, notes)."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and _INBODY_HEADER_RE.match(lines[0]):
        while lines and lines[0].strip():
            lines.pop(0)
    for i, ln in enumerate(lines):
        if ln.rstrip() == "---":
            lines = lines[:i]
            break
    return "\n".join(lines).strip("\n") + "\n" if any(ln.strip() for ln in lines) else ""


def facts(subject: str, pre_diff: bytes) -> Facts:
    """The trailers and mentions of the text before a diff (text/trailers.py reads them).

    ``upstream``: the commit a backport form names (stable's ``commit X upstream.``,
    ``[ Upstream commit X ]``, ``Upstream commit X``, ``(cherry picked from commit X)``,
    ``(backported from commit X)``, openEuler's inclusion block), 12 to 40 hex; the
    evidence stage matches an abbreviated id as a prefix of the tree's commits."""
    text = pre_diff.decode("utf-8", "replace")
    inbody = _INBODY_FROM_RE.search(text)
    return Facts(
        fixes=tuple(trailers.fixes(text)),
        links=tuple(trailers.links(text)),
        cves=tuple(trailers.cves(subject + "\n" + text)),
        upstream=trailers.upstream_commit(pre_diff),
        inbody_from=inbody.group(1) if inbody else None,
        message=commit_message(text),
    )


def message_facts(m: Msg, full_subject: str) -> tuple[Facts, bytes | None]:
    """The facts of a message, read in its text before the diff (a note in the parts before
    an attached patch included), and the diff of its first text part that has one."""
    parts = text_parts(m.msg)
    for i, data in enumerate(parts):
        start = find_diff(data)
        if start is not None:
            return facts(full_subject, b"\n".join([*parts[:i], data[:start]])), data[start:]
    return facts(full_subject, parts[0] if parts else b""), None


def author(fromname: str, fromemail: str, f: Facts) -> str:
    """An in-body ``From:`` wins (a patch sent on someone's behalf); else the sender."""
    if f.inbody_from:
        return f.inbody_from
    if fromname and fromemail and fromname != fromemail:
        return f"{fromname} <{fromemail}>"
    return fromemail or fromname
