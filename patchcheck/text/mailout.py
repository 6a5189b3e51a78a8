"""A patch written out as ``git format-patch`` writes one: the mbox ``From`` line, From, Date
and Subject headers, the commit message (the original's, led by ``commit <sha> upstream.``
when the upstream commit is known, with a ``Link:`` to its thread), ``---``, the diffstat and
the diff, byte for byte. ``git am`` takes it as it is.
"""

from __future__ import annotations

import email.utils
import re

from patchcheck.model import PatchMail
from patchcheck.text import trailers

_ZERO_SHA = "0" * 40
_SLUG_DROP = re.compile(r"[^A-Za-z0-9._]+")
SLUG_MAX = 52  # git's default keeps "NNNN-<slug>.patch" within 64 characters


def slug(subject: str) -> str:
    """The file-name part git format-patch makes of a subject: runs of other characters
    become one ``-``, no dots or dashes at either end."""
    s = _SLUG_DROP.sub("-", subject).strip("-.")
    s = re.sub(r"\.{2,}", ".", s)
    return s[:SLUG_MAX].rstrip("-.") or "patch"


def file_name(number: int, subject: str, suffix: str = ".patch") -> str:
    return f"{number:04d}-{slug(subject)}{suffix}"


_Q_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
_WORD_MAX = 75  # RFC 2047: an encoded word is at most 75 characters


def _header_text(value: str) -> str:
    """A header value as mail carries it: RFC 2047 Q-encoded words (folded) when it is not
    plain ASCII. Written here: the email package's encoders follow process-wide charset
    settings, which b4 changes to leave UTF-8 unencoded."""
    if value.isascii():
        return value
    words: list[str] = []
    cur = ""
    for ch in value:
        enc = "".join(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in ch.encode())
        if len("=?UTF-8?q?" + cur + enc + "?=") > _WORD_MAX:
            words.append(cur)
            cur = ""
        cur += enc
    words.append(cur)
    return "\n ".join(f"=?UTF-8?q?{w}?=" for w in words)


def _address(author: str) -> str:
    name, addr = email.utils.parseaddr(author)
    if not addr:
        return _header_text(author)
    if name.isascii():
        return email.utils.formataddr((name, addr))
    return f"{_header_text(name)} <{addr}>"


def message(patch: PatchMail, upstream: str | None, link: str | None) -> str:
    """The commit message: ``commit <sha> upstream.`` first (unless the original already
    names its upstream commit, as a stable mail does), then the original's text and
    trailers, then the thread's ``Link:`` (unless a trailer already points at it)."""
    body = patch.body.strip("\n")
    parts: list[str] = []
    named = [r.sha for r in trailers.upstream_refs(body)]
    if upstream and not any(upstream.startswith(n) or n.startswith(upstream) for n in named):
        parts.append(f"commit {upstream} upstream.")
    if body:
        parts.append(body)
    text = "\n\n".join(parts)
    if link and not any(link.rstrip("/").rsplit("/", 1)[-1] in have for have in trailers.links(body)):
        text += ("\n" if body else "\n\n" if text else "") + f"Link: {link}"
    return text + "\n" if text else ""


def format_mail(
    patch: PatchMail,
    diff: bytes,
    stat: str,
    *,
    number: int,
    total: int,
    upstream: str | None,
    link: str | None,
    signature: str,
) -> bytes:
    """One patch as a ``git format-patch`` mail."""
    prefix = "[PATCH]" if total <= 1 else f"[PATCH {number:0{len(str(total))}d}/{total}]"
    text = message(patch, upstream, link)
    headers = [
        f"From {upstream or _ZERO_SHA} Mon Sep 17 00:00:00 2001",
        f"From: {_address(patch.author)}",
        f"Date: {patch.date or email.utils.formatdate()}",
        f"Subject: {_header_text(f'{prefix} {patch.subject}')}",
    ]
    if not (text + patch.author + patch.subject).isascii():
        headers += [
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=UTF-8",
            "Content-Transfer-Encoding: 8bit",
        ]
    head = "\n".join(headers) + "\n\n" + text + "---\n" + stat + ("\n" if stat else "")
    tail = f"-- \n{signature}\n\n"
    return head.encode("utf-8") + diff + (b"" if diff.endswith(b"\n") else b"\n") + tail.encode("utf-8")
