"""Which known bugs a run checks (ids or every bug, then the subsystem / severity / CVE
filters), and which of its (bug, tree) cells a shard takes."""

from __future__ import annotations

from dataclasses import dataclass

from patchcheck.bugs.load import SEVERITY_RANK, BugSet
from patchcheck.errors import BadInput
from patchcheck.model import Bug


@dataclass(frozen=True)
class Selection:
    ids: tuple[str, ...] = ()
    every: bool = False  # --all
    subsystems: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    cves: tuple[str, ...] = ()
    required: bool = True  # a run that must name its bugs (check) vs one that defaults to all

    @property
    def filtered(self) -> bool:
        return bool(self.subsystems or self.severities or self.cves)


def select_bugs(bugs: BugSet, sel: Selection) -> list[Bug]:
    """--bug / --all, then the --subsystem / --severity / --cve filters."""
    if sel.ids and sel.every:
        raise BadInput("give either --bug ID ... or --all, not both")
    if sel.ids:
        chosen = bugs.select(dict.fromkeys(sel.ids))
    elif sel.every or not sel.required or sel.filtered:
        chosen = bugs.all()
    else:
        raise BadInput("which bugs? give --bug ID (repeatable) or --all")
    if sel.subsystems:
        chosen = [b for b in chosen if b.subsystem in sel.subsystems]
    if sel.severities:
        chosen = [b for b in chosen if b.severity in sel.severities]
    if sel.cves:
        want = {c.upper() for c in sel.cves}
        chosen = [b for b in chosen if want & set(b.cves)]
    if not chosen:
        raise BadInput("no known bug matches the given filters")
    return chosen


def at_least(bug: Bug, min_severity: str) -> bool:
    return SEVERITY_RANK[bug.severity] >= SEVERITY_RANK[min_severity]


@dataclass(frozen=True)
class Shard:
    """The K-th of N stable slices of the (bug, tree) cells: a cell's slice is a hash of its
    bug id and tree name, so adding a bug or a tree moves no other cell."""

    k: int  # 1-based
    n: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
            raise ValueError(f"expected K/N with 1 <= K <= N, got {text!r}")
        return cls(int(k), int(n))

    def takes(self, bug_id: str, tree_name: str) -> bool:
        import hashlib  # here: only a sharded run pays for importing it

        digest = hashlib.sha256(f"{bug_id}\0{tree_name}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.n == self.k - 1

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"
