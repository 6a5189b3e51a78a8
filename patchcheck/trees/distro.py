"""Which distro a kernel tree comes from, read from the files it ships. Pure: text in, facts out.

- Ubuntu: ``debian/debian.env`` names the packaging folder (``DEBIAN=debian.master``, or
  ``debian.aws``... for derivatives); its ``changelog`` opens with ``linux (6.8.0-31.31) noble;``:
  series noble, version 6.8.0-31.31, ABI 6.8.0-31 (``uname -r`` is 6.8.0-31-generic). That
  changelog lists the upstream stable subjects and CVE ids merged: changelog evidence.
- Debian: ``debian/changelog`` of the ``linux`` source package; the ABI number is ``abiname`` in
  ``debian/config/defines`` (6.1.90-1 with abiname 21 runs as 6.1.0-21-amd64).
- openEuler and the distros built from it (Kylin V10, CTyunOS, UOS): the dist tag that ends the
  RPM release (``4.19.90-52.39.v2207.ky10``: Kylin; ``...0068.ctl2``: CTyunOS; ``.oe2203``:
  openEuler 22.03), from an SRPM header, a spec, or a folder named like the installed source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from patchcheck.trees.specprep import preprocess

Reader = Callable[[str], bytes | None]  # a tree file's bytes, None when absent

UBUNTU_SERIES = frozenset(
    {
        *("trusty", "xenial", "bionic", "cosmic", "disco", "eoan", "focal", "groovy", "hirsute", "impish"),
        *("jammy", "kinetic", "lunar", "mantic", "noble", "oracular", "plucky", "questing"),
    }
)
DEBIAN_SUITES = frozenset(
    {
        *("jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke"),
        *("sid", "unstable", "experimental"),
    }
)
# (dist tag pattern, distro, family); the tag is the last part of an RPM release
DIST_TAGS = (
    (re.compile(r"oe\d*(?:sp\d+)?"), "openeuler", "openeuler"),
    (re.compile(r"ky\d+"), "kylin", "openeuler"),
    (re.compile(r"ctl\d+"), "ctyunos", "openeuler"),
    (re.compile(r"uel\d+"), "uos", "openeuler"),
    (re.compile(r"an\d+(?:_\d+)?"), "anolis", "rhel"),
    (re.compile(r"el\d+(?:_\d+)?"), "rhel", "rhel"),
    (re.compile(r"fc\d+"), "fedora", "rhel"),
)
RPM_ARCHES = ("x86_64", "aarch64", "i686", "ppc64le", "s390x", "riscv64", "loongarch64", "noarch", "src")
# Debian's flavours name an arch (amd64, cloud-arm64, 686-pae); Ubuntu's do not (generic, aws)
_DEBIAN_FLAVOUR = re.compile(r"(?:^|-)(?:amd64|arm64|686|armmp|armel|ppc64|powerpc64|s390x|mips|riscv64|loong64)")
_CHANGELOG_TOP = re.compile(r"^([a-z0-9][a-z0-9.+-]*) \(([^()\s]+)\) ([^;\n]+);", re.M)
_ENV_DIR = re.compile(rb"^\s*DEBIAN\s*=\s*(debian\.[A-Za-z0-9_.+-]+)\s*$", re.M)
_ABINAME = re.compile(r"^\s*abiname\s*[:=]\s*['\"]?([\w.+~-]+)", re.M)
_UBUNTU_VERSION = re.compile(r"^(\d+\.\d+\.\d+)-(\d+)\.\d+")
_UNAME_SHORT = re.compile(r"^(\d+\.\d+\.\d+)-(\d+)-([a-z0-9][a-z0-9-]*)$")
_RPM_RELEASE = re.compile(
    r"^(?:(?:linux|kernel)-)?(\d+\.\d+(?:\.\d+)?)-([0-9A-Za-z_.+~]+?)(?:\.(" + "|".join(RPM_ARCHES) + r"))?$"
)
_DEFCONFIGS = ("arch/arm64/configs/openeuler_defconfig", "arch/x86/configs/openeuler_defconfig")
# what ``detect`` may read (besides the changelog of a folder debian.env names): archive kinds
# extract these with the Makefile, in the same pass
PROBES = (
    "debian/debian.env",
    "debian.master/changelog",
    "debian/changelog",
    "debian/config/defines",
    "debian/config/defines.toml",
    *_DEFCONFIGS,
)


@dataclass(frozen=True)
class DistroInfo:
    distro: str  # ubuntu | debian | openeuler | kylin | ctyunos | uos | anolis | rhel | fedora
    family: str  # debian | openeuler | rhel
    package: str | None = None  # source package: linux, linux-aws, kernel
    version: str | None = None  # package version: 6.8.0-31.31, 4.19.90-52.39.v2207.ky10
    release: str | None = None  # series/suite (noble, bookworm) or dist tag (ky10, oe2203)
    abi: str | None = None  # kernel release minus flavour/arch: 6.8.0-31, 6.1.0-21, 4.19.90-52.39.v2207.ky10
    arch: str | None = None
    changelog_path: str | None = None  # where the changelog was read: a tree path, or "%changelog"
    changelog: str | None = None
    evidence: str = ""  # what identified the distro
    notes: tuple[str, ...] = ()


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def detect(read: Reader, *, name: str | None = None, arch: str | None = None) -> DistroInfo | None:
    """The distro of a tree reached through ``read``; ``name`` is its folder or archive name."""
    env = read("debian/debian.env")
    folder = None
    if env is not None:
        m = _ENV_DIR.search(env)
        folder = m.group(1).decode() if m else None
    candidates: list[tuple[str, bool | None]] = [(f"{folder}/changelog", True)] if folder else []
    candidates += [("debian.master/changelog", True), ("debian/changelog", True if env is not None else None)]
    for path, ubuntu in candidates:
        text = _text(read(path))
        if text is None:
            continue
        defines = (
            None if ubuntu else _text(read("debian/config/defines")) or _text(read("debian/config/defines.toml"))
        )
        found = from_debian_changelog(text, path=path, ubuntu=ubuntu, defines=defines)
        if found is not None:
            if folder and path != f"{folder}/changelog":
                note = f"debian/debian.env names {folder}, which has no changelog; read {path}"
                found = replace(found, notes=(note, *found.notes))
            return found
    hinted = parse_kernel_release(name) if name else None
    if hinted is not None:
        return replace(hinted, arch=hinted.arch or arch, evidence="folder name")
    if any(read(p) is not None for p in _DEFCONFIGS):
        note = "openeuler_defconfig in the tree; Kylin and CTyunOS trees ship it too"
        return DistroInfo("openeuler", "openeuler", arch=arch, evidence="openeuler_defconfig", notes=(note,))
    return None


def from_debian_changelog(
    text: str, *, path: str, ubuntu: bool | None = None, defines: str | None = None
) -> DistroInfo | None:
    """Ubuntu or Debian facts from a kernel changelog's top entries; ``ubuntu`` None guesses
    from the version and series; ``defines`` is Debian's debian/config/defines."""
    entries = _CHANGELOG_TOP.findall(text[: 1 << 20])
    if not entries:
        return None
    package, version, dists = entries[0]
    suite = dists.split()[0]
    notes: list[str] = []
    if suite == "UNRELEASED":
        released = next((e for e in entries[1:] if not e[2].startswith("UNRELEASED")), None)
        notes.append(f"{path}: the top entry ({version}) is UNRELEASED: a tree between uploads")
        suite = released[2].split()[0] if released else suite
    series = re.split(r"[-/]", suite)[0]
    if ubuntu is None:
        ubuntu = series in UBUNTU_SERIES or (series not in DEBIAN_SUITES and bool(_UBUNTU_VERSION.match(version)))
    abi = None
    if ubuntu:
        m = _UBUNTU_VERSION.match(version)
        abi = f"{m.group(1)}-{m.group(2)}" if m else None
    else:
        abiname = _ABINAME.search(defines or "")
        mm = re.match(r"(\d+\.\d+)", version)
        abi = f"{mm.group(1)}.0-{abiname.group(1)}" if abiname and mm else None
    return DistroInfo(
        distro="ubuntu" if ubuntu else "debian",
        family="debian",
        package=package,
        version=version,
        release=series,
        abi=abi,
        changelog_path=path,
        changelog=text,
        evidence=path,
        notes=tuple(notes),
    )


def parse_kernel_release(text: str) -> DistroInfo | None:
    """Facts from a kernel release as ``uname -r``, an RPM or a source folder spells it:
    ``4.19.90-52.39.v2207.ky10.aarch64``, ``linux-4.19.90-2102.2.0.0068.ctl2``, ``6.8.0-59-generic``."""
    text = text.strip().rstrip("/").rsplit("/", 1)[-1]
    m = _UNAME_SHORT.match(text)
    if m is not None:
        upstream, abinum, flavour = m.groups()
        distro = "debian" if _DEBIAN_FLAVOUR.search(flavour) else "ubuntu"
        note = f"flavour {flavour}"
        return DistroInfo(distro, "debian", abi=f"{upstream}-{abinum}", evidence="kernel release", notes=(note,))
    m = _RPM_RELEASE.match(text)
    if m is None:
        return None
    upstream, release, arch = m.groups()
    info = _from_dist_tag(release)
    if info is None:
        return None
    version = f"{upstream}-{release}"
    return replace(info, version=version, abi=version, arch=arch, evidence="kernel release")


def _from_dist_tag(release: str) -> DistroInfo | None:
    tag = release.rsplit(".", 1)[-1]
    for pattern, distro, family in DIST_TAGS:
        if pattern.fullmatch(tag):
            notes: tuple[str, ...] = ()
            build = re.search(r"(?:^|\.)(v\d{4})(?:\.|$)", release)
            if distro == "kylin" and build:
                notes = (f"Kylin build line {build.group(1)}",)
            return DistroInfo(distro, family, release=tag, notes=notes)
    return None


def from_rpm(
    name: str,
    version: str,
    release: str,
    *,
    arch: str | None = None,
    spec_text: str | None = None,
    evidence: str = "SRPM header",
) -> DistroInfo | None:
    """Facts from an RPM's name/version/release (an SRPM header, or its spec's tags); the
    spec's %changelog is the changelog evidence."""
    info = _from_dist_tag(release)
    notes: list[str] = []
    if info is None and spec_text is not None and "openeuler" in spec_text.lower():
        info = DistroInfo("openeuler", "openeuler")
        notes.append(f"release {release} has no dist tag; the spec names openEuler")
    if info is None:
        return None
    log = spec_changelog(spec_text) if spec_text is not None else None
    return replace(
        info,
        package=name,
        version=f"{version}-{release}",
        abi=f"{version}-{release}",
        arch=arch,
        changelog_path="%changelog" if log is not None else None,
        changelog=log,
        evidence=evidence,
        notes=info.notes + tuple(notes),
    )


def from_spec(
    spec_text: str,
    *,
    arch: str | None = None,
    macros: Mapping[str, str] | None = None,
    label: str = "kernel.spec",
) -> DistroInfo | None:
    """Facts from a kernel spec alone: its Name/Version/Release tags as evaluated for ``arch``.
    A release without the dist tag (added by the build system's %dist) cannot name the distro;
    pass ``macros={"dist": ".ky10"}`` when it is known."""
    ev = preprocess(spec_text, arch, macros, label=label)
    name, version, release = (ev.expand(f"%{{?{k}}}") for k in ("name", "version", "release"))
    if not (name and version and release):
        return None
    found = from_rpm(name, version, release, arch=ev.arch, spec_text=spec_text, evidence=label)
    return None if found is None else replace(found, notes=found.notes + ev.notes)


def spec_changelog(spec_text: str) -> str | None:
    """The %changelog section of a spec, as written."""
    m = re.search(r"^%changelog[ \t]*$", spec_text, re.M)
    if m is None:
        return None
    body = spec_text[m.end() :].strip("\n")
    return body + "\n" if body else None
