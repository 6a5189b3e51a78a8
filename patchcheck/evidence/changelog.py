"""Presence evidence from a distro changelog shipped with the tree: a Debian/Ubuntu
``debian/changelog`` or an RPM spec's ``%changelog`` naming the fix's subject or a CVE; and
from the headers of the patches a package applies (openEuler's ``mainline inclusion`` block
naming the upstream commit, a ``CVE:`` line, the upstream subject)."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from patchcheck.evidence.history import normalise_subject, specific
from patchcheck.model import Evidence, Method
from patchcheck.text.trailers import cve_lines, inclusion, upstream_refs
from patchcheck.text.trailers import cves as trailer_cves

_QUOTE_MAX = 200
_MIN_SHA = 12  # an abbreviated upstream id shorter than this may name another commit

_BULLET_RE = re.compile(r"^([ \t]*)[-*+][ \t]+(\S.*)$")
_PR_NUMBER_RE = re.compile(r"^!\d+\s+")  # openEuler: "- !1234 subject" (the merge request)
_LEAD_BRACKETS_RE = re.compile(r"^(?:\[[^\]]*\]\s*)+")  # Debian "[x86]", RHEL "[fs]"
# Annotations a changelog appends to a subject: "(CVE-...)", "(Jeff Layton)", "[RHEL-1]"...
_TRAIL_ANNOT_RE = re.compile(r"\s*(?:\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\})\s*\.?$")


@dataclass(frozen=True)
class _ChangelogIndex:
    subjects: dict[str, str]  # a normalised entry (or an entry minus annotations) -> quote
    cves: dict[str, str]  # CVE id (upper case) -> quote of the first line naming it


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 3] + "..."


def _entries(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(entry text, quote) per bullet, a wrapped entry's continuation lines joined."""
    cur_indent = -1
    cur: list[str] = []
    quote = ""
    for line in lines:
        m = _BULLET_RE.match(line)
        indent = len(line) - len(line.lstrip())
        if (
            m is None
            and cur
            and line.strip()
            and indent > cur_indent
            and not line.lstrip().startswith(("[ ", "-- "))
        ):
            cur.append(line.strip())
            quote += " " + line.strip()
            continue
        if cur:
            yield " ".join(cur), quote
            cur = []
        if m is not None:
            cur_indent = len(m.group(1).expandtabs())
            cur = [m.group(2)]
            quote = line.strip()
    if cur:
        yield " ".join(cur), quote


def _variants(entry: str) -> Iterator[str]:
    """The forms of an entry a subject may equal: as written, and minus decorations."""
    entry = _PR_NUMBER_RE.sub("", entry.strip())
    bases = [entry]
    stripped = _LEAD_BRACKETS_RE.sub("", entry)
    if stripped != entry:
        bases.append(stripped)
    for base in bases:
        s = normalise_subject(base)
        yield s
        while True:
            shorter = _TRAIL_ANNOT_RE.sub("", s).rstrip(". ")
            if shorter == s or not shorter:
                break
            s = shorter
            yield s


@functools.lru_cache(maxsize=8)
def _changelog_index(text: str) -> _ChangelogIndex:
    # A Debian kernel changelog runs to megabytes and is asked about once per patch.
    subjects: dict[str, str] = {}
    cves: dict[str, str] = {}
    lines = text.splitlines()
    for entry, quote in _entries(lines):
        for v in _variants(entry):
            subjects.setdefault(v, _quote(quote))
    for line in lines:
        if "cve-" not in line.lower():
            continue
        body = line.strip().lstrip("-*+ ")
        if body.lower().startswith("revert"):
            continue  # 'Revert "fix" (CVE-...)' takes the fix out
        for cve in trailer_cves(line):
            cves.setdefault(cve, _quote(line))
    return _ChangelogIndex(subjects, cves)


def changelog_match(text: str, *, subject: str, cves: Sequence[str]) -> Evidence | None:
    """Evidence that a distro changelog lists the fix by its whole subject or a CVE id."""
    if not text:
        return None
    idx = _changelog_index(text)
    norm = normalise_subject(subject)
    if specific(norm):
        quote = idx.subjects.get(norm)
        if quote is not None:
            return Evidence(Method.CHANGELOG, f"changelog: '{quote}'")
    for cve in cves:
        quote = idx.cves.get(cve.strip().upper())
        if quote is not None:
            return Evidence(Method.CHANGELOG, f"changelog names {cve.strip().upper()}: '{quote}'")
    return None


def _same_commit(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return min(len(a), len(b)) >= _MIN_SHA and (a.startswith(b) or b.startswith(a))


def _subject(header: str) -> str:
    """A mail header's ``Subject:``, its folded continuation lines joined."""
    lines = header.splitlines()
    for i, line in enumerate(lines):
        if line.lower().startswith("subject:"):
            folded = itertools.takewhile(lambda ln: ln[:1] in (" ", "\t") and ln.strip(), lines[i + 1 :])
            return " ".join(" ".join([line[8:], *folded]).split())
        if not line.strip():
            break  # the mail headers end at the first blank line
    return ""


def queue_match(
    headers: Sequence[tuple[str, str]], *, upstream: Sequence[str], subject: str, cves: Sequence[str]
) -> Evidence | None:
    """Evidence that a patch the package applies (``headers``: its name and the text before
    its diff) backports the fix: its inclusion block or backport line names the upstream
    commit, its subject is the fix's, or a CVE line of its own names one of ``cves``."""
    norm = normalise_subject(subject)
    wanted = {c.strip().upper() for c in cves}
    for q in _queue_index(tuple(headers)):
        for sha in q.named:
            if any(_same_commit(sha, u) for u in upstream):
                return Evidence(Method.CHANGELOG, f"applied patch {q.name} backports commit {sha[:12]}")
        if specific(norm) and q.subject and q.normalised == norm:
            quote = _quote(q.subject)
            return Evidence(Method.CHANGELOG, f"applied patch {q.name} has the fix's subject: '{quote}'")
        hit = next((c for c in q.cves if c in wanted), None)
        if hit is not None:
            return Evidence(Method.CHANGELOG, f"applied patch {q.name} names {hit} (CVE line)")
    return None


@dataclass(frozen=True)
class _QueuePatch:
    name: str
    named: tuple[str, ...]  # the upstream commits its backport lines and inclusion block name
    subject: str
    normalised: str
    cves: tuple[str, ...]  # its inclusion block's CVEs, then its CVE lines


@functools.lru_cache(maxsize=8)
def _queue_index(headers: tuple[tuple[str, str], ...]) -> tuple[_QueuePatch, ...]:
    # a tree's queue is asked about once per patch of every fix: each header read once
    out = []
    for name, text in headers:
        block = inclusion(text)
        named = [r.sha for r in upstream_refs(text)] + ([block.commit] if block and block.commit else [])
        subj = _subject(text)
        cves = (*(block.cves if block else ()), *cve_lines(text))
        out.append(_QueuePatch(name, tuple(named), subj, normalise_subject(subj) if subj else "", cves))
    return tuple(out)
