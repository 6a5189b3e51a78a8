"""Tiny kernel trees of every kind, built with the real tools (tarfile, git, dpkg-deb,
dpkg-source, rpmbuild): the same final content shipped as each kind."""

from __future__ import annotations

import difflib
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

MAKEFILE = (
    b"# SPDX-License-Identifier: GPL-2.0\nVERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\n"
    b"EXTRAVERSION =\nNAME = Fake Tree\n\nall:\n\t@true\n"
)
BASE: dict[str, bytes] = {
    "Makefile": MAKEFILE,
    "fs/nfsd/state.h": b"#ifndef _NFSD4_STATE_H\n#define _NFSD4_STATE_H\n"
    + b"".join(b"int field_%d;\n" % i for i in range(20))
    + b"#endif\n",
    "fs/nfsd/nfs4callback.c": b'#include "state.h"\n\n'
    + b"".join(b"static int cb_%d(void)\n{\n\treturn %d;\n}\n\n" % (i, i) for i in range(15)),
    "kernel/events/core.c": b"/* perf core */\nint perf_event_open(void) { return 0; }\n",
    "include/linux/list.h": b"struct list_head { struct list_head *next, *prev; };\n",
    "mm/untouched.c": b"void untouched(void) {}\n",
    # over 100 characters: needs a pax (or GNU) long-name header in the tarballs
    "drivers/gpu/drm/amd/display/dc/dml/dcn32/" + "display_mode_vba_util_32" * 3 + ".c": b"x\n",
}
STAGE1 = dict(BASE)
STAGE1["fs/nfsd/nfs4callback.c"] = BASE["fs/nfsd/nfs4callback.c"].replace(
    b"\treturn 7;\n", b"\tif (!clp)\n\t\treturn -EINVAL;\n\treturn 7;\n"
)
FINAL = dict(STAGE1)
FINAL["fs/nfsd/state.h"] = BASE["fs/nfsd/state.h"].replace(
    b"int field_10;\n", b"int field_10;\nstruct workqueue_struct *callback_wq;\n"
)
FINAL["fs/nfsd/new.c"] = b"/* added by the second patch */\nint nfsd_new(void) { return 1; }\n"
PATHS = sorted(FINAL) + ["fs/nfsd/absent.c", "no/such/dir/x.c"]
TOP = "linux-4.19.90"
CHANGELOG_ENTRY = "Fix the nfsd callback workqueue (CVE-2024-00000)"


def _diff(old: dict[str, bytes], new: dict[str, bytes], subject: str) -> bytes:
    out = [f"From: Dev <dev@example.org>\nSubject: [PATCH] {subject}\n\n---\n"]
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        out.append(f"diff --git a/{path} b/{path}\n")
        lines = difflib.unified_diff(
            (a or b"").decode().splitlines(keepends=True),
            (b or b"").decode().splitlines(keepends=True),
            "/dev/null" if a is None else f"a/{path}",
            f"b/{path}",
        )
        if a is None:
            out.append("new file mode 100644\n")
        out.extend(lines)
    return "".join(out).encode()


PATCH1 = _diff(BASE, STAGE1, "nfsd: check clp in cb_7")
PATCH2 = _diff(STAGE1, FINAL, "nfsd: add callback_wq")
BAD_PATCH = b"--- a/mm/untouched.c\n+++ b/mm/untouched.c\n@@ -1 +1 @@\n-not there\n+x\n"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_tar(
    path: Path,
    files: dict[str, bytes],
    top: str | None = TOP,
    mode: str = "w",
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    with tarfile.open(path, mode, format=fmt) as tf:  # type: ignore[call-overload]
        if top:
            d = tarfile.TarInfo(top)
            d.type = tarfile.DIRTYPE
            d.mode = 0o755
            tf.addfile(d)
        for rel, data in sorted(files.items()):
            ti = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return path


def run(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``folder``: content hash, mtime and mode, to prove nothing changed."""
    snap: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            digest = ""
            if p.is_file() and not p.is_symlink():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            snap[str(p.relative_to(folder))] = (digest, st.st_mtime_ns, st.st_mode)
    return snap


# -- the kit: one of each kind, built once --------------------------------------------------


@dataclass
class Kit:
    root: Path
    sources: dict[str, Path]  # label -> the user's file/folder (each alone in its folder)
    git_base: str = ""


def _build_deb(work: Path, out: Path) -> Path:
    pkg = work / "debpkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-source-4.19\nVersion: 4.19.90-1\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: fake linux source\n"
    )
    doc = pkg / "usr/share/doc/linux-source-4.19"
    doc.mkdir(parents=True)
    log = f"linux (4.19.90-1) bookworm-security; urgency=high\n\n  * {CHANGELOG_ENTRY}\n"
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(log.encode()))
    (pkg / "usr/src").mkdir(parents=True)
    write_tar(pkg / "usr/src/linux-source-4.19.tar.xz", FINAL, "linux-source-4.19", "w:xz")
    run("dpkg-deb", "--root-owner-group", "-Zxz", "--build", pkg, out)
    return out


SPEC = """\
Name: kernel
Version: 4.19.90
Release: 52.39.v2207.ky10
Summary: fake kernel
License: GPLv2
Source0: linux-%{version}.tar.xz
Source1: config-x86_64
Patch0001: 0001-nfsd-check-clp.patch
Patch0002: 0002-nfsd-add-callback-wq.patch
%{?extra_patch}

%description
fake

%prep
%setup -q -n linux-%{version}
ApplyPatch()
{
  patch -p1 -F1 -s < $RPM_SOURCE_DIR/$1
}
ApplyPatch 0001-nfsd-check-clp.patch
%patch -P 2 -p1
%{?extra_apply}

%build

%changelog
* Mon Jan 01 2024 Dev <dev@example.org> - 4.19.90-52.39
- %s
"""


def build_srpm(
    work: Path, out_dir: Path, *, patches: dict[str, bytes] | None = None, tarball: bool = True
) -> Path:
    top = work / "rpmbuild"
    (top / "SOURCES").mkdir(parents=True)
    (top / "SPECS").mkdir()
    (top / "SOURCES" / "config-x86_64").write_text("CONFIG_NFSD=y\n")
    patches = patches or {
        "0001-nfsd-check-clp.patch": PATCH1,
        "0002-nfsd-add-callback-wq.patch": PATCH2,
    }
    for name, data in patches.items():
        (top / "SOURCES" / name).write_bytes(data)
    spec = SPEC.replace("%s", CHANGELOG_ENTRY)
    if "0003-bad.patch" in patches:
        spec = spec.replace("%{?extra_patch}", "Patch0003: 0003-bad.patch")
        spec = spec.replace("%{?extra_apply}", "%patch -P 3 -p1")
    if tarball:
        write_tar(top / "SOURCES" / "linux-4.19.90.tar.xz", BASE, TOP, "w:xz")
    else:
        spec = spec.replace("Source0: linux-%{version}.tar.xz", "Source0: README.txt")
        (top / "SOURCES" / "README.txt").write_text("no tarball here\n")
    (top / "SPECS" / "kernel.spec").write_text(spec)
    run("rpmbuild", "-bs", "--define", f"_topdir {top}", "--define", "dist %{nil}", top / "SPECS" / "kernel.spec")
    (built,) = (top / "SRPMS").glob("*.src.rpm")
    out_dir.mkdir(parents=True)
    return Path(shutil.move(built, out_dir / built.name))


def _build_dsc(work: Path, out_dir: Path, fmt: str) -> Path:
    src = work / TOP
    write_tree(src, BASE if fmt != "1.0" else FINAL)
    write_tar(
        work / "linux_4.19.90.orig.tar.xz" if fmt != "1.0" else work / "linux_4.19.90.orig.tar.gz",
        BASE,
        TOP,
        "w:xz" if fmt != "1.0" else "w:gz",
    )
    deb = src / "debian"
    (deb / "source").mkdir(parents=True)
    (deb / "source" / "format").write_text(f"{fmt}\n")
    (deb / "changelog").write_text(
        f"linux (4.19.90-1) noble; urgency=medium\n\n  * {CHANGELOG_ENTRY}\n\n"
        " -- Dev <dev@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n"
    )
    (deb / "control").write_text(
        "Source: linux\nMaintainer: Dev <dev@example.org>\n\n"
        "Package: linux-source\nArchitecture: all\nDescription: fake\n fake\n"
    )
    (deb / "rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    if fmt != "1.0":
        (deb / "patches").mkdir()
        (deb / "patches" / "0001-nfsd-check-clp.patch").write_bytes(PATCH1)
        (deb / "patches" / "0002-nfsd-add-callback-wq.patch").write_bytes(PATCH2)
        (deb / "patches" / "series").write_text(
            "# order matters\n0001-nfsd-check-clp.patch\n0002-nfsd-add-callback-wq.patch -p1\n"
        )
    run("dpkg-source", "-b", TOP, cwd=work)
    (dsc,) = work.glob("*.dsc")
    out_dir.mkdir(parents=True)
    for f in work.iterdir():
        if f.is_file() and f.name.startswith("linux_"):
            shutil.move(f, out_dir / f.name)
    return out_dir / dsc.name
