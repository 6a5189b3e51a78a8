"""Distro detection from the files a tree ships, from RPM releases and from kernel releases."""

from __future__ import annotations

import time

import pytest

from patchcheck.trees.distro import (
    DistroInfo,
    Reader,
    detect,
    from_debian_changelog,
    from_rpm,
    from_spec,
    parse_kernel_release,
    spec_changelog,
)

UBUNTU_LOG = """\
linux (6.8.0-31.31) noble; urgency=medium

  * noble/linux: 6.8.0-31.31 -proposed tracker (LP: #2000001)

  * Noble update: v6.8.12 upstream stable release (LP: #2000002)
    - nfsd: a made-up subject that is long enough to wrap onto a second changelog
      line
    - Linux 6.8.12

  * CVE-2024-1234
    - net: made-up fix for a conntrack helper

 -- Kernel Packager <kernel@example.org>  Mon, 22 Apr 2024 10:00:00 +0000

linux (6.8.0-28.28) noble; urgency=medium

  * older entry

 -- Kernel Packager <kernel@example.org>  Mon, 08 Apr 2024 10:00:00 +0000
"""


def reader(files: dict[str, str]) -> Reader:
    def read(path: str) -> bytes | None:
        data = files.get(path)
        return None if data is None else data.encode()

    return read


def test_ubuntu_git_tree() -> None:
    info = detect(reader({"debian/debian.env": "DEBIAN=debian.master\n", "debian.master/changelog": UBUNTU_LOG}))
    assert info is not None
    assert (info.distro, info.family, info.package, info.version, info.release, info.abi) == (
        "ubuntu",
        "debian",
        "linux",
        "6.8.0-31.31",
        "noble",
        "6.8.0-31",
    )
    assert info.changelog_path == "debian.master/changelog" and info.changelog == UBUNTU_LOG
    assert info.evidence == "debian.master/changelog" and info.notes == ()


def test_ubuntu_without_debian_env() -> None:
    info = detect(reader({"debian.master/changelog": UBUNTU_LOG}))
    assert info is not None and info.distro == "ubuntu" and info.abi == "6.8.0-31"


def test_ubuntu_derivative_folder() -> None:
    log = UBUNTU_LOG.replace("linux (6.8.0-31.31)", "linux-aws (6.8.0-1008.8)")
    files = {
        "debian/debian.env": "DEBIAN=debian.aws\n",
        "debian.aws/changelog": log,
        "debian.master/changelog": UBUNTU_LOG,
    }
    info = detect(reader(files))
    assert info is not None
    assert (info.package, info.version, info.abi, info.changelog_path) == (
        "linux-aws",
        "6.8.0-1008.8",
        "6.8.0-1008",
        "debian.aws/changelog",
    )


def test_debian_env_naming_a_missing_folder_falls_back_with_a_note() -> None:
    files = {"debian/debian.env": "DEBIAN=debian.gone\n", "debian/changelog": UBUNTU_LOG}
    info = detect(reader(files))
    assert info is not None and info.distro == "ubuntu" and info.changelog_path == "debian/changelog"
    assert info.notes == ("debian/debian.env names debian.gone, which has no changelog; read debian/changelog",)


def test_debian_env_cannot_point_outside() -> None:
    files = {"debian/debian.env": "DEBIAN=../../etc\n", "debian/changelog": UBUNTU_LOG}
    info = detect(reader(files))
    assert info is not None and info.changelog_path == "debian/changelog"


def test_ubuntu_source_package_layout() -> None:
    # a .dsc unpacks debian/changelog beside debian.master/: debian.env decides
    files = {"debian/debian.env": "DEBIAN=debian.master\n", "debian/changelog": UBUNTU_LOG}
    info = detect(reader(files))
    assert info is not None and info.distro == "ubuntu" and info.release == "noble"


def test_unreleased_top_entry() -> None:
    log = "linux (6.8.0-32.32) UNRELEASED; urgency=medium\n\n  * wip\n\n" + UBUNTU_LOG
    info = from_debian_changelog(log, path="debian.master/changelog", ubuntu=True)
    assert info is not None and (info.version, info.release) == ("6.8.0-32.32", "noble")
    assert info.notes == (
        "debian.master/changelog: the top entry (6.8.0-32.32) is UNRELEASED: a tree between uploads",
    )


DEBIAN_LOG = """\
linux (6.1.90-1) bookworm-security; urgency=high

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.1.90
    - made-up: subject of a stable patch

 -- Debian Kernel Team <kernel@example.org>  Sat, 04 May 2024 00:00:00 +0000
"""


def test_debian_tree_with_abiname() -> None:
    files = {"debian/changelog": DEBIAN_LOG, "debian/config/defines": "[abi]\nabiname: 21\n"}
    info = detect(reader(files))
    assert info is not None
    assert (info.distro, info.version, info.release, info.abi) == ("debian", "6.1.90-1", "bookworm", "6.1.0-21")


def test_debian_without_defines_has_no_abi() -> None:
    info = detect(reader({"debian/changelog": DEBIAN_LOG}))
    assert info is not None and info.distro == "debian" and info.abi is None


def test_guess_between_debian_and_ubuntu() -> None:
    unstable = DEBIAN_LOG.replace("bookworm-security", "unstable")
    assert (from_debian_changelog(unstable, path="c") or DistroInfo("", "")).distro == "debian"
    odd = UBUNTU_LOG.replace("noble", "somefuture")
    assert (from_debian_changelog(odd, path="c") or DistroInfo("", "")).distro == "ubuntu"  # by its version shape
    assert from_debian_changelog("not a changelog\n", path="c") is None


@pytest.mark.parametrize(
    ("text", "distro", "release", "abi", "arch"),
    [
        ("4.19.90-52.39.v2207.ky10.aarch64", "kylin", "ky10", "4.19.90-52.39.v2207.ky10", "aarch64"),
        ("4.19.90-2102.2.0.0068.ctl2.x86_64", "ctyunos", "ctl2", "4.19.90-2102.2.0.0068.ctl2", "x86_64"),
        ("linux-4.19.90-2102.2.0.0068.ctl2", "ctyunos", "ctl2", "4.19.90-2102.2.0.0068.ctl2", None),
        (
            "kernel-5.10.0-136.12.0.86.oe2203sp1.x86_64",
            "openeuler",
            "oe2203sp1",
            "5.10.0-136.12.0.86.oe2203sp1",
            "x86_64",
        ),
        ("4.19.90-2305.1.0.0199.56.uel20.aarch64", "uos", "uel20", "4.19.90-2305.1.0.0199.56.uel20", "aarch64"),
        (
            "/usr/src/linux-4.19.90-25.2.v2101.gfb01.ky10.aarch64/",
            "kylin",
            "ky10",
            "4.19.90-25.2.v2101.gfb01.ky10",
            "aarch64",
        ),
        ("6.8.0-59-generic", "ubuntu", None, "6.8.0-59", None),
        ("6.1.0-21-amd64", "debian", None, "6.1.0-21", None),
        ("6.1.0-21-cloud-arm64", "debian", None, "6.1.0-21", None),
    ],
)
def test_kernel_releases(text: str, distro: str, release: str | None, abi: str, arch: str | None) -> None:
    info = parse_kernel_release(text)
    assert info is not None
    assert (info.distro, info.release, info.abi, info.arch) == (distro, release, abi, arch)


@pytest.mark.parametrize("text", ["", "linux-6.8.0", "4.19.90-1.unknowntag", "hello world", "6.8.0-59"])
def test_unrecognised_releases(text: str) -> None:
    assert parse_kernel_release(text) is None


def test_kylin_build_line_is_noted() -> None:
    info = parse_kernel_release("4.19.90-52.39.v2207.ky10.aarch64")
    assert info is not None and info.family == "openeuler" and info.notes == ("Kylin build line v2207",)


SPEC = """\
%global hulkrelease 2102.2.0
Name: kernel
Version: 4.19.90
Release: %{hulkrelease}.0068%{?dist}
%build
make openeuler_defconfig
%changelog
* Mon Jan 01 2024 Dev <dev@example.org> - 4.19.90-2102.2.0.0068
- nfsd: made-up fix (CVE-2024-1234)
"""


def test_from_rpm_header_with_spec_changelog() -> None:
    info = from_rpm("kernel", "4.19.90", "2102.2.0.0068.ctl2", arch="x86_64", spec_text=SPEC)
    assert info is not None
    assert (info.distro, info.family, info.package, info.version, info.release, info.arch) == (
        "ctyunos",
        "openeuler",
        "kernel",
        "4.19.90-2102.2.0.0068.ctl2",
        "ctl2",
        "x86_64",
    )
    assert info.changelog_path == "%changelog" and info.changelog is not None
    assert "CVE-2024-1234" in info.changelog and info.changelog.startswith("* Mon Jan 01 2024")


def test_from_rpm_without_dist_tag() -> None:
    info = from_rpm("kernel", "4.19.90", "2102.2.0.0068", spec_text=SPEC)
    assert info is not None and info.distro == "openeuler"
    assert info.notes == ("release 2102.2.0.0068 has no dist tag; the spec names openEuler",)
    assert from_rpm("kernel", "4.19.90", "2102.2.0.0068") is None


def test_from_spec_evaluates_the_tags() -> None:
    info = from_spec(SPEC, arch="aarch64", macros={"dist": ".oe1"})
    assert info is not None and (info.distro, info.version, info.arch) == (
        "openeuler",
        "4.19.90-2102.2.0.0068.oe1",
        "aarch64",
    )
    assert from_spec("Name: x\n") is None


def test_folder_name_and_defconfig_hints() -> None:
    empty = reader({})
    info = detect(empty, name="linux-4.19.90-52.39.v2207.ky10.aarch64")
    assert info is not None and (info.distro, info.arch, info.evidence) == ("kylin", "aarch64", "folder name")
    info = detect(reader({"arch/arm64/configs/openeuler_defconfig": "CONFIG_X=y\n"}), arch="aarch64")
    assert info is not None and (info.distro, info.evidence, info.arch) == (
        "openeuler",
        "openeuler_defconfig",
        "aarch64",
    )
    assert detect(empty, name="linux-6.8") is None


def test_spec_changelog() -> None:
    assert spec_changelog("Name: x\n") is None
    assert spec_changelog("%changelog\n") is None
    assert spec_changelog("%changelog\n* a\n- b\n\n") == "* a\n- b\n"


def test_huge_changelog_is_read_quickly() -> None:
    big = UBUNTU_LOG + ("    - filler line of a long changelog\n" * 400_000)
    start = time.monotonic()
    info = detect(reader({"debian.master/changelog": big}))
    assert time.monotonic() - start < 10  # a bound, not a benchmark
    assert info is not None and info.version == "6.8.0-31.31"
