"""Selection (fetch/select.py): revisions, patches, what b4 makes of odd threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.model import Fix
from testing import mailgen
from testing.pi_server import PIServer
from testing.rig import make_rig
from tests.fetch.helpers import expect_error, fetcher, tmbox_requests


@pytest.fixture
def two_rev(pi_server: PIServer) -> tuple[mailgen.SeriesSpec, mailgen.SeriesSpec]:
    v1, v2 = mailgen.make_two_revisions("nfsd", 3, 5)
    pi_server.add_thread(mailgen.make_mbox(v1.messages + v2.messages))
    return v1, v2


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


# ---- a msgid that names one patch of a series --------------------------------------------


@pytest.fixture
def stable(pi_server: PIServer) -> mailgen.SeriesSpec:
    """A stable-review style series of 5 whose thread lacks patches 1 and 2."""
    spec = mailgen.make_series("stable", 5)
    pi_server.add_thread(mailgen.make_mbox([spec.messages[0], *spec.messages[3:]]))
    return spec


def test_msgid_of_one_patch_takes_that_patch_alone(
    stable: mailgen.SeriesSpec, pi_server: PIServer, tmp_path: Path
) -> None:
    mid = stable.patch_msgids[2]
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=mid))
    assert [(p.msgid, p.counter, p.expected) for p in s.patches] == [(mid, 3, 5)]
    assert b"fs/file3.c" in s.patches[0].diff
    assert "patch 3/5 of v1" in s.note and "alone" in s.note
    assert Path(s.extra["am_mbox"]).name == "v1-p3.mbox"
    # a warm run reads the stored selection, note and all
    again = fetcher(tmp_path, pi_server, offline=True).get(Fix(msgid=mid))
    assert (again.source, again.patches, again.note) == ("cache", s.patches, s.note)
    # explicit choices stay explicit, and the cover letter still means the whole series
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=mid, patches=(4, 5)))
    assert [p.counter for p in s.patches] == [4, 5] and s.note == ""
    expect_error(
        lambda: fetcher(tmp_path, pi_server).get(Fix(msgid=stable.cover_msgid)),
        "patch 1/5 of v1 is missing from the thread",
    )


def test_msgid_of_one_patch_keeps_its_own_revision(
    two_rev: tuple[mailgen.SeriesSpec, mailgen.SeriesSpec], pi_server: PIServer, tmp_path: Path
) -> None:
    v1, v2 = two_rev
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=v1.patch_msgids[1]))
    assert (s.revision, [p.msgid for p in s.patches]) == (1, [v1.patch_msgids[1]])
    # a pinned revision other than the named patch's: the msgid only finds the thread
    s = fetcher(tmp_path, pi_server).get(Fix(msgid=v1.patch_msgids[1], revision=2))
    assert [p.msgid for p in s.patches] == v2.patch_msgids


def test_msgid_of_one_patch_is_said_in_the_evidence(tmp_path: Path, pi_server: PIServer) -> None:
    rig = make_rig(tmp_path, pi_server)
    d = mailgen.simple_diff("fs/other.c")
    spec = mailgen.make_series("stable", 5, diffs=[d, d, rig.diff_a.decode(), d, d])
    pi_server.add_thread(mailgen.make_mbox([spec.messages[0], *spec.messages[3:]]))
    rig.fix_bug("b-one", spec.patch_msgids[2])
    cp, res = rig.check("b-one")
    assert cp.returncode == 1, cp.stderr
    [patch] = res["b-one"]["patches"]
    assert (patch["msgid"], patch["verdict"]) == (spec.patch_msgids[2], "backportable")
    assert "the msgid names patch 3/5 of v1: that patch alone is taken" in patch["evidence"]
