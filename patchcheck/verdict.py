"""Pure functions: per-hunk results -> patch verdicts -> bug verdict. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence

from patchcheck.model import Method, PatchResult, Verdict

# apply methods, weakest last: a series is as good as its worst patch
_METHOD_RANK = {Method.CLEAN: 0, Method.OFFSET: 1, Method.FUZZ: 2, Method.THREEWAY: 3}


def weakest_method(methods: Sequence[str | None]) -> str | None:
    ms = [Method(m) for m in methods if m in _METHOD_RANK]
    return max(ms, key=_METHOD_RANK.__getitem__) if ms else None


def bug_verdict(patches: Sequence[PatchResult]) -> tuple[str, str | None, str | None]:
    """Sum up a bug's required patches: (verdict, method, error).

    Optional patches never decide the bug's verdict; they are only reported.
    """
    req = [p for p in patches if not p.optional]
    if not req:
        return Verdict.ERROR, None, "no required fix patches"
    errors = [p for p in req if p.verdict == Verdict.ERROR]
    if errors:
        return Verdict.ERROR, None, "; ".join(p.error or "error" for p in errors)
    vs = {p.verdict for p in req}
    if vs == {Verdict.NOT_APPLICABLE}:
        return Verdict.NOT_APPLICABLE, None, None
    relevant = [p for p in req if p.verdict != Verdict.NOT_APPLICABLE]
    rv = {p.verdict for p in relevant}
    if rv == {Verdict.PRESENT}:
        methods = {p.method for p in relevant}
        return Verdict.PRESENT, methods.pop() if len(methods) == 1 else Method.MIXED, None
    if Verdict.PRESENT in rv or Verdict.PARTIAL in rv:
        return Verdict.PARTIAL, None, None
    if Verdict.CONFLICTING in rv:
        return Verdict.CONFLICTING, None, None
    return Verdict.BACKPORTABLE, weakest_method([p.method for p in relevant]), None
