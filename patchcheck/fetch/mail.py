"""Mail parsing: a message's text, where its diff starts, and what it says about itself.

Pure functions over bytes and ``email`` messages; b4 and liblore stay in b4shim.
"""

from __future__ import annotations

import email.message
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

_HUNK_RE = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_GIT_DIFF_RE = re.compile(rb"^diff --git ", re.M)
_PLAIN_DIFF_RE = re.compile(rb"^--- \S[^\n]*\n\+\+\+ ", re.M)
_FIXES_RE = re.compile(r"^[ \t]*Fixes:[ \t]*(\S.*?)[ \t]*$", re.M | re.I)
_LINK_RE = re.compile(r"^[ \t]*Link:[ \t]*(\S+)", re.M | re.I)
_CVE_RE = re.compile(r"\bCVE-\d{4}-\d{4,}\b", re.I)
_UPSTREAM_RES = (
    re.compile(r"^[ \t]*commit ([0-9a-f]{40}) upstream", re.M | re.I),
    re.compile(r"\[[ \t]*Upstream commit ([0-9a-f]{40})[ \t]*\]", re.I),
    re.compile(r"\(cherry picked from commit ([0-9a-f]{40})\)", re.I),
)
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


def payload_bytes(msg: email.message.EmailMessage) -> bytes:
    """The message text as bytes: the first text part, or the part carrying a diff.

    Only the transfer encoding is undone; charsets are left alone so the diff stays
    byte-exact (CRLF, Latin-1, binary patches).
    """
    best: bytes | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if "/plain" not in ctype and "/x-patch" not in ctype and "/x-diff" not in ctype:
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        # prefer the first part that carries a diff (patches sent as attachments)
        if best is None or (find_diff(best) is None and find_diff(data) is not None):
            best = data
    return best or b""


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


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


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
    text = pre_diff.decode("utf-8", "replace")
    upstream = None
    for rx in _UPSTREAM_RES:
        m = rx.search(text)
        if m:
            upstream = m.group(1).lower()
            break
    inbody = _INBODY_FROM_RE.search(text)
    return Facts(
        fixes=_dedupe(_FIXES_RE.findall(text)),
        links=_dedupe(_LINK_RE.findall(text)),
        cves=_dedupe([c.upper() for c in _CVE_RE.findall(subject + "\n" + text)]),
        upstream=upstream,
        inbody_from=inbody.group(1) if inbody else None,
        message=commit_message(text),
    )


def message_facts(m: Msg, full_subject: str) -> tuple[Facts, bytes | None]:
    """The facts of a message (from the text before its diff), and its diff if it has one."""
    payload = payload_bytes(m.msg)
    start = find_diff(payload)
    pre = payload if start is None else payload[:start]
    return facts(full_subject, pre), None if start is None else payload[start:]


def author(fromname: str, fromemail: str, f: Facts) -> str:
    """An in-body ``From:`` wins (a patch sent on someone's behalf); else the sender."""
    if f.inbody_from:
        return f.inbody_from
    if fromname and fromemail and fromname != fromemail:
        return f"{fromname} <{fromemail}>"
    return fromemail or fromname
