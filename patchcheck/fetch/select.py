"""Selection: which revision of a thread's series, and which of its patches, a fix takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from patchcheck.errors import SeriesError
from patchcheck.fetch.b4shim import B4, MailInfo, Parsed, SeriesInfo
from patchcheck.fetch.mail import Msg, author, cut_signature, message_facts
from patchcheck.model import Fix, PatchMail


@dataclass(frozen=True)
class Selection:
    """A fix's patches out of one thread, in series order."""

    revision: int
    subject: str  # the cover letter's, or the first patch's
    patches: tuple[PatchMail, ...]
    trailer_upstream: tuple[str | None, ...]  # what each patch's own trailers name
    raws: tuple[bytes, ...]  # the selected messages as received
    numbers: tuple[int, ...] | None  # the patch numbers taken; None: the whole series
    note: str = ""  # how the selection was made, when the bug file does not say it

    @property
    def am_name(self) -> str:
        """File name of the selection as an mbox in the cache entry."""
        pick = "all" if self.numbers is None else "p" + ",".join(map(str, self.numbers))
        return f"v{self.revision}-{pick}.mbox"


def upstream_for(fix: Fix, index: int, count: int) -> str | None:
    """The bug file's upstream id for the index-th of count selected patches."""
    if fix.upstream and len(fix.upstream) == count:
        return fix.upstream[index]
    if fix.upstream and count == 1:
        return fix.upstream[0]
    return None


def no_patches(label: str, where: str, count: int, loose: Sequence[MailInfo]) -> str:
    """Why a thread holds no series: a patch without a diff, or none at all."""
    for lm in loose:
        if lm.numbered_patch and lm.counter > 0:
            return f"{label}: patch {lm.counter}/{lm.expected} ({lm.msgid}) has no diff ({where})"
    return f"{label}: no patches in the thread ({count} messages, none with a diff; {where})"


def _missing(label: str, loose: Sequence[MailInfo], revision: int, n: int, expected: int) -> str:
    # b4 files a diff-less "[PATCH 2/3]" under unknowns, or under follow-ups when it
    # carries trailers and a References header
    for lm in loose:
        if lm.revision == revision and lm.counter == n and lm.numbered_patch:
            return f"{label}: patch {n}/{expected} of v{revision} ({lm.msgid}) has no diff"
    return f"{label}: patch {n}/{expected} of v{revision} is missing from the thread"


def _patch_mail(
    label: str, m: Msg, lm: MailInfo, expected: int, fix: Fix, index: int, count: int
) -> tuple[PatchMail, str | None]:
    """The patch, and the upstream id its own trailers name (kept in the stored
    selection: the bug file's ids may change without the thread changing)."""
    f, diff = message_facts(m, lm.full_subject)
    if diff is None:
        raise SeriesError(f"{label}: patch {lm.counter}/{expected} ({m.msgid}) has no diff")
    return PatchMail(
        msgid=m.msgid,
        subject=lm.subject,
        author=author(lm.fromname, lm.fromemail, f),
        counter=lm.counter if lm.counter > 0 else 1,
        expected=expected,
        diff=cut_signature(diff),
        upstream=upstream_for(fix, index, count) or f.upstream,
        fixes=f.fixes,
        links=f.links,
        cves=f.cves,
        date=str(m.msg.get("Date") or ""),
        body=f.message,
    ), f.upstream


def _named_patch(fix: Fix, named: MailInfo | None, lser: SeriesInfo) -> int | None:
    """The number of the one patch the fix's msgid names, when that is what the fix takes:
    no ``patches`` key, and the msgid is patch m/n (n > 1) of the selected revision, not its
    cover letter (as ``b4 am -P _ <msgid>`` takes it)."""
    if fix.patches or named is None or not named.one_of_many:
        return None
    if named.revision != lser.revision or named.counter >= len(lser.patches):
        return None
    placed = lser.patches[named.counter]
    return named.counter if placed is not None and placed.msgid == named.msgid else None


def select(b4: B4, parsed: Parsed, fix: Fix, label: str, where: str) -> Selection:
    """The fix's revision (pinned, else the named patch's, else the latest) and patches
    (``patches``, else the one patch the msgid names, else all)."""
    msgs = parsed.msgs
    info, lser = b4.read(parsed, fix.revision, named=None if fix.patches else fix.msgid)
    if not info.revisions:
        raise SeriesError(no_patches(label, where, len(msgs), info.loose))
    if fix.revision is not None and fix.revision not in info.revisions:
        have = ", ".join(f"v{r}" for r in info.revisions)
        raise SeriesError(f"{label}: revision v{fix.revision} is not in the thread (it has {have})")
    if lser is None:
        raise SeriesError(f"{label}: b4 found no usable v{info.chosen} series in the thread")
    revision, expected = lser.revision, lser.expected
    alone = _named_patch(fix, info.named, lser)
    if fix.patches:
        wanted = sorted(fix.patches)
    elif alone is not None:
        wanted = [alone]
    else:
        wanted = list(range(1, expected + 1))
    for n in wanted:
        if n > expected:
            raise SeriesError(
                f"{label}: patch {n} requested but v{revision} has {expected} patch{'es' if expected != 1 else ''}"
            )
    picked: list[MailInfo] = []
    for n in wanted:
        lm = lser.patches[n] if n < len(lser.patches) else None
        if lm is None:
            raise SeriesError(_missing(label, info.loose, revision, n, expected))
        picked.append(lm)
    cover = lser.patches[0] if lser.has_cover else None
    subject = cover.subject if cover is not None else picked[0].subject
    by_id = {m.msgid: m for m in msgs}
    made = [_patch_mail(label, by_id[lm.msgid], lm, expected, fix, i, len(picked)) for i, lm in enumerate(picked)]
    return Selection(
        revision=revision,
        subject=subject,
        patches=tuple(p for p, _ in made),
        trailer_upstream=tuple(up for _, up in made),
        raws=tuple(by_id[lm.msgid].raw for lm in picked),
        numbers=tuple(wanted) if fix.patches or alone is not None else None,
        note=(
            f"the msgid names patch {alone}/{expected} of v{revision}: that patch alone is taken "
            "(patches = [...] in the bug file takes others)"
            if alone is not None
            else ""
        ),
    )
