"""A patch queue laid over a base tarball (SRPM spec patches, a quilt series, a .diff.gz).

The queue is applied only to the files it touches: those are taken from the base store into a
scratch folder inside the cache, patched there with GNU patch in queue order, and the result is
kept. Every other path is read from the base store unchanged.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from patchcheck.errors import TreeError
from patchcheck.sys import patchtool
from patchcheck.sys.atomic import atomic_write
from patchcheck.sys.paths import norm_relpath
from patchcheck.trees._common import load_json, read_under, save_json
from patchcheck.trees.archive.store import MemberStore


@dataclass(frozen=True)
class QueuePatch:
    name: str  # as the package names it, for notes and errors
    data: bytes
    strip: int = 1
    reverse: bool = False


_GIT_HEADER = re.compile(rb"^diff --git (\"?a/.+?\"?) (\"?b/.+?\"?)$")
_GIT_NAME = re.compile(rb"^(?:rename|copy) (?:from|to) (.+)$")


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return text


def _strip(path: str, strip: int) -> str | None:
    parts = path.split("/")
    if len(parts) <= strip:
        return None
    return norm_relpath("/".join(parts[strip:]))


def touched_paths(patch: QueuePatch) -> set[str]:
    """Every tree path a patch may read or write, from its ---/+++ and git headers."""
    found: set[str] = set()
    for line in patch.data.splitlines():
        raw: list[tuple[bytes, int]] = []
        if line.startswith((b"--- ", b"+++ ", b"*** ")) and not line.startswith(b"*** ***"):
            name = line[4:].split(b"\t")[0].rstrip()
            if name.endswith((b" ****", b" ----")):
                continue  # a context-diff hunk marker, not a file header
            raw.append((name, patch.strip))
        elif m := _GIT_HEADER.match(line):
            raw += [(m.group(1), patch.strip), (m.group(2), patch.strip)]
        elif m := _GIT_NAME.match(line):
            raw.append((m.group(1), 0))  # rename/copy names carry no a/ b/ prefix
        for name, strip in raw:
            text = _unquote(name)
            if text == "/dev/null":
                continue
            rel = _strip(text, strip)
            if rel is not None:
                found.add(rel)
    return found


class PatchQueue:
    """``queue`` (and ``extra`` files laid over the base first) applied once per cache entry."""

    def __init__(
        self,
        entry: Path,
        base: MemberStore,
        queue: list[QueuePatch],
        extra: dict[str, bytes],
        label: str,
        what: str,
    ) -> None:
        self.entry = entry
        self.base = base
        self.queue = queue
        self.extra = dict(extra)
        self.label = label  # the package, for messages
        self.what = what  # "spec patch", "quilt patch"... for messages
        self._applied_dir = entry / "applied"
        self._lock = threading.Lock()
        self._touched: set[str] | None = None
        self.applied_now = 0  # GNU patch runs in this process (0 when cached)

    def touched(self) -> set[str]:
        """The paths the queue (or the extra files) may change, applying it on first use."""
        with self._lock:
            if self._touched is None:
                # Another patchcheck process may be applying the same queue: take turns.
                with open(self.entry / "apply.lock", "a+b") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._touched = self._apply_queue()
            return self._touched

    def read(self, rel: str) -> bytes | None:
        return read_under(self._applied_dir, rel, self.label)

    def _apply_queue(self) -> set[str]:
        state = load_json(self.entry / "applied.json")
        if isinstance(state, dict) and self._applied_dir.is_dir():
            return set(state.get("touched") or ())
        touched: set[str] = set(self.extra)
        for p in self.queue:
            touched |= touched_paths(p)
        self.base.ensure(touched)
        scratch = Path(tempfile.mkdtemp(dir=self.entry, prefix="scratch-"))
        try:
            tree = scratch / "tree"
            tree.mkdir()
            for rel in sorted(touched):
                data = self.base.read(rel)
                if data is not None:
                    dest = tree / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
            for rel, data in self.extra.items():
                dest = tree / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            for i, p in enumerate(self.queue):
                self._apply_one(p, scratch / f"{i:05d}.patch", tree)
            if self._applied_dir.exists():
                shutil.rmtree(self._applied_dir)
            os.replace(tree, self._applied_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        save_json(self.entry / "applied.json", {"touched": sorted(touched), "count": len(self.queue)})
        return touched

    def _apply_one(self, p: QueuePatch, patch_file: Path, tree: Path) -> None:
        atomic_write(patch_file, p.data)
        args = patchtool.argv(
            strip=p.strip, reverse=p.reverse, forward=True, silent=True, directory=tree, patch_file=patch_file
        )
        res = patchtool.run(args)
        self.applied_now += 1
        if not res.ok:
            lines = [ln for ln in (res.out() + res.err()).splitlines() if ln.strip()]
            why = next(
                (ln for ln in lines if "FAILED" in ln or "can't find" in ln.lower()),
                lines[0] if lines else f"exit {res.returncode}",
            )
            raise TreeError(f"{self.label}: {self.what} {p.name} does not apply ({why.strip()})")
