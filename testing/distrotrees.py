"""Kernel trees laid out as Ubuntu and the openEuler family ship them, tiny, built with the real
tools (git, dpkg-source, rpmbuild -bs) from our own files.

- ``build_ubuntu_git``: a git repo of an Ubuntu-style 6.8 kernel: ``debian/debian.env`` naming
  ``debian.master``, whose changelog lists stable subjects and a CVE; a history with
  ``UBUNTU: SAUCE:`` subjects, ``(cherry picked from commit ...)``, ``(backported from commit
  ...)`` and ``CVE-`` lines. ``export_folder`` and ``build_ubuntu_dsc`` give the same tree as a
  plain folder and as a format 1.0 source package (orig tarball + .diff.gz, as Ubuntu ships).
- ``build_openeuler_srpm``: a kernel SRPM in the openEuler layout (Kylin V10, CTyunOS and
  openEuler flavours): ``kernel.tar.gz`` of a 4.19.90 tree, ``patches.tar.bz2`` + ``series.conf``
  (one patch a backport with openEuler's ``mainline inclusion`` header), and a spec using
  %global, ``%if 0%{?with_patch}``, %ifarch, %bcond, a ``%(...)`` macro, and
  ApplyPatch/ApplyOptionalPatch helpers it defines itself. ``queue``/``final`` say what the spec
  applies for each arch and what the tree then holds, for tests to compare against.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from testing.treegen import BASE, FINAL, PATCH1, PATCH2, _diff, run, write_tar

# ---- Ubuntu --------------------------------------------------------------------------------

UBUNTU_VERSION = "6.8.0-31.31"
UBUNTU_ABI = "6.8.0-31"
CVE = "CVE-2024-1234"
# upstream commits the history names (made up: the fixture's code is a stand-in, not the fix)
UPSTREAM = {
    "cherry_pick": hashlib.sha1(b"fixture: upstream nfsd callback fix").hexdigest(),
    "backport": hashlib.sha1(b"fixture: upstream conntrack opts fix").hexdigest(),
}
SUBJECTS = {
    "sauce": "UBUNTU: SAUCE: apparmor: fixture-only policy knob",
    "cherry_pick": "nfsd: keep the callback workqueue alive while a client still uses it",
    "stable": "Linux 6.8.12",
    "backport": "netfilter: bpf: check opts_len before reading the ct lookup opts",
}


def _makefile(sublevel: int) -> bytes:
    return (
        b"# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 8\n"
        b"SUBLEVEL = %d\nEXTRAVERSION =\nNAME = Fixture Tree\n\nall:\n\t@true\n" % sublevel
    )


CT_BPF_OLD = b"""\
// SPDX-License-Identifier: GPL-2.0-only
/* fixture stand-in for the conntrack bpf helpers */
#define NF_BPF_CT_OPTS_SZ 12

struct bpf_ct_opts {
\tint netns_id;
\tint error;
\tunsigned char l4proto;
\tunsigned char dir;
\tunsigned char reserved[2];
};

static int ct_opts_check(struct bpf_ct_opts *opts, unsigned int opts_len)
{
\tif (!opts || opts->reserved[0] || opts->reserved[1] ||
\t    opts_len != NF_BPF_CT_OPTS_SZ)
\t\treturn -22;
\treturn 0;
}
"""
CT_BPF_NEW = CT_BPF_OLD.replace(
    b"\tif (!opts || opts->reserved[0] || opts->reserved[1] ||\n\t    opts_len != NF_BPF_CT_OPTS_SZ)\n",
    b"\tif (!opts || opts_len != NF_BPF_CT_OPTS_SZ)\n\t\treturn -22;\n"
    b"\tif (opts->reserved[0] || opts->reserved[1])\n",
)
CALLBACK_OLD = b"""\
// SPDX-License-Identifier: GPL-2.0
/* fixture stand-in for the nfsd callback code */
static struct workqueue_struct *callback_wq;

int nfsd4_run_cb(struct nfsd4_callback *cb)
{
\treturn queue_work(callback_wq, &cb->cb_work);
}
"""
CALLBACK_NEW = CALLBACK_OLD.replace(b"static struct workqueue_struct *callback_wq;\n", b"").replace(
    b"queue_work(callback_wq,", b"queue_work(cb->cb_clp->cl_callback_wq,"
)
UBUNTU_BASE = {
    "Makefile": _makefile(0),
    "net/netfilter/nf_conntrack_bpf.c": CT_BPF_OLD,
    "fs/nfsd/nfs4callback.c": CALLBACK_OLD,
    "kernel/events/core.c": b"/* fixture perf core */\nint perf_event_open(void) { return 0; }\n",
}
PACKAGER = "Fixture Packager <packager@example.org>"


def _entry(version: str, items: str, date: str) -> str:
    return f"linux ({version}) noble; urgency=medium\n\n{items}\n -- {PACKAGER}  {date}\n\n"


OLD_ENTRY = _entry(
    "6.8.0-28.28", "  * Fixture packaging of Linux 6.8 (LP: #2000000)\n", "Mon, 08 Apr 2024 10:00:00 +0000"
)
TOP_ITEMS = f"""\
  * noble/linux: {UBUNTU_VERSION} -proposed tracker (LP: #2000001)

  * Noble update: v6.8.12 upstream stable release (LP: #2000002)
    - nfsd: keep the callback workqueue alive while a client still uses
      it
    - Linux 6.8.12

  * {CVE}
    - {SUBJECTS["backport"]}

  * Miscellaneous Ubuntu changes
    - SAUCE: apparmor: fixture-only policy knob
"""
UBUNTU_CHANGELOG = _entry(UBUNTU_VERSION, TOP_ITEMS, "Mon, 22 Apr 2024 10:00:00 +0000") + OLD_ENTRY


@dataclass(frozen=True)
class UbuntuGit:
    path: Path
    head: str
    commits: dict[str, str]  # label -> sha: base, packaging, sauce, cherry_pick, stable, backport, release
    files: dict[str, bytes] = field(default_factory=dict)  # the tree at HEAD
    version: str = UBUNTU_VERSION


def _git(repo: Path, *args: str, when: int = 0) -> str:
    stamp = f"{1712570000 + when * 3600} +0000"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Fixture Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.org",
        "GIT_COMMITTER_NAME": "Fixture Packager",
        "GIT_COMMITTER_EMAIL": "packager@example.org",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _commit(repo: Path, files: dict[str, bytes], message: str, when: int) -> str:
    for rel, data in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel == "debian/rules":
            path.chmod(0o755)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--no-verify", "-m", message, when=when)
    return _git(repo, "rev-parse", "HEAD")


def build_ubuntu_git(dest: Path) -> UbuntuGit:
    """A git repo at ``dest``, commit by commit as Ubuntu's kernel trees grow."""
    dest.mkdir(parents=True)
    _git(dest, "init", "-q", "-b", "master")
    c: dict[str, str] = {}
    c["base"] = _commit(dest, UBUNTU_BASE, "Linux 6.8\n", 0)
    _git(dest, "tag", "v6.8")
    packaging = {
        "debian/debian.env": b"DEBIAN=debian.master\n",
        "debian/rules": b"#!/usr/bin/make -f\n%:\n\t@true\n",
        "debian/source/format": b"1.0\n",
        "debian.master/changelog": OLD_ENTRY.encode(),
    }
    c["packaging"] = _commit(dest, packaging, "UBUNTU: [Packaging] fixture packaging\n", 1)
    sauce = {"security/apparmor/fixture_knob.c": b"/* fixture: an Ubuntu-only knob */\nint fixture_knob = 1;\n"}
    bug = "BugLink: https://bugs.launchpad.net/bugs/2000002\n\n"
    c["sauce"] = _commit(dest, sauce, f"{SUBJECTS['sauce']}\n\n{bug}Signed-off-by: {PACKAGER}\n", 2)
    msg = (
        f"{SUBJECTS['cherry_pick']}\n\n{bug}The work queue is freed while a client still queues callbacks.\n\n"
        f"Signed-off-by: Upstream Dev <up@example.org>\n(cherry picked from commit {UPSTREAM['cherry_pick']})\n"
        f"Signed-off-by: {PACKAGER}\n"
    )
    c["cherry_pick"] = _commit(dest, {"fs/nfsd/nfs4callback.c": CALLBACK_NEW}, msg, 3)
    c["stable"] = _commit(
        dest, {"Makefile": _makefile(12)}, f"Linux 6.8.12\n\n{bug}Signed-off-by: {PACKAGER}\n", 4
    )
    msg = (
        f"{SUBJECTS['backport']}\n\n{CVE}\n\nopts is read before its length is checked.\n\n"
        f"Signed-off-by: Upstream Dev <up@example.org>\n(backported from commit {UPSTREAM['backport']})\n"
        f"[ packager: context differs in nf_conntrack_bpf.c ]\n{CVE}\nSigned-off-by: {PACKAGER}\n"
    )
    c["backport"] = _commit(dest, {"net/netfilter/nf_conntrack_bpf.c": CT_BPF_NEW}, msg, 5)
    log = {"debian.master/changelog": UBUNTU_CHANGELOG.encode()}
    c["release"] = _commit(dest, log, f"UBUNTU: Ubuntu-{UBUNTU_VERSION}\n\nSigned-off-by: {PACKAGER}\n", 6)
    _git(dest, "tag", f"Ubuntu-{UBUNTU_VERSION}")
    files = {**UBUNTU_BASE, **packaging, **sauce, **log}
    files.update({"fs/nfsd/nfs4callback.c": CALLBACK_NEW, "Makefile": _makefile(12)})
    files["net/netfilter/nf_conntrack_bpf.c"] = CT_BPF_NEW
    return UbuntuGit(dest, c["release"], c, files)


def export_folder(repo: Path, dest: Path, rev: str = "HEAD") -> Path:
    """The tree at ``rev`` as a plain folder (no .git)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def build_ubuntu_dsc(repo: Path, work: Path, out_dir: Path) -> Path:
    """The tree as Ubuntu's source package: orig tarball of v6.8 plus a .diff.gz, with the
    debian/changelog and debian/control the build generates from debian.master/."""
    upstream = UBUNTU_VERSION.split("-")[0]
    top = f"linux-{upstream}"
    work.mkdir(parents=True)
    orig = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar.gz", f"--prefix={top}/", "v6.8"],
        check=True,
        capture_output=True,
    ).stdout
    (work / f"linux_{upstream}.orig.tar.gz").write_bytes(orig)
    src = export_folder(repo, work / top)
    shutil.copyfile(src / "debian.master/changelog", src / "debian/changelog")
    (src / "debian/control").write_text(
        f"Source: linux\nMaintainer: {PACKAGER}\n\nPackage: linux-source-{upstream}\nArchitecture: all\n"
        "Description: fixture kernel source\n fixture\n"
    )
    run("dpkg-source", "-b", top, cwd=work)
    out_dir.mkdir(parents=True)
    for f in work.iterdir():
        if f.is_file() and f.name.startswith("linux_"):
            shutil.move(f, out_dir / f.name)
    return out_dir / f"linux_{UBUNTU_VERSION}.dsc"


# ---- openEuler family ----------------------------------------------------------------------

# flavour -> (%global hulkrelease, %global pkgrelease, dist tag)
FLAVOURS = {
    "kylin": ("52.39", ".v2207", ".ky10"),
    "ctyunos": ("2102.2.0", ".0068", ".ctl2"),
    "openeuler": ("2102.2.0", ".0068", ".oe1"),
}
ARCHES = ("x86_64", "aarch64")
ARCH_PATCH = {"x86_64": "1001-x86-only.patch", "aarch64": "1002-arm64-only.patch"}
ARCH_FILE = {
    "x86_64": ("arch/x86/kernel/fixture.c", b"int x86_fixture;\n"),
    "aarch64": ("arch/arm64/kernel/fixture.c", b"int arm64_fixture;\n"),
}
KNOB = dict(FINAL)
KNOB["mm/untouched.c"] = FINAL["mm/untouched.c"] + b"int vendor_knob;\n"
# A backport of an upstream fix with openEuler's header: the inclusion block names the
# upstream commit (made up) and a CVE; the subject is upstream's.
BACKPORT_SHA = hashlib.sha1(b"fixture: upstream list bound fix").hexdigest()
BACKPORT_CVE = "CVE-2024-4242"
BACKPORT_SUBJECT = "list: bound the fixture walk of a corrupted list"
_BACKPORTED = dict(FINAL)
_BACKPORTED["include/linux/list.h"] = FINAL["include/linux/list.h"] + b"#define LIST_WALK_BOUND 4096\n"
BACKPORT_DIFF = _diff(FINAL, _BACKPORTED, "x").split(b"\n---\n", 1)[1]
_INCLUSION = f"""\
mainline inclusion
from mainline-v6.7-rc1
commit {BACKPORT_SHA}
category: bugfix
bugzilla: https://gitee.com/openeuler/kernel/issues/I8FXT1
CVE: {BACKPORT_CVE}

Reference: https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/?id={BACKPORT_SHA}

--------------------------------

A corrupted list made the walk run forever.

Signed-off-by: Upstream Dev <up@example.org>
Signed-off-by: Fixture Packager <packager@example.org>
"""
SERIES_PATCHES = {
    "0001-nfsd-check-clp.patch": PATCH1,
    "0002-nfsd-add-callback-wq.patch": PATCH2,
    "0003-vendor-knob.patch": _diff(FINAL, KNOB, "mm: vendor knob"),
    "0004-list-bound-the-walk.patch": _diff(FINAL, _BACKPORTED, BACKPORT_SUBJECT).replace(
        b"\n\n---\n", b"\n\n" + _INCLUSION.encode() + b"---\n", 1
    ),
}
SERIES_CONF = (
    "# openEuler-style series: one patch a line, relative to the tree\n"
    "patches/0001-nfsd-check-clp.patch\n\n"
    "patches/0002-nfsd-add-callback-wq.patch\n"
    "patches/0003-vendor-knob.patch\n"
    "patches/0004-list-bound-the-walk.patch\n"
)
_COMMON = dict(_BACKPORTED)
_COMMON["kernel/events/core.c"] = FINAL["kernel/events/core.c"] + b"int perf_fixture_hardening;\n"
SPEC_PATCHES = {
    "1001-x86-only.patch": _diff(_COMMON, {**_COMMON, ARCH_FILE["x86_64"][0]: ARCH_FILE["x86_64"][1]}, "x86"),
    "1002-arm64-only.patch": _diff(_COMMON, {**_COMMON, ARCH_FILE["aarch64"][0]: ARCH_FILE["aarch64"][1]}, "arm"),
    "1003-common-after-series.patch": _diff(_BACKPORTED, _COMMON, "perf: fixture hardening"),
    "1004-optional-placeholder.patch": b"# an empty placeholder: ApplyOptionalPatch skips it\n",
    "1005-clang-only.patch": _diff(_COMMON, {**_COMMON, "clang.c": b"int clang_fixture;\n"}, "clang"),
    "1006-vendor-knob.patch": SERIES_PATCHES["0003-vendor-knob.patch"],  # applied -R: the knob goes again
}
SPEC_CHANGELOG = (
    f"- nfsd: made-up fix for the callback workqueue ({CVE})\n- perf: made-up hardening of event teardown\n"
)
OE_SPEC = """\
%global hulkrelease @HULK@
%global pkgrelease @PKG@
%define with_patch 1
%define with_kabichk 0
%bcond_with toolchain_clang
%global KernelVer %{version}-%{release}.%{_target_cpu}
%global buildhost %(hostname)

Name: kernel
Version: 4.19.90
Release: %{hulkrelease}%{?pkgrelease}%{?dist}
Summary: fixture kernel in the openEuler layout
License: GPLv2
Source0: kernel.tar.gz
%if 0%{?with_patch}
Source9002: series.conf
Source9998: patches.tar.bz2
%endif
Patch1001: 1001-x86-only.patch
Patch1002: 1002-arm64-only.patch
Patch1003: 1003-common-after-series.patch
Patch1004: 1004-optional-placeholder.patch
Patch1005: 1005-clang-only.patch
Patch1006: 1006-vendor-knob.patch

%description
A tiny kernel source package laid out as openEuler, Kylin and CTyunOS ship theirs.

%prep
%setup -q -n kernel-%{version} -c %{?with_patch:-a 9998}
mv kernel linux-%{KernelVer}
cd linux-%{KernelVer}

ApplyPatch()
{
  local patch=$1
  shift
  patch -p1 -F1 -s ${1+"$@"} < $RPM_SOURCE_DIR/$patch
}

ApplyOptionalPatch()
{
  local patch=$1
  shift
  if [ "$(wc -l < $RPM_SOURCE_DIR/$patch)" -gt 9 ]; then
    ApplyPatch $patch ${1+"$@"}
  fi
}

%if 0%{?with_patch}
cp %{SOURCE9002} .
mv ../patches .
Applypatches()
{
  grep -v '^#' $1 | grep -v '^[[:space:]]*$' | while read p; do patch -s -F0 -E -p1 -i $2/$p; done
}
Applypatches series.conf $PWD
%endif

ApplyPatch 1003-common-after-series.patch
%ifarch x86_64
ApplyPatch 1001-x86-only.patch
%endif
%ifarch aarch64
ApplyPatch 1002-arm64-only.patch
%endif
%if %{with toolchain_clang}
ApplyPatch 1005-clang-only.patch
%endif
ApplyOptionalPatch 1004-optional-placeholder.patch
ApplyPatch 1006-vendor-knob.patch -R

%build
%if "%{buildhost}" == "fixture-builder"
echo built on the fixture builder
%endif

%changelog
* Wed Jun 05 2024 Fixture Packager <packager@example.org> - 4.19.90-@HULK@
@LOG@"""


@dataclass(frozen=True)
class OpenEulerSrpm:
    path: Path
    flavour: str
    spec: str
    version: str  # 4.19.90
    release: str  # e.g. 52.39.v2207.ky10
    dist: str  # e.g. ky10
    sources: dict[str, bytes]  # every file the SRPM holds besides the spec, by name
    queue: dict[str, list[tuple[str, bool]]]  # arch -> (file, reverse) %prep applies in order; series.conf
    # stands for its patches
    final: dict[str, dict[str, bytes]]  # arch -> the tree once %prep is done


def write_kernel_tarball(path: Path, files: dict[str, bytes] | None = None, top: str = "kernel") -> Path:
    """A tiny Linux 4.19.90 tree (Makefile VERSION = 4, PATCHLEVEL = 19, SUBLEVEL = 90)."""
    return write_tar(path, BASE if files is None else files, top, "w:gz")


def openeuler_spec(flavour: str) -> str:
    hulk, pkg, _ = FLAVOURS[flavour]
    return OE_SPEC.replace("@HULK@", hulk).replace("@PKG@", pkg).replace("@LOG@", SPEC_CHANGELOG)


def build_openeuler_srpm(work: Path, out_dir: Path, flavour: str = "kylin") -> OpenEulerSrpm:
    """``rpmbuild -bs`` of the openEuler-layout spec for ``flavour`` (kylin, ctyunos, openeuler)."""
    hulk, pkg, dist = FLAVOURS[flavour]
    top = work / "rpmbuild"
    sources_dir = top / "SOURCES"
    sources_dir.mkdir(parents=True)
    (top / "SPECS").mkdir()
    write_kernel_tarball(sources_dir / "kernel.tar.gz")
    write_tar(sources_dir / "patches.tar.bz2", SERIES_PATCHES, "patches", "w:bz2")
    (sources_dir / "series.conf").write_text(SERIES_CONF)
    for name, data in SPEC_PATCHES.items():
        (sources_dir / name).write_bytes(data)
    spec = openeuler_spec(flavour)
    (top / "SPECS" / "kernel.spec").write_text(spec)
    run("rpmbuild", "-bs", "--define", f"_topdir {top}", "--define", f"dist {dist}", top / "SPECS" / "kernel.spec")
    (built,) = (top / "SRPMS").glob("*.src.rpm")
    out_dir.mkdir(parents=True)
    path = Path(shutil.move(built, out_dir / built.name))
    sources = {f.name: f.read_bytes() for f in sources_dir.iterdir()}
    queue = {
        arch: [
            ("series.conf", False),
            ("1003-common-after-series.patch", False),
            (ARCH_PATCH[arch], False),
            ("1006-vendor-knob.patch", True),
        ]
        for arch in ARCHES
    }
    final = {arch: {**_COMMON, ARCH_FILE[arch][0]: ARCH_FILE[arch][1]} for arch in ARCHES}
    release = f"{hulk}{pkg}{dist}"
    return OpenEulerSrpm(path, flavour, spec, "4.19.90", release, dist.lstrip("."), sources, queue, final)
