"""One self-contained HTML page: inline CSS, no scripts, no external assets.

Every piece of data goes through ``html.escape``; only http(s) URLs become links.
"""

from __future__ import annotations

import re
from html import escape
from importlib import resources
from typing import TYPE_CHECKING

from patchcheck.model import BugResult, HunkResult, PatchResult, TreeInfo, Verdict
from patchcheck.report._common import (
    OK_VERDICTS,
    Matrix,
    clean,
    hunk_place,
    matrix,
    one_line,
    plural,
    prereq_lines,
    problem_hunks,
    result_error,
    verdict_counts,
)

if TYPE_CHECKING:
    from patchcheck.model import Bug
    from patchcheck.report.model import RenderOptions, Report, TriageReport

_URL_RE = re.compile(r"^https?://\S+$", re.IGNORECASE)
_CLASS_RE = re.compile(r"[^a-z0-9-]+")


def e(text: object) -> str:
    """Escaped text, quotes included (safe in attributes too); control characters dropped."""
    return escape(clean(str(text)) if text is not None else "", quote=True)


def css_class(value: str) -> str:
    return _CLASS_RE.sub("-", value.lower()).strip("-") or "none"


def _stylesheet() -> str:
    return resources.files("patchcheck.report").joinpath("report.css").read_text("utf-8")


def cell_id(bug: Bug, col: int) -> str:
    # Tree names are free text (often paths), so the column number keeps ids unique and valid.
    return f"bug-{bug.id}--t{col + 1}"


def link(url: str, text: str | None = None) -> str:
    """A link for an http(s) URL; anything else (javascript:, file:, ...) stays plain text."""
    u = one_line(url)
    shown = e(text if text is not None else u)
    if _URL_RE.match(u):
        return f'<a href="{e(u)}" rel="noreferrer">{shown}</a>'
    return shown


def verdict_span(verdict: str, method: str | None, tag: str = "span") -> str:
    m = f' <span class="method">{e(method)}</span>' if method else ""
    return f'<{tag} class="verdict v-{css_class(verdict)}">{e(verdict)}{m}</{tag}>'


def sev_badge(severity: str) -> str:
    return f'<span class="badge sev sev-{css_class(severity)}">{e(severity)}</span>'


def diff_pre(text: str) -> str:
    """A near-match diff in <pre>, each line classed by its diff marker."""
    lines = []
    for ln in clean(text).rstrip("\n").split("\n"):
        # '---'/'+++' name the two sides; they are not removed/added lines
        cls = "hdr" if ln[:3] in ("---", "+++") else {"+": "add", "-": "del", "@": "at"}.get(ln[:1])
        lines.append(f'<span class="{cls}">{e(ln)}</span>' if cls else e(ln))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def _trees_section(trees: list[TreeInfo]) -> list[str]:
    out = [
        '<section id="trees">',
        "<h2>Trees</h2>",
        '<table class="trees">',
        "<thead><tr><th>Name</th><th>Kind</th><th>Version</th><th>Distro</th>"
        "<th>Release</th><th>Arch</th><th>Source</th><th>Notes</th></tr></thead>",
        "<tbody>",
    ]
    for t in trees:
        notes = "<br>".join(e(n) for n in t.notes)
        out.append(
            f'<tr><th scope="row">{e(t.name)}</th><td>{e(t.kind)}</td>'
            f"<td>{e(t.version or '')}</td><td>{e(t.distro or '')}</td>"
            f"<td>{e(t.release or '')}</td><td>{e(t.arch or '')}</td><td><code>{e(t.source)}</code></td>"
            f"<td>{notes}</td></tr>"
        )
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _summary_section(m: Matrix, results: list[BugResult]) -> list[str]:
    out = [
        '<section id="summary">',
        "<h2>Summary</h2>",
        '<table id="matrix">',
        "<thead><tr>",
        '<th scope="col">Bug</th><th scope="col">Severity</th><th scope="col">Title</th>',
    ]
    out += [f'<th scope="col">{e(t.name)}</th>' for t in m.trees]
    out += ["</tr></thead>", "<tbody>"]
    for b in m.bugs:
        row = [
            f'<tr id="row-{e(b.id)}"><th scope="row"><a href="#bug-{e(b.id)}">{e(b.id)}</a>'
            f"</th><td>{sev_badge(b.severity)}</td><td>{e(b.title)}</td>"
        ]
        for col, t in enumerate(m.trees):
            r = m.get(b, t)
            if r is None:
                row.append('<td class="verdict v-none">–</td>')
                continue
            meth = f'<span class="method">{e(r.method)}</span>' if r.method else ""
            row.append(
                f'<td class="verdict v-{css_class(r.verdict)}">'
                f'<a href="#{cell_id(b, col)}">{e(r.verdict)}</a>{meth}</td>'
            )
        out.append("".join(row) + "</tr>")
    out += ["</tbody>", "</table>"]
    counts = verdict_counts(results)
    out.append('<ul id="counts" class="counts">')
    out += [
        f'<li class="verdict v-{css_class(v)}" data-verdict="{e(v)}">{e(v)}: '
        f'<strong class="count">{n}</strong></li>'
        for v, n in counts.items()
    ]
    out += [
        "</ul>",
        f'<p class="muted">{plural(len(results), "check")}: {plural(len(m.bugs), "bug")} × '
        f"{plural(len(m.trees), 'tree')}.</p>",
        "</section>",
    ]
    return out


def _hunk_block(h: HunkResult) -> str:
    head = (
        f"<p><strong>hunk #{h.index}</strong> <code>{e(hunk_place(h))}</code> "
        f"{e(h.status)}: {e(one_line(h.reason) or h.status)}</p>"
    )
    body = diff_pre(h.near) if h.near else '<p class="muted">no near match found</p>'
    return f'<div class="failed-hunk">{head}{body}</div>'


def _patch_rows(p: PatchResult) -> list[str]:
    cls = ' class="patch optional"' if p.optional else ' class="patch"'
    opt = ' <span class="tag">optional</span>' if p.optional else ""
    ident = [
        f'<div class="subject">{e(p.subject or p.msgid)}{opt}</div>',
        f'<div class="msgid muted"><code>{e(p.msgid)}</code></div>',
    ]
    if p.upstream:
        ident.append(f'<div class="upstream muted">upstream <code>{e(p.upstream)}</code></div>')
    evid = [f'<div class="evidence">{e(p.evidence)}</div>'] if p.evidence else []
    if p.note:
        evid.append(f'<div class="note muted">note: {e(p.note)}</div>')
    if p.error:
        evid.append(f'<div class="error">error: {e(p.error)}</div>')
    pre = prereq_lines(p)
    if pre:
        items = "".join(f"<li>{e(x)}</li>" for x in pre)
        evid.append(f'<div class="prereqs">prerequisites (upstream, nearest first):<ul>{items}</ul></div>')
    out = [
        f"<tr{cls}><td>{''.join(ident)}</td>{verdict_span(p.verdict, p.method, 'td')}<td>{''.join(evid)}</td></tr>"
    ]
    hunks = problem_hunks(p)
    if hunks:
        blocks = "".join(_hunk_block(h) for h in hunks)
        out.append(f'<tr class="hunks"><td colspan="3">{blocks}</td></tr>')
    return out


def _cell_block(b: Bug, col: int, r: BugResult) -> list[str]:
    out = [
        f'<div class="cell" id="{e(cell_id(b, col))}">',
        f"<h4>{e(r.tree.name)}: {verdict_span(r.verdict, r.method)}</h4>",
    ]
    if r.verdict == Verdict.ERROR:
        out.append(f'<p class="error">{e(result_error(r))}</p>')
    if r.patches:
        out += [
            '<table class="patches">',
            "<thead><tr><th>Patch</th><th>Verdict</th><th>Evidence</th></tr></thead>",
            "<tbody>",
        ]
        for p in r.patches:
            out += _patch_rows(p)
        out += ["</tbody>", "</table>"]
    out.append("</div>")
    return out


def _bug_section(m: Matrix, b: Bug) -> list[str]:
    out = [
        f'<section class="bug" id="bug-{e(b.id)}">',
        f"<h3><code>{e(b.id)}</code> {e(b.title)} {sev_badge(b.severity)}</h3>",
        '<dl class="facts">',
        f"<dt>Severity</dt><dd>{e(b.severity)}</dd>",
    ]
    if b.subsystem:
        out.append(f"<dt>Subsystem</dt><dd>{e(b.subsystem)}</dd>")
    if b.cves:
        cves = ", ".join(link(f"https://www.cve.org/CVERecord?id={c}", c) for c in b.cves)
        out.append(f'<dt>CVEs</dt><dd class="cves">{cves}</dd>')
    if b.references:
        refs = "".join(f"<li>{link(u)}</li>" for u in b.references)
        out.append(f'<dt>References</dt><dd><ul class="refs">{refs}</ul></dd>')
    verdicts = []
    for col, t in enumerate(m.trees):
        r = m.get(b, t)
        if r is not None:
            verdicts.append(
                f'<a href="#{e(cell_id(b, col))}">{e(t.name)}</a>: {verdict_span(r.verdict, r.method)}'
            )
    if verdicts:
        out.append(f"<dt>Verdicts</dt><dd>{' · '.join(verdicts)}</dd>")
    out.append("</dl>")
    for col, t in enumerate(m.trees):
        r = m.get(b, t)
        if r is not None:
            out += _cell_block(b, col, r)
    out.append("</section>")
    return out


def _page(title: str, heading: str, meta: str, version: str, generated: str, body: list[str]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="patchcheck {e(version)}">',
        f"<title>{e(title)}</title>",
        f"<style>\n{_stylesheet()}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{e(heading)}</h1>",
        f'<p class="meta">Generated <time datetime="{e(generated)}">{e(generated)}</time> '
        f"by patchcheck {e(version)}{meta}</p>",
        "</header>",
        "<main>",
        *body,
        "</main>",
        f"<footer>patchcheck {e(version)} · {e(generated)}</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


def _report_sections(report: Report) -> list[str]:
    m = matrix(report)
    out = _trees_section(m.trees) + _summary_section(m, report.results)
    out += ['<section id="bugs">', "<h2>Bugs</h2>"]
    for b in m.bugs:
        out += _bug_section(m, b)
    out.append("</section>")
    return out


def _attention(report: Report) -> str:
    findings = sum(1 for r in report.results if r.verdict not in OK_VERDICTS)
    return f"{findings} of {plural(len(report.results), 'check')} {'needs' if findings == 1 else 'need'} attention"


def render(report: Report, options: RenderOptions) -> str:
    m = matrix(report)
    title = f"patchcheck report: {plural(len(m.bugs), 'bug')} × {plural(len(m.trees), 'tree')}"
    meta = f"; {_attention(report)}."
    return _page(title, "patchcheck report", meta, report.version, report.generated, _report_sections(report))


def _triage_section(t: TriageReport) -> list[str]:
    o = t.oops
    facts = [
        ("Oops", e(o.headline or "?")),
        ("Function", f"<code>{e(o.function or '?')}</code>"),
        ("Release", e(o.release or "?")),
        ("Command", e(o.comm or "?")),
        ("Trace", " &lt; ".join(f"<code>{e(f)}</code>" for f in o.trace) or "(none)"),
    ]
    facts += [("Note", e(n)) for n in o.notes]
    out = ['<section id="triage">', "<h2>Oops</h2>", '<dl class="facts">']
    out += [f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts]
    out += ["</dl>", "<h2>Known bugs it looks like</h2>"]
    if not t.matches:
        out += [f'<p class="muted">No known bug matches (threshold {t.threshold:.2f}).</p>', "</section>"]
        return out
    out += [
        '<table id="matches">',
        "<thead><tr><th>Score</th><th>Bug</th><th>Severity</th><th>Title</th><th>Why</th></tr></thead>",
        "<tbody>",
    ]
    for mt in t.matches:
        b = t.bugs.get(mt.bug)
        sev = sev_badge(b.severity) if b else ""
        title = e(b.title) if b else ""
        out.append(
            f'<tr><td>{mt.score:.2f}</td><th scope="row"><code>{e(mt.bug)}</code></th>'
            f"<td>{sev}</td><td>{title}</td><td>{e(mt.why)}</td></tr>"
        )
    out += ["</tbody>", "</table>", "</section>"]
    return out


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    body = _triage_section(t)
    meta = "."
    if t.check is not None:
        body += _report_sections(t.check)
        meta = f"; {_attention(t.check)}."
    title = f"patchcheck triage: {one_line(t.oops.headline or 'oops', 80)}"
    return _page(title, "patchcheck triage", meta, t.version, t.generated, body)
