"""Fetch stage: real b4/liblore against the local public-inbox server (never the internet)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchcheck.errors import BadInput, SeriesError
from patchcheck.fetch.fetcher import Fetcher, prune_cache, safe_name, series_key, verify_cache
from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer

REPO = Path(__file__).resolve().parents[2]


def fetcher(tmp_path: Path, server: PIServer | str, **kw: object) -> Fetcher:
    url = server if isinstance(server, str) else server.url
    return Fetcher(tmp_path / "cache", url, **kw)  # type: ignore[arg-type]


def expect_error(fn: object, *needles: str, exc: type[Exception] = SeriesError) -> str:
    with pytest.raises(exc) as ei:
        fn()  # type: ignore[operator]
    msg = str(ei.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def tmbox_requests(server: PIServer) -> list[str]:
    return [r for r in server.requests if r.endswith("t.mbox.gz")]


def snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() else None
    return out


@pytest.fixture
def two_rev(pi_server: PIServer) -> tuple[mailgen.SeriesSpec, mailgen.SeriesSpec]:
    v1, v2 = mailgen.make_two_revisions("nfsd", 3, 5)
    pi_server.add_thread(mailgen.make_mbox(v1.messages + v2.messages))
    return v1, v2


# ---- selection ------------------------------------------------------------------------


def test_single_patch(pi_server: PIServer, tmp_path: Path) -> None:
    diff = mailgen.simple_diff("mm/slab.c", "kfree(p)", "kvfree(p)")
    mail = mailgen.make_patch_mail(
        "mm: use kvfree",
        diff,
        "one@example.org",
        trailers=[
            'Fixes: 0123456789ab ("mm: add thing")',
            "Link: https://bugzilla.example.org/1",
            "Cc: stable@vger.kernel.org",
        ],
        body="This fixes CVE-2024-12345.\n\ncommit 1234567890123456789012345678901234567890 upstream.\n",
    )
    pi_server.add_thread(mailgen.make_mbox([mail]))
    s = fetcher(tmp_path, pi_server).get(Fix(msgid="one@example.org"))
    assert (s.revision, s.source, s.msgid, s.key) == (1, "lore", "one@example.org", "one@example.org")
    [p] = s.patches
    assert (p.counter, p.expected, p.subject) == (1, 1, "mm: use kvfree")
    assert p.author == "A U Thor <a@example.org>"
    assert p.diff == diff.encode()
    assert p.fixes == ('0123456789ab ("mm: add thing")',)
    assert p.links == ("https://bugzilla.example.org/1",)
    assert p.cves == ("CVE-2024-12345",)
    assert p.upstream == "1234567890123456789012345678901234567890"
    assert tmbox_requests(pi_server) == ["/all/one%40example.org/t.mbox.gz"]


def test_bug_file_upstream_wins_and_backport_trailers(pi_server: PIServer, tmp_path: Path) -> None:
    sha = "ab" * 20
    spec = mailgen.make_series("usb", 2, trailers=[[f"(cherry picked from commit {sha})"], []])
    pi_server.add_thread(spec.mbox)
    f = fetcher(tmp_path, pi_server)
    s = f.get(Fix(msgid=spec.cover_msgid))
    assert [p.upstream for p in s.patches] == [sha, None]
    s = f.get(Fix(msgid=spec.cover_msgid, upstream=("c" * 40, "d" * 40)))
    assert [p.upstream for p in s.patches] == ["c" * 40, "d" * 40]
    s = f.get(Fix(msgid=spec.cover_msgid, patches=(2,), upstream=("e" * 40,)))
    assert [p.upstream for p in s.patches] == ["e" * 40]


def test_cover_and_subset(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("sched", 4)
    pi_server.add_thread(spec.mbox)
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=spec.patch_msgids[1], patches=(3, 1)))
    assert s.subject == "sched: fix things"
    assert [(p.counter, p.expected) for p in s.patches] == [(1, 4), (3, 4)]
    assert [p.msgid for p in s.patches] == [spec.patch_msgids[0], spec.patch_msgids[2]]
    assert b"fs/file3.c" in s.patches[1].diff
    assert not s.patches[1].diff.endswith(b"2.40.0\n")
    am = Path(s.extra["am_mbox"])
    assert am.name == "v1-p1,3.mbox" and am.read_bytes().count(b"\nSubject: ") == 2


def test_latest_revision_vs_pinned(
    two_rev: tuple[mailgen.SeriesSpec, mailgen.SeriesSpec], pi_server: PIServer, tmp_path: Path
) -> None:
    v1, v2 = two_rev
    f = fetcher(tmp_path, pi_server)
    latest = f.get(Fix(msgid=v1.cover_msgid))
    assert latest.revision == 2
    assert [p.msgid for p in latest.patches] == v2.patch_msgids
    pinned = f.get(Fix(msgid=v2.patch_msgids[0], revision=1, patches=(2,)))
    assert pinned.revision == 1 and [p.msgid for p in pinned.patches] == [v1.patch_msgids[1]]
    assert len(tmbox_requests(pi_server)) == 2  # two msgids = two threads as far as we know


def test_pinned_revision_absent(
    two_rev: tuple[mailgen.SeriesSpec, mailgen.SeriesSpec], pi_server: PIServer, tmp_path: Path
) -> None:
    v1, _ = two_rev
    assert v1.cover_msgid
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid=v1.cover_msgid, revision=3)),
        v1.cover_msgid,
        "v3",
        "v1, v2",
    )


def test_patch_out_of_range(
    two_rev: tuple[mailgen.SeriesSpec, mailgen.SeriesSpec], pi_server: PIServer, tmp_path: Path
) -> None:
    v1, _ = two_rev
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid=v1.patch_msgids[0], patches=(2, 7))),
        "patch 7 requested but v2 has 5 patches",
        v1.patch_msgids[0],
    )


def test_unnumbered_single_patch_in_reply(pi_server: PIServer, tmp_path: Path) -> None:
    # a lone "[PATCH]" posted in reply to a bug report discussion
    report = mailgen.make_reply("crash in foo", "report@example.org", "older@example.org")
    mail = mailgen.make_patch_mail(
        "foo: fix crash", mailgen.simple_diff(), "fix@example.org", in_reply_to="report@example.org"
    )
    pi_server.add_thread(mailgen.make_mbox([report, mail]))
    s = fetcher(tmp_path, pi_server).get(Fix(msgid="fix@example.org"))
    assert [(p.counter, p.expected, p.subject) for p in s.patches] == [(1, 1, "foo: fix crash")]


# ---- cache ----------------------------------------------------------------------------


def test_cache_hit_makes_no_request(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("net", 2)
    pi_server.add_thread(spec.mbox)
    first = fetcher(tmp_path, pi_server).get(Fix(msgid=spec.cover_msgid))
    n = len(pi_server.requests)
    again = fetcher(tmp_path, pi_server).get(Fix(msgid=spec.cover_msgid, patches=(2,)))
    assert len(pi_server.requests) == n
    assert again.source == "cache" and first.source == "lore"
    assert again.fetched == first.fetched
    entry = tmp_path / "cache" / "series" / safe_name(spec.cover_msgid or "")
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["msgid"] == spec.cover_msgid and meta["lore_url"] == pi_server.url
    assert meta["sha256"] == hashlib.sha256((entry / "thread.mbox").read_bytes()).hexdigest()
    kinds = sorted(m["kind"] for m in meta["messages"])
    assert kinds == ["cover", "patch", "patch"]
    assert verify_cache(tmp_path / "cache") == []


def test_offline_hit_and_miss(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("ext4", 1, cover=False)
    pi_server.add_thread(spec.mbox)
    fetcher(tmp_path, pi_server).get(Fix(msgid=spec.patch_msgids[0]))
    n = len(pi_server.requests)
    off = fetcher(tmp_path, pi_server, offline=True)
    assert off.get(Fix(msgid=spec.patch_msgids[0])).source == "cache"
    expect_error(lambda: off.get(Fix(msgid="absent@example.org")), "absent@example.org", "not in cache (offline)")
    assert len(pi_server.requests) == n


def test_offline_miss_never_touches_network(tmp_path: Path) -> None:
    # a closed port: any request would fail differently
    off = fetcher(tmp_path, "http://127.0.0.1:9", offline=True)
    expect_error(lambda: off.get(Fix(msgid="x@example.org")), "not in cache (offline)")


def test_corrupted_cache_refetched_online_reported_offline(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("xfs", 2)
    pi_server.add_thread(spec.mbox)
    mid = spec.cover_msgid or ""
    fetcher(tmp_path, pi_server).get(Fix(msgid=mid))
    thread = tmp_path / "cache" / "series" / safe_name(mid) / "thread.mbox"
    thread.write_bytes(thread.read_bytes().replace(b"fix part 2", b"fix part X"))
    [(entry, problem)] = verify_cache(tmp_path / "cache")
    assert entry == safe_name(mid) and "checksum" in problem
    expect_error(lambda: fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid=mid)), mid, "corrupt", "offline")
    n = len(tmbox_requests(pi_server))
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=mid))
    assert s.source == "lore" and s.patches[1].subject == "xfs: fix part 2"
    assert len(tmbox_requests(pi_server)) == n + 1
    assert verify_cache(tmp_path / "cache") == []
    assert [p.name for p in (tmp_path / "cache" / "series").iterdir()] == [safe_name(mid)]


def test_failed_fetch_leaves_cache_byte_identical(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("btrfs", 1)
    pi_server.add_thread(spec.mbox)
    pi_server.add_thread(mailgen.make_mbox([mailgen.make_cover("c", "nopatch@example.org", 1)]))
    f = fetcher(tmp_path, pi_server)
    f.get(Fix(msgid=spec.cover_msgid))
    before = snapshot(tmp_path / "cache")
    for mid in ("missing@example.org", "nopatch@example.org"):
        with pytest.raises(SeriesError):
            f.get(Fix(msgid=mid))
    pi_server.fault = "500"
    with pytest.raises(SeriesError):
        f.get(Fix(msgid="other@example.org"))
    assert snapshot(tmp_path / "cache") == before


def test_failed_fetch_into_empty_cache_creates_nothing(pi_server: PIServer, tmp_path: Path) -> None:
    with pytest.raises(SeriesError):
        fetcher(tmp_path, pi_server).get(Fix(msgid="missing@example.org"))
    assert not (tmp_path / "cache").exists()


def test_prune_and_leftovers(pi_server: PIServer, tmp_path: Path) -> None:
    a = mailgen.make_series("a", 1)
    b = mailgen.make_series("b", 1)
    pi_server.add_thread(a.mbox)
    pi_server.add_thread(b.mbox)
    f = fetcher(tmp_path, pi_server)
    f.get(Fix(msgid=a.cover_msgid))
    f.get(Fix(msgid=b.cover_msgid))
    sdir = tmp_path / "cache" / "series"
    # what a process killed while writing leaves behind
    leftover = sdir / ".tmp-a-v1-0@example.org-killed"
    leftover.mkdir()
    (leftover / "thread.mbox").write_bytes(b"From x")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    assert [e for e, _ in verify_cache(tmp_path / "cache")] == [leftover.name]
    removed = prune_cache(tmp_path / "cache", {a.cover_msgid or ""})
    assert sorted(removed) == sorted([leftover.name, safe_name(b.cover_msgid or "")])
    assert [p.name for p in sdir.iterdir()] == [safe_name(a.cover_msgid or "")]


def test_stored_selection_serves_warm_runs_without_b4(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("sel", 3)
    pi_server.add_thread(spec.mbox)
    fix = Fix(msgid=spec.cover_msgid, patches=(3, 1), upstream=("a" * 40, "b" * 40))
    first = fetcher(tmp_path, pi_server).get(fix)
    entry = tmp_path / "cache" / "series" / safe_name(spec.cover_msgid or "")
    assert (entry / "sel-latest-p1,3.json").is_file()
    again = fetcher(tmp_path, pi_server, offline=True).get(fix)
    assert again.source == "cache"
    assert (again.patches, again.revision, again.subject, again.extra) == (
        first.patches,
        first.revision,
        first.subject,
        first.extra,
    )
    assert [p.upstream for p in again.patches] == ["a" * 40, "b" * 40]
    assert verify_cache(tmp_path / "cache") == []
    # a fresh process served from the selection file never imports b4
    code = (
        "import sys\nfrom pathlib import Path\nfrom patchcheck.bugs.load import Fix\n"
        "from patchcheck.fetch.fetcher import Fetcher\n"
        f"s = Fetcher(Path({str(tmp_path / 'cache')!r}), {pi_server.url!r}, offline=True)"
        f".get(Fix(msgid={spec.cover_msgid!r}, patches=(1, 3)))\n"
        "print(s.source, len(s.patches), 'b4' in sys.modules)\n"
    )
    out, err = _child(code).communicate(timeout=30)
    assert out.split() == [b"cache", b"2", b"False"], err.decode()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad-diff", "other-thread"])
def test_damaged_selection_is_ignored_and_rewritten(pi_server: PIServer, tmp_path: Path, damage: str) -> None:
    spec = mailgen.make_series("dmg", 2)
    pi_server.add_thread(spec.mbox)
    fix = Fix(msgid=spec.cover_msgid)
    first = fetcher(tmp_path, pi_server).get(fix)
    sel = tmp_path / "cache" / "series" / safe_name(spec.cover_msgid or "") / "sel-latest-all.json"
    good = sel.read_bytes()
    if damage == "garbage":
        sel.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        sel.write_bytes(good[: len(good) // 2])
    else:
        d = json.loads(good)
        if damage == "bad-diff":
            d["patches"][0]["diff"] = "!!not base64!!"
        else:
            d["sha256"] = "0" * 64
        sel.write_text(json.dumps(d))
    again = fetcher(tmp_path, pi_server, offline=True).get(fix)
    assert again.patches == first.patches and again.source == "cache"
    assert sel.read_bytes() == good
    assert verify_cache(tmp_path / "cache") == []


# ---- local mbox files -----------------------------------------------------------------


def test_mbox_file_fix(tmp_path: Path, pi_server: PIServer) -> None:
    spec = mailgen.make_series("vendor", 3)
    path = tmp_path / "fix.mbox"
    path.write_bytes(spec.mbox)
    fix = Fix(msgid=None, mbox=path, patches=(2,))
    key = series_key(fix)
    assert key == "mbox:" + hashlib.sha256(spec.mbox).hexdigest()
    s = fetcher(tmp_path, pi_server).get(fix)
    assert (s.source, s.key, s.revision) == ("mbox", key, 1)
    assert [p.subject for p in s.patches] == ["vendor: fix part 2"]
    assert pi_server.requests == []
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid=None, mbox=path, patches=(4,))),
        "patch 4 requested but v1 has 3 patches",
    )


def test_mbox_file_from_git_format_patch(tmp_path: Path, pi_server: PIServer) -> None:
    # git format-patch output: "From <sha> Mon Sep 17 ..." line and no Message-Id
    mail = mailgen.make_patch_mail("drv: vendor fix", mailgen.simple_diff(), "x@y")
    mail = b"\n".join(line for line in mail.split(b"\n") if not line.startswith(b"Message-Id"))
    path = tmp_path / "0001-drv.patch"
    path.write_bytes(b"From " + b"1" * 40 + b" Mon Sep 17 00:00:00 2001\n" + mail)
    s = fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid=None, mbox=path))
    assert [p.subject for p in s.patches] == ["drv: vendor fix"]
    assert s.patches[0].diff == mailgen.simple_diff().encode()


def test_mbox_file_missing_is_bad_input(tmp_path: Path, pi_server: PIServer) -> None:
    path = tmp_path / "known_bugs" / "fixes" / "nope.mbox"
    fix = Fix(msgid=None, mbox=path)
    expect_error(lambda: fetcher(tmp_path, pi_server).get(fix), str(path), exc=BadInput)
    expect_error(lambda: series_key(fix), str(path), exc=BadInput)


# ---- server and network failures ------------------------------------------------------


def test_404(pi_server: PIServer, tmp_path: Path) -> None:
    msg = expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid="gone@example.org")), "gone@example.org", "404"
    )
    assert pi_server.url in msg
    # liblore retries a 404 with a HEAD on the bare origin (list path discovery)
    assert pi_server.requests == ["/all/gone%40example.org/t.mbox.gz", "/gone%40example.org/"]


def test_found_under_other_list_via_redirect(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("lst", 1, cover=False)
    pi_server.add_thread(spec.mbox)
    f = Fetcher(tmp_path / "cache", pi_server.url + "/linux-nfs")
    s = f.get(Fix(msgid=spec.patch_msgids[0]))
    assert s.patches[0].subject == "lst: fix part 1"
    assert pi_server.requests[0].startswith("/linux-nfs/")


@pytest.mark.parametrize(
    "fault,needle",
    [
        ("500", "HTTP 500"),
        ("html200", "HTML page"),
        ("corrupt-gzip", "corrupt gzip"),
        ("redirect-loop", "redirect"),
    ],
)
def test_server_faults(
    pi_server: PIServer, tmp_path: Path, fault: str, needle: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pi_server.fault = fault
    msg = expect_error(lambda: fetcher(tmp_path, pi_server, timeout=5).get(Fix(msgid="f@example.org")), needle)
    assert pi_server.url in msg and "f%40example.org" in msg
    assert capfd.readouterr() == ("", "")  # our one-line error only, nothing from b4/liblore


def test_connection_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    expect_error(
        lambda: fetcher(tmp_path, url, timeout=5).get(Fix(msgid="r@example.org")), url, "connection refused"
    )
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("fault", ["hang", "drip"])
def test_hang_and_drip_bounded_by_total_timeout(pi_server: PIServer, tmp_path: Path, fault: str) -> None:
    pi_server.fault = fault
    t0 = time.monotonic()
    expect_error(
        lambda: fetcher(tmp_path, pi_server, timeout=1.5).get(Fix(msgid="slow@example.org")),
        "timed out",
        pi_server.url,
    )
    assert time.monotonic() - t0 < 4
    assert not (tmp_path / "cache").exists()


# ---- odd threads and odd content ------------------------------------------------------


def test_empty_mbox(pi_server: PIServer, tmp_path: Path) -> None:
    pi_server.add_thread(b"", msgids=["empty@example.org"])
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid="empty@example.org")), "empty@example.org", "empty mbox"
    )


def test_thread_with_no_patches(pi_server: PIServer, tmp_path: Path) -> None:
    cover = mailgen.make_cover("talk", "talk@example.org", 2)
    reply = mailgen.make_reply("[PATCH 0/2] talk", "r1@example.org", "talk@example.org")
    pi_server.add_thread(mailgen.make_mbox([cover, reply]))
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid="talk@example.org")), "talk@example.org", "no patches"
    )


def test_patch_without_diff(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("nod", 3, diffs=[mailgen.simple_diff("a.c"), "", mailgen.simple_diff("c.c")])
    pi_server.add_thread(spec.mbox)
    f = fetcher(tmp_path, pi_server)
    expect_error(lambda: f.get(Fix(msgid=spec.cover_msgid)), "patch 2/3", "has no diff", spec.patch_msgids[1])
    assert [p.counter for p in f.get(Fix(msgid=spec.cover_msgid, patches=(1, 3))).patches] == [1, 3]


def test_msgid_maps_to_other_thread(pi_server: PIServer, tmp_path: Path) -> None:
    other = mailgen.make_series("other", 1)
    pi_server.add_thread(other.mbox, msgids=["wanted@example.org"])
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid="wanted@example.org")),
        "wanted@example.org",
        "different thread",
    )
    assert not (tmp_path / "cache").exists()


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


# ---- parallelism, processes, isolation -------------------------------------------------


def test_get_many_fetches_each_thread_once_in_parallel(pi_server: PIServer, tmp_path: Path) -> None:
    specs = [mailgen.make_series(f"p{i}", 2) for i in range(3)]
    for s in specs:
        pi_server.add_thread(s.mbox)
    pi_server.delay = 0.6
    fixes = [Fix(msgid=s.cover_msgid) for s in specs]
    fixes.append(Fix(msgid=specs[0].cover_msgid, patches=(2,)))  # same thread again
    fixes.append(Fix(msgid="nowhere@example.org"))
    t0 = time.monotonic()
    res = fetcher(tmp_path, pi_server).get_many(fixes, jobs=4)
    elapsed = time.monotonic() - t0
    assert set(res) == {s.cover_msgid for s in specs} | {"nowhere@example.org"}
    assert isinstance(res["nowhere@example.org"], SeriesError)
    for s in specs:
        r = res[s.cover_msgid or ""]
        assert not isinstance(r, SeriesError) and len(r.patches) == 2
    reqs = tmbox_requests(pi_server)
    assert len(reqs) == len(set(reqs)) == 4
    assert elapsed < 0.6 * 4  # sequential would be >= 4 x 0.6 s (plus the 404's HEAD)


def _child(code: str, home: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


FETCH_CODE = """
from pathlib import Path
from patchcheck.model import Fix
from patchcheck.fetch.fetcher import Fetcher
s = Fetcher(Path({cache!r}), {url!r}, timeout={timeout}).get(
    Fix(msgid={msgid!r}))
print(s.source, len(s.patches))
"""


def test_two_processes_fetch_same_series(pi_server: PIServer, tmp_path: Path) -> None:
    spec = mailgen.make_series("race", 3)
    pi_server.add_thread(spec.mbox)
    pi_server.delay = 0.3  # both are in flight at once
    code = FETCH_CODE.format(cache=str(tmp_path / "cache"), url=pi_server.url, timeout=10, msgid=spec.cover_msgid)
    procs = [_child(code) for _ in range(2)]
    outs = [p.communicate(timeout=30) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.split()[1] == b"3"
        assert err == b""  # quiet: nothing from b4 or liblore
    sdir = tmp_path / "cache" / "series"
    assert [e.name for e in sdir.iterdir()] == [safe_name(spec.cover_msgid or "")]
    assert verify_cache(tmp_path / "cache") == []


def test_sigkill_mid_fetch_leaves_nothing_trusted(pi_server: PIServer, tmp_path: Path) -> None:
    pi_server.fault = "drip"
    code = FETCH_CODE.format(
        cache=str(tmp_path / "cache"), url=pi_server.url, timeout=30, msgid="kill@example.org"
    )
    proc = _child(code)
    deadline = time.monotonic() + 15
    while not pi_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pi_server.requests, "child never reached the server"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    pi_server.fault = None
    expect_error(
        lambda: fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid="kill@example.org")),
        "not in cache (offline)",
    )
    sdir = tmp_path / "cache" / "series"
    assert not sdir.exists() or all(p.name.startswith(".tmp-") for p in sdir.iterdir())


def test_second_fetcher_other_url_same_process(tmp_path: Path) -> None:
    spec_a = mailgen.make_series("same", 1, cover=False)
    spec_b = mailgen.make_series("same", 2, cover=False)  # same first msgid, other content
    with PIServer() as a, PIServer() as b:
        a.add_thread(spec_a.mbox)
        b.add_thread(spec_b.mbox)
        mid = spec_a.patch_msgids[0]
        sa = Fetcher(tmp_path / "ca", a.url).get(Fix(msgid=mid))
        sb = Fetcher(tmp_path / "cb", b.url).get(Fix(msgid=mid))
        assert (len(sa.patches), len(sb.patches)) == (1, 2)
        assert len(tmbox_requests(a)) == 1 and len(tmbox_requests(b)) == 1


def test_b4_config_isolation(pi_server: PIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[b4]\n\tmidmask = http://bogus.invalid/%s\n\tattestation-policy = hardfail\n"
        f'[liblore "{pi_server.url}"]\n\tfallback = http://127.0.0.1:9\n'
        "\trequesttimeout = 0.001\n"
    )
    for var in ("GIT_CONFIG_GLOBAL", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    spec = mailgen.make_series("iso", 2)
    pi_server.add_thread(spec.mbox)
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=spec.cover_msgid))
    assert len(s.patches) == 2
    assert not (home / ".cache").exists()  # b4/liblore caches stay out of ~/.cache
    # and in a fresh process with that HOME, stderr stays quiet
    code = FETCH_CODE.format(cache=str(tmp_path / "c2"), url=pi_server.url, timeout=10, msgid=spec.cover_msgid)
    out, err = _child(code, home).communicate(timeout=30)
    assert out.startswith(b"lore 2"), err.decode()
    assert err == b""


def test_failing_fetch_is_quiet_in_a_fresh_process(pi_server: PIServer, tmp_path: Path) -> None:
    # no logging configured at all: Python's last-resort handler would print b4/liblore
    # warnings ("Request to ... returned 500, trying next host") to stderr
    pi_server.fault = "500"
    code = (
        "from patchcheck.errors import SeriesError\n"
        "try:\n"
        + "".join(
            "    " + line + "\n"
            for line in FETCH_CODE.format(
                cache=str(tmp_path / "cache"), url=pi_server.url, timeout=5, msgid="q@example.org"
            )
            .strip()
            .splitlines()
        )
        + "except SeriesError as e:\n    print(e)\n"
    )
    out, err = _child(code).communicate(timeout=30)
    assert err == b""
    assert b"HTTP 500" in out and out.count(b"\n") == 1
