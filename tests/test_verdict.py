"""Pure verdict logic: patch verdicts -> bug verdict."""

from __future__ import annotations

from patchcheck.decide import Decision, patch_verdict, with_evidence
from patchcheck.model import Evidence, HunkResult, Method, PatchResult
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


# ---- decide.py: content wins over history ----------------------------------------------


def _decision(*statuses: str, lacking: int = 0) -> Decision:
    hunks = [HunkResult("f.c", s, i) for i, s in enumerate(statuses, 1)]
    return patch_verdict(hunks, False, True, [], hunks[:lacking])


def test_history_corroborates_but_never_outweighs_content() -> None:
    ev = Evidence(Method.HISTORY, "patch-id matches commit 0123456789ab", "0123456789ab" + "0" * 28)
    # every hunk shows the fix, if only in part: history makes it present
    d = with_evidence(_decision("present", "fuzz"), ev)
    assert (d.verdict, d.method) == ("present", "history")
    # a hunk whose pre-image is intact: the fix is not there, whatever history says
    d = with_evidence(_decision("clean", "present", lacking=1), ev)
    assert d.verdict == "partially-present"
    assert d.evidence.startswith("history names commit 0123456789ab (patch-id matches commit 0123456789ab)")
    assert "but its lines are not in the tree (reverted? dropped?)" in d.evidence
    d = with_evidence(_decision("clean", "clean", lacking=2), Evidence(Method.CHANGELOG, "changelog: 'x'"))
    assert (d.verdict, d.method) == ("backportable", "clean")
    assert d.evidence.startswith("changelog: 'x', but its lines are not in the tree")
