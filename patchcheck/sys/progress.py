"""Progress of the long steps (reading an archive, fetching series, checking cells) on one
stderr line, redrawn with a carriage return, at most ten times a second.

Off unless a verb turns it on (``setup``): only when stderr is a terminal and without
``--quiet``, so pipes, CI logs and library callers get nothing. Tasks may nest (an archive
read while cells are checked): the newest open one is shown, and when it closes the line
goes back to the one before, or is cleared.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TextIO

_INTERVAL = 0.1  # seconds between redraws of a task

_lock = threading.RLock()
_stream: TextIO | None = None  # None: progress is off
_open: list[Task] = []
_drawn = ""  # the line on screen


def setup(quiet: bool, stream: TextIO | None = None) -> None:
    """Show progress on ``stream`` (stderr) from now on, if it is a terminal and not ``quiet``."""
    global _stream
    s = stream or sys.stderr
    try:
        tty = s.isatty()
    except (AttributeError, ValueError):
        tty = False
    _stream = s if tty and not quiet else None


def enabled() -> bool:
    return _stream is not None


def human_size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Task:
    """One long step: ``label`` and how far it got (``done`` of ``total`` ``unit``; unit
    "bytes" shows sizes). A context manager; closing it takes its line away."""

    def __init__(self, label: str, total: int | None, unit: str = "") -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self._last = 0.0  # monotonic time of the last draw; 0: never drawn
        self._live = enabled()
        if self._live:
            with _lock:
                _open.append(self)

    def advance(self, n: int = 1) -> None:
        """``n`` more done (callable from several threads)."""
        if not self._live:
            return
        with _lock:
            self.done += n
        self._show()

    def update(self, done: int) -> None:
        """``done`` so far (one thread)."""
        self.done = done
        if self._live:
            self._show()

    def _show(self) -> None:
        done = self.done
        now = time.monotonic()
        if now - self._last < _INTERVAL and done != self.total:
            return
        with _lock:
            if _open and _open[-1] is self:
                self._last = now
                _draw(self.text())

    def text(self) -> str:
        if self.unit == "bytes":
            if self.total:
                pct = 100 * self.done // max(1, self.total)
                return f"{self.label}: {human_size(self.done)} of {human_size(self.total)} ({pct}%)"
            return f"{self.label}: {human_size(self.done)}"
        unit = f" {self.unit}" if self.unit else ""
        of = f" of {self.total}" if self.total else ""
        return f"{self.label}: {self.done}{of}{unit}"

    def close(self) -> None:
        if not self._live:
            return
        self._live = False
        with _lock:
            if self in _open:
                _open.remove(self)
            if _open:
                _draw(_open[-1].text())
            else:
                _draw("")

    def __enter__(self) -> Task:
        if self._live:
            self._show()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def task(label: str, total: int | None, unit: str = "") -> Task:
    return Task(label, total, unit)


def _draw(text: str) -> None:
    """Replace the progress line (call with ``_lock`` held)."""
    global _drawn
    s = _stream
    if s is None:
        return
    try:
        width = os.get_terminal_size(s.fileno()).columns - 1
    except (OSError, ValueError, AttributeError):
        width = shutil.get_terminal_size().columns - 1
    text = text[: max(10, width)]
    if text == _drawn:
        return
    pad = " " * max(0, len(_drawn) - len(text))
    try:
        s.write(f"\r{text}{pad}" + ("\r" if not text else ""))
        s.flush()
    except (OSError, ValueError):
        return  # a closed or broken terminal must not fail the run
    _drawn = text


class _Counted(io.FileIO):
    """A file that reports, as it is read, how far into it the reads got."""

    def __init__(self, path: Path, progress: Task) -> None:
        super().__init__(path, "rb")
        self._progress = progress

    def readinto(self, b: memoryview | bytearray) -> int | None:  # type: ignore[override]
        n = super().readinto(b)
        self._progress.update(self.tell())
        return n


@contextlib.contextmanager
def read_file(path: Path, verb: str = "reading") -> Iterator[IO[bytes]]:
    """``open(path, "rb")`` that shows, on a terminal, how much of the file has been read."""
    if not enabled():
        with open(path, "rb") as f:
            yield f
        return
    with (
        Task(f"{verb} {path.name}", os.stat(path).st_size, "bytes") as t,
        io.BufferedReader(_Counted(path, t), 1 << 20) as f,
    ):
        yield f
