"""A kernel source RPM (Kylin V10, CTyunOS, ...): tarball + the spec's patch queue.

Only the spec, the tarballs and the patches are taken out of the SRPM (``rpm2cpio | cpio``), into
the cache. The queue order comes from %prep: ``%patchN``, ``%patch -P N``, ``%autosetup``,
``%autopatch`` and the kernel specs' ``ApplyPatch``/``ApplyOptionalPatch`` helpers.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from patchcheck.errors import ToolError, TreeError
from patchcheck.model import TreeInfo
from patchcheck.sys import proc
from patchcheck.trees._common import (
    check_user_path,
    content_key,
    entry_dir,
    load_json,
    require_version,
    save_json,
)
from patchcheck.trees._patched import PatchedTree, QueuePatch
from patchcheck.trees._store import MemberStore, file_stream
from patchcheck.trees.tarball import TAR_SUFFIXES

_SECTION = re.compile(
    r"^%(prep|build|install|check|clean|files|changelog|description|package|pre|post|preun|"
    r"postun|pretrans|posttrans|triggerin|triggerun|triggerpostun|verifyscript|conf|"
    r"generate_buildrequires|sourcelist|patchlist)\b"
)
_TAG = re.compile(r"^(Patch|Source)(\d*)\s*:\s*(\S.*?)\s*$", re.I)
_DEFINE = re.compile(r"^%(?:define|global)\s+(\w+)(?:\(.*?\))?\s+(.*?)\s*$")
_SIMPLE_TAG = re.compile(r"^(Name|Version|Release|Epoch)\s*:\s*(\S.*?)\s*$", re.I)
_PATCH_EXTS = (".patch", ".diff")


@dataclass
class QueueStep:
    """One patch application found in %prep: by number (%patch) or by file (ApplyPatch)."""

    number: int | None
    file: str | None
    strip: int
    reverse: bool = False


@dataclass
class SpecInfo:
    patches: dict[int, str] = field(default_factory=dict)  # PatchN: -> file name
    sources: dict[int, str] = field(default_factory=dict)
    steps: list[QueueStep] = field(default_factory=list)
    changelog: str | None = None
    conditional: bool = False  # %prep has %if: every listed step is applied regardless
    macros: dict[str, str] = field(default_factory=dict)


def expand(text: str, macros: dict[str, str]) -> str:
    """Enough rpm macro expansion for file names: %{x}, %x, %{?x}, %{?x:y}, %{!?x:y}."""

    def one(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        if body is None:
            return m.group(0)
        neg = body.startswith("!?")
        cond = body.startswith("?") or neg
        name, _, alt = body.lstrip("!?").partition(":")
        if not cond:
            return macros.get(name, m.group(0))
        defined = name in macros
        if alt:
            return alt if defined != neg else ""
        return "" if neg else macros.get(name, "")

    for _ in range(10):  # nested macros; bounded against self-reference
        new = re.sub(r"%\{([^{}]+)\}|%(\w+)", one, text)
        if new == text:
            break
        text = new
    return text


def _opts(args: list[str]) -> tuple[int | None, bool, list[str], dict[str, str]]:
    """-pN, -R and other -X value options of %patch/%autopatch; returns positional args too."""
    strip: int | None = None
    reverse = False
    positional: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-p"):
            val = a[2:] or (args[i + 1] if i + 1 < len(args) else "1")
            i += 0 if a[2:] else 1
            strip = int(val) if val.isdigit() else 1
        elif a == "-R":
            reverse = True
        elif len(a) >= 2 and a[0] == "-" and a[1] in "PmMbzFoSn":
            val = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
            i += 0 if a[2:] else 1
            values.setdefault(a[1], "")
            values[a[1]] += (" " if values[a[1]] else "") + val
        elif not a.startswith("-"):
            positional.append(a)
        i += 1
    return strip, reverse, positional, values


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def parse_spec(text: str, macros: dict[str, str] | None = None) -> SpecInfo:
    info = SpecInfo(macros=dict(macros or {}))
    section = "preamble"
    prep: list[str] = []
    changelog: list[str] = []
    next_patch = 0
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        if m := _SECTION.match(line):
            section = m.group(1)
            continue
        if section == "changelog":
            changelog.append(line)
            continue
        if m := _DEFINE.match(line):
            info.macros.setdefault(m.group(1), m.group(2))
            continue
        if section == "preamble" or section == "package":
            if m := _SIMPLE_TAG.match(line):
                info.macros.setdefault(m.group(1).lower(), expand(m.group(2), info.macros))
            elif m := _TAG.match(line):
                value = expand(m.group(3), info.macros).rsplit("/", 1)[-1]
                if m.group(1).lower() == "patch":
                    num = int(m.group(2)) if m.group(2) else next_patch
                    info.patches[num] = value
                    next_patch = max(next_patch, num + 1)
                    info.macros[f"PATCH{num}"] = value
                else:
                    num = int(m.group(2) or 0)
                    info.sources[num] = value
                    info.macros[f"SOURCE{num}"] = value
        elif section == "prep":
            prep.append(line)
    for raw in prep:
        line = raw.strip()
        if line.startswith(("%if", "%else", "%elif")):
            info.conditional = True
        info.steps += _prep_steps(line, info)
    info.changelog = "\n".join(changelog).strip() + "\n" if changelog else None
    return info


def _prep_steps(line: str, info: SpecInfo) -> list[QueueStep]:
    if not line or line.startswith("#"):
        return []
    if m := re.match(r"^%patch(\d+)\b(.*)$", line):  # the old %patchN form
        strip, rev, _, _ = _opts(_split(m.group(2)))
        return [QueueStep(int(m.group(1)), None, 1 if strip is None else strip, rev)]
    if line == "%patch" or line.startswith("%patch "):
        strip, rev, pos, vals = _opts(_split(line[len("%patch") :]))
        nums = [int(n) for n in (vals.get("P", "").split() + pos) if n.isdigit()] or [0]
        return [QueueStep(n, None, 1 if strip is None else strip, rev) for n in nums]
    if line.startswith(("%autosetup", "%autopatch")):
        args = _split(line)[1:]
        if line.startswith("%autosetup") and "-N" in args:
            return []
        strip, rev, pos, vals = _opts(args)
        lo = int(vals["m"]) if vals.get("m", "").isdigit() else None
        hi = int(vals["M"]) if vals.get("M", "").isdigit() else None
        picked = [int(n) for n in pos if n.isdigit()] if line.startswith("%autopatch") else []
        nums = picked or [n for n in sorted(info.patches) if (lo is None or n >= lo) and (hi is None or n <= hi)]
        return [QueueStep(n, None, 1 if strip is None else strip, rev) for n in nums]
    words = _split(expand(line, info.macros))
    if words and words[0] in ("ApplyPatch", "ApplyOptionalPatch") and len(words) > 1:
        # kernel specs' shell helper: `ApplyPatch file [-R]`, always -p1
        return [QueueStep(None, words[1].rsplit("/", 1)[-1], 1, "-R" in words[2:])]
    if words and words[0] == "patch" and "<" in words:  # a plain `patch -p1 < %{PATCH3}`
        strip, rev, _, _ = _opts(words[1 : words.index("<")])
        target = words[words.index("<") + 1] if words.index("<") + 1 < len(words) else ""
        if target and "$" not in target:  # `$1` etc.: the body of a helper function
            return [QueueStep(None, target.rsplit("/", 1)[-1], 1 if strip is None else strip, rev)]
    return []


def _decompress(name: str, data: bytes) -> bytes:
    try:
        if name.endswith(".gz"):
            return gzip.decompress(data)
        if name.endswith(".xz"):
            return lzma.decompress(data)
        if name.endswith(".bz2"):
            return bz2.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
        raise TreeError(f"{name}: corrupt compressed patch ({e})") from e
    return data


class SrpmTree(PatchedTree):
    queue_what = "spec patch"

    def __init__(
        self,
        path: Path,
        *,
        cache_dir: Path,
        name: str,
        distro: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.src = check_user_path(path, "a kernel .src.rpm")
        self.source_label = str(self.src)
        self.entry = entry_dir(cache_dir, "srpm", content_key(self.src, cache_dir))
        header = self._header()
        files = self._extract(header)
        spec_name = next((f for f in files if f.endswith(".spec")), None)
        if spec_name is None:
            raise TreeError(f"{self.src}: no .spec file inside; expected a kernel source RPM")
        spec_text = (self.entry / "src" / spec_name).read_text("utf-8", "replace")
        macros = {
            "name": header["name"],
            "version": header["version"],
            "release": header["release"],
        }
        self.spec = parse_spec(spec_text, macros)
        tarball = self._kernel_tarball(files)
        self.base = MemberStore(
            self.entry / "members",
            lambda: file_stream(self.entry / "src" / tarball),
            f"{self.src}: {tarball}",
        )
        queue = self._queue(set(files), spec_name)
        self._init_overlay(queue)
        version = require_version(self.read("Makefile"), f"{self.src} ({tarball})")
        notes = [f"applied {len(queue)} of {len(self.spec.patches)} spec patches ({spec_name} %prep order)"]
        if self.spec.conditional and queue:
            notes.append("%prep has %if blocks: every patch it names was applied")
        self.info = _info(name, self.src, version, distro, header, labels, notes)

    def _header(self) -> dict[str, str]:
        cached = load_json(self.entry / "header.json")
        if isinstance(cached, dict):
            return cached
        fmt = "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n%{SOURCERPM}\\n[%{PATCH}\\n]"
        res = proc.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, self.src])
        if not res.ok:
            why = res.err().strip().splitlines()
            raise TreeError(
                f"{self.src}: not a readable RPM ({why[-1] if why else 'rpm failed'}); expected a kernel .src.rpm"
            )
        lines = res.out().split("\n")
        if len(lines) < 4 or lines[3] != "(none)":
            raise TreeError(f"{self.src}: a binary RPM; expected a kernel .src.rpm")
        listing = proc.run(["rpm", "-qlp", "--nosignature", "--nodigest", self.src])
        header = {
            "name": lines[0],
            "version": lines[1],
            "release": lines[2],
            "patches": "\n".join(x for x in lines[4:] if x),
            "files": "\n".join(x.rsplit("/", 1)[-1] for x in listing.out().splitlines() if x),
        }
        save_json(self.entry / "header.json", header)
        return header

    def _extract(self, header: dict[str, str]) -> list[str]:
        """Spec, tarballs and patches only, via rpm2cpio | cpio, into the cache (once)."""
        done = load_json(self.entry / "src.json")
        if isinstance(done, list):
            return [str(x) for x in done]
        patches = set(header["patches"].split("\n"))
        names = [
            f
            for f in header["files"].split("\n")
            if f
            and (
                f.endswith(".spec")
                or f in patches
                or f.endswith(TAR_SUFFIXES)
                or any(ext in f for ext in _PATCH_EXTS)
            )
        ]
        out = self.entry / "src"
        out.mkdir(exist_ok=True)
        script = 'rpm2cpio "$1" | cpio -idmu --quiet --no-absolute-filenames -- "${@:2}"'
        try:
            proc.run(
                ["bash", "-o", "pipefail", "-c", script, "x", self.src, *names],
                cwd=out,
                timeout=1800,
                check=True,
            )
        except ToolError as e:
            raise TreeError(f"{self.src}: cannot unpack the SRPM payload ({e})") from e
        save_json(self.entry / "src.json", names)
        return names

    def _kernel_tarball(self, files: list[str]) -> str:
        tarballs = [f for f in files if f.endswith(TAR_SUFFIXES)]
        source0 = self.spec.sources.get(0)
        if source0 in tarballs:
            return source0
        kernelish = [t for t in tarballs if t.startswith(("linux", "kernel"))]
        if kernelish or tarballs:
            pool = kernelish or tarballs
            return max(pool, key=lambda t: (self.entry / "src" / t).stat().st_size)
        raise TreeError(f"{self.src}: no kernel tarball inside; expected a kernel .src.rpm")

    def _queue(self, files: set[str], spec_name: str) -> list[QueuePatch]:
        queue: list[QueuePatch] = []
        for step in self.spec.steps:
            if step.number is not None:
                fname = self.spec.patches.get(step.number)
                if fname is None:
                    raise TreeError(
                        f"{self.src}: {spec_name} applies patch {step.number} but declares no Patch{step.number}:"
                    )
            else:
                fname = step.file or ""
            path = self.entry / "src" / fname
            if fname not in files or not path.is_file():
                raise TreeError(f"{self.src}: spec patch {fname} is not in the SRPM")
            data = _decompress(fname, path.read_bytes())
            queue.append(QueuePatch(fname, data, step.strip, step.reverse))
        return queue

    def changelog(self) -> str | None:
        return self.spec.changelog


def _info(
    name: str,
    src: Path,
    version: str,
    distro: str | None,
    header: dict[str, str],
    labels: dict[str, str] | None,
    notes: list[str],
) -> TreeInfo:
    release = f"{header['version']}-{header['release']}"
    if distro is None:
        # The dist tag ends the release: 52.39.v2207.ky10 -> ky10, ...0068.ctl2 -> ctl2.
        tail = header["release"].rsplit(".", 1)[-1]
        distro = tail if re.fullmatch(r"[a-z]+\d*", tail) else None
    return TreeInfo(
        name=name,
        source=str(src),
        kind="srpm",
        version=version,
        distro=distro,
        release=release,
        labels=dict(labels or {}),
        notes=tuple(notes),
    )
