"""Limits (fetch/limits.py): sizes, options over environment over defaults, bounded reads."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from patchcheck.errors import BadInput
from patchcheck.fetch.http import Refused, check_gunzip
from patchcheck.fetch.limits import (
    THREAD_BYTES,
    Limits,
)
from patchcheck.sys.paths import NotRegular, TooLarge, read_regular
from patchcheck.text.units import format_size, parse_size


def test_sizes() -> None:
    assert [parse_size(s) for s in ("1048576", "64M", "64MiB", "2g", " 3 KB ")] == [
        1 << 20,
        64 << 20,
        64 << 20,
        2 << 30,
        3 << 10,
    ]
    for bad in ("", "0", "-1", "1.5M", "12 parsecs"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert [format_size(n) for n in (256 << 20, 1 << 30, 1536, 1000)] == [
        "256 MiB",
        "1 GiB",
        "1536 bytes",
        "1000 bytes",
    ]
    assert THREAD_BYTES.breach(1 << 20) == (
        "exceeds --max-thread-bytes (1 MiB); raise it with --max-thread-bytes or PATCHCHECK_MAX_THREAD_BYTES"
    )


def test_option_over_environment_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHCHECK_MAX_THREAD_BYTES", "1G")
    monkeypatch.setenv("PATCHCHECK_MAX_THREAD_MAILS", "7")
    got = Limits.resolve(answer_bytes=None, thread_bytes=None, thread_mails=9)
    assert got == Limits(answer_bytes=64 << 20, thread_bytes=1 << 30, thread_mails=9, mbox_bytes=64 << 20)
    monkeypatch.setenv("PATCHCHECK_MAX_ANSWER_BYTES", "lots")
    with pytest.raises(BadInput, match="PATCHCHECK_MAX_ANSWER_BYTES='lots'"):
        Limits.resolve()


def test_read_regular(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    assert read_regular(f, 10) == b"x" * 10
    with pytest.raises(TooLarge):
        read_regular(f, 9)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for p in (fifo, tmp_path, Path("/dev/null")):
        with pytest.raises(NotRegular):
            read_regular(p, 10)
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "absent", 10)


def test_check_gunzip_counts_every_member() -> None:
    two = gzip.compress(b"a" * 600) + b"\0\0" + gzip.compress(b"b" * 600)
    check_gunzip(two, 1200)
    with pytest.raises(Refused, match="--max-thread-bytes"):
        check_gunzip(two, 1199)
    with pytest.raises(EOFError):
        check_gunzip(two[:-5], 1 << 20)
