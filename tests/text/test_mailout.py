"""The written mail: git format-patch's form, read back by git am (real git)."""

from __future__ import annotations

from pathlib import Path

from patchcheck.fetch import b4shim
from patchcheck.model import PatchMail
from patchcheck.text.mailout import file_name, format_mail, message, slug
from testing.gitrepo import git, init
from testing.kfixtures import write_tree

SHA = "38f080f3cd19fbd87eb7f6c4f6c236c1c9df6fba"
DIFF = b"diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"


def mail(**kw: object) -> PatchMail:
    base: dict[str, object] = {
        "msgid": "m@x.org",
        "subject": "fs: fix it",
        "author": "A <a@x.org>",
        "counter": 1,
        "expected": 1,
        "diff": DIFF,
        "date": "Mon, 4 Nov 2024 14:55:18 +0100",
        "body": "Why.\n\nSigned-off-by: A <a@x.org>\n",
    }
    base.update(kw)
    return PatchMail(**base)  # type: ignore[arg-type]


def test_slug_like_format_patch() -> None:
    assert slug("net/sched: fix a NULL deref (again)") == "net-sched-fix-a-NULL-deref-again"
    assert slug("...") == "patch"
    assert file_name(3, "x" * 100) == "0003-" + "x" * 52 + ".patch"
    assert file_name(12, "drbg.c: update", ".rej") == "0012-drbg.c-update.rej"


def test_message_leads_with_upstream_and_ends_with_link() -> None:
    text = message(mail(), SHA, "https://lore.kernel.org/r/m@x.org")
    assert text == (
        f"commit {SHA} upstream.\n\nWhy.\n\nSigned-off-by: A <a@x.org>\nLink: https://lore.kernel.org/r/m@x.org\n"
    )
    stable = mail(body=f"[ Upstream commit {SHA} ]\n\nWhy.\n\nLink: https://lore.kernel.org/all/m@x.org/\n")
    assert message(stable, SHA, "https://lore.kernel.org/r/m@x.org") == stable.body  # said once, linked once
    assert message(mail(body=""), None, None) == ""


def test_git_am_takes_it_with_a_non_ascii_author(tmp_path: Path) -> None:
    b4shim.load()  # b4 changes the email package's UTF-8 handling process-wide: a real run has it
    repo = write_tree(tmp_path / "r", {"f.c": "a\nb\n"})
    init(repo)
    m = mail(
        author="Jörg Rödel <j@x.org>", subject="fs: ünïcode", body="Grüße.\n\nSigned-off-by: Jörg <j@x.org>\n"
    )
    data = format_mail(m, DIFF, " f.c | 2 +-\n", number=2, total=3, upstream=SHA, link=None, signature="pc 1")
    assert data.startswith(f"From {SHA} Mon Sep 17 00:00:00 2001\n".encode())
    assert b"\nFrom: =?UTF-8?q?J=C3=B6rg_R=C3=B6del?= <j@x.org>\n" in data
    assert b"\nSubject: =?UTF-8?q?=5BPATCH_2/3=5D_fs=3A_=C3=BCn=C3=AFcode?=\n" in data
    assert b"Content-Transfer-Encoding: 8bit" in data
    (tmp_path / "p.patch").write_bytes(data)
    git(repo, "am", "-q", str(tmp_path / "p.patch"))
    log = git(repo, "log", "-1", "--format=%an|%ae|%s|%ad|%b", "--date=rfc")
    assert log.split("|")[:4] == ["Jörg Rödel", "j@x.org", "fs: ünïcode", "Mon, 4 Nov 2024 14:55:18 +0100"]
    assert log.split("|")[4].startswith(f"commit {SHA} upstream.\n\nGrüße.")
    assert (repo / "f.c").read_text() == "a\nc\n"


def test_long_non_ascii_subjects_fold_into_words() -> None:
    from patchcheck.text.mailout import _header_text

    got = _header_text("ü" * 40)
    words = got.split("\n ")
    assert len(words) > 1 and all(len(w) <= 75 and w.startswith("=?UTF-8?q?") for w in words)
    assert "".join(w[len("=?UTF-8?q?") : -2] for w in words) == "=C3=BC" * 40
