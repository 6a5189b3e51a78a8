"""The format zoo: one generator per real-world shape a fix arrives in on the lists.

Each shape was learnt from public archives (git format-patch and b4 series, quilt series as
stable review and many maintainers send them, ``Index:`` headers, StGit, patches in MIME
attachments, CRLF mails, mboxrd ``>From`` quoting); the text here is our own. A generator
takes a real git diff of the fix (``git_diff``) and returns the thread as an mbox plus the
Message-Id (and bug-file keys) that select the fix in it.
"""

from __future__ import annotations

import email.charset
import email.encoders
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

from testing.kfixtures import write_tree
from testing.mailgen import (
    DEFAULT_AUTHOR,
    DEFAULT_DATE,
    make_cover,
    make_mbox,
    make_patch_mail,
    make_reply,
    simple_diff,
)

UPSTREAM = "5d3c1f0e2b4a69788796a5b4c3d2e1f0a9b8c7d6"  # the fix's (made-up) upstream commit
STABLE_SENDER = "Stable Maint <stable-maint@example.org>"
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "A U Thor",
    "GIT_AUTHOR_EMAIL": "a@example.org",
    "GIT_COMMITTER_NAME": "A U Thor",
    "GIT_COMMITTER_EMAIL": "a@example.org",
    "GIT_AUTHOR_DATE": "1730728518 +0100",
    "GIT_COMMITTER_DATE": "1730728518 +0100",
}


@dataclass(frozen=True)
class Fix:
    """The fix a zoo mail carries: its subject, message and real git diff."""

    subject: str
    diff: bytes  # from git_diff: diff --git sections, a/ b/ prefixes
    body: str = "The count may go negative when the helper fails; clamp it.\n"
    author: str = DEFAULT_AUTHOR
    upstream: str = UPSTREAM


@dataclass(frozen=True)
class ZooMail:
    """A thread on the archive and how a bug file selects the fix in it."""

    shape: str
    mbox: bytes
    msgid: str  # what the bug file names
    fix_keys: str = ""  # extra [[fix]] lines ("patches = [2]")
    patch_msgid: str = ""  # the fix's own mail, when msgid names another (a cover letter)

    @property
    def fix_msgid(self) -> str:
        return self.patch_msgid or self.msgid


def _git(args: list[str], cwd: Path) -> bytes:
    env = {**os.environ, **_GIT_ENV}
    cp = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)
    return cp.stdout


def git_diff(work: Path, old: Mapping[str, str | bytes], new: Mapping[str, str | bytes]) -> bytes:
    """What ``git format-patch`` would put in the mail for ``old`` -> ``new``: renames and
    copies detected, binary data included, full index lines."""
    repo = work / "_zoo_repo"
    _git(["init", "-q", str(repo)], work)
    write_tree(repo, old)
    _git(["add", "-A"], repo)
    _git(["commit", "-q", "-m", "old"], repo)
    for rel in old:
        if rel not in new:
            (repo / rel).unlink()
    write_tree(repo, {k: v for k, v in new.items() if old.get(k) != v})
    _git(["add", "-A"], repo)
    out = _git(["diff", "--cached", "-M", "--binary", "--full-index", "--no-color"], repo)
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    return out


# ---- diff reshaping ----------------------------------------------------------------------


def _sections(diff: bytes) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(b"diff --git ") or not out:
            out.append([])
        out[-1].append(line)
    return out


def _counts(diff: bytes) -> list[tuple[str, int, int]]:
    """(path, insertions, deletions) per file of a git diff, for a diffstat."""
    stats: list[tuple[str, int, int]] = []
    for sec in _sections(diff):
        m = re.match(rb"diff --git a/(\S+) b/(\S+)", sec[0])
        if not m:
            continue
        body = [ln for ln in sec if not ln.startswith((b"--- ", b"+++ "))]
        ins = sum(ln.startswith(b"+") for ln in body)
        dels = sum(ln.startswith(b"-") for ln in body)
        old, new = m.group(1).decode(), m.group(2).decode()
        stats.append((new if old == new else f"{old} => {new}", ins, dels))
    return stats


def diffstat(diff: bytes, *, wide: bool = False) -> bytes:
    """A diffstat block: git's (``| 3 ++-``) or GNU diffstat's as quilt and StGit print it
    (``|    3 ++-``, and "1 files changed" in StGit's day)."""
    stats = _counts(diff)
    width = max((len(p) for p, _, _ in stats), default=1)
    lines = [f" {p:<{width}} | {i + d:{5 if wide else 1}} {'+' * i}{'-' * d}" for p, i, d in stats]
    ins, dels = sum(i for _, i, _ in stats), sum(d for _, _, d in stats)
    n = len(stats)
    lines.append(
        f" {n} file{'s' if n > 1 or wide else ''} changed, {ins} insertion{'s' if ins != 1 else ''}(+), "
        f"{dels} deletion{'s' if dels != 1 else ''}(-)"
    )
    return ("\n".join(lines) + "\n").encode()


def quilt_diff(
    diff: bytes, *, old_dir: str = "a", new_dir: str = "b", index: bool = False, stamps: bool = False
) -> bytes:
    """The git diff as quilt refreshes it: no ``diff --git`` or ``index`` lines, ``---``/
    ``+++`` under ``old_dir``/``new_dir`` (``linux.orig``/``linux``), optionally ``Index:``
    headers and timestamps, the @@ function text cut to 40 columns as GNU diff -p does.
    Only plain changes, new and deleted files: quilt has no renames or binary data."""
    out: list[bytes] = []
    stamp = b"\t2024-11-04 14:55:18.000000000 +0100" if stamps else b""
    for sec in _sections(diff):
        m = re.match(rb"diff --git a/(\S+) b/(\S+)", sec[0])
        if not m:
            continue
        path = m.group(2)
        if any(ln.startswith((b"rename ", b"copy ", b"GIT binary patch")) for ln in sec):
            raise ValueError(f"quilt cannot express {sec[0]!r}")
        if index:
            out.append(b"Index: " + new_dir.encode() + b"/" + path + b"\n" + b"=" * 67 + b"\n")
        for ln in sec:
            if ln.startswith(b"--- "):
                name = b"/dev/null" if ln.startswith(b"--- /dev/null") else old_dir.encode() + b"/" + path
                out.append(b"--- " + name + (stamp if name != b"/dev/null" else b"") + b"\n")
            elif ln.startswith(b"+++ "):
                name = b"/dev/null" if ln.startswith(b"+++ /dev/null") else new_dir.encode() + b"/" + path
                out.append(b"+++ " + name + (stamp if name != b"/dev/null" else b"") + b"\n")
            elif ln.startswith(b"@@"):
                head, _, func = ln.rstrip(b"\n").partition(b" @@ ")
                out.append(head + b" @@" + (b" " + func[:40] if func else b"") + b"\n")
            elif ln.startswith((b"diff --git ", b"index ", b"new file mode ", b"deleted file mode ")):
                continue
            else:
                out.append(ln)
    return b"".join(out)


# ---- the shapes ----------------------------------------------------------------------------


def format_patch(fix: Fix, msgid: str) -> ZooMail:
    """``git format-patch`` + ``git send-email``: one ``[PATCH]`` mail."""
    trailers = [f'Fixes: {"0" * 12} ("a: add the helper")', "Cc: stable@vger.kernel.org"]
    mail = make_patch_mail(fix.subject, fix.diff, msgid, body=fix.body, trailers=trailers, author=fix.author)
    return ZooMail("format-patch", make_mbox([mail]), msgid)


def b4_series(fix: Fix, msgid: str) -> ZooMail:
    """``b4 send`` v2: a cover letter with b4's footer, the patch with trailers collected
    from v1, and a review reply carrying one more trailer."""
    cover_id, patch_id = msgid, msgid.replace("-0-", "-1-")
    body = "The helper can fail; its callers then count garbage.\n\n---\nChanges in v2:\n- Reworded.\n"
    body += f"- Link to v1: https://lore.kernel.org/r/{msgid.replace('-v2-', '-v1-')}\n"
    cover = make_cover(fix.subject, cover_id, 1, revision=2, author=fix.author, body=body)
    cover = cover.replace(
        b"-- \n2.40.0\n",
        b"---\nbase-commit: " + b"1" * 40 + b"\nchange-id: 20241104-clamp-0123456789ab\n\n"
        b"Best regards,\n-- \n" + fix.author.encode() + b"\n",
    )
    trailers = ["Reviewed-by: R E Viewer <r@example.org>", "Link: https://lore.kernel.org/r/v1@example.org"]
    patch = make_patch_mail(
        fix.subject,
        fix.diff,
        patch_id,
        counter=1,
        total=1,
        revision=2,
        numbered=True,
        in_reply_to=cover_id,
        body=fix.body,
        trailers=trailers,
        author=fix.author,
        extra_headers=[("X-Mailer", "b4 0.14.2")],
    )
    reply = make_reply(
        f"[PATCH v2 1/1] {fix.subject}",
        msgid.replace("-0-", "-r-"),
        patch_id,
        body="> The helper can fail\n\nTested-by: T E Ster <t@example.org>\n",
        references=[cover_id, patch_id],
    )
    return ZooMail("b4-cover-trailers", make_mbox([cover, patch, reply]), cover_id, patch_msgid=patch_id)


def _quilt_mail(
    fix: Fix,
    msgid: str,
    qdiff: bytes,
    *,
    body: str | None = None,
    sender: str | None = None,
    trailers: tuple[str, ...] = (),
    tag: str = "PATCH",
    counter: int = 1,
    total: int = 1,
    in_reply_to: str | None = None,
) -> bytes:
    """A quilt mail: diffstat in GNU diffstat's layout, the diff, no signature."""
    mail = make_patch_mail(
        fix.subject,
        diffstat(fix.diff, wide=True) + b"\n" + qdiff,
        msgid,
        counter=counter,
        total=total,
        in_reply_to=in_reply_to,
        author=sender or fix.author,
        trailers=trailers,
        body=body or fix.body,
        diffstat=False,
        tag=tag,
        extra_headers=[("User-Agent", "quilt/0.68")],
    )
    return mail.removesuffix(b"-- \n2.40.0\n") + b"\n\n"


def quilt(fix: Fix, msgid: str) -> ZooMail:
    """A quilt series mail (``--- a/x`` / ``+++ b/x``, no ``diff --git``), as many
    maintainers send theirs."""
    mail = _quilt_mail(fix, msgid, quilt_diff(fix.diff))
    return ZooMail("quilt", make_mbox([mail]), msgid)


def quilt_index(fix: Fix, msgid: str) -> ZooMail:
    """quilt with ``Index:`` headers, ``linux.orig/`` vs ``linux/`` and timestamps."""
    qdiff = quilt_diff(fix.diff, old_dir="linux-4.19.orig", new_dir="linux-4.19", index=True, stamps=True)
    mail = _quilt_mail(fix, msgid, qdiff)
    return ZooMail("quilt-index", make_mbox([mail]), msgid)


def stgit(fix: Fix, msgid: str) -> ZooMail:
    """StGit's mail template: a blank line after ``---``, GNU diffstat, short index lines,
    a ``.stgit@host`` Message-Id, no signature."""
    short = re.sub(
        rb"^index ([0-9a-f]{7})[0-9a-f]*\.\.([0-9a-f]{7})[0-9a-f]*", rb"index \1..\2", fix.diff, flags=re.M
    )
    mail = make_patch_mail(
        fix.subject,
        b"\n" + diffstat(fix.diff, wide=True) + b"\n" + short,
        msgid,
        body=fix.body,
        diffstat=False,
        author=fix.author,
        extra_headers=[("User-Agent", "StGit/0.19")],
    )
    return ZooMail("stgit", make_mbox([mail.removesuffix(b"-- \n2.40.0\n")]), msgid)


def _format_patch_file(fix: Fix) -> bytes:
    """The file ``git format-patch`` writes (its ``From <sha>`` line first), for attaching."""
    return (
        (
            f"From {fix.upstream} Mon Sep 17 00:00:00 2001\nFrom: {fix.author}\nDate: {DEFAULT_DATE}\n"
            f"Subject: [PATCH] {fix.subject}\n\n{fix.body}\nSigned-off-by: {fix.author}\n---\n"
        ).encode()
        + diffstat(fix.diff)
        + b"\n"
        + fix.diff
        + b"-- \n2.40.0\n\n"
    )


def _mime(fix: Fix, msgid: str, parts: list[MIMEBase]) -> bytes:
    msg = MIMEMultipart("mixed")
    msg["From"] = fix.author
    msg["Date"] = DEFAULT_DATE
    msg["Subject"] = f"[PATCH] {fix.subject}"
    msg["Message-Id"] = f"<{msgid}>"
    msg["To"] = "linux-kernel@vger.kernel.org"
    for p in parts:
        msg.attach(p)
    return msg.as_bytes()


def mime_base64(fix: Fix, msgid: str) -> ZooMail:
    """The patch as a base64 ``text/x-patch`` attachment under a short note."""
    note = MIMEText("Hi,\n\nthe fix is attached (my mailer mangles inline patches).\n", "plain", "utf-8")
    att = MIMEBase("text", "x-patch", name="0001-fix.patch")
    att.set_payload(_format_patch_file(fix))
    email.encoders.encode_base64(att)
    att.add_header("Content-Disposition", "attachment", filename="0001-fix.patch")
    return ZooMail("mime-base64", make_mbox([_mime(fix, msgid, [note, att])]), msgid)


def mime_quoted_printable(fix: Fix, msgid: str) -> ZooMail:
    """The whole mail body quoted-printable (``=3D``, soft line breaks), as some
    corporate mailers send plain text."""
    cs = email.charset.Charset("utf-8")
    cs.body_encoding = email.charset.QP
    text = _format_patch_file(fix).split(b"\n\n", 1)[1].decode()
    part = MIMEText(text, "plain", cs)
    return ZooMail("mime-quoted-printable", make_mbox([_mime(fix, msgid, [part])]), msgid)


def mime_inline_xpatch(fix: Fix, msgid: str) -> ZooMail:
    """A note, then the patch as an 8bit ``text/x-diff`` part shown inline."""
    note = MIMEText(f"{fix.body}\nSigned-off-by: {fix.author}\n", "plain", "utf-8")
    att = MIMEText(fix.diff.decode(), "x-diff", "utf-8")
    att.replace_header("Content-Transfer-Encoding", "8bit")
    att.set_payload(fix.diff.decode())
    att.add_header("Content-Disposition", "inline", filename="fix.diff")
    return ZooMail("mime-inline-x-diff", make_mbox([_mime(fix, msgid, [note, att])]), msgid)


def crlf(fix: Fix, msgid: str) -> ZooMail:
    """The whole mail with CRLF line ends (as some Windows mailers store it)."""
    mail = make_patch_mail(fix.subject, fix.diff, msgid, body=fix.body, author=fix.author, crlf=True)
    return ZooMail("crlf", make_mbox([mail]), msgid)


def mboxrd_from(fix: Fix, msgid: str) -> ZooMail:
    """Body lines starting ``From `` and ``>From `` that mboxrd quotes as ``>From `` and
    ``>>From ``."""
    body = fix.body + "\nFrom the trace:\n>From the other trace, quoted by a mailer.\n"
    mail = make_patch_mail(fix.subject, fix.diff, msgid, body=body, author=fix.author)
    return ZooMail("mboxrd-from", make_mbox([mail]), msgid)


def stable_review(fix: Fix, msgid: str, form: str) -> ZooMail:
    """A stable review thread as the stable scripts send it: ``[PATCH 6.12 000/003]
    6.12.5-rc1 review`` and three quilt patches ``[PATCH 6.12 00n/003]`` replying to it, the
    fix as 002, its upstream named by ``form``: ``commit X upstream.`` (``upstream-line``) or
    ``[ Upstream commit X ]`` (``bracket``). ``msgid`` is the fix's; the bug names the cover
    and ``patches = [2]``."""
    cover_id = msgid.replace("-002@", "-000@")
    cover = make_cover("6.12.5-rc1 review", cover_id, 3, author=STABLE_SENDER)
    cover = cover.replace(b"[PATCH 0/3]", b"[PATCH 6.12 000/003]")
    named = (
        f"commit {fix.upstream} upstream." if form == "upstream-line" else f"[ Upstream commit {fix.upstream} ]"
    )
    mails = []
    for n in (1, 2, 3):
        this = fix if n == 2 else Fix(f"drv: other fix {n}", simple_diff(f"drivers/other{n}.c").encode())
        line = named if n == 2 else f"commit {str(n) * 40} upstream."
        body = (
            "6.12-stable review patch.  If anyone has any objections, please let me know.\n\n"
            f"------------------\n\nFrom: {this.author}\n\n{line}\n\n{this.body}"
        )
        mail = _quilt_mail(
            this,
            msgid.replace("-002@", f"-00{n}@"),
            quilt_diff(this.diff),
            body=body,
            sender=STABLE_SENDER,
            trailers=(f"Signed-off-by: {this.author}", "Signed-off-by: Sasha Levin <sashal@example.org>"),
            tag="PATCH 6.12",
            counter=n,
            total=3,
            in_reply_to=cover_id,
        )
        mails.append(mail.replace(b"[PATCH 6.12 %d/3]" % n, b"[PATCH 6.12 %03d/003]" % n))
    return ZooMail(f"stable-review-{form}", make_mbox([cover, *mails]), cover_id, "patches = [2]", msgid)


SIMPLE: dict[str, Callable[[Fix, str], ZooMail]] = {
    "format-patch": format_patch,
    "b4-cover-trailers": b4_series,
    "quilt": quilt,
    "quilt-index": quilt_index,
    "stgit": stgit,
    "mime-base64": mime_base64,
    "mime-quoted-printable": mime_quoted_printable,
    "mime-inline-x-diff": mime_inline_xpatch,
    "crlf": crlf,
    "mboxrd-from": mboxrd_from,
}
