"""patchcheck.trees against real tools: tarfile, git, dpkg-deb, dpkg-source, rpmbuild.

Every tree is tiny and built here. The same final content is shipped as every kind (the SRPM and
.dsc as base tarball + patch queue), so ``read()`` must agree across kinds byte for byte.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from patchcheck.commands import trees as trees_cmd
from patchcheck.errors import TreeError
from patchcheck.trees import detect_kind, find_trees_file, load_trees_file, open_tree
from patchcheck.trees.base import TreeView
from patchcheck.trees.rpmspec import prep_plan
from patchcheck.trees.specexpr import host_arch
from patchcheck.trees.specprep import preprocess
from testing.gitrepo import commit, git, init
from testing.treegen import (  # noqa: F401
    BAD_PATCH,
    BASE,
    CHANGELOG_ENTRY,
    FINAL,
    MAKEFILE,
    PATCH1,
    PATCH2,
    PATHS,
    SPEC,
    STAGE1,
    TOP,
    Kit,
    _build_deb,
    _build_dsc,
    _diff,
    build_srpm,
    have,
    snapshot,
    write_tar,
    write_tree,
)


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("kit")
    k = Kit(root, {})
    k.sources["folder"] = write_tree(root / "folder" / TOP, FINAL)
    for label, suffix, mode in [
        ("tar", ".tar", "w"),
        ("tar.gz", ".tar.gz", "w:gz"),
        ("tgz", ".tgz", "w:gz"),
        ("tar.xz", ".tar.xz", "w:xz"),
        ("tar.bz2", ".tar.bz2", "w:bz2"),
    ]:
        (root / label).mkdir()
        k.sources[label] = write_tar(root / label / f"{TOP}{suffix}", FINAL, TOP, mode)
    (root / "flat").mkdir()
    k.sources["flat-tar"] = write_tar(root / "flat" / "tree.tar", FINAL, None)

    repo = write_tree(root / "git" / "linux", BASE)
    k.git_base = init(repo)
    git(repo, "tag", "v4.19.90-base")
    write_tree(repo, FINAL)
    commit(repo, "final")
    k.sources["git"] = repo

    if have("dpkg-deb"):
        (root / "deb").mkdir()
        k.sources["deb"] = _build_deb(root / "debwork", root / "deb" / "linux-source-4.19.deb")
    if have("rpmbuild"):
        k.sources["srpm"] = build_srpm(root / "rpmwork", root / "srpm")
    if have("dpkg-source"):
        k.sources["dsc-quilt"] = _build_dsc(root / "dscwork", root / "dsc-quilt", "3.0 (quilt)")
        k.sources["dsc-1.0"] = _build_dsc(root / "dscwork1", root / "dsc-1.0", "1.0")
    return k


KINDS = [
    "folder",
    "tar",
    "tar.gz",
    "tgz",
    "tar.xz",
    "tar.bz2",
    "flat-tar",
    "git",
    "deb",
    "srpm",
    "dsc-quilt",
    "dsc-1.0",
]
EXPECTED_KIND = {
    "folder": "folder",
    "git": "git",
    "deb": "deb",
    "srpm": "srpm",
    "dsc-quilt": "dsc",
    "dsc-1.0": "dsc",
}


def source(kit: Kit, label: str) -> Path:
    if label not in kit.sources:
        pytest.skip(f"the tool to build a {label} is not installed")
    return kit.sources[label]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# -- same content, every kind -----------------------------------------------------------------


@pytest.mark.parametrize("label", KINDS)
def test_every_kind_reads_the_same_bytes(kit: Kit, cache: Path, label: str) -> None:
    src = source(kit, label)
    user_folder = src if src.is_dir() else src.parent
    before = snapshot(user_folder)

    tree = open_tree(str(src), cache_dir=cache)
    assert tree.info.kind == EXPECTED_KIND.get(label, "tarball")
    assert tree.info.version == "4.19.90"
    assert tree.info.source == str(src.absolute())
    tree.prepare(PATHS)
    for path in PATHS:
        assert tree.read(path) == FINAL.get(path), f"{label}: {path}"
        assert tree.exists(path) == (path in FINAL)
    # Paths outside the tree are refused, not resolved.
    for bad in ("/etc/passwd", "../Makefile", "fs/../../Makefile", ""):
        assert tree.read(bad) is None
    assert snapshot(user_folder) == before, f"{label}: the user's files changed"
    if label in ("folder", "git"):
        assert not cache.exists(), "folder and git trees need no cache"


def test_metadata_per_kind(kit: Kit, cache: Path) -> None:
    srpm = open_tree(str(source(kit, "srpm")), cache_dir=cache)
    assert srpm.info.release == "4.19.90-52.39.v2207.ky10"
    assert (srpm.info.distro, srpm.info.abi, srpm.info.arch) == ("kylin", "4.19.90-52.39.v2207.ky10", host_arch())
    assert any(f"applied 2 patches for {host_arch()}" in n for n in srpm.info.notes)
    assert CHANGELOG_ENTRY in (srpm.changelog() or "")

    deb = open_tree(str(source(kit, "deb")), cache_dir=cache)
    assert deb.info.release == "4.19.90-1"
    assert deb.info.distro == "debian"
    assert CHANGELOG_ENTRY in (deb.changelog() or "")

    for label in ("dsc-quilt", "dsc-1.0"):
        dsc = open_tree(str(source(kit, label)), cache_dir=cache)
        assert dsc.info.release == "4.19.90-1"
        assert dsc.info.distro == "ubuntu"  # its changelog's series is noble
        assert CHANGELOG_ENTRY in (dsc.changelog() or "")
        assert dsc.read("debian/changelog") is not None
    quilt = open_tree(str(source(kit, "dsc-quilt")), cache_dir=cache)
    assert quilt.info.notes[0] == "applied 2 quilt patches from linux_4.19.90-1.debian.tar.xz"
    assert quilt.info.notes[1] == "ubuntu noble 4.19.90-1 (from debian/changelog)"


def test_git_rev_reads_objects_without_checkout(kit: Kit, cache: Path) -> None:
    repo = source(kit, "git")
    before = snapshot(repo)
    tree = open_tree(str(repo), cache_dir=cache, rev="v4.19.90-base")
    assert tree.head() == kit.git_base
    assert tree.git_dir() == (repo / ".git").resolve()
    tree.prepare(PATHS)
    for path in PATHS:
        assert tree.read(path) == BASE.get(path), path
    assert tree.read("fs") is None  # a folder is not a file
    assert snapshot(repo) == before
    with pytest.raises(TreeError, match="no commit 'nope'"):
        open_tree(str(repo), cache_dir=cache, rev="nope")


def test_git_notes_dirty_and_rebase(tmp_path: Path, cache: Path) -> None:
    repo = write_tree(tmp_path / "r", BASE)
    init(repo, message="b")
    assert open_tree(str(repo), cache_dir=cache).info.notes == ()
    (repo / "mm/untouched.c").write_bytes(b"changed\n")
    (repo / ".git" / "rebase-merge").mkdir()
    before = snapshot(repo)
    tree = open_tree(str(repo), cache_dir=cache)
    assert tree.info.notes == ("work tree is dirty", "rebase in progress")
    assert tree.read("mm/untouched.c") == b"changed\n"  # the work tree as it is
    assert snapshot(repo) == before


def test_symlinks_inside_archives_and_git(tmp_path: Path, cache: Path) -> None:
    tar = tmp_path / "in" / "t.tar.gz"
    tar.parent.mkdir()
    with tarfile.open(tar, "w:gz") as tf:
        for rel, data in BASE.items():
            ti = tarfile.TarInfo(f"{TOP}/{rel}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in [
            ("include/alias.h", "linux/list.h"),
            ("loop1", "loop2"),
            ("loop2", "loop1"),
            ("out.h", "../../etc/passwd"),
        ]:
            ti = tarfile.TarInfo(f"{TOP}/{name}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tf.addfile(ti)
    tree = open_tree(str(tar), cache_dir=cache)
    tree.prepare(["include/alias.h", "out.h"])
    assert tree.read("include/alias.h") == BASE["include/linux/list.h"]
    assert tree.read("out.h") is None
    with pytest.raises(TreeError, match="symlink loop"):
        tree.read("loop1")


# -- selective extraction and the cache ------------------------------------------------------


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_tarball_extracts_only_what_is_asked_and_reuses_the_cache(kit: Kit, cache: Path) -> None:
    src = source(kit, "tar.xz")
    tree = open_tree(str(src), cache_dir=cache)
    assert tree.archive_passes == 1  # type: ignore[attr-defined]  # the Makefile, at open
    extracted = {p.name for p in cache.rglob("*") if p.is_file() and "files" in p.parts}
    assert extracted == {"Makefile"}

    tree.prepare(["fs/nfsd/state.h", "fs/nfsd/absent.c"])
    assert tree.archive_passes == 2  # type: ignore[attr-defined]
    tree.prepare(["fs/nfsd/state.h", "fs/nfsd/absent.c"])  # same paths: nothing to do
    assert tree.archive_passes == 2  # type: ignore[attr-defined]
    tree.prepare(["fs/nfsd/state.h", "kernel/events/core.c"])  # one new path: one more pass
    assert tree.archive_passes == 3  # type: ignore[attr-defined]
    assert tree.read("kernel/events/core.c") == FINAL["kernel/events/core.c"]
    assert tree.read("fs/nfsd/absent.c") is None
    assert tree.archive_passes == 3  # type: ignore[attr-defined]  # absent was remembered
    files = {p.relative_to(p.parents[2]) for p in cache.rglob("*") if p.is_file() and "files" in p.parts}
    assert len(files) == 3  # Makefile, state.h, core.c: never the whole tree

    before = _mtimes(cache)
    again = open_tree(str(src), cache_dir=cache)
    again.prepare(["fs/nfsd/state.h", "kernel/events/core.c", "fs/nfsd/absent.c"])
    assert again.read("fs/nfsd/state.h") == FINAL["fs/nfsd/state.h"]
    assert again.archive_passes == 0  # type: ignore[attr-defined]
    assert _mtimes(cache) == before  # a warm run writes nothing


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.xz", ".tar.bz2"])
def test_python_decompressors_and_gnu_long_names(
    tmp_path: Path, cache: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without xz/gzip/bzip2 on PATH the same bytes come out through Python's modules."""
    from patchcheck.trees.archive import compress

    monkeypatch.setattr(compress, "_tool_for", lambda name: None)
    mode = {".tar": "w", ".tar.gz": "w:gz", ".tar.xz": "w:xz", ".tar.bz2": "w:bz2"}[suffix]
    tar = write_tar(tmp_path / f"t{suffix}", FINAL, TOP, mode, tarfile.GNU_FORMAT)
    tree = open_tree(str(tar), cache_dir=cache)
    tree.prepare(PATHS)
    assert [tree.read(p) for p in PATHS] == [FINAL.get(p) for p in PATHS]


@pytest.mark.parametrize("label", ["deb", "srpm", "dsc-quilt", "dsc-1.0"])
def test_package_kinds_reuse_the_cache(kit: Kit, cache: Path, label: str) -> None:
    src = source(kit, label)
    first = open_tree(str(src), cache_dir=cache)
    first.prepare(PATHS)
    assert [first.read(p) for p in PATHS] == [FINAL.get(p) for p in PATHS]
    before = _mtimes(cache)
    second = open_tree(str(src), cache_dir=cache)
    second.prepare(PATHS)
    assert [second.read(p) for p in PATHS] == [FINAL.get(p) for p in PATHS]
    assert second.archive_passes == 0  # type: ignore[attr-defined]
    assert getattr(second, "patches_applied_now", 0) == 0
    assert second.info == first.info
    assert _mtimes(cache) == before


# -- the spec parser -------------------------------------------------------------------------


def test_parse_spec_forms() -> None:
    spec = """\
%global pkg_release 52.39
Name: kernel
Version: 4.19.90
Release: %{pkg_release}.v2207.ky10
Source0: https://example.org/linux-%{version}.tar.xz
Patch1: a.patch
Patch: b.patch
Patch10: c-%{version}.patch
Patch11: d.patch.gz
Patch12: e.patch

%prep
%autosetup -N -n linux-%{version}
%patch1 -p1
%patch -P 2 -p2
%if 0%{?with_extra}
ApplyPatch c-%{version}.patch -R
%endif
%patch 11
%autopatch -p1 -m 12 -M 12
patch -p1 -s < %{PATCH1}

%changelog
* Mon Jan 01 2024 Dev - 4.19.90-52
- fix
"""
    ev = preprocess(spec, "x86_64")
    assert dict(ev.patches) == {
        1: "a.patch",
        2: "b.patch",
        10: "c-4.19.90.patch",
        11: "d.patch.gz",
        12: "e.patch",
    }
    assert ev.sources[0] == "linux-4.19.90.tar.xz"
    plan = prep_plan(ev)
    steps = [(s.file, s.strip, s.reverse) for s in plan.steps]
    # with_extra is not defined: the ApplyPatch under %if 0%{?with_extra} is left out
    assert steps == [
        ("a.patch", 1, False),
        ("b.patch", 2, False),
        ("d.patch.gz", 1, False),
        ("e.patch", 1, False),
        ("a.patch", 1, False),
    ]
    with_extra = prep_plan(preprocess(spec, "x86_64", {"with_extra": "1"}))
    assert ("c-4.19.90.patch", True) in [(s.file, s.reverse) for s in with_extra.steps]
    auto = prep_plan(preprocess("Patch0: x.patch\nPatch5: y.patch\n%prep\n%autosetup -p1\n", "x86_64"))
    assert [s.file for s in auto.steps] == ["x.patch", "y.patch"]


# -- bad input: one-line TreeErrors ----------------------------------------------------------


def _one_line_error(spec: str | Path, cache: Path, match: str, **kw: object) -> str:
    with pytest.raises(TreeError, match=match) as exc:
        open_tree(str(spec), cache_dir=cache, **kw)  # type: ignore[arg-type]
    msg = str(exc.value)
    assert "\n" not in msg
    assert exc.value.exit_code == 2
    return msg


def test_missing_path(tmp_path: Path, cache: Path) -> None:
    msg = _one_line_error(tmp_path / "nope.tar.xz", cache, "no such file or folder")
    assert str(tmp_path / "nope.tar.xz") in msg


def test_symlink_loop_as_tree_and_inside_tree(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    _one_line_error(tmp_path / "a", cache, "symlink loop")
    tree_dir = write_tree(tmp_path / "t", BASE)
    (tree_dir / "fs/loop.c").symlink_to("loop.c")
    tree = open_tree(str(tree_dir), cache_dir=cache)
    with pytest.raises(TreeError, match=r"fs/loop.c: symlink loop"):
        tree.read("fs/loop.c")


def test_folder_that_is_not_a_kernel_tree(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "empty").mkdir()
    _one_line_error(tmp_path / "empty", cache, "not a kernel tree .has no top-level Makefile")
    write_tree(tmp_path / "other", {"Makefile": b"all:\n\ttrue\n"})
    _one_line_error(tmp_path / "other", cache, "its Makefile has no 'VERSION ='")


def test_corrupt_tarballs(tmp_path: Path, cache: Path) -> None:
    good = write_tar(tmp_path / "good.tar.gz", FINAL, TOP, "w:gz").read_bytes()
    (tmp_path / "trunc.tar.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.tar.xz").write_bytes(b"this is not xz at all" * 50)
    _one_line_error(tmp_path / "junk.tar.xz", cache, "corrupt or truncated archive")
    tree_or_error: TreeView | None = None
    with pytest.raises(TreeError, match="corrupt or truncated archive"):
        tree_or_error = open_tree(str(tmp_path / "trunc.tar.gz"), cache_dir=cache)
        tree_or_error.prepare(PATHS)  # the damage may sit after the Makefile
    (tmp_path / "nokernel.tar").write_bytes(write_tar(tmp_path / "x.tar", {"README": b"hi\n"}, "pkg").read_bytes())
    _one_line_error(tmp_path / "nokernel.tar", cache, "not a kernel tree")


def test_unsupported_file_types(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "tree.zip").write_bytes(b"PK\x03\x04 not supported")
    _one_line_error(tmp_path / "tree.zip", cache, "unsupported file type")
    (tmp_path / "kernel-4.19.90.x86_64.rpm").write_bytes(b"\xed\xab\xee\xdb")
    _one_line_error(tmp_path / "kernel-4.19.90.x86_64.rpm", cache, "binary RPM")
    (tmp_path / "fake.deb").write_bytes(b"not an ar archive")
    _one_line_error(tmp_path / "fake.deb", cache, "not an ar archive")


def test_rev_needs_git(kit: Kit, cache: Path) -> None:
    _one_line_error(source(kit, "folder"), cache, "needs git", rev="HEAD")


def test_unreadable_file(tmp_path: Path, cache: Path) -> None:
    """Permissions: as root they do not bite, so run that part as 'nobody'."""
    work = Path(tempfile.mkdtemp(prefix="pc-perm-"))
    try:
        work.chmod(0o755)
        tarball = write_tar(work / "t.tar.gz", FINAL, TOP, "w:gz")
        tarball.chmod(0o000)
        tree_dir = write_tree(work / "tree", FINAL)
        (tree_dir / "fs/nfsd/state.h").chmod(0o000)
        code = (
            "import sys; from pathlib import Path\n"
            "from patchcheck.trees import open_tree\nfrom patchcheck.errors import TreeError\n"
            f"c = Path({str(work / 'cache')!r})\n"
            "for spec in sys.argv[1:]:\n"
            "    try:\n"
            "        t = open_tree(spec, cache_dir=c); t.read('fs/nfsd/state.h')\n"
            "        print('no error')\n"
            "    except TreeError as e:\n"
            "        print(e)\n"
        )
        argv = [sys.executable, "-c", code, str(tarball), str(tree_dir)]
        if os.geteuid() == 0:
            if not have("setpriv"):
                pytest.skip("running as root without setpriv: permissions cannot be tested")
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, check=True)
        lines = out.stdout.splitlines()
        assert (
            lines[0] == f"{tarball}: not readable (permission denied); expected a kernel tree"
            " (folder, git checkout or source package)"
        )
        assert "fs/nfsd/state.h: not readable (permission denied)" in lines[1]
    finally:
        for p in work.rglob("*"):
            p.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)


def test_srpm_without_kernel_tarball(tmp_path: Path, cache: Path) -> None:
    if not have("rpmbuild"):
        pytest.skip("rpmbuild is not installed")
    srpm = build_srpm(tmp_path / "w", tmp_path / "out", tarball=False)
    _one_line_error(srpm, cache, "no kernel tarball inside")


def test_srpm_patch_that_does_not_apply(tmp_path: Path, cache: Path) -> None:
    if not have("rpmbuild"):
        pytest.skip("rpmbuild is not installed")
    srpm = build_srpm(
        tmp_path / "w",
        tmp_path / "out",
        patches={
            "0001-nfsd-check-clp.patch": PATCH1,
            "0002-nfsd-add-callback-wq.patch": PATCH2,
            "0003-bad.patch": BAD_PATCH,
        },
    )
    before = snapshot(srpm.parent)
    msg = _one_line_error(srpm, cache, "spec patch 0003-bad.patch does not apply")
    assert str(srpm) in msg
    assert snapshot(srpm.parent) == before


def test_dsc_with_a_missing_file(kit: Kit, tmp_path: Path, cache: Path) -> None:
    dsc = source(kit, "dsc-quilt")
    copy = tmp_path / dsc.name
    shutil.copy(dsc, copy)
    _one_line_error(copy, cache, r"linux_4\.19\.90\.orig\.tar\.xz.*no such file")


# -- named trees -----------------------------------------------------------------------------


def test_trees_file_names_and_validation(kit: Kit, tmp_path: Path, cache: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    rel = os.path.relpath(source(kit, "tar.gz"), conf)
    (conf / "trees.toml").write_text(
        f'[linux-4.19]\npath = "{rel}"\ndistro = "ky10"\nowner = "kernel team"\n\n'
        f'[base]\npath = "{source(kit, "git")}"\nrev = "v4.19.90-base"\n'
    )
    trees = load_trees_file(conf / "trees.toml")
    assert trees["linux-4.19"].path == source(kit, "tar.gz").absolute()
    assert trees["linux-4.19"].labels == {"owner": "kernel team"}
    tree = open_tree("linux-4.19", cache_dir=cache, trees_file=conf / "trees.toml")
    assert (tree.info.name, tree.info.distro, tree.info.kind) == ("linux-4.19", "ky10", "tarball")
    base = open_tree("base", cache_dir=cache, trees_file=conf / "trees.toml")
    assert base.read("fs/nfsd/new.c") is None and base.head() == kit.git_base
    msg = _one_line_error("nonesuch", cache, "not a name in", trees_file=conf / "trees.toml")
    assert "linux-4.19" in msg

    bad = {
        'x = "top-level string"\n': r"x: expected a \[x\] table",
        "[a]\ndistro = 'x'\n": r"\[a\]\.path: missing",
        "[a]\npath = 3\n": r"\[a\]\.path: expected a string",
        "[a]\npath = 'p'\nrev = true\n": r"\[a\]\.rev: expected a string",
        "[a\npath = 'p'\n": "not valid TOML",
    }
    for text, match in bad.items():
        (conf / "bad.toml").write_text(text)
        with pytest.raises(TreeError, match=match) as exc:
            load_trees_file(conf / "bad.toml")
        assert str(conf / "bad.toml") in str(exc.value)


def test_find_trees_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_trees_file(None) is None
    assert find_trees_file(Path("x.toml")) == Path("x.toml")
    user = tmp_path / "xdg" / "patchcheck" / "trees.toml"
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert find_trees_file(None) == user
    (tmp_path / "trees.toml").write_text("")
    assert find_trees_file(None) == tmp_path / "trees.toml"


def test_detect_kind_by_content(kit: Kit, tmp_path: Path) -> None:
    for label, kind in [("tar.xz", "tarball"), ("deb", "deb"), ("srpm", "srpm")]:
        renamed = tmp_path / f"no-suffix-{label}"
        shutil.copy(source(kit, label), renamed)
        assert detect_kind(renamed) == kind


def test_trees_list_command(kit: Kit, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "trees.toml").write_text(
        f'[good]\npath = "{source(kit, "folder")}"\n[gone]\npath = "missing-dir"\n'
    )
    rc = trees_cmd.run(argparse.Namespace(trees_file=tmp_path / "trees.toml", tree_cache=cache))
    out = capsys.readouterr().out
    assert rc == 2  # one tree is missing
    good = next(line for line in out.splitlines() if line.startswith("good"))
    assert "folder" in good and "4.19.90" in good and str(source(kit, "folder")) in good
    assert "no such file or folder" in out


def test_shipped_example_trees_file(cache: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "trees.toml"
    trees = load_trees_file(example)
    assert set(trees) == {"example"}
    if not (trees["example"].path / "Makefile").exists():
        pytest.skip("examples/linux is not there yet")
    tree = open_tree("example", cache_dir=cache, trees_file=example)
    assert tree.info.kind == "folder" and tree.info.version


def test_max_member_bytes_option_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchcheck import config
    from patchcheck.errors import BadInput

    monkeypatch.delenv("PATCHCHECK_MAX_MEMBER_BYTES", raising=False)
    assert config.max_member_bytes(None) is None  # the trees' default, 512 MiB
    assert config.max_member_bytes("512M") == 512 << 20
    assert config.max_member_bytes("2GiB") == 2 << 30
    assert config.max_member_bytes("4096") == 4096
    monkeypatch.setenv("PATCHCHECK_MAX_MEMBER_BYTES", "16k")
    assert config.max_member_bytes(None) == 16 << 10
    assert config.max_member_bytes("1M") == 1 << 20  # the option wins
    for bad in ("lots", "0", "-1", "1.5G", "12X"):
        with pytest.raises(BadInput, match=r"--max-member-bytes: expected a size .*, got "):
            config.max_member_bytes(bad)
