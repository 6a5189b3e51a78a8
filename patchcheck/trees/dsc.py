"""A Debian/Ubuntu source package (.dsc): orig tarball + quilt series or .diff.gz.

Formats: "3.0 (quilt)" (orig + debian.tar.* with debian/patches/series), "1.0" (orig + .diff.gz,
as Ubuntu's kernels ship), and native packages (one tarball). The .dsc's siblings are only read.

The .dsc is read with python-debian (``deb822.Dsc``: 0.14 ms per .dsc, negligible beside opening
the tree, and the library knows the format's corners: PGP armour, continuation lines). Distro,
release and changelog come from trees/distro.py: Ubuntu's ``debian.master/changelog`` (which
``debian/changelog`` is generated from), else Debian's ``debian/changelog``.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.trees._common import check_size, check_user_path, content_key, entry_dir, read_user_file
from patchcheck.trees.archive.compress import READ_ERRORS, file_stream, read_limited
from patchcheck.trees.archive.queue import QueuePatch
from patchcheck.trees.archive.store import MemberStore, read_tar_files
from patchcheck.trees.base import ArchiveTree, Opened
from patchcheck.trees.distro import DistroInfo, detect
from patchcheck.trees.registry import Kind, register
from patchcheck.trees.tarball import TAR_SUFFIXES


def dsc_files(text: str) -> tuple[str | None, str | None, dict[str, tuple[int, str | None]]]:
    """(Format, Version, name -> (size, sha256 or None)) of a .dsc, signed or not;
    sizes and hashes from Checksums-Sha256, else Files. Malformed entries are left out."""
    from debian.deb822 import Dsc

    fields = Dsc(text)
    files: dict[str, tuple[int, str | None]] = {}
    for key, hash_key in (("Checksums-Sha256", "sha256"), ("Files", None)):
        for entry in fields.get(key) or []:
            name, size = entry.get("name"), entry.get("size", "")
            if name and size.isdigit() and name not in files:
                files[name] = (int(size), entry.get(hash_key) if hash_key else None)
    return fields.get("Format"), fields.get("Version"), files


class DscTree(ArchiveTree):
    kind = "dsc"
    what = "a Debian .dsc source package"

    def _open(self) -> Opened:
        check_size(self.src.stat().st_size, self.limit, str(self.src))
        raw = read_user_file(self.src, self.what)
        fmt, self.package_version, files = dsc_files(raw.decode("utf-8", "replace"))
        if not files or fmt is None:
            raise TreeError(f"{self.src}: no Format/Files fields; expected a Debian .dsc")
        keys = {n: self._check_file(n, size, sha) for n, (size, sha) in files.items()}
        tarballs = [n for n in files if n.endswith(TAR_SUFFIXES)]
        orig = next((n for n in tarballs if re.search(r"\.orig\.tar\.", n)), None)
        debian_tar = next((n for n in tarballs if ".debian.tar." in n), None)
        diff = next((n for n in files if n.endswith(".diff.gz")), None)
        extra: dict[str, bytes] = {}
        queue: list[QueuePatch] = []
        self.applied = ""
        if fmt.startswith("3.0 (quilt)"):
            if orig is None or debian_tar is None:
                raise TreeError(f"{self.src}: 3.0 (quilt) without orig and debian tarballs")
            base_name = orig
            extra = read_tar_files(self.src.parent / debian_tar, self.limit, lambda n: n.startswith("debian/"))
            queue = _quilt_queue(extra, debian_tar)
            self.applied = f"{len(queue)} quilt patches from {debian_tar}"
        elif fmt.startswith("1.0") and orig is not None and diff is not None:
            base_name = orig
            queue = [QueuePatch(diff, _gunzip(self.src.parent / diff, self.limit), 1)]
            self.applied = diff
        elif tarballs and (fmt.startswith("1.0") or "native" in fmt):
            base_name = orig or tarballs[0]
        else:
            raise TreeError(f"{self.src}: unsupported source format {fmt!r}")
        base_path = self.src.parent / base_name
        store = MemberStore(
            entry_dir(self.cache_dir, "tarball", keys[base_name]) / "members",
            lambda: file_stream(base_path),
            str(base_path),
            self.limit,
        )
        # The debian/ folder of a 3.0 package comes from its own tarball: laid over first.
        return Opened(store, f"{self.src} ({base_name})", queue, extra, "quilt patch" if extra else "debian diff")

    def _describe(self) -> tuple[DistroInfo | None, list[str]]:
        # Ubuntu's debian.master/changelog (debian/changelog is generated from it), else Debian's
        found = detect(self.read, name=None, arch=self.arch)
        return found, [f"applied {self.applied}"] if self.applied else []

    def _check_file(self, name: str, size: int, sha: str | None) -> str:
        path = self.src.parent / name
        if "/" in name or name in (".", ".."):
            raise TreeError(f"{self.src}: bad file name {name!r} in Files; expected a file beside the .dsc")
        check_user_path(path, f"{name}, listed in {self.src.name}")
        if path.stat().st_size != size:
            raise TreeError(f"{path}: size differs from {self.src.name} ({size} expected)")
        key = content_key(path, self.cache_dir)
        if sha is not None and key != sha:
            raise TreeError(f"{path}: sha256 differs from {self.src.name}")
        return key


def _gunzip(path: Path, limit: int) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return read_limited(f, limit, str(path))
    except (OSError, *READ_ERRORS) as e:
        raise TreeError(f"{path}: corrupt .diff.gz ({e}); expected a gzip-compressed diff") from e


def _quilt_queue(files: dict[str, bytes], label: str) -> list[QueuePatch]:
    series = files.get("debian/patches/series")
    if series is None:
        return []
    queue: list[QueuePatch] = []
    for line in series.decode("utf-8", "replace").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        strip = 1
        for opt in words[1:]:
            if opt.startswith("-p") and opt[2:].isdigit():
                strip = int(opt[2:])
        data = files.get(f"debian/patches/{words[0]}")
        if data is None:
            raise TreeError(f"{label}: series names {words[0]} but debian/patches has no such file")
        queue.append(QueuePatch(words[0], data, strip))
    return queue


register(
    Kind(
        "dsc",
        "a .dsc source package",
        DscTree.open,
        priority=30,
        match_name=lambda path: path.name.lower().endswith(".dsc"),
    )
)
