"""Markdown for merge-request comments and release notes (GitHub/GitLab flavoured)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from patchcheck.model import BugResult, PatchResult, Verdict
from patchcheck.report._common import (
    OK_VERDICTS,
    clean,
    counts_text,
    hunk_place,
    label,
    matrix,
    one_line,
    prereq_lines,
    problem_hunks,
    result_error,
    tree_identity,
)

if TYPE_CHECKING:
    from patchcheck.report.model import RenderOptions, Report, TriageReport


# Characters that start Markdown syntax in running text; '|' splits table cells.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")

_URL_RE = re.compile(r"^https?://[^\s<>]+$")


def md(text: str | None) -> str:
    """Free text as one line of literal Markdown (every syntax character backslashed)."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text))


def link(url: str) -> str:
    """An autolink for a plain http(s) URL; anything else stays literal text."""
    u = one_line(url)
    return f"<{u}>" if _URL_RE.match(u) else md(u)


def code(text: str | None) -> str:
    """Inline code that survives backticks in ``text`` (CommonMark: longer fence + padding)."""
    s = one_line(text)
    runs = [len(m) for m in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def fenced(text: str, lang: str = "") -> list[str]:
    """A fenced block longer than any backtick run inside, so a diff cannot close it early."""
    body = clean(text).rstrip("\n")
    runs = [len(m) for m in re.findall(r"`{3,}", body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return [fence + lang, *body.split("\n"), fence]


def _patch_lines(p: PatchResult) -> list[str]:
    tags = " *(optional)*" if p.optional else ""
    head = f"- **{md(p.subject) or md(p.msgid)}**{tags}: {label(p.verdict, p.method)}"
    out = [head, f"  - msgid: {code(p.msgid)}"]
    if p.upstream:
        out.append(f"  - upstream: {code(p.upstream)}")
    if p.evidence:
        out.append(f"  - evidence: {md(p.evidence)}")
    if p.note:
        out.append(f"  - note: {md(p.note)}")
    if p.error:
        out.append(f"  - error: {md(p.error)}")
    for h in problem_hunks(p):
        out.append(f"  - {h.status} hunk #{h.index} at {code(hunk_place(h))}: {md(h.reason) or h.status}")
        if h.near:
            out.append("")
            out.extend("    " + ln if ln else "" for ln in fenced(h.near, "diff"))
            out.append("")
    pre = prereq_lines(p)
    if pre:
        out.append("  - prerequisites (upstream, nearest first):")
        out.extend(f"    - {md(x)}" for x in pre)
    return out


def _cell_details(r: BugResult) -> list[str]:
    out = [f"#### {md(r.tree.name)}: {label(r.verdict, r.method)}", ""]
    if r.verdict == Verdict.ERROR:
        out += [f"Error: {md(result_error(r))}", ""]
    for p in r.patches:
        out += _patch_lines(p)
    out.append("")
    return out


def _body(report: Report) -> list[str]:
    """Trees, the summary matrix and the details of every finding (## sections)."""
    m = matrix(report)
    out: list[str] = []
    if m.trees:
        out.append("**Trees**")
        out.append("")
        out.extend(f"- {md(tree_identity(t))}" for t in m.trees)
        out.append("")

    out += ["## Summary", ""]
    header = ["Bug", "Severity", "Title"] + [md(t.name) for t in m.trees]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    for b in m.bugs:
        row = [code(b.id), b.severity, md(b.title)]
        for t in m.trees:
            r = m.get(b, t)
            row.append("–" if r is None else md(label(r.verdict, r.method)))
        out.append("| " + " | ".join(row) + " |")
    out += ["", f"**Verdicts:** {counts_text(report.results)}", ""]

    details = [(b, [r for r in m.for_bug(b) if r.verdict not in OK_VERDICTS]) for b in m.bugs]
    details = [(b, rs) for b, rs in details if rs]
    if details:
        out += ["## Details", ""]
    for b, rs in details:
        out += [f"### {code(b.id)}: {md(b.title)}", ""]
        facts = [f"severity **{b.severity}**"]
        if b.subsystem:
            facts.append(f"subsystem {md(b.subsystem)}")
        if b.cves:
            facts.append(", ".join(b.cves))
        out += [" · ".join(facts), ""]
        if b.references:
            out += [f"References: {', '.join(link(u) for u in b.references)}", ""]
        for r in rs:
            out += _cell_details(r)
    return out


def _doc(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def render(report: Report, options: RenderOptions) -> str:
    head = ["# patchcheck report", "", f"Generated {report.generated} by patchcheck {report.version}.", ""]
    return _doc(head + _body(report))


def _triage_lines(t: TriageReport) -> list[str]:
    o = t.oops
    out = ["## Oops", ""]
    out += [
        f"- **headline:** {md(o.headline) or '?'}",
        f"- **function:** {code(o.function) if o.function else '?'}",
        f"- **release:** {md(o.release) or '?'}",
        f"- **command:** {md(o.comm) or '?'}",
        f"- **trace:** {' < '.join(code(f) for f in o.trace) or '(none)'}",
    ]
    out += [f"- **note:** {md(n)}" for n in o.notes]
    out += ["", "## Known bugs it looks like", ""]
    if not t.matches:
        return out + [f"No known bug matches (threshold {t.threshold:.2f}).", ""]
    out += ["| Score | Bug | Severity | Title | Why |", "|---|---|---|---|---|"]
    for mt in t.matches:
        b = t.bugs.get(mt.bug)
        sev, title = (b.severity, md(b.title)) if b else ("", "")
        out.append(f"| {mt.score:.2f} | {code(mt.bug)} | {sev} | {title} | {md(mt.why)} |")
    return out + [""]


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    head = ["# patchcheck triage", "", f"Generated {t.generated} by patchcheck {t.version}.", ""]
    lines = head + _triage_lines(t)
    if t.check is not None:
        lines += _body(t.check)
    return _doc(lines)
