"""The series cache (fetch/cache.py): entries, offline use, damage, prune, stored selections."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from patchcheck.errors import SeriesError
from patchcheck.fetch.cache import prune_cache, safe_name, seal, unseal, verify_cache
from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer
from tests.fetch.helpers import child, expect_error, fetcher, snapshot, tmbox_requests


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
    out, err = child(code).communicate(timeout=30)
    assert out.split() == [b"cache", b"2", b"False"], err.decode()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "edited", "bad-diff", "other-thread"])
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
    elif damage == "edited":  # valid JSON, another diff, but the checksum of the old one
        d = json.loads(unseal(good) or b"")
        d["patches"][0]["diff"] = base64.b64encode(b"diff --git a/x b/x\n").decode()
        sel.write_bytes(good.split(b"\n", 1)[0] + b"\n" + json.dumps(d).encode())
    else:
        d = json.loads(unseal(good) or b"")
        if damage == "bad-diff":
            d["patches"][0]["diff"] = "!!not base64!!"
        else:  # written when the entry held other thread bytes (so other sizes or times)
            d["sha256"], d["signature"] = "0" * 64, [0, 0, 0, 0]
        sel.write_bytes(seal(json.dumps(d).encode()))
    again = fetcher(tmp_path, pi_server, offline=True).get(fix)
    assert again.patches == first.patches and again.source == "cache"
    assert sel.read_bytes() == good
    assert verify_cache(tmp_path / "cache") == []


def test_unchanged_entry_is_not_checked_again(
    pi_server: PIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm read trusts the entry while meta.json and thread.mbox keep the size and mtime
    its selection recorded; a touched file brings the full check back once (a sound entry's
    new signature is recorded), a changed one fails it."""
    from patchcheck.fetch import cache

    spec = mailgen.make_series("sig", 1)
    pi_server.add_thread(spec.mbox)
    fix = Fix(msgid=spec.cover_msgid)
    fetcher(tmp_path, pi_server).get(fix)
    checked: list[Path] = []
    real = cache.check_entry
    monkeypatch.setattr(cache, "check_entry", lambda e, *a: checked.append(e) or real(e, *a))
    assert cache.read_selection(tmp_path / "cache", fix) is not None and checked == []
    thread = tmp_path / "cache" / "series" / safe_name(spec.cover_msgid or "") / "thread.mbox"
    os.utime(thread, ns=(1, 1))  # as a fresh checkout of a committed cache has it
    assert cache.read_selection(tmp_path / "cache", fix) is not None and len(checked) == 1
    assert cache.read_selection(tmp_path / "cache", fix) is not None and len(checked) == 1
    thread.write_bytes(thread.read_bytes().replace(b"Subject:", b"Subject: x"))
    assert cache.read_selection(tmp_path / "cache", fix) is None and len(checked) == 2
