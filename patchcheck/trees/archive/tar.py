"""A tar stream reader: headers only, data read on demand or skipped in bulk.

Measured against the standard library's ``tarfile`` in stream mode (``r|``) on Debian's
linux-source-6.1 tarball (1.36 GB, 83,775 members): walking every header takes 0.7 s here
and 5.5-6.3 s with tarfile; a whole pass behind ``xz -dc -T0`` 11 s against 27 s on two
cores. tarfile spends that time building a TarInfo per member; we only need names, types,
link targets and sizes, so this reader stays.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO

from patchcheck.trees.archive.compress import BUFSIZE

_EXTENDED_MAX = 1 << 20
TarError = tarfile.TarError  # what a malformed header raises (tarfile's type, for callers)


def read_exact(stream: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        chunk = stream.read(min(n, BUFSIZE))
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for large values
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as e:
        raise tarfile.ReadError(f"bad number in tar header: {field!r}") from e


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class RawMember:
    """One tar member; ``read()`` its data before the iteration moves on, or it is skipped."""

    __slots__ = ("name", "type", "linkname", "size", "_stream", "_read")

    def __init__(self, name: str, type_: bytes, linkname: str, size: int, stream: IO[bytes]):
        self.name, self.type, self.linkname, self.size = name, type_, linkname, size
        self._stream = stream
        self._read = 0

    def isfile(self) -> bool:
        return self.type in (b"0", b"\0", b"7")

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def isdir(self) -> bool:
        return self.type == b"5"

    def read(self) -> bytes:
        """The rest of the member's data."""
        want = self.size - self._read
        data = read_exact(self._stream, want)
        self._read = self.size
        if len(data) < want:
            raise tarfile.ReadError(f"{self.name}: archive ends inside this member")
        return data

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` more bytes of the member's data, b"" at its end: a large member
        (the inner tarball of a .deb) as a stream."""
        n = min(n, self.size - self._read)
        if n <= 0:
            return b""
        data = self._stream.read(n)
        if not data:
            raise tarfile.ReadError(f"{self.name}: archive ends inside this member")
        self._read += len(data)
        return data


def iter_tar(stream: IO[bytes]) -> Iterator[RawMember]:
    """Walk a tar stream's headers (ustar, pax, GNU long names)."""
    pax: dict[str, str] = {}
    long_name = long_link = None
    while True:
        block = read_exact(stream, 512)
        if not block or block == bytes(512):
            return  # the end marker (or a stream ending at a member boundary)
        if len(block) < 512:
            raise tarfile.ReadError("truncated tar header")
        stored = _number(block[148:156])
        if stored != sum(block[:148]) + 256 + sum(block[156:]):
            raise tarfile.ReadError("bad tar header checksum")
        size = _number(block[124:136])
        type_ = block[156:157]
        name = _text(block[:100])
        if block[257:262] == b"ustar" and (prefix := _text(block[345:500])):
            name = f"{prefix}/{name}"
        linkname = _text(block[157:257])
        if type_ in (b"x", b"g", b"L", b"K"):
            if size > _EXTENDED_MAX:  # held in memory: a real one is a few hundred bytes
                raise tarfile.ReadError(f"tar extended header of {size} bytes")
            data = read_exact(stream, (size + 511) // 512 * 512)[:size]
            if len(data) < size:
                raise tarfile.ReadError("truncated tar extended header")
            if type_ == b"x":
                pax = _parse_pax(data)
            elif type_ == b"L":
                long_name = _text(data)
            elif type_ == b"K":
                long_link = _text(data)
            continue
        name = pax.get("path", long_name or name)
        linkname = pax.get("linkpath", long_link or linkname)
        if "size" in pax and pax["size"].isdigit():
            size = int(pax["size"])
        pax, long_name, long_link = {}, None, None
        if type_ in (b"1", b"2", b"5", b"3", b"4", b"6"):
            size = 0  # links, folders and devices carry no data, whatever the header says
        member = RawMember(name, type_, linkname, size, stream)
        yield member
        left = (size + 511) // 512 * 512 - member._read
        while left > 0:
            chunk = stream.read(min(left, BUFSIZE))
            if not chunk:
                raise tarfile.ReadError(f"{name}: archive ends inside this member")
            left -= len(chunk)


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError as e:
            raise tarfile.ReadError("bad pax header") from e
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out
