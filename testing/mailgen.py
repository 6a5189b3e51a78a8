"""Build realistic patch e-mails and mboxes for tests (git format-patch / public-inbox style).

Everything here is synthetic: the diffs are whatever the test passes in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DEFAULT_AUTHOR = "A U Thor <a@example.org>"
DEFAULT_DATE = "Mon, 4 Nov 2024 14:55:18 +0100"
_MBOX_FROM = b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def simple_diff(path: str = "fs/foo.c", old: str = "a", new: str = "b", line: int = 10) -> str:
    """A one-hunk git diff replacing line ``old`` by ``new`` in ``path``."""
    return (
        f"diff --git a/{path} b/{path}\n"
        f"index 1111111..2222222 100644\n"
        f"--- a/{path}\n"
        f"+++ b/{path}\n"
        f"@@ -{line},3 +{line},3 @@ static int foo(void)\n"
        f" \tint x;\n"
        f"-\t{old};\n"
        f"+\t{new};\n"
        f" \treturn x;\n"
    )


def _prefix(revision: int, counter: int, total: int, numbered: bool, tag: str) -> str:
    parts = [tag]
    if revision > 1:
        parts.append(f"v{revision}")
    if numbered:
        width = len(str(total))
        parts.append(f"{counter:0{width}d}/{total}")
    return "[" + " ".join(parts) + "]"


def _headers(
    subject: str,
    msgid: str,
    author: str,
    date: str,
    in_reply_to: str | None,
    references: Sequence[str] | None,
    charset: str,
    extra_headers: Iterable[tuple[str, str]],
) -> bytes:
    lines = [
        f"From: {author}",
        f"Date: {date}",
        f"Subject: {subject}",
        f"Message-Id: <{msgid}>",
    ]
    if in_reply_to:
        refs = list(references) if references else [in_reply_to]
        lines.append(f"In-Reply-To: <{in_reply_to}>")
        lines.append("References: " + " ".join(f"<{r}>" for r in refs))
    lines += [
        "To: linux-kernel@vger.kernel.org",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        "Content-Transfer-Encoding: 8bit",
    ]
    lines += [f"{k}: {v}" for k, v in extra_headers]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def make_patch_mail(
    subject: str,
    diff: str | bytes,
    msgid: str,
    counter: int = 1,
    total: int = 1,
    revision: int = 1,
    in_reply_to: str | None = None,
    author: str = DEFAULT_AUTHOR,
    trailers: Sequence[str] = (),
    date: str = DEFAULT_DATE,
    *,
    body: str | bytes = "",
    references: Sequence[str] | None = None,
    diffstat: bool = True,
    numbered: bool | None = None,
    tag: str = "PATCH",
    charset: str = "utf-8",
    crlf: bool = False,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """One git format-patch style e-mail (headers, message, ``---``, diffstat, diff, signature).

    ``numbered`` defaults to ``total > 1`` (a lone patch is sent as plain ``[PATCH]``).
    ``diff`` may be empty to make a "patch" with no diff.
    """
    if numbered is None:
        numbered = total > 1
    full_subject = f"{_prefix(revision, counter, total, numbered, tag)} {subject}"
    sob = f"Signed-off-by: {author}"
    msg_body = _b(body or f"Explain why {subject!r} is needed.\n")
    if not msg_body.endswith(b"\n"):
        msg_body += b"\n"
    trailer_block = ("\n".join([*trailers, sob]) + "\n").encode("utf-8")
    dbytes = _b(diff)
    out = _headers(full_subject, msgid, author, date, in_reply_to, references, charset, extra_headers)
    out += msg_body + b"\n" + trailer_block + b"---\n"
    if diffstat and dbytes:
        files = re.findall(rb"^diff --git a/(\S+) ", dbytes, flags=re.M) or [b"file"]
        for f in files:
            out += b" " + f + b" | 2 +-\n"
        plural = "s" if len(files) > 1 else ""
        out += f" {len(files)} file{plural} changed, 1 insertion(+), 1 deletion(-)\n\n".encode()
    out += dbytes
    if dbytes and not dbytes.endswith(b"\n"):
        out += b"\n"
    out += b"-- \n2.40.0\n"
    if crlf:
        out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return out


def make_cover(
    subject: str,
    msgid: str,
    total: int,
    revision: int = 1,
    in_reply_to: str | None = None,
    author: str = DEFAULT_AUTHOR,
    date: str = DEFAULT_DATE,
    body: str = "",
    references: Sequence[str] | None = None,
) -> bytes:
    """A ``[PATCH vN 0/M]`` cover letter with a diffstat (as b4 and git send-email make)."""
    full_subject = f"{_prefix(revision, 0, total, True, 'PATCH')} {subject}"
    text = (body or "This series fixes things.\n") + "\n"
    text += f"A U Thor (1):\n  {subject}\n\n"
    text += f" fs/foo.c | {total * 2} +-\n"
    text += f" {total} files changed, {total} insertions(+), {total} deletions(-)\n\n"
    text += "-- \n2.40.0\n"
    return _headers(full_subject, msgid, author, date, in_reply_to, references, "utf-8", ()) + (
        text.encode("utf-8")
    )


def make_reply(
    subject: str,
    msgid: str,
    in_reply_to: str,
    body: str = "Looks good.\n",
    author: str = "R E Viewer <r@example.org>",
    references: Sequence[str] | None = None,
) -> bytes:
    """A plain reply (``Re: ...``) with no diff."""
    return _headers(
        f"Re: {subject}", msgid, author, DEFAULT_DATE, in_reply_to, references, "utf-8", ()
    ) + body.encode("utf-8")


def make_mbox(messages: Sequence[bytes]) -> bytes:
    """An mboxrd: a ``From `` line before each message, body ``From `` lines quoted with ``>``."""
    out = bytearray()
    for msg in messages:
        out += _MBOX_FROM
        head, sep, body = msg.partition(b"\n\n")
        if not sep:
            head, sep, body = msg.partition(b"\r\n\r\n")
        quoted = re.sub(rb"(?m)^(>*From )", rb">\1", body)
        out += head + sep + quoted
        if not msg.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
    return bytes(out)


@dataclass
class SeriesSpec:
    """What ``make_series`` built: the messages and their ids, to assert against."""

    messages: list[bytes] = field(default_factory=list)
    cover_msgid: str | None = None
    patch_msgids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    revision: int = 1

    @property
    def mbox(self) -> bytes:
        return make_mbox(self.messages)


def make_series(
    prefix: str,
    n: int,
    revision: int = 1,
    cover: bool = True,
    in_reply_to: str | None = None,
    domain: str = "example.org",
    date: str = DEFAULT_DATE,
    trailers: Sequence[Sequence[str]] | None = None,
    diffs: Sequence[str | bytes] | None = None,
) -> SeriesSpec:
    """A threaded series: optional cover ``0/n`` and ``n`` patches replying to it.

    Message-Ids are ``<prefix>-v<rev>-<i>@<domain>`` (i = 0 for the cover).
    Patch i changes ``fs/file<i>.c`` unless ``diffs`` is given.
    """
    spec = SeriesSpec(revision=revision)
    root_refs: list[str] = [in_reply_to] if in_reply_to else []
    if cover:
        spec.cover_msgid = f"{prefix}-v{revision}-0@{domain}"
        spec.messages.append(
            make_cover(
                f"{prefix}: fix things",
                spec.cover_msgid,
                n,
                revision,
                in_reply_to=in_reply_to,
                date=date,
                references=root_refs or None,
            )
        )
    parent = spec.cover_msgid or in_reply_to
    for i in range(1, n + 1):
        mid = f"{prefix}-v{revision}-{i}@{domain}"
        subject = f"{prefix}: fix part {i}"
        diff = diffs[i - 1] if diffs else simple_diff(f"fs/file{i}.c", f"old{i}", f"new{i}")
        refs = [*root_refs, *([spec.cover_msgid] if spec.cover_msgid else [])]
        if parent is None and i > 1:
            # no cover: patches 2..n reply to patch 1, as git send-email threads them
            parent = spec.patch_msgids[0]
            refs = [parent]
        spec.messages.append(
            make_patch_mail(
                subject,
                diff,
                mid,
                counter=i,
                total=n,
                revision=revision,
                in_reply_to=parent,
                references=refs or None,
                date=date,
                trailers=trailers[i - 1] if trailers else (),
                numbered=n > 1,
            )
        )
        spec.patch_msgids.append(mid)
        spec.subjects.append(subject)
    return spec


def make_two_revisions(prefix: str, n1: int = 3, n2: int = 4) -> tuple[SeriesSpec, SeriesSpec]:
    """v1 (cover + n1 patches) and v2 (cover + n2 patches) sent as a reply to v1's cover."""
    v1 = make_series(prefix, n1, revision=1, date="Mon, 4 Nov 2024 10:00:00 +0000")
    v2 = make_series(prefix, n2, revision=2, in_reply_to=v1.cover_msgid, date="Tue, 12 Nov 2024 10:00:00 +0000")
    return v1, v2
