"""A Debian/Ubuntu source package (.dsc): orig tarball + quilt series or .diff.gz.

Formats: "3.0 (quilt)" (orig + debian.tar.* with debian/patches/series), "1.0" (orig + .diff.gz,
as Ubuntu's kernels ship), and native packages (one tarball). The .dsc's siblings are only read.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.model import TreeInfo
from patchcheck.trees._common import (
    check_user_path,
    content_key,
    entry_dir,
    read_user_file,
    require_version,
)
from patchcheck.trees._patched import PatchedTree, QueuePatch
from patchcheck.trees._store import MemberStore, file_stream, open_tar_stream
from patchcheck.trees.tarball import TAR_SUFFIXES

_CHANGELOG_TOP = re.compile(r"^(\S+) \(([^)]+)\) ([^;]+);", re.M)


def parse_dsc(text: str) -> dict[str, str]:
    """deb822 fields of a .dsc (a PGP-signed one too); continuation lines kept with newlines."""
    if "-----BEGIN PGP SIGNED MESSAGE-----" in text:
        body = text.split("-----BEGIN PGP SIGNED MESSAGE-----", 1)[1]
        body = body.split("\n\n", 1)[1] if "\n\n" in body else body
        text = body.split("-----BEGIN PGP SIGNATURE-----", 1)[0]
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    return fields


def _file_list(fields: dict[str, str]) -> dict[str, tuple[int, str | None]]:
    """name -> (size, sha256 or None) from Checksums-Sha256, else Files."""
    out: dict[str, tuple[int, str | None]] = {}
    for key in ("Checksums-Sha256", "Files"):
        for line in fields.get(key, "").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2] not in out:
                out[parts[2]] = (int(parts[1]), parts[0] if key == "Checksums-Sha256" else None)
    return out


class DscTree(PatchedTree):
    queue_what = "quilt patch"

    def __init__(
        self,
        path: Path,
        *,
        cache_dir: Path,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.src = check_user_path(path, "a Debian .dsc source package")
        self.source_label = str(self.src)
        raw = read_user_file(self.src, "a Debian .dsc source package")
        fields = parse_dsc(raw.decode("utf-8", "replace"))
        files = _file_list(fields)
        if not files or "Format" not in fields:
            raise TreeError(f"{self.src}: no Format/Files fields; expected a Debian .dsc")
        fmt = fields["Format"]
        keys = {n: self._check_file(n, size, sha, cache_dir) for n, (size, sha) in files.items()}
        self.entry = entry_dir(cache_dir, "dsc", content_key(self.src, cache_dir))
        tarballs = [n for n in files if n.endswith(TAR_SUFFIXES)]
        orig = next((n for n in tarballs if re.search(r"\.orig\.tar\.", n)), None)
        debian_tar = next((n for n in tarballs if ".debian.tar." in n), None)
        diff = next((n for n in files if n.endswith(".diff.gz")), None)
        extra: dict[str, bytes] = {}
        queue: list[QueuePatch] = []
        if fmt.startswith("3.0 (quilt)"):
            if orig is None or debian_tar is None:
                raise TreeError(f"{self.src}: 3.0 (quilt) without orig and debian tarballs")
            base_name = orig
            extra = _read_small_tar(self.src.parent / debian_tar)
            queue = _quilt_queue(extra, debian_tar)
            what = f"{len(queue)} quilt patches from {debian_tar}"
        elif fmt.startswith("1.0") and orig is not None and diff is not None:
            base_name = orig
            data = _gunzip(self.src.parent / diff)
            queue = [QueuePatch(diff, data, 1)]
            what = f"{diff}"
        elif tarballs and (fmt.startswith("1.0") or "native" in fmt):
            base_name = orig or tarballs[0]
            what = ""
        else:
            raise TreeError(f"{self.src}: unsupported source format {fmt!r}")
        self.queue_what = "quilt patch" if extra else "debian diff"
        base_path = self.src.parent / base_name
        self.base = MemberStore(
            entry_dir(cache_dir, "tarball", keys[base_name]) / "members",
            lambda: file_stream(base_path),
            str(base_path),
        )
        # The debian/ folder of a 3.0 package comes from its own tarball: laid over first.
        self._init_overlay(queue, extra)
        version = require_version(self.read("Makefile"), f"{self.src} ({base_name})")
        log = self.changelog() or ""
        top = _CHANGELOG_TOP.search(log)
        notes = [f"applied {what}"] if what else []
        self.info = TreeInfo(
            name=name,
            source=str(self.src),
            kind="dsc",
            version=version,
            distro=distro or (top.group(3).split()[0] if top else None),
            release=fields.get("Version"),
            labels=dict(labels or {}),
            notes=tuple(notes),
        )

    def _check_file(self, name: str, size: int, sha: str | None, cache_dir: Path) -> str:
        path = self.src.parent / name
        if "/" in name:
            raise TreeError(f"{self.src}: bad file name {name!r} in Files")
        check_user_path(path, f"{name}, listed in {self.src.name}")
        if path.stat().st_size != size:
            raise TreeError(f"{path}: size differs from {self.src.name} ({size} expected)")
        key = content_key(path, cache_dir)
        if sha is not None and key != sha:
            raise TreeError(f"{path}: sha256 differs from {self.src.name}")
        return key

    def changelog(self) -> str | None:
        data = self.read("debian/changelog")
        return None if data is None else data.decode("utf-8", "replace")


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise TreeError(f"{path}: corrupt .diff.gz ({e}); expected a gzip-compressed diff") from e


def _read_small_tar(path: Path) -> dict[str, bytes]:
    """Every regular file of the (small) debian tarball, by its path (debian/...)."""
    out: dict[str, bytes] = {}
    try:
        with open(path, "rb") as f, open_tar_stream(f, path.name) as tf:
            for m in tf:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if m.isfile() and name.startswith("debian/") and ".." not in name.split("/"):
                    data = tf.extractfile(m)
                    out[name] = data.read() if data else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise TreeError(f"{path}: corrupt debian tarball ({e})") from e
    return out


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
