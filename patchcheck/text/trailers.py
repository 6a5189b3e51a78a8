"""Trailers, mentions and subject prefixes of patch mails and commit messages.

The one home of these regexes: a mail's ``Fixes:``/``Link:`` trailers and CVE mentions, the
ways a backport names its upstream commit (stable's ``commit X upstream.``, ``[ Upstream
commit X ]``, ``Upstream commit X``, ``(cherry picked from commit X)``, ``(backported from
commit X)``, openEuler's ``mainline inclusion`` block), Ubuntu's CVE and BugLink lines, and
the ``[PATCH v2 6.12 078/172]`` / ``UPSTREAM:`` / ``UBUNTU: SAUCE:`` subject prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
FULL_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
CVE_ID_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_CVE_RE = re.compile(r"(?<!\w)CVE-\d{4}-\d{4,}(?!\d)", re.I)
_CVE_LINE_RE = re.compile(r"^[ \t]*(?:CVE:[ \t]*)?(CVE-\d{4}-\d{4,})[ \t]*$", re.M | re.I)
_FIXES_RE = re.compile(r"^[ \t]*Fixes:[ \t]*(\S.*?)[ \t]*$", re.M | re.I)
_FIXES_SHA_RE = re.compile(r"^([0-9a-f]{7,40})\b", re.I)
_LINK_RE = re.compile(r"^[ \t]*Link:[ \t]*(\S+)", re.M | re.I)
_BUGLINK_RE = re.compile(r"^[ \t]*BugLink:[ \t]*(\S+)", re.M | re.I)
_REVERTS_RE = re.compile(rb"^[ \t]*This reverts commit ([0-9a-f]{40})\b", re.I | re.M)
_REVERT_SUBJECT_RE = re.compile(r'^Revert "(.+)"\s*$')

# Every backport form names the upstream commit as "commit <hex>": one literal-led regex
# finds those (fast on a whole git log) and the text around each hit tells the form. It runs
# on lower-cased bytes, so commit bodies are never decoded.
_COMMIT_HEX_RE = re.compile(rb"commit[ \t]+([0-9a-f]{12,40})\b")
_UPSTREAM_WORD_RE = re.compile(rb"upstream\b")
_BRACKET_BEFORE_RE = re.compile(rb"\[[ \t]*upstream$")
_PICKED_BEFORE_RE = re.compile(rb"\((cherry[ -]picked|backported)[ \t]+from$")
_INCLUSION_RE = re.compile(rb"^[\w-]+[ \t]+inclusion$")

TRAILER_FORMS = {
    "stable": "commit ... upstream",
    "bracket": "[ Upstream commit ... ]",
    "plain": "Upstream commit ...",
    "cherry": "(cherry picked from commit ...)",
    "backported": "(backported from commit ...)",
    "inclusion": "mainline inclusion / commit ...",
}
# which form names the upstream commit of a mail best, when several do
_FORM_RANK = ("stable", "bracket", "plain", "inclusion", "cherry", "backported")


def is_sha(text: str, *, full: bool = False) -> bool:
    """A lower-case commit id: 40 hex with ``full``, else 7 to 40 (the whole text: no
    trailing newline either)."""
    return bool((FULL_SHA_RE if full else SHA_RE).fullmatch(text))


def is_cve(text: str) -> bool:
    """Exactly one CVE id, as bug files write it (``CVE-2024-50264``), nothing around it."""
    return bool(CVE_ID_RE.fullmatch(text))


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def cves(text: str) -> list[str]:
    """Every CVE id mentioned anywhere (subject, prose, trailers), upper-cased, in order."""
    return _dedupe([c.upper() for c in _CVE_RE.findall(text)])


def cve_lines(body: str) -> list[str]:
    """CVE ids a line of their own names: Ubuntu's ``CVE-2024-1086`` trailer line and
    openEuler's ``CVE: CVE-2024-1086`` (a stronger claim than a mention in prose)."""
    return _dedupe([c.upper() for c in _CVE_LINE_RE.findall(body)])


def fixes(body: str) -> list[str]:
    """The values of ``Fixes:`` trailers (``<sha> ("subject")``), in order."""
    return _dedupe(_FIXES_RE.findall(body))


def fix_sha(value: str) -> str | None:
    """The commit id a ``Fixes:`` trailer value starts with, lower-cased."""
    m = _FIXES_SHA_RE.match(value)
    return m.group(1).lower() if m else None


def fixes_shas(body: str) -> list[str]:
    """The commit ids ``Fixes:`` trailers name, lower-cased."""
    return _dedupe([sha for value in fixes(body) if (sha := fix_sha(value))])


def links(body: str) -> list[str]:
    """The URLs of ``Link:`` trailers, in order."""
    return _dedupe(_LINK_RE.findall(body))


def buglinks(body: str) -> list[str]:
    """The URLs of ``BugLink:`` lines (Ubuntu's Launchpad bugs), in order."""
    return _dedupe(_BUGLINK_RE.findall(body))


def reverted_commit(body: str | bytes) -> str | None:
    """The commit a ``This reverts commit X.`` line names (40 hex), if any."""
    data = body.encode("utf-8", "replace") if isinstance(body, str) else body
    m = _REVERTS_RE.search(data)
    return m.group(1).decode("ascii").lower() if m else None


def reverted_subject(subject: str) -> str | None:
    """The subject a ``Revert "<subject>"`` commit quotes, if it is one."""
    m = _REVERT_SUBJECT_RE.match(subject)
    return m.group(1) if m else None


# ---- backport trailers ------------------------------------------------------------------


class UpstreamRef(NamedTuple):
    """An upstream commit a backport names, and the form that names it (TRAILER_FORMS)."""

    sha: str  # lower case, 12 to 40 hex
    form: str


def _line_before(text: bytes, line_start: int) -> tuple[bytes, int] | None:
    """The line ending just before offset ``line_start`` (stripped) and where it starts."""
    if line_start == 0:
        return None
    start = text.rfind(b"\n", 0, line_start - 1) + 1
    return text[start : line_start - 1].strip(), start


def _form(low: bytes, line_start: int, before: bytes, after: bytes) -> str | None:
    """Which backport form a "commit <hex>" hit belongs to, or None for prose."""
    if not before:
        if _UPSTREAM_WORD_RE.match(after):
            return "stable"  # "commit <sha> upstream."
        # openEuler: "mainline inclusion" / optional "from mainline-vX" / "commit <sha>"
        prev = _line_before(low, line_start)
        if prev is not None and prev[0].startswith(b"from "):
            prev = _line_before(low, prev[1])
        if prev is not None and _INCLUSION_RE.match(prev[0]):
            return "inclusion"
        return None
    if before == b"upstream":
        return "plain"
    if after.startswith(b"]") and _BRACKET_BEFORE_RE.search(before):
        return "bracket"
    m = _PICKED_BEFORE_RE.search(before)
    if m is not None:
        return "backported" if m.group(1) == b"backported" else "cherry"
    return None


def upstream_refs(body: str | bytes) -> list[UpstreamRef]:
    """Every upstream commit a backport form names, in order of appearance. Prose that
    mentions a commit ("since commit X", ``Fixes: X``) is not one."""
    data = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if b"ommit" not in data and b"OMMIT" not in data:  # cheap filter: most bodies have none
        return []
    low = data.lower()
    out: list[UpstreamRef] = []
    for m in _COMMIT_HEX_RE.finditer(low):
        line_start = low.rfind(b"\n", 0, m.start()) + 1
        line_end = low.find(b"\n", m.end())
        after = low[m.end() : line_end if line_end >= 0 else len(low)].strip()
        form = _form(low, line_start, low[line_start : m.start()].strip(), after)
        if form is not None:
            out.append(UpstreamRef(m.group(1).decode("ascii"), form))
    return out


def upstream_commit(body: str | bytes) -> str | None:
    """The upstream commit a mail says it is a backport of: the best-ranked form wins (a
    stable mail's ``commit X upstream.`` over a ``cherry picked`` line it quotes)."""
    refs = upstream_refs(body)
    if not refs:
        return None
    return min(refs, key=lambda r: _FORM_RANK.index(r.form)).sha


@dataclass(frozen=True)
class Inclusion:
    """openEuler's header block: ``mainline inclusion`` / ``from mainline-v6.7-rc1`` /
    ``commit <sha>`` / ``category: bugfix`` / ``bugzilla: <url>`` / ``CVE: CVE-...``."""

    kind: str  # "mainline", "stable", "maillist", "hulk", ...
    source: str | None = None  # "mainline-v6.7-rc1"
    commit: str | None = None
    category: str | None = None
    bugzilla: str | None = None
    cves: tuple[str, ...] = ()
    reference: str | None = None


_INCL_HEAD_RE = re.compile(r"^[ \t]*([\w-]+)[ \t]+inclusion[ \t]*$", re.M | re.I)
_INCL_LINE_RE = re.compile(r"^[ \t]*(from|commit|category|bugzilla|cve|reference)\b:?[ \t]*(\S.*?)[ \t]*$", re.I)


def inclusion(body: str) -> Inclusion | None:
    """The openEuler inclusion block of a commit message, if it has one: an ``X inclusion``
    line followed by at least one of its keys (a prose line "for inclusion" is not one)."""
    for m in _INCL_HEAD_RE.finditer(body):
        fields: dict[str, str] = {}
        found: list[str] = []
        for line in body[m.end() :].lstrip("\r\n").splitlines():
            lm = _INCL_LINE_RE.match(line)
            if lm is None:
                if line.strip():
                    continue  # a key of the block we do not read ("DTS: #87")
                break  # the block ends at a blank line
            key, value = lm.group(1).lower(), lm.group(2)
            if key == "cve":
                found += cves(value)
            else:
                fields.setdefault(key, value)
        if not fields and not found:
            continue
        commit = fields.get("commit", "").split(maxsplit=1)[0].lower() if fields.get("commit") else None
        return Inclusion(
            kind=m.group(1).lower(),
            source=fields.get("from"),
            commit=commit if commit and SHA_RE.match(commit) else None,
            category=fields.get("category"),
            bugzilla=fields.get("bugzilla"),
            cves=tuple(_dedupe(found)),
            reference=fields.get("reference"),
        )
    return None


# ---- subjects ---------------------------------------------------------------------------

_REPLY_RE = re.compile(r"^(?:(?:re|aw|fwd?|sv)\s*:\s*)+", re.I)
_BRACKET_RE = re.compile(r"^\[([^\[\]]*)\]\s*")
_COUNTER_RE = re.compile(r"^(\d{1,4})/(\d{1,4})$")
_REVISION_RE = re.compile(r"^v(\d{1,3})$", re.I)
_MAIL_WORD_RE = re.compile(r"\b(?:patch|rfc|resend)\b", re.I)
# Tags a backport carries before the upstream subject: Android's, Ubuntu's
_TAG_RE = re.compile(r"^(UPSTREAM|BACKPORT|FROMGIT|FROMLIST|UBUNTU|SAUCE)\s*:\s*", re.I)
_DISTRO_ONLY = {"sauce"}
_ANY_PREFIX_RE = re.compile(
    r"^\s*(?:\[|(?:re|aw|fwd?|sv|upstream|backport|fromgit|fromlist|ubuntu|sauce)\s*:)", re.I
)


@dataclass(frozen=True)
class Subject:
    """A mail or commit subject with its mail and backport prefixes taken apart."""

    text: str  # what is left: the change's own subject ("[media] x" keeps its bracket)
    revision: int = 1  # v2 -> 2
    counter: int = 1  # 078/172 -> 78
    expected: int = 1  # 078/172 -> 172
    prefixes: tuple[str, ...] = ()  # every word of the mail brackets ("PATCH", "6.12", "net-next")
    tags: tuple[str, ...] = ()  # backport tags, upper-cased ("UPSTREAM", "UBUNTU", "SAUCE")
    rfc: bool = False
    resend: bool = False
    reply: bool = False
    distro_only: bool = False  # UBUNTU: SAUCE: a patch the distro carries, not upstream's

    @property
    def targets(self) -> tuple[str, ...]:
        """Bracket words that name a tree or release ("6.12", "net-next", "5.10.y")."""
        return tuple(
            p
            for p in self.prefixes
            if not (_MAIL_WORD_RE.fullmatch(p) or _REVISION_RE.match(p) or _COUNTER_RE.match(p))
        )


def _is_mail_bracket(inner: str, words: list[str]) -> bool:
    """A bracket of mail words ("PATCH v2 3/5", "RFC", "net-next v3 2/7"); a bracket
    without them ("[media]", "[SCSI]") is part of the change's subject."""
    return bool(_MAIL_WORD_RE.search(inner)) or any(_COUNTER_RE.match(w) or _REVISION_RE.match(w) for w in words)


def parse_subject(subject: str) -> Subject:
    """Take ``Re:``, ``[PATCH v2 6.12 078/172]`` brackets and ``UPSTREAM:`` /
    ``UBUNTU: SAUCE:`` tags off a subject, reading the revision and counters on the way."""
    s = " ".join(subject.split())
    m = _REPLY_RE.match(s)
    reply = m is not None
    if m:
        s = s[m.end() :]
    revision = counter = expected = 1
    prefixes: list[str] = []
    tags: list[str] = []
    while True:
        if t := _TAG_RE.match(s):
            tags.append(t.group(1).upper())
            s = s[t.end() :]
            continue
        b = _BRACKET_RE.match(s)
        # "[PATCHv3]" is "[PATCH v3]", "[RFCv2]" "[RFC v2]"
        inner = re.sub(r"(?i)(patch|rfc)(v\d+)", r"\1 \2", b.group(1)) if b else ""
        words = [w.strip(",;") for w in inner.split()]
        if b is None or not _is_mail_bracket(inner, words):
            break
        for w in words:
            if c := _COUNTER_RE.match(w):
                counter, expected = int(c.group(1)), int(c.group(2))
            elif r := _REVISION_RE.match(w):
                revision = int(r.group(1))
            if w:
                prefixes.append(w)
        s = s[b.end() :]
    low = [p.lower() for p in prefixes]
    return Subject(
        text=s.strip(),
        revision=revision,
        counter=counter,
        expected=expected,
        prefixes=tuple(prefixes),
        tags=tuple(tags),
        rfc=any(p.startswith("rfc") for p in low),
        resend=any(p.startswith("resend") for p in low),
        reply=reply,
        distro_only=any(t.lower() in _DISTRO_ONLY for t in tags),
    )


def strip_subject_prefix(subject: str) -> str:
    """The subject without its mail brackets and backport tags, whitespace collapsed:
    ``[PATCH v2 6.12 078/172] x`` -> ``x``, ``UBUNTU: SAUCE: x`` -> ``x``. Cheap for the
    common subject that has none (a git log holds a million)."""
    if not _ANY_PREFIX_RE.match(subject):
        return " ".join(subject.split())
    return parse_subject(subject).text
