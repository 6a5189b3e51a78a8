"""The in-process fast path against the real tools: grade one patch both ways.

``grade_both`` grades a patch on a tree once with engine/fast.py allowed to answer and once
with it turned off (git apply and GNU patch answer everything), and returns both decisions
and what the fast path and the tools said, so a test can demand they agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from patchcheck.decide import Decision
from patchcheck.engine import grade
from patchcheck.engine.scratch import Scratch
from patchcheck.engine.tools import Runs
from patchcheck.text.diff import parse_diff
from patchcheck.trees.base import TreeView


@dataclass
class Both:
    fast: Decision
    tools: Decision
    fast_runs: Runs | None  # None: the fast path declined
    tool_runs: Runs | None  # None: grading ended before the tools were asked

    def disagreement(self) -> str | None:
        """What differs, in words; None when the fast path declined or agrees exactly."""
        if self.fast_runs is None:
            return None
        if self.fast != self.tools:
            return f"decisions differ:\n  fast:  {self.fast}\n  tools: {self.tools}"
        f, t = self.fast_runs, self.tool_runs
        if t is None:
            return "the tools were never asked"
        if (f.rev, f.whole_rev_ok, f.whole_fwd_ok) != (t.rev, t.whole_rev_ok, t.whole_fwd_ok):
            return f"reverse / whole-patch answers differ:\n  fast:  {f}\n  tools: {t}"
        if f.whole_fwd_ok and f.fwd != t.fwd:
            return f"forward placements differ:\n  fast:  {f.fwd}\n  tools: {t.fwd}"
        return None


@contextmanager
def _patched(name: str, fn: Any) -> Iterator[None]:
    old = getattr(grade, name)
    setattr(grade, name, fn)
    try:
        yield
    finally:
        setattr(grade, name, old)


def grade_both(tree: TreeView, diff: bytes) -> Both:
    """Grade ``diff`` on ``tree`` with and without the fast path (not thread-safe: it swaps
    the engine's functions for the call)."""
    files = parse_diff(diff)
    seen: dict[str, Runs | None] = {"fast": None, "tools": None}
    certain, tools = grade.certain_runs, grade.run_tools

    def spy_fast(*a: Any) -> Runs | None:
        seen["fast"] = certain(*a)
        return seen["fast"]

    def spy_tools(*a: Any) -> Runs:
        seen["tools"] = tools(*a)
        return seen["tools"]

    with Scratch(tree) as scratch:
        with _patched("certain_runs", spy_fast):
            fast = grade.grade_patch(scratch, files)
        with _patched("certain_runs", lambda *a: None), _patched("run_tools", spy_tools):
            slow = grade.grade_patch(scratch, files)
    return Both(fast, slow, seen["fast"], seen["tools"])
