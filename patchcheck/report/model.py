"""What the renderers read: a run's results, and a triage's findings.

Kept apart from the format registry (``report/__init__``) so that renderers and registry
never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from patchcheck.model import Bug, BugResult, TreeInfo

if TYPE_CHECKING:
    from patchcheck.triage.score import Match
    from patchcheck.triage.signals import Oops


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False  # ANSI colour (table only)
    verbose: bool = False  # per failing hunk: place, reason, near-match diff (table)
    width: int | None = None  # terminal columns the table must fit (None: no limit)


@dataclass
class Report:
    results: list[BugResult]  # every bug x tree cell of the run, in run order
    trees: list[TreeInfo]  # column order
    bugs: list[Bug]  # row order
    version: str  # patchcheck.__version__
    generated: str  # ISO timestamp
    shard: str | None = None  # "K/N" when the run checked one slice of the cells
    # each result as its format's ``encode_result`` wrote it (in the check's workers), in
    # ``results`` order; None: the renderer encodes them
    encoded: list[str] | None = None


@dataclass(frozen=True)
class TriageReport:
    """A crash log's first oops, the known bugs it looks like, and (with --tree) their check."""

    oops: Oops
    matches: tuple[Match, ...]
    threshold: float
    version: str
    generated: str  # ISO timestamp
    bugs: dict[str, Bug] = field(default_factory=dict)  # the matched bugs, by id
    check: Report | None = None  # the matched bugs on --tree
