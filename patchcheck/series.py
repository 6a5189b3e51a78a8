"""What the fetch stage hands to the apply stage: a selected, am-ready patch series."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PatchMail:
    """One patch e-mail of a series, as selected for a fix."""

    msgid: str
    subject: str  # without the [PATCH vN m/n] prefix
    author: str
    counter: int  # 1-based position in the series (m of m/n); 1 for a single patch
    expected: int  # n of m/n
    diff: bytes  # the unified diff part (from the first "diff --git" / "---" line on)
    upstream: str | None = None  # upstream commit id, from the bug file or a trailer
    fixes: tuple[str, ...] = ()  # Fixes: trailer values ("<sha> (\"subject\")")
    links: tuple[str, ...] = ()  # Link: trailer values
    cves: tuple[str, ...] = ()  # CVE ids mentioned in the message


@dataclass(frozen=True)
class Series:
    """A fix's selected patches, in series order."""

    key: str  # cache key: the msgid, or "mbox:<sha256>" for a local file
    msgid: str | None
    revision: int
    subject: str  # cover letter subject, or the first patch's
    patches: tuple[PatchMail, ...]
    source: str  # "lore", "cache" or "mbox"
    fetched: str = ""  # ISO time the thread was fetched
    extra: dict[str, str] = field(default_factory=dict)
