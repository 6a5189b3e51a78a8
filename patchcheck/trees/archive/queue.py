"""A patch queue laid over a base tarball (SRPM spec patches, a quilt series, a .diff.gz).

The queue is applied only to the files it touches: those are taken from the base store into a
scratch folder inside the cache, patched there with GNU patch in queue order, and the result is
kept. Every other path is read from the base store unchanged.
"""

from __future__ import annotations

import errno
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
from patchcheck.sys.paths import OutsideRoot, norm_relpath, resolve_beneath, write_beneath
from patchcheck.trees._common import LeadsOut, load_json, read_in_tree, save_json, writing
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


_HEADER_MAX = 64 * 1024  # a mail header is short; a huge one is read no further
_DIFF_START = re.compile(rb"^(?:---[ \t]*$|diff |--- |\+\+\+ |Index: |\*\*\* )", re.M)


def patch_header(patch: QueuePatch) -> str:
    """The text of a queue patch before its diff (and before a mail's ``---`` line): the
    mail or commit headers and message, where a backport names its upstream commit."""
    head = patch.data[:_HEADER_MAX]
    m = _DIFF_START.search(head)
    return (head[: m.start()] if m else head).decode("utf-8", "replace")


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
        limit: int,
    ) -> None:
        self.entry = entry
        self.base = base
        self.queue = queue
        self.extra = dict(extra)
        self.label = label  # the package, for messages
        self.what = what  # "spec patch", "quilt patch"... for messages
        self.limit = limit
        self._applied_dir = entry / "applied"
        self._lock = threading.Lock()
        self._touched: set[str] | None = None
        self.applied_now = 0  # GNU patch runs in this process (0 when cached)

    def touched(self) -> set[str]:
        """The paths the queue (or the extra files) may change, applying it on first use."""
        with self._lock:
            if self._touched is None:
                # Another patchcheck process may be applying the same queue: take turns.
                with writing(self.entry / "apply.lock", "a lock file"):
                    lock = open(self.entry / "apply.lock", "a+b")  # noqa: SIM115 - closed below
                with lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    self._touched = self._apply_queue()
            return self._touched

    def read(self, rel: str) -> bytes | None:
        """A touched path, as the queue left it. A symlink the queue planted is followed only
        inside the tree (LeadsOut otherwise); one to a path the queue did not touch reads
        that path from the base."""
        try:
            target = resolve_beneath(self._applied_dir, rel)
        except OutsideRoot as e:
            if e.errno == errno.ELOOP:
                raise TreeError(f"{self.label}: {rel}: symlink loop; expected a readable file") from e
            raise LeadsOut(rel) from e
        if target in self.touched():
            return read_in_tree(self._applied_dir, target, self.label, self.limit)
        return self.base.read(target)

    def _base_file(self, rel: str) -> bytes | None:
        try:
            return self.base.read(rel)
        except LeadsOut:
            return None  # a base symlink leading out: absent, as every read of it says

    def _apply_queue(self) -> set[str]:
        state = load_json(self.entry / "applied.json")
        if isinstance(state, dict) and self._applied_dir.is_dir():
            return set(state.get("touched") or ())
        touched: set[str] = set(self.extra)
        for p in self.queue:
            touched |= touched_paths(p)
        self.base.ensure(touched)
        with writing(self.entry, "a scratch folder"):
            scratch = Path(tempfile.mkdtemp(dir=self.entry, prefix="scratch-"))
        try:
            tree = scratch / "tree"
            with writing(tree, f"the files {self.label}'s patch queue touches"):
                tree.mkdir()
                # Through the path gate: the names come from the package's patches.
                for rel in sorted(touched):
                    data = self._base_file(rel)
                    if data is not None:
                        write_beneath(tree, rel, data)
                for rel, data in self.extra.items():
                    write_beneath(tree, rel, data)
            for i, p in enumerate(self.queue):
                self._apply_one(p, scratch / f"{i:05d}.patch", tree)
            with writing(self._applied_dir, f"the patched files of {self.label}"):
                if self._applied_dir.exists():
                    shutil.rmtree(self._applied_dir)
                os.replace(tree, self._applied_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        state = {"touched": sorted(touched), "count": len(self.queue)}
        save_json(self.entry / "applied.json", state, f"the patch queue state of {self.label}")
        return touched

    def _apply_one(self, p: QueuePatch, patch_file: Path, tree: Path) -> None:
        with writing(patch_file, f"{self.what} {p.name}"):
            atomic_write(patch_file, p.data)
        args = patchtool.argv(
            strip=p.strip, reverse=p.reverse, forward=True, silent=True, directory=tree, patch_file=patch_file
        )
        res = patchtool.run(args)
        self.applied_now += 1
        if not res.ok:
            if "No space left on device" in res.err():
                raise TreeError(
                    f"{tree}: cannot write {self.what} {p.name}'s result into the cache (No space left on device)"
                )
            lines = [ln for ln in (res.out() + res.err()).splitlines() if ln.strip()]
            why = next(
                (ln for ln in lines if "FAILED" in ln or "can't find" in ln.lower()),
                lines[0] if lines else f"exit {res.returncode}",
            )
            raise TreeError(f"{self.label}: {self.what} {p.name} does not apply ({why.strip()})")
