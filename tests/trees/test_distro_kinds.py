"""Every tree kind reports the distro its files name, and an openEuler-family SRPM reads as its
%prep leaves the tree for the chosen architecture (issue 17, tree items 1 and 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patchcheck.errors import TreeError
from patchcheck.trees import open_tree
from patchcheck.trees.specexpr import host_arch
from testing.distrotrees import (
    ARCH_FILE,
    ARCHES,
    CVE,
    FLAVOURS,
    SUBJECTS,
    UBUNTU_ABI,
    UBUNTU_CHANGELOG,
    UBUNTU_VERSION,
    OpenEulerSrpm,
    UbuntuGit,
    build_openeuler_srpm,
    build_ubuntu_dsc,
    build_ubuntu_git,
    export_folder,
    openeuler_spec,
)
from testing.treegen import have, run

# ---- Ubuntu: git checkout, plain folder, .dsc -----------------------------------------------


@pytest.fixture(scope="module")
def ubuntu(tmp_path_factory: pytest.TempPathFactory) -> UbuntuGit:
    return build_ubuntu_git(tmp_path_factory.mktemp("ubuntu") / "linux")


def _ubuntu_sources(ubuntu: UbuntuGit, tmp: Path) -> dict[str, Path]:
    out = {"git": ubuntu.path, "folder": export_folder(ubuntu.path, tmp / "linux-src")}
    if have("dpkg-source"):
        out["dsc"] = build_ubuntu_dsc(ubuntu.path, tmp / "work", tmp / "out")
    return out


def test_ubuntu_trees_report_distro_release_abi_and_changelog(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    for kind, path in _ubuntu_sources(ubuntu, tmp_path).items():
        tree = open_tree(str(path), cache_dir=tmp_path / "cache", arch="arm64")
        info = tree.info
        assert (info.kind, info.version, info.distro, info.release, info.abi, info.arch) == (
            kind,
            "6.8.12",
            "ubuntu",
            UBUNTU_VERSION,
            UBUNTU_ABI,
            "aarch64",  # Debian's name, given as --arch, turned to rpm's
        ), kind
        assert f"ubuntu noble {UBUNTU_VERSION}, ABI {UBUNTU_ABI} (from debian.master/changelog)" in info.notes
        # the changelog evidence the engine reads is debian.master/changelog, whole
        assert tree.changelog() == UBUNTU_CHANGELOG, kind
        assert CVE in UBUNTU_CHANGELOG and "nfsd: keep the callback workqueue alive" in UBUNTU_CHANGELOG


def test_debian_changelog_pointing_at_debian_master(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    """A folder without debian.env whose debian/changelog is a link to debian.master's."""
    folder = export_folder(ubuntu.path, tmp_path / "linux")
    (folder / "debian" / "debian.env").unlink()
    os.symlink("../debian.master/changelog", folder / "debian" / "changelog")
    tree = open_tree(str(folder), cache_dir=tmp_path / "cache")
    assert (tree.info.distro, tree.info.release, tree.info.abi) == ("ubuntu", UBUNTU_VERSION, UBUNTU_ABI)
    assert tree.changelog() == UBUNTU_CHANGELOG


def test_git_rev_reads_the_changelog_of_that_commit(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    tree = open_tree(str(ubuntu.path), cache_dir=tmp_path / "cache", rev=ubuntu.commits["packaging"])
    assert (tree.info.distro, tree.info.release, tree.info.abi) == ("ubuntu", "6.8.0-28.28", "6.8.0-28")
    assert SUBJECTS["cherry_pick"] not in (tree.changelog() or "")


def test_plain_tree_has_no_distro(tmp_path: Path) -> None:
    folder = tmp_path / "linux"
    folder.mkdir()
    (folder / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    tree = open_tree(str(folder), cache_dir=tmp_path / "cache")
    assert (tree.info.distro, tree.info.release, tree.info.abi, tree.info.arch) == (None, None, None, host_arch())
    assert tree.changelog() is None


def test_tarball_named_as_the_installed_source(tmp_path: Path) -> None:
    from testing.distrotrees import write_kernel_tarball

    tar = write_kernel_tarball(tmp_path / "linux-4.19.90-2102.2.0.0068.ctl2.tar.gz")
    tree = open_tree(str(tar), cache_dir=tmp_path / "cache", arch="aarch64")
    assert (tree.info.distro, tree.info.release, tree.info.arch) == (
        "ctyunos",
        "4.19.90-2102.2.0.0068.ctl2",
        "aarch64",
    )


# ---- openEuler family: SRPMs built with rpmbuild ------------------------------------------


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def srpm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpenEulerSrpm:
    if not have("rpmbuild"):
        pytest.skip("needs rpmbuild")
    root = tmp_path_factory.mktemp(str(request.param))
    return build_openeuler_srpm(root / "work", root / "out", str(request.param))


@pytest.mark.parametrize("arch", ARCHES)
def test_srpm_reads_as_its_prep_leaves_it(srpm: OpenEulerSrpm, arch: str, tmp_path: Path) -> None:
    tree = open_tree(str(srpm.path), cache_dir=tmp_path / "cache", arch=arch)
    every = {p for a in ARCHES for p in srpm.final[a]} | {"clang.c"}
    tree.prepare(every)
    got = {p: tree.read(p) for p in sorted(every)}
    assert got == {p: srpm.final[arch].get(p) for p in sorted(every)}
    info = tree.info
    distro = {"kylin": "kylin", "ctyunos": "ctyunos", "openeuler": "openeuler"}[srpm.flavour]
    release = f"4.19.90-{srpm.release}"
    assert (info.kind, info.version, info.distro, info.release, info.abi, info.arch) == (
        "srpm",
        "4.19.90",
        distro,
        release,
        release,
        arch,
    )
    # 4 from series.conf, 1003, the arch's own, 1006 -R; the placeholder is skipped
    assert f"applied 7 patches for {arch} (kernel.spec %prep order)" in info.notes
    assert "skipped 1004-optional-placeholder.patch (ApplyOptionalPatch: empty)" in info.notes
    # the one undecided condition is in %build: nothing about the queue to say
    assert not any("could not evaluate" in n for n in info.notes)
    assert CVE in (tree.changelog() or "")


def test_srpm_arches_share_a_cache_but_not_a_queue(tmp_path: Path) -> None:
    if not have("rpmbuild"):
        pytest.skip("needs rpmbuild")
    s = build_openeuler_srpm(tmp_path / "w", tmp_path / "o", "ctyunos")
    cache = tmp_path / "cache"
    for _ in range(2):  # the second round reads the applied queues from the cache
        for arch in ARCHES:
            tree = open_tree(str(s.path), cache_dir=cache, arch=arch)
            for a in ARCHES:
                path, data = ARCH_FILE[a]
                assert tree.read(path) == (data if a == arch else None)


def _build(tmp: Path, spec: str, sources: dict[str, bytes]) -> Path:
    top = tmp / "rpmbuild"
    (top / "SOURCES").mkdir(parents=True)
    (top / "SPECS").mkdir()
    for name, data in sources.items():
        (top / "SOURCES" / name).write_bytes(data)
    (top / "SPECS" / "kernel.spec").write_text(spec)
    run("rpmbuild", "-bs", "--define", f"_topdir {top}", "--define", "dist .ky10", top / "SPECS" / "kernel.spec")
    (built,) = (top / "SRPMS").glob("*.src.rpm")
    return Path(shutil.move(built, tmp / built.name))


def test_undecided_prep_condition_is_noted_and_both_branches_applied(srpm: OpenEulerSrpm, tmp_path: Path) -> None:
    if srpm.flavour != "kylin":
        pytest.skip("one flavour is enough")
    # the arch patches now hang on a value only rpm could compute (a %(...) shell macro)
    spec = openeuler_spec("kylin").replace("%ifarch x86_64\n", '%if "%{buildhost}" == "x86-builder"\n')
    path = _build(tmp_path, spec, srpm.sources)
    tree = open_tree(str(path), cache_dir=tmp_path / "cache", arch="aarch64")
    x86_path, x86_data = ARCH_FILE["x86_64"]
    assert tree.read(x86_path) == x86_data  # kept: the branch may be taken
    assert tree.read(ARCH_FILE["aarch64"][0]) == ARCH_FILE["aarch64"][1]
    notes = "\n".join(tree.info.notes)
    assert "could not evaluate" in notes and "buildhost" in notes
    assert "applied 1001-x86-only.patch though the condition around it could not be decided" in notes


def test_series_naming_a_missing_patch_is_a_one_line_error(srpm: OpenEulerSrpm, tmp_path: Path) -> None:
    if srpm.flavour != "openeuler":
        pytest.skip("one flavour is enough")
    sources = dict(srpm.sources)
    sources["series.conf"] = sources["series.conf"] + b"patches/9999-not-there.patch\n"
    path = _build(tmp_path, openeuler_spec("openeuler"), sources)
    with pytest.raises(
        TreeError, match=r"series.conf line 7 names patches/9999-not-there.patch; no patch tarball"
    ):
        open_tree(str(path), cache_dir=tmp_path / "cache", arch="x86_64")


# ---- tree names as the card uses them: the trees file and `patchcheck trees list` ----------


@pytest.fixture(scope="module")
def shelf(ubuntu: UbuntuGit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trees file naming an Ubuntu git checkout, folder and .dsc, and the three openEuler
    flavours' SRPMs (the Kylin one twice, once per arch)."""
    if not (have("rpmbuild") and have("dpkg-source")):
        pytest.skip("needs rpmbuild and dpkg-source")
    root = tmp_path_factory.mktemp("shelf")
    dsc = build_ubuntu_dsc(ubuntu.path, root / "dsc-work", root / "dsc")
    folder = export_folder(ubuntu.path, root / "linux-6.8.0")
    rpms = {f: build_openeuler_srpm(root / f / "work", root / f / "out", f).path for f in sorted(FLAVOURS)}
    (root / "trees.toml").write_text(
        f'[noble-git]\npath = "{ubuntu.path}"\n'
        f'[noble-folder]\npath = "{folder}"\n'
        f'[noble-dsc]\npath = "{dsc}"\n'
        f'[ky10]\npath = "{rpms["kylin"]}"\n'
        f'[ky10-arm]\npath = "{rpms["kylin"]}"\narch = "arm64"\n'
        f'["linux-4.19"]\npath = "{rpms["ctyunos"]}"\n'
        f'[oe1]\npath = "{rpms["openeuler"]}"\n'
    )
    return root


def _trees_list(shelf: Path, *extra: str) -> tuple[int, list[list[str]]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("PATCHCHECK_ARCH", None)
    cmd = [sys.executable, "-m", "patchcheck", "trees", "list", "--trees-file", str(shelf / "trees.toml")]
    cp = subprocess.run(
        [*cmd, "--cache-dir", str(shelf / "cache"), *extra], capture_output=True, text=True, env=env, timeout=120
    )
    print(cp.stdout)
    lines = cp.stdout.splitlines()
    assert lines[0] == f"# {shelf / 'trees.toml'}" and lines[1].split() == [
        *("name", "kind", "version", "distro", "release", "arch", "source"),
    ], cp.stdout + cp.stderr
    return cp.returncode, [line.split()[:6] for line in lines[3:]]


def test_trees_list_shows_kind_version_distro_release_arch(shelf: Path) -> None:
    rc, rows = _trees_list(shelf, "--arch", "x86_64")
    assert rc == 0
    assert rows == [
        ["noble-git", "git", "6.8.12", "ubuntu", UBUNTU_VERSION, "x86_64"],
        ["noble-folder", "folder", "6.8.12", "ubuntu", UBUNTU_VERSION, "x86_64"],
        ["noble-dsc", "dsc", "6.8.12", "ubuntu", UBUNTU_VERSION, "x86_64"],
        ["ky10", "srpm", "4.19.90", "kylin", "4.19.90-52.39.v2207.ky10", "x86_64"],
        ["ky10-arm", "srpm", "4.19.90", "kylin", "4.19.90-52.39.v2207.ky10", "aarch64"],  # its own arch wins
        ["linux-4.19", "srpm", "4.19.90", "ctyunos", "4.19.90-2102.2.0.0068.ctl2", "x86_64"],
        ["oe1", "srpm", "4.19.90", "openeuler", "4.19.90-2102.2.0.0068.oe1", "x86_64"],
    ]
    rc, rows = _trees_list(shelf, "--arch", "aarch64")
    assert rc == 0 and {r[0]: r[5] for r in rows}["ky10"] == "aarch64"


def test_tree_name_resolves_the_trees_file_entry(shelf: Path) -> None:
    tree = open_tree("linux-4.19", cache_dir=shelf / "cache", trees_file=shelf / "trees.toml", arch="aarch64")
    assert (tree.info.name, tree.info.distro, tree.info.arch) == ("linux-4.19", "ctyunos", "aarch64")
    assert tree.read(ARCH_FILE["aarch64"][0]) == ARCH_FILE["aarch64"][1]
    arm = open_tree("ky10-arm", cache_dir=shelf / "cache", trees_file=shelf / "trees.toml")
    assert arm.info.arch == "aarch64" and arm.read(ARCH_FILE["x86_64"][0]) is None


def test_bad_arch_is_a_one_line_error(shelf: Path, tmp_path: Path) -> None:
    bad = tmp_path / "trees.toml"
    bad.write_text(f'[x]\npath = "{shelf / "linux-6.8.0"}"\narch = "x86 64"\n')
    with pytest.raises(TreeError, match=r"\[x\]\.arch: 'x86 64': expected an architecture"):
        open_tree("x", cache_dir=tmp_path / "cache", trees_file=bad)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATCHCHECK_ARCH": "../x"}
    cmd = [sys.executable, "-m", "patchcheck", "trees", "list", "--trees-file", str(shelf / "trees.toml")]
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert "PATCHCHECK_ARCH: '../x': expected an architecture" in cp.stderr
