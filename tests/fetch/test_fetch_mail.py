"""Mail content (fetch/mail.py): diffs come out byte-exact."""

from __future__ import annotations

import email.encoders
import email.parser
import email.policy
import time
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from patchcheck.fetch.mail import author, cut_signature, facts, keeping_headers, mboxrd, with_msgid
from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer
from tests.fetch.helpers import fetcher

SHA = "38f080f3cd19f0d1b5a5b4e1ab0e7dd4bbd5a9f1"


def test_crlf_non_utf8_and_binary_survive(pi_server: PIServer, tmp_path: Path) -> None:
    crlf_diff = mailgen.simple_diff("drivers/a.c").replace("\n", "\r\n").encode()
    latin = (
        b"diff --git a/drivers/b.c b/drivers/b.c\n--- a/drivers/b.c\n+++ b/drivers/b.c\n"
        b"@@ -1,2 +1,2 @@\n /* Fran\xe7ois */\n-\tx = 1;\n+\tx = 2; /* \xff\xfe */\n"
    )
    binary = (
        b"diff --git a/fw/blob.bin b/fw/blob.bin\nnew file mode 100644\n"
        b"index 0000000..3b18e51\nGIT binary patch\nliteral 12\n"
        b"TcmZQzWMXDvWn*Mw;9vj%01N;D\n\nliteral 0\nHcmV?d00001\n\n"
    )
    mails = [
        mailgen.make_patch_mail("crlf", crlf_diff, "crlf@example.org", crlf=True),
        mailgen.make_patch_mail("latin", latin, "latin@example.org", charset="iso-8859-1"),
        mailgen.make_patch_mail("bin", binary, "bin@example.org"),
    ]
    f = fetcher(tmp_path, pi_server)
    for mail, diff, mid in zip(
        mails,
        [crlf_diff, latin, binary],
        ["crlf@example.org", "latin@example.org", "bin@example.org"],
        strict=True,
    ):
        pi_server.add_thread(mailgen.make_mbox([mail]))
        got = f.get(Fix(msgid=mid)).patches[0].diff
        assert got.rstrip(b"\r\n") == diff.rstrip(b"\r\n"), mid
    # and from the cache too
    cached = fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid="latin@example.org"))
    assert cached.patches[0].diff == latin


def test_five_megabyte_patch(pi_server: PIServer, tmp_path: Path) -> None:
    lines = [f"+\tdata[{i}] = 0x{i:08x}; /* padding padding padding padding */\n" for i in range(80_000)]
    diff = (
        "diff --git a/big.c b/big.c\nnew file mode 100644\n--- /dev/null\n+++ b/big.c\n"
        f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(lines)
    ).encode()
    assert len(diff) > 5_000_000
    pi_server.add_thread(mailgen.make_mbox([mailgen.make_patch_mail("big", diff, "big@example.org")]))
    t0 = time.monotonic()
    s = fetcher(tmp_path, pi_server).get(Fix(msgid="big@example.org"))
    assert s.patches[0].diff == diff
    assert time.monotonic() - t0 < 20


def test_signature_lookalike_inside_hunk_kept(pi_server: PIServer, tmp_path: Path) -> None:
    # a removed line "- " reads "-- " in the diff: not the mail signature
    diff = "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1,2 +1,1 @@\n keep\n-- \n"
    pi_server.add_thread(mailgen.make_mbox([mailgen.make_patch_mail("t", diff, "t@x.org")]))
    assert fetcher(tmp_path, pi_server).get(Fix(msgid="t@x.org")).patches[0].diff == diff.encode()


def test_cut_signature_after_last_hunk_only() -> None:
    diff = mailgen.simple_diff().encode()
    assert cut_signature(diff + b"-- \n2.40.0\n") == diff
    assert cut_signature(diff) == diff


def test_facts_read_trailers_before_the_diff() -> None:
    pre = (
        b"From: Real Author <real@example.org>\n\nWhy.\n\n"
        b'Fixes: 0123456789ab ("x: y")\nFixes: 0123456789ab ("x: y")\n'
        b"Link: https://example.org/1 extra\n"
        b"[ Upstream commit " + b"ab" * 20 + b" ]\n"
    )
    f = facts("[PATCH] x: fix cve-2024-1234", pre)
    assert f.fixes == ('0123456789ab ("x: y")',)
    assert f.links == ("https://example.org/1",)
    assert f.cves == ("CVE-2024-1234",)
    assert f.upstream == "ab" * 20
    assert author("Sender", "s@example.org", f) == "Real Author <real@example.org>"
    plain = facts("x", b"no trailers\n")
    assert author("Sender", "s@example.org", plain) == "Sender <s@example.org>"
    assert author("", "s@example.org", plain) == "s@example.org"


@pytest.mark.parametrize(
    ("pre", "upstream"),
    [
        (f"commit {SHA} upstream.\n", SHA),
        (f"[ Upstream commit {SHA} ]\n", SHA),
        (f"(cherry picked from commit {SHA})\n", SHA),
        # forms the fetcher reads since text/trailers.py is its home (a documented superset)
        (f"Upstream commit {SHA}.\n", SHA),
        (f"(backported from commit {SHA})\n", SHA),
        (f"mainline inclusion\nfrom mainline-v6.7-rc1\ncommit {SHA}\ncategory: bugfix\n", SHA),
        (f"commit {SHA[:12].upper()} upstream.\n", SHA[:12]),
        # stable's own line outranks a cherry-pick line it carries along
        (f"commit {SHA} upstream.\n\n(cherry picked from commit {'ab' * 20})\n", SHA),
        # prose and Fixes: name commits without being the patch's upstream
        (f"This reverts the damage since commit {SHA} upstream went in.\n", None),
        (f'Fixes: {SHA[:12]} ("x: y")\n', None),
        (f"commit {SHA[:11]} upstream.\n", None),  # shorter than 12: too weak to claim
    ],
)
def test_facts_upstream_forms(pre: str, upstream: str | None) -> None:
    assert facts("x", pre.encode()).upstream == upstream


def test_facts_cve_mentions() -> None:
    f = facts("[PATCH] x: fix CVE-2024-50264", b"Also CVE-2023-1234: and xCVE-2024-9999, CVE-2022-0001_a.\n")
    assert f.cves == ("CVE-2024-50264", "CVE-2023-1234", "CVE-2022-0001")


def test_mboxrd_quotes_from_lines_and_with_msgid_adds_one_only_when_missing() -> None:
    raw = b"Subject: x\n\nbody\nFrom here on\n>From quoted\n"
    assert mboxrd([raw]) == (
        b"From mboxrd@z Thu Jan  1 00:00:00 1970\nSubject: x\n\nbody\n>From here on\n>>From quoted\n\n"
    )
    assert with_msgid(raw, "a@b").startswith(b"Message-Id: <a@b>\n")
    has = b"Message-ID: <c@d>\n" + raw
    assert with_msgid(has, "a@b") == has


def _mime_mail(msgid: str, parts: list[MIMEBase]) -> bytes:
    msg = MIMEMultipart("mixed")
    msg["From"] = "A U Thor <a@example.org>"
    msg["Date"] = "Mon, 04 Nov 2024 14:55:18 +0100"
    msg["Subject"] = "[PATCH] drivers: fix the count"
    msg["Message-Id"] = f"<{msgid}>"
    for p in parts:
        msg.attach(p)
    return msg.as_bytes()


def _attachment(ctype: str, data: bytes, cte: str, charset: str | None = None) -> MIMEBase:
    att = MIMEBase("text", ctype, **({"charset": charset} if charset else {}))
    att.set_payload(data)
    {"base64": email.encoders.encode_base64, "quoted-printable": email.encoders.encode_quopri}[cte](att)
    att.add_header("Content-Disposition", "attachment", filename="fix.diff")
    return att


def test_patch_attachments_of_every_text_type(pi_server: PIServer, tmp_path: Path) -> None:
    """b4 reads text/plain and text/x-patch parts only: a patch in a text/x-diff part
    (base64, quoted-printable, Latin-1 bytes, a removed "-- " line) must still be fetched,
    byte-exact, with the trailers of the note before it."""
    latin = (
        b"diff --git a/drivers/b.c b/drivers/b.c\n--- a/drivers/b.c\n+++ b/drivers/b.c\n"
        b"@@ -1,3 +1,2 @@\n /* Fran\xe7ois */\n-- \n-\tx = 1;\n+\tx = 2; /* \xff */\n"
    )
    note = MIMEText(f'Please apply.\n\ncommit {SHA} upstream.\n\nFixes: 0123456789ab ("x")\n', "plain", "utf-8")
    utf16 = mailgen.simple_diff("drivers/w.c", "x = \u00e9", "x = 1")
    cases = {
        "xdiff-b64@x.org": ([note, _attachment("x-diff", latin, "base64", "iso-8859-1")], latin),
        "xdiff-qp@x.org": ([note, _attachment("x-diff", latin, "quoted-printable", "x-unknown")], latin),
        "plain-att@x.org": ([note, _attachment("plain", latin, "base64")], latin),
        "xpatch-att@x.org": ([note, _attachment("x-patch", latin, "quoted-printable")], latin),
        "utf16@x.org": ([note, MIMEText(utf16, "x-diff", "utf-16")], utf16.encode()),
    }
    f = fetcher(tmp_path, pi_server)
    for msgid, (parts, diff) in cases.items():
        pi_server.add_thread(mailgen.make_mbox([_mime_mail(msgid, parts)]))
        p = f.get(Fix(msgid=msgid)).patches[0]
        assert p.diff == diff, msgid
        assert (p.upstream, p.fixes) == (SHA, ('0123456789ab ("x")',)), msgid
    assert f.get(Fix(msgid="xdiff-b64@x.org")).patches[0].diff == latin
    cached = fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid="xdiff-qp@x.org"))
    assert cached.patches[0].diff == latin


def test_kept_headers_read_as_the_policy_reads_them() -> None:
    """keeping_headers parses each header once; what a message says is unchanged."""
    raw = (
        b"From: =?utf-8?q?Fran=C3=A7ois_P=C3=A9rez?= <fp@example.org>\n"
        b"Subject: [PATCH v2 1/2] =?utf-8?q?net=3A_fix_na=C3=AFve?=\n"
        b"  folded tail\n"
        b"Message-Id: <x$(id)@example.org>\n"
        b"References: <a@example.org>\n <b@example.org>\n"
        b"Date: Mon, 4 Nov 2024 10:00:00 -9900\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=latin-1\nContent-Transfer-Encoding: 8bit\n\nFran\xe7ois\n"
        b"--b\nContent-Type: text/x-diff; name=fix.patch\n\ndiff --git a/x b/x\n--b--\n"
    )
    base = email.policy.default
    plain = email.parser.BytesParser(policy=base).parsebytes(raw)
    kept = email.parser.BytesParser(policy=keeping_headers(base)).parsebytes(raw)
    for a, b in zip(plain.walk(), kept.walk(), strict=True):
        # the header registry makes a class per parse: compare the header class it derives from
        assert [(n, type(v).__mro__[1], str(v)) for n, v in a.items()] == [
            (n, type(v).__mro__[1], str(v)) for n, v in b.items()
        ]
        assert (a.get_content_type(), a.get_params(), a.get_content_charset()) == (
            b.get_content_type(),
            b.get_params(),
            b.get_content_charset(),
        )
        assert a.get_payload(decode=True) == b.get_payload(decode=True)
    assert kept.get("From").addresses == plain.get("From").addresses
    assert kept.get("Subject") is kept.get("Subject")  # parsed once
    assert kept.as_bytes() == plain.as_bytes()
