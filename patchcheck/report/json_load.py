"""A JSON report read back into a ``Report``, so that it can be rendered again or merged.

The reverse of ``json_report``: every value is checked, and a bad one is a one-line error
naming the file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from patchcheck.errors import BadInput
from patchcheck.model import Bug, BugResult, HunkResult, PatchResult, Prereq, TreeInfo
from patchcheck.report.model import Report


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, expected: str) -> BadInput:
        return BadInput(f"{self.path}: {key}: {expected} (expected a patchcheck --format json report)")

    def table(self, v: object, key: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(key, "not an object")
        return v

    def items(self, v: object, key: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(key, "not a list")
        return v

    def text(self, d: dict[str, Any], name: str, key: str, optional: bool = False) -> str:
        v = d.get(name)
        if v is None and optional:
            return ""
        if not isinstance(v, str):
            raise self.fail(f"{key}.{name}", "missing or not a string")
        return v

    def maybe(self, d: dict[str, Any], name: str, key: str) -> str | None:
        v = d.get(name)
        if v is not None and not isinstance(v, str):
            raise self.fail(f"{key}.{name}", "not a string")
        return v

    def number(self, d: dict[str, Any], name: str, key: str) -> int | None:
        v = d.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            raise self.fail(f"{key}.{name}", "not a whole number")
        return v

    def strings(self, d: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        v = d.get(name, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(f"{key}.{name}", "not a list of strings")
        return tuple(v)


def _tree(r: _Reader, raw: object, key: str) -> TreeInfo:
    d = r.table(raw, key)
    labels = d.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise r.fail(f"{key}.labels", "not an object of strings")
    return TreeInfo(
        name=r.text(d, "name", key),
        source=r.text(d, "source", key, optional=True),
        kind=r.text(d, "kind", key, optional=True),
        version=r.maybe(d, "version", key),
        distro=r.maybe(d, "distro", key),
        release=r.maybe(d, "release", key),
        abi=r.maybe(d, "abi", key),
        arch=r.maybe(d, "arch", key),
        labels=dict(labels),
        notes=r.strings(d, "notes", key),
    )


def _bug(r: _Reader, d: dict[str, Any], key: str, id_key: str = "id") -> Bug:
    return Bug(
        id=r.text(d, id_key, key),
        title=r.text(d, "title", key, optional=True),
        fixes=(),
        path=Path(r.text(d, "file", key, optional=True)),
        severity=r.maybe(d, "severity", key) or "medium",
        subsystem=r.text(d, "subsystem", key, optional=True),
        cves=r.strings(d, "cves", key),
        references=r.strings(d, "references", key),
        affects=r.strings(d, "affects", key),
    )


def _hunk(r: _Reader, raw: object, key: str) -> HunkResult:
    d = r.table(raw, key)
    return HunkResult(
        file=r.text(d, "file", key),
        status=r.text(d, "status", key),
        index=r.number(d, "index", key) or 0,
        offset=r.number(d, "offset", key) or 0,
        fuzz=r.number(d, "fuzz", key) or 0,
        line=r.number(d, "line", key),
        reason=r.maybe(d, "reason", key),
        near=r.maybe(d, "near", key),
        patch_line=r.number(d, "patch_line", key),
    )


def _prereq(r: _Reader, raw: object, key: str) -> Prereq:
    d = r.table(raw, key)
    return Prereq(
        commit=r.text(d, "commit", key),
        subject=r.text(d, "subject", key, optional=True),
        verdict=r.text(d, "verdict", key),
        method=r.maybe(d, "method", key),
        hunks=r.strings(d, "hunks", key),
        depth=r.number(d, "depth", key) or 1,
        needed_by=r.maybe(d, "needed_by", key),
        partial=bool(d.get("partial", False)),
    )


def _patch(r: _Reader, raw: object, key: str) -> PatchResult:
    d = r.table(raw, key)
    return PatchResult(
        msgid=r.text(d, "msgid", key),
        subject=r.text(d, "subject", key, optional=True),
        upstream=r.maybe(d, "upstream", key),
        verdict=r.text(d, "verdict", key),
        method=r.maybe(d, "method", key),
        evidence=r.text(d, "evidence", key, optional=True),
        hunks=[_hunk(r, h, f"{key}.hunks[{i}]") for i, h in enumerate(r.items(d.get("hunks", []), key))],
        optional=bool(d.get("optional", False)),
        note=r.maybe(d, "note", key),
        error=r.maybe(d, "error", key),
        error_code=r.number(d, "error_code", key),
        prereqs=[
            _prereq(r, q, f"{key}.prerequisites[{i}]")
            for i, q in enumerate(r.items(d.get("prerequisites", []), key))
        ],
        prereq_note=r.maybe(d, "prerequisites_note", key),
        with_prereqs=r.maybe(d, "with_prerequisites", key),
    )


def load_report(path: Path) -> Report:
    """The Report a ``--format json`` run wrote to ``path``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInput(f"{path}: cannot read the report: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: not JSON ({e}; expected a patchcheck --format json report)") from None
    r = _Reader(path)
    top = r.table(doc, "(top)")
    version = r.text(top, "patchcheck", "(top)")
    trees: dict[str, TreeInfo] = {}
    for i, raw in enumerate(r.items(top.get("trees", []), "trees")):
        t = _tree(r, raw, f"trees[{i}]")
        trees[t.name] = t
    bugs: dict[str, Bug] = {}
    for i, raw in enumerate(r.items(top.get("bugs", []), "bugs")):
        b = _bug(r, r.table(raw, f"bugs[{i}]"), f"bugs[{i}]")
        bugs[b.id] = b
    results = []
    for i, raw in enumerate(r.items(top.get("results"), "results")):
        key = f"results[{i}]"
        d = r.table(raw, key)
        bug = bugs.get(r.text(d, "bug", key)) or _bug(r, d, key, id_key="bug")
        bugs.setdefault(bug.id, bug)
        tname = r.text(d, "tree", key)
        tree = trees.get(tname) or (_tree(r, d["tree_info"], f"{key}.tree_info") if "tree_info" in d else None)
        tree = tree or TreeInfo(name=tname, source="", kind="")
        trees.setdefault(tree.name, tree)
        patches = [_patch(r, p, f"{key}.patches[{j}]") for j, p in enumerate(r.items(d.get("patches", []), key))]
        verdict, method, error = r.text(d, "verdict", key), r.maybe(d, "method", key), r.maybe(d, "error", key)
        results.append(BugResult(bug=bug, tree=tree, verdict=verdict, method=method, error=error, patches=patches))
    return Report(
        results=results,
        trees=list(trees.values()),
        bugs=list(bugs.values()),
        version=version,
        generated=r.text(top, "generated", "(top)", optional=True),
        shard=r.maybe(top, "shard", "(top)"),
    )
