"""The path gate against the tricks a hostile mail, archive or checkout can play."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchcheck.sys.paths import (
    OutsideRoot,
    TooLarge,
    UnsafePath,
    clean_relpath,
    is_within,
    norm_relpath,
    read_beneath,
    resolve_beneath,
    unlink_beneath,
    write_beneath,
)


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../../x", "a\0b", "a\\b", ".", "//abs"])
def test_unsafe_relpaths_are_refused(bad: str) -> None:
    assert norm_relpath(bad) is None
    with pytest.raises(UnsafePath, match="mail 1"):
        clean_relpath(bad, "mail 1")


def test_relpaths_are_normalised() -> None:
    assert norm_relpath("a//b/./c") == "a/b/c"
    assert norm_relpath("a/b/../c") == "a/c"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "d").mkdir(parents=True)
    (r / "d" / "f.c").write_bytes(b"inside\n")
    (tmp_path / "secret").write_bytes(b"secret\n")
    return r


def test_links_inside_are_followed(root: Path) -> None:
    os.symlink("d/f.c", root / "same")
    os.symlink("../d", root / "d" / "up")
    assert read_beneath(root, "same") == b"inside\n"
    assert resolve_beneath(root, "d/up/f.c") == "d/f.c"
    assert read_beneath(root, "same", follow=False) is None


@pytest.mark.parametrize("target", ["../secret", "/etc/passwd", "d/../../secret", "missing/../../secret"])
def test_links_out_are_never_followed(root: Path, target: str) -> None:
    os.symlink(target, root / "evil")
    with pytest.raises(OutsideRoot):
        read_beneath(root, "evil")


def test_a_folder_link_on_the_way_is_judged_like_a_file_link(root: Path, tmp_path: Path) -> None:
    """One open call reads a plain path; a folder link on the way sends the read to the
    component-wise walk: followed inside the root, never out of it."""
    os.symlink(tmp_path, root / "out")  # a folder outside, whose "secret" one open would reach
    os.symlink("d", root / "dd")
    with pytest.raises(OutsideRoot):
        read_beneath(root, "out/secret")
    assert read_beneath(root, "out/secret", follow=False) is None
    assert read_beneath(root, "dd/f.c") == b"inside\n"
    assert read_beneath(root, "dd/f.c", follow=False) is None


def test_a_plain_path_takes_one_open(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchcheck.sys import paths

    def walk(*_a: object, **_k: object) -> int:
        raise AssertionError("walked")

    monkeypatch.setattr(paths, "_walk", walk)
    assert read_beneath(root, "d/f.c") == b"inside\n"
    with pytest.raises(AssertionError, match="walked"):
        read_beneath(root, "d/nope")  # absent: the walk tells why


def test_link_loop(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(OutsideRoot):
        read_beneath(root, "a")


def test_absent_fifo_and_folder_read_as_none(root: Path) -> None:
    os.mkfifo(root / "fifo")
    assert read_beneath(root, "nope") is None
    assert read_beneath(root, "d/nope/x") is None
    assert read_beneath(root, "fifo") is None
    assert read_beneath(root, "d") is None


def test_limit(root: Path) -> None:
    with pytest.raises(TooLarge):
        read_beneath(root, "d/f.c", limit=3)
    assert read_beneath(root, "d/f.c", limit=7) == b"inside\n"


def test_writes_never_go_through_links(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), root / "dir-link")
    os.symlink(str(tmp_path / "secret"), root / "file-link")
    with pytest.raises(OSError):
        write_beneath(root, "dir-link/x", b"x")
    write_beneath(root, "file-link", b"replaced\n")
    assert (tmp_path / "secret").read_bytes() == b"secret\n"
    assert (root / "file-link").read_bytes() == b"replaced\n" and not (root / "file-link").is_symlink()
    assert list(outside.iterdir()) == []
    write_beneath(root, "new/deep/f", b"y")
    assert (root / "new/deep/f").read_bytes() == b"y"


def test_unlink_removes_the_link_not_its_target(root: Path, tmp_path: Path) -> None:
    os.symlink(str(tmp_path / "secret"), root / "l")
    assert unlink_beneath(root, "l")
    assert (tmp_path / "secret").exists()
    assert not unlink_beneath(root, "l")
    with pytest.raises(UnsafePath):
        unlink_beneath(root, "../secret")


def test_is_within(root: Path, tmp_path: Path) -> None:
    assert is_within(root / "d" / "f.c", root)
    assert not is_within(tmp_path / "secret", root)
    os.symlink(str(tmp_path), root / "up")
    assert not is_within(root / "up" / "secret", root)
