"""JSON report: docs/interface.md's schema, plus added keys (never renamed or removed ones).

Named json_report, not json, so nothing in this package can shadow the standard module.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from patchcheck.model import Bug, BugResult, HunkResult, PatchResult, Prereq, TreeInfo
from patchcheck.report._common import verdict_counts

if TYPE_CHECKING:
    from patchcheck.report.model import RenderOptions, Report, TriageReport


def tree_dict(t: TreeInfo) -> dict[str, Any]:
    return {
        "name": t.name,
        "source": t.source,
        "kind": t.kind,
        "version": t.version,
        "distro": t.distro,
        "release": t.release,
        "abi": t.abi,
        "arch": t.arch,
        "labels": dict(t.labels),
        "notes": list(t.notes),
    }


def hunk_dict(h: HunkResult) -> dict[str, Any]:
    return {
        # docs/interface.md keys
        "file": h.file,
        "status": h.status,
        "offset": h.offset,
        "fuzz": h.fuzz,
        "line": h.line,
        "reason": h.reason,
        # additions
        "index": h.index,
        "near": h.near,
        "patch_line": h.patch_line,
    }


def prereq_dict(q: Prereq) -> dict[str, Any]:
    return {
        "commit": q.commit,
        "subject": q.subject,
        "verdict": q.verdict,
        "method": q.method,
        "hunks": list(q.hunks),
        "depth": q.depth,
        "needed_by": q.needed_by,
        "partial": q.partial,
    }


def patch_dict(p: PatchResult) -> dict[str, Any]:
    return {
        "msgid": p.msgid,
        "subject": p.subject,
        "upstream": p.upstream,
        "verdict": p.verdict,
        "method": p.method,
        "evidence": p.evidence,
        "hunks": [hunk_dict(h) for h in p.hunks],
        "optional": p.optional,
        "note": p.note,
        "error": p.error,
        "error_code": p.error_code,
        "prerequisites": [prereq_dict(q) for q in p.prereqs],
        "prerequisites_note": p.prereq_note,
        "with_prerequisites": p.with_prereqs,
    }


def bug_dict(b: Bug) -> dict[str, Any]:
    return {
        "id": b.id,
        "title": b.title,
        "severity": b.severity,
        "subsystem": b.subsystem,
        "cves": list(b.cves),
        "references": list(b.references),
        "affects": list(b.affects),
        "file": str(b.path),
    }


def result_dict(r: BugResult) -> dict[str, Any]:
    b = r.bug
    return {
        "bug": b.id,
        "tree": r.tree.name,
        "verdict": r.verdict,
        "method": r.method,
        "error": r.error,
        "patches": [patch_dict(p) for p in r.patches],
        "title": b.title,
        "severity": b.severity,
        "subsystem": b.subsystem,
        "cves": list(b.cves),
        "references": list(b.references),
        "tree_info": tree_dict(r.tree),
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        **_head(report),
        "bugs": [bug_dict(b) for b in report.bugs],
        "results": [result_dict(r) for r in report.results],
    }


def _head(report: Report) -> dict[str, Any]:
    # the keys in schema order; "bugs" and "results" hold their place
    return {
        "patchcheck": report.version,
        "generated": report.generated,
        "trees": [tree_dict(t) for t in report.trees],
        "bugs": None,
        "shard": report.shard,
        "summary": verdict_counts(report.results),
        "results": None,
    }


# one encoder for every item: json.dumps builds a new one per call when given options;
# ensure_ascii=False keeps maintainers' names readable (the output is UTF-8 anyway)
_ONE_LINE = json.JSONEncoder(ensure_ascii=False).encode


def encode_result(r: BugResult) -> str:
    """One result as its line of the report (run beside the check, in its workers)."""
    return _ONE_LINE(result_dict(r))


def render(report: Report, options: RenderOptions) -> str:
    results = report.encoded
    if results is None or len(results) != len(report.results):
        results = [encode_result(r) for r in report.results]
    lists = {"bugs": [_ONE_LINE(bug_dict(b)) for b in report.bugs], "results": results}
    # the long lists one item per line: json's indenting encoder is pure Python, and for an
    # audit of thousands of bugs it cost more time and memory than checking them (the
    # compact one is C)
    out = json.dumps(
        {**_head(report), **{k: [0] if v else [] for k, v in lists.items()}}, indent=2, ensure_ascii=False
    )
    for k, lines in lists.items():
        if lines:
            # a top-level key is the only one indented by two spaces
            body = ",\n    ".join(lines)
            out = out.replace(f'\n  "{k}": [\n    0\n  ]', f'\n  "{k}": [\n    {body}\n  ]', 1)
    return out + "\n"


def triage_dict(t: TriageReport) -> dict[str, Any]:
    """``oops`` and ``matches``; with a check, the check's report keys beside them."""
    doc = report_dict(t.check) if t.check is not None else {}
    return {"oops": t.oops.to_dict(), "matches": [m.to_dict() for m in t.matches], **doc}


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    return json.dumps(triage_dict(t), indent=2, ensure_ascii=False) + "\n"
