"""Plain-text table for the terminal (tabulate): fitted to a width, optionally coloured."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from tabulate import tabulate

from patchcheck.model import BugResult, PatchResult, TreeInfo, Verdict
from patchcheck.report._common import (
    Matrix,
    clean,
    hunk_place,
    label,
    matrix,
    one_line,
    plural,
    prereq_lines,
    problem_hunks,
    result_error,
    short_detail,
    tree_identity,
    verdict_count,
    verdict_counts,
)

if TYPE_CHECKING:
    from patchcheck.report.model import RenderOptions, Report, TriageReport

_GREEN, _YELLOW, _RED, _MAGENTA = "32", "33", "31", "35"
COLORS = {
    Verdict.PRESENT: _GREEN,
    Verdict.NOT_APPLICABLE: _GREEN,
    Verdict.BACKPORTABLE: _YELLOW,
    Verdict.CONFLICTING: _RED,
    Verdict.PARTIAL: _RED,
    Verdict.ERROR: _MAGENTA,
}
_MISSING = "-"  # a bug x tree cell the run did not produce


def paint(text: str, verdict: str, color: bool) -> str:
    code = COLORS.get(Verdict(verdict)) if verdict in COLORS else None
    if not color or code is None:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_GAP = 2  # tabulate's "simple" format puts two spaces between columns
_MIN_DETAIL = 20  # narrower than this, a wrapped detail is no longer readable
_DIFF_COLORS = {"+": _GREEN, "-": _RED, "@": "36"}


def visible_width(text: str) -> int:
    return max((len(_ANSI_RE.sub("", ln)) for ln in text.split("\n")), default=0)


_BREAK_RE = re.compile(r"[^/:.,]+[/:.,]?|[/:.,]")


def _pieces(word: str, width: int) -> list[str]:
    """A word too long for a line, in pieces that end at '/', ':', '.' or ',' where it can."""
    if len(word) <= width:
        return [word]
    out = [""]
    for atom in _BREAK_RE.findall(word):
        if out[-1] and len(out[-1]) + len(atom) > width:
            out.append("")
        while len(out[-1]) + len(atom) > width:  # no break point for a whole line: split it hard
            cut = width - len(out[-1])
            out[-1] += atom[:cut]
            out.append("")
            atom = atom[cut:]
        out[-1] += atom
    return [p for p in out if p]


def _wrap(text: str, width: int) -> str:
    """``text`` on lines of at most ``width``: at spaces, and long words (paths) at their
    separators, so that nothing is cut and the table fits."""
    lines: list[str] = []
    for word in text.split():
        for k, piece in enumerate(_pieces(word, width)):
            glue = "" if k else " "
            if lines and len(lines[-1]) + len(glue) + len(piece) <= width:
                lines[-1] += glue + piece
            else:
                lines.append(piece)
    return "\n".join(lines)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    # disable_numparse: a bug id or tree name like "4.19" must not be reformatted as a number
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _optional_patches(results: list[BugResult], notes: bool = True) -> dict[str, str]:
    """Each optional patch of a bug's cells once (by msgid): its subject, note appended."""
    out: dict[str, str] = {}
    for r in results:
        for p in r.patches:
            if p.optional and p.msgid not in out:
                text = one_line(p.subject) or one_line(p.msgid)
                out[p.msgid] = f"{text} ({one_line(p.note)})" if p.note and notes else text
    return out


def _patch_in(r: BugResult | None, msgid: str) -> PatchResult | None:
    return next((p for p in r.patches if p.optional and p.msgid == msgid), None) if r else None


def _one_tree(m: Matrix, color: bool, width: int | None) -> str:
    """bug, severity, verdict, method, detail: the detail wrapped (never cut) to fit."""
    tree = m.trees[0] if m.trees else None
    rows: list[list[str]] = []
    for b in m.bugs:
        r = m.get(b, tree) if tree else None
        if r is None:
            rows.append([b.id, b.severity, _MISSING, "", ""])
            continue
        rows.append([b.id, b.severity, paint(r.verdict, r.verdict, color), r.method or "", short_detail(r, None)])
        for msgid, what in _optional_patches([r]).items():
            p = _patch_in(r, msgid)
            assert p is not None
            rows.append(["+ optional", "", paint(p.verdict, p.verdict, color), p.method or "", what])
    headers = ["bug", "severity", "verdict", "method", "detail"]
    text = _table(rows, headers)
    if width is None or visible_width(text) <= width:
        return text
    # what the other columns take, measured as tabulate lays them out (headers get padding)
    blank = [[*row[:-1], ""] for row in rows]
    fixed = visible_width(_table(blank, headers)) - (len(headers[-1]) + _GAP)
    if fixed + _MIN_DETAIL > width:
        # very long bug ids: they wrap too, so that the detail keeps a readable width
        bug_w = max(visible_width(row[0]) for row in rows)
        room = max(12, bug_w - (fixed + _MIN_DETAIL - width))
        rows = [[_wrap(row[0], room), *row[1:]] for row in rows]
        fixed = visible_width(_table([[*row[:-1], ""] for row in rows], headers)) - (len(headers[-1]) + _GAP)
    detail_w = max(_MIN_DETAIL, width - fixed)
    return _table([[*row[:-1], _wrap(row[-1], detail_w)] for row in rows], headers)


def _matrix_rows(m: Matrix, trees: list[TreeInfo], color: bool, stacked: bool, label_w: int) -> list[list[str]]:
    def cell(verdict: str, method: str | None) -> str:
        text = f"{verdict}\n({method})" if stacked and method else label(verdict, method)
        return "\n".join(paint(part, verdict, color) for part in text.split("\n"))

    rows = []
    for b in m.bugs:
        cells = [m.get(b, t) for t in trees]
        rows.append([b.id, b.severity] + [_MISSING if r is None else cell(r.verdict, r.method) for r in cells])
        for msgid, what in _optional_patches([r for r in cells if r], notes=False).items():
            opt = [_patch_in(r, msgid) for r in cells]
            # every line of the label starts with "+": a wrapped subject never reads as a bug id
            lines = _wrap(f"optional: {what}", label_w - 2).split("\n")
            rows.append(
                ["\n".join("+ " + ln for ln in lines), ""]
                + [_MISSING if p is None else cell(p.verdict, p.method) for p in opt]
            )
    return rows


def _several_trees(m: Matrix, color: bool, width: int | None) -> tuple[list[str], bool]:
    """The bug x tree matrix, and whether its columns are numbered (see the tree lines).

    Too wide for ``width``: columns are numbered, verdict and method stack on two lines, and
    the trees split into as many side-by-side blocks as it takes; nothing is cut.
    """
    label_w = max(24, *(len(b.id) for b in m.bugs)) if m.bugs else 24
    full = _table(
        _matrix_rows(m, m.trees, color, False, label_w), ["bug", "severity"] + [clean(t.name) for t in m.trees]
    )
    if width is None or visible_width(full) <= width:
        return [full], False
    numbers = {t.name: f"[{i + 1}]" for i, t in enumerate(m.trees)}

    def block(trees: list[TreeInfo]) -> str:
        rows = _matrix_rows(m, trees, color, True, min(label_w, width // 3))
        return _table(rows, ["bug", "severity"] + [numbers[t.name] for t in trees])

    blocks: list[str] = []
    group: list[TreeInfo] = []
    for t in m.trees:
        if group and visible_width(block([*group, t])) > width:
            blocks.append(block(group))
            group = []
        group.append(t)
    blocks.append(block(group))
    return blocks, True


def _hunk_lines(r: BugResult, color: bool, width: int | None = None) -> list[str]:
    """Per failing hunk of a cell: where, why, and the near-match diff. The words wrap to
    ``width``; the diff's lines are code and keep their length."""
    out: list[str] = []
    for p in r.patches:
        hunks = problem_hunks(p)
        if not hunks:
            continue
        opt = " (optional)" if p.optional else ""
        name = one_line(p.subject) or one_line(p.msgid)
        head = f"  {name}{opt} <{one_line(p.msgid)}>: {label(p.verdict, p.method)}"
        out += _flow(head.split(" "), width, indent="      ")
        for h in hunks:
            why = f"    {h.status} hunk #{h.index} at {clean(hunk_place(h))}: {one_line(h.reason) or h.status}"
            out += _flow(why.split(" "), width, indent="        ")
            for ln in clean(h.near).rstrip("\n").split("\n") if h.near else ["(no near match found)"]:
                code = _DIFF_COLORS.get(ln[:1]) if color and h.near and ln[:3] not in ("---", "+++") else None
                out.append("      " + (f"\x1b[{code}m{ln}\x1b[0m" if code else ln))
    return out


def _details(m: Matrix, color: bool, width: int | None = None) -> list[str]:
    out: list[str] = []
    for b in m.bugs:
        for r in m.for_bug(b):
            hunks = _hunk_lines(r, color, width)
            if hunks:
                verdict = paint(label(r.verdict, r.method), r.verdict, color)
                out += ["", f"{clean(b.id)} on {clean(r.tree.name)}: {verdict}"]
                out += hunks
    return out


def render(report: Report, options: RenderOptions) -> str:
    color, width = options.color, options.width
    m = matrix(report)
    if len(m.trees) <= 1:
        tables, numbered = [_one_tree(m, color, width)], False
    else:
        tables, numbered = _several_trees(m, color, width)
    lines: list[str] = []
    for i, t in enumerate(m.trees):
        lines += _flow(f"tree {f'[{i + 1}] ' if numbered else ''}{clean(tree_identity(t))}".split(" "), width)
        for n in t.notes:
            lines += _flow(f"  note: {one_line(n)}".split(" "), width, indent="    ")
    if lines:
        lines.append("")
    lines.append("\n\n".join(tables))
    lines.append("")
    counts = [paint(verdict_count(n, v), v, color) for v, n in verdict_counts(report.results).items()]
    size = f"{plural(len(m.bugs), 'bug')} × {plural(len(m.trees), 'tree')}:"
    lines += _flow(["summary:", size, *_commas(counts or ["no results"])], width)
    if options.verbose:
        lines += _details(m, color, width)
    # a conflict's prerequisites (--upstream-repo): under the table, per cell and patch
    for r in report.results:
        for p in r.patches:
            pre = prereq_lines(p)
            if pre:
                lines += ["", f"prerequisites of {clean(r.bug.id)} on {clean(r.tree.name)}: {one_line(p.subject)}"]
                lines.extend(f"  {clean(x)}" for x in pre)
    errors = dict.fromkeys(
        f"error: {clean(r.bug.id)}: {result_error(r)}" for r in report.results if r.verdict == Verdict.ERROR
    )
    if errors:
        lines.append("")
        lines.extend(errors)
    return "\n".join(lines) + "\n"


def _commas(parts: list[str]) -> list[str]:
    return [p + "," for p in parts[:-1]] + parts[-1:]


def _flow(words: list[str], width: int | None, indent: str = "  ") -> list[str]:
    """Words on lines of at most ``width`` visible columns (colour codes take none); a word
    longer than a line keeps its own line whole (a path or URL stays copyable)."""
    lines = [words[0]] if words else []
    for w in words[1:]:
        if width is not None and visible_width(lines[-1]) + 1 + visible_width(w) > width:
            lines.append(indent + w)
        else:
            lines[-1] += " " + w
    return lines


def triage_summary(t: TriageReport, width: int | None = None) -> str:
    """The oops in a few lines, then the matching bugs with their scores and reasons."""
    oops = t.oops
    rows = [
        ("oops", oops.headline or "?"),
        ("function", oops.function or "?"),
        ("release", oops.release or "?"),
        ("command", oops.comm or "?"),
        ("trace", " < ".join(oops.trace) if oops.trace else "(none)"),
    ]
    rows += [("note", n) for n in oops.notes]

    def fit(first: str, text: str) -> list[str]:
        if width is None:
            return [first + text]
        return textwrap.wrap(text, width, initial_indent=first, subsequent_indent=" " * len(first)) or [first]

    lines = [ln for key, val in rows for ln in fit(f"{key + ':':<10} ", clean(val))]
    lines.append("")
    if not t.matches:
        lines.append(f"no known bug matches (threshold {t.threshold:.2f})")
        return "\n".join(lines) + "\n"
    bug_w = max(len("bug"), *(len(m.bug) for m in t.matches))
    lines.append(f"{'score':<6} {'bug':<{bug_w}}  why")
    for m in t.matches:
        lines += fit(f"{m.score:<6.2f} {m.bug:<{bug_w}}  ", clean(m.why))
    return "\n".join(lines) + "\n"


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    text = triage_summary(t, options.width)
    if t.check is not None:
        text += "\n" + render(t.check, options)
    return text
