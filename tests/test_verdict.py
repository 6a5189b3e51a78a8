"""Pure verdict logic: patch verdicts -> bug verdict."""

from __future__ import annotations

from patchcheck.model import PatchResult
from patchcheck.verdict import bug_verdict, weakest_method


def p(verdict: str, method: str | None = None, optional: bool = False) -> PatchResult:
    return PatchResult(
        msgid="m", subject="s", upstream=None, verdict=verdict, method=method, evidence="", optional=optional
    )


def test_all_present() -> None:
    assert bug_verdict([p("present", "exact"), p("present", "exact")])[:2] == ("present", "exact")
    assert bug_verdict([p("present", "exact"), p("present", "modified")])[:2] == ("present", "mixed")


def test_optional_never_decides() -> None:
    assert bug_verdict([p("present", "exact"), p("conflicting", optional=True)])[0] == "present"
    assert bug_verdict([p("backportable", "clean"), p("error", optional=True)])[0] == "backportable"


def test_partial_and_conflict() -> None:
    assert bug_verdict([p("present", "exact"), p("backportable", "clean")])[0] == "partially-present"
    assert bug_verdict([p("backportable", "clean"), p("conflicting")])[0] == "conflicting"
    assert bug_verdict([p("partially-present")])[0] == "partially-present"


def test_backportable_takes_weakest_method() -> None:
    assert bug_verdict([p("backportable", "clean"), p("backportable", "fuzz")])[:2] == ("backportable", "fuzz")
    assert weakest_method(["clean", "3way", "offset"]) == "3way"


def test_not_applicable_and_error() -> None:
    assert bug_verdict([p("not-applicable"), p("not-applicable")])[0] == "not-applicable"
    assert bug_verdict([p("not-applicable"), p("backportable", "clean")])[0] == "backportable"
    v, _, err = bug_verdict([p("error"), p("present", "exact")])
    assert v == "error" and err
