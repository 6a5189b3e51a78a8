"""Presence evidence beyond the tree's content: git history and distro changelogs."""

from __future__ import annotations

from dataclasses import dataclass

from patchcheck.model import Method


@dataclass(frozen=True)
class Evidence:
    """What history or a changelog says about a fix, in words a report can show."""

    method: Method  # Method.HISTORY or Method.CHANGELOG
    detail: str
    commit: str | None = None  # the local commit that matched, if any
