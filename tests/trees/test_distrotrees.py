"""The distro tree builders make what they claim, and the spec/series/distro readers read them."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from patchcheck.evidence.changelog import changelog_match
from patchcheck.trees._common import makefile_version
from patchcheck.trees.distro import Reader, detect, from_rpm, from_spec
from patchcheck.trees.kernelqueue import (
    is_placeholder,
    parse_series_conf,
    prep_steps,
    resolve_member,
    series_symbols,
)
from patchcheck.trees.specprep import preprocess
from testing.distrotrees import (
    ARCHES,
    CVE,
    FLAVOURS,
    SPEC_PATCHES,
    SUBJECTS,
    UBUNTU_ABI,
    UBUNTU_VERSION,
    UPSTREAM,
    OpenEulerSrpm,
    UbuntuGit,
    build_openeuler_srpm,
    build_ubuntu_dsc,
    build_ubuntu_git,
    export_folder,
)
from testing.treegen import have


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def git_reader(repo: Path, rev: str = "HEAD") -> Reader:
    def read(path: str) -> bytes | None:
        done = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True)
        return done.stdout if done.returncode == 0 else None

    return read


def folder_reader(root: Path) -> Reader:
    def read(path: str) -> bytes | None:
        p = root / path
        return p.read_bytes() if p.is_file() else None

    return read


def folder_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tar_files(path: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


# ---- Ubuntu ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ubuntu(tmp_path_factory: pytest.TempPathFactory) -> UbuntuGit:
    return build_ubuntu_git(tmp_path_factory.mktemp("ubuntu") / "linux")


def test_ubuntu_git_history(ubuntu: UbuntuGit) -> None:
    subjects = git(ubuntu.path, "log", "--format=%s").splitlines()
    assert subjects == [
        f"UBUNTU: Ubuntu-{UBUNTU_VERSION}",
        SUBJECTS["backport"],
        SUBJECTS["stable"],
        SUBJECTS["cherry_pick"],
        SUBJECTS["sauce"],
        "UBUNTU: [Packaging] fixture packaging",
        "Linux 6.8",
    ]
    assert git(ubuntu.path, "rev-parse", f"Ubuntu-{UBUNTU_VERSION}").strip() == ubuntu.head
    picked = git(ubuntu.path, "log", "-1", "--format=%B", ubuntu.commits["cherry_pick"])
    assert f"(cherry picked from commit {UPSTREAM['cherry_pick']})" in picked.splitlines()
    backported = git(ubuntu.path, "log", "-1", "--format=%B", ubuntu.commits["backport"]).splitlines()
    assert f"(backported from commit {UPSTREAM['backport']})" in backported and backported.count(CVE) == 2
    assert SUBJECTS["sauce"].startswith("UBUNTU: SAUCE: ")


def test_ubuntu_git_tree_content(ubuntu: UbuntuGit) -> None:
    listed = git(ubuntu.path, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert sorted(listed) == sorted(ubuntu.files)
    read = git_reader(ubuntu.path)
    assert all(read(p) == data for p, data in ubuntu.files.items())
    assert makefile_version(read("Makefile")) == "6.8.12"
    assert makefile_version(git_reader(ubuntu.path, "v6.8")("Makefile")) == "6.8.0"
    assert read("debian/changelog") is None  # generated at build time, not tracked


def test_ubuntu_git_is_detected_with_its_changelog(ubuntu: UbuntuGit) -> None:
    info = detect(git_reader(ubuntu.path))
    assert info is not None
    assert (info.distro, info.release, info.version, info.abi, info.changelog_path) == (
        "ubuntu",
        "noble",
        UBUNTU_VERSION,
        UBUNTU_ABI,
        "debian.master/changelog",
    )
    log = info.changelog or ""
    # the changelog is evidence: a wrapped stable subject and a CVE are both found in it
    assert changelog_match(log, subject=SUBJECTS["cherry_pick"], cves=[]) is not None
    assert changelog_match(log, subject="unrelated: subject never listed anywhere", cves=[CVE]) is not None
    assert changelog_match(log, subject="unrelated: subject never listed anywhere", cves=["CVE-2000-0001"]) is None


def test_ubuntu_folder(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    folder = export_folder(ubuntu.path, tmp_path / "linux-6.8.0")
    assert folder_files(folder) == ubuntu.files
    info = detect(folder_reader(folder), name=folder.name)
    assert info is not None and (info.distro, info.abi) == ("ubuntu", UBUNTU_ABI)


@pytest.mark.skipif(not have("dpkg-source"), reason="needs dpkg-source")
def test_ubuntu_dsc(ubuntu: UbuntuGit, tmp_path: Path) -> None:
    dsc = build_ubuntu_dsc(ubuntu.path, tmp_path / "work", tmp_path / "out")
    assert dsc.name == f"linux_{UBUNTU_VERSION}.dsc"
    assert sorted(p.name for p in dsc.parent.iterdir()) == sorted(
        [dsc.name, "linux_6.8.0.orig.tar.gz", f"linux_{UBUNTU_VERSION}.diff.gz"]
    )
    subprocess.run(["dpkg-source", "-x", str(dsc), str(tmp_path / "x")], check=True, capture_output=True)
    unpacked = folder_files(tmp_path / "x")
    assert unpacked.pop("debian/changelog") == ubuntu.files["debian.master/changelog"]
    assert unpacked.pop("debian/control").startswith(b"Source: linux\n")
    assert unpacked == ubuntu.files
    info = detect(folder_reader(tmp_path / "x"))
    assert info is not None and (info.distro, info.version, info.release) == ("ubuntu", UBUNTU_VERSION, "noble")


# ---- openEuler family -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def srpm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpenEulerSrpm:
    if not have("rpmbuild"):
        pytest.skip("needs rpmbuild")
    root = tmp_path_factory.mktemp(str(request.param))
    return build_openeuler_srpm(root / "work", root / "out", str(request.param))


def unpack(srpm: OpenEulerSrpm, dest: Path) -> Path:
    dest.mkdir()
    script = f'rpm2cpio "{srpm.path}" | cpio -idmu --quiet'
    subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=dest, check=True, capture_output=True)
    return dest


def test_srpm_header_and_files(srpm: OpenEulerSrpm) -> None:
    assert srpm.path.name == f"kernel-4.19.90-{srpm.release}.src.rpm"
    fmt = "%{NAME} %{VERSION} %{RELEASE} %{SOURCERPM}"
    out = subprocess.run(["rpm", "-qp", "--qf", fmt, str(srpm.path)], check=True, capture_output=True, text=True)
    assert out.stdout == f"kernel 4.19.90 {srpm.release} (none)"
    listed = subprocess.run(["rpm", "-qpl", str(srpm.path)], check=True, capture_output=True, text=True)
    assert sorted(listed.stdout.split()) == sorted(["kernel.spec", *srpm.sources])
    assert {"kernel.tar.gz", "patches.tar.bz2", "series.conf", *SPEC_PATCHES} == set(srpm.sources)
    expected = {"kylin": "52.39.v2207.ky10", "ctyunos": "2102.2.0.0068.ctl2", "openeuler": "2102.2.0.0068.oe1"}
    assert srpm.release == expected[srpm.flavour]


def test_srpm_kernel_tarball_is_a_4_19_90_tree(srpm: OpenEulerSrpm, tmp_path: Path) -> None:
    src = unpack(srpm, tmp_path / "src")
    assert makefile_version(tar_files(src / "kernel.tar.gz")["kernel/Makefile"]) == "4.19.90"
    assert (src / "kernel.spec").read_text() == srpm.spec


def test_srpm_distro(srpm: OpenEulerSrpm) -> None:
    distro = {"kylin": "kylin", "ctyunos": "ctyunos", "openeuler": "openeuler"}[srpm.flavour]
    info = from_rpm("kernel", srpm.version, srpm.release, arch="aarch64", spec_text=srpm.spec)
    assert info is not None
    assert (info.distro, info.family, info.release, info.version) == (
        distro,
        "openeuler",
        srpm.dist,
        f"4.19.90-{srpm.release}",
    )
    assert CVE in (info.changelog or "")
    from_tags = from_spec(srpm.spec, arch="x86_64", macros={"dist": "." + srpm.dist})
    assert from_tags is not None and (from_tags.distro, from_tags.version) == (distro, info.version)


@pytest.mark.parametrize("arch", ARCHES)
def test_srpm_spec_queue_for_each_arch(srpm: OpenEulerSrpm, arch: str) -> None:
    ev = preprocess(srpm.spec, arch, {"dist": "." + srpm.dist}, label="kernel.spec")
    assert ev.expand("%{release}") == srpm.release
    assert dict(ev.sources) == {0: "kernel.tar.gz", 9002: "series.conf", 9998: "patches.tar.bz2"}
    assert sorted(ev.patches.values()) == sorted(SPEC_PATCHES)
    # the only undecided condition tests %(hostname), in %build: the queue is certain
    assert len(ev.undecided) == 1 and "%build" not in ev.notes[0] and "buildhost" in ev.notes[0]
    q = prep_steps(ev, label="kernel.spec")
    assert q.notes == () and all(s.certain for s in q.steps)
    applied = [
        (s.file, s.reverse) for s in q.steps if not (s.kind == "optional" and is_placeholder(srpm.sources[s.file]))
    ]
    assert applied == srpm.queue[arch]


@pytest.mark.parametrize("arch", ARCHES)
def test_srpm_queue_applies_to_the_claimed_tree(srpm: OpenEulerSrpm, arch: str, tmp_path: Path) -> None:
    """Our readers' queue, run with GNU patch on the SRPM's own files, gives ``final``."""
    src = unpack(srpm, tmp_path / "src")
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(
        ["tar", "-xzf", str(src / "kernel.tar.gz"), "--strip-components=1", "-C", str(tree)], check=True
    )
    patch_data = tar_files(src / "patches.tar.bz2")
    members = set(patch_data)
    ev = preprocess(srpm.spec, arch, {"dist": "." + srpm.dist})
    for step in prep_steps(ev).steps:
        if step.kind == "series":
            series = parse_series_conf((src / step.file).read_text(), series_symbols(arch))
            todo = [
                (patch_data[resolve_member(e.name, set(members)) or ""], e.strip, e.reverse)
                for e in series.entries
            ]
        else:
            data = (src / step.file).read_bytes()
            if step.kind == "optional" and is_placeholder(data):
                continue
            todo = [(data, step.strip, step.reverse)]
        for data, strip, reverse in todo:
            args = ["patch", "-s", "-F0", f"-p{strip}", *(["-R"] if reverse else []), "--no-backup-if-mismatch"]
            subprocess.run(args, input=data, cwd=tree, check=True, capture_output=True)
    assert folder_files(tree) == srpm.final[arch]
