"""Ranking known bugs against an oops: each bug's ``[signature]`` scored 0..1.

Signature convention: ``functions`` are listed as a call trace prints them, innermost first
(the function that faults, then its callers); ``message`` is a fragment of the headline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchcheck.model import Bug
from patchcheck.triage.parse import parse_oops
from patchcheck.triage.signals import Oops, function_weight, headline_kind, normalize_function

DEFAULT_THRESHOLD = 0.35

_W_UNRELIABLE = 0.3  # a "?" frame is stack garbage as often as a real caller

# score = weighted mean of the evidence that is available (see score_bug()).
_W_FAULT = 0.45
_W_TRACE = 0.40
_W_HEAD = 0.15


@dataclass(frozen=True)
class Match:
    bug: str
    score: float  # 0..1
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"bug": self.bug, "score": round(self.score, 3), "why": self.why}


def _weighted_lcs(sig: Sequence[str], seq: Sequence[tuple[str, float]]) -> tuple[float, int]:
    """Weighted longest common subsequence of signature and trace: (weight, length)."""
    n, m = len(sig), len(seq)
    best = [[(0.0, 0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            cand = max(best[i + 1][j], best[i][j + 1])
            if sig[i] == seq[j][0]:
                w = function_weight(sig[i]) * seq[j][1]
                took = (best[i + 1][j + 1][0] + w, best[i + 1][j + 1][1] + 1)
                cand = max(cand, took)
            best[i][j] = cand
    return best[0][0]


def _oops_sequence(oops: Oops) -> list[tuple[str, float]]:
    """Faulting function then the trace, each with its reliability factor."""
    seq: list[tuple[str, float]] = []
    if oops.function:
        seq.append((oops.function, 1.0))
    for fr in oops.frames:
        r = 1.0 if fr.reliable else _W_UNRELIABLE
        if seq and seq[-1][0] == fr.function:  # arm64/KASAN traces repeat the faulting frame
            seq[-1] = (fr.function, max(seq[-1][1], r))
            continue
        seq.append((fr.function, r))
    return seq


def _squash(text: str) -> str:
    return " ".join(text.lower().split())


def _headline_score(oops: Oops, message: str) -> tuple[float, str]:
    msg = _squash(message)
    texts = [t for t in (oops.headline, *oops.details) if t]
    for t in texts:
        if msg and msg in _squash(t):
            return 1.0, f"headline '{message}'"
    kind = headline_kind(message)
    if kind and any(headline_kind(t) == kind for t in texts):
        return 0.6, f"headline of the same kind as '{message}'"
    return 0.0, ""


def score_bug(oops: Oops, bug: Bug) -> Match | None:
    """Score one bug; None when it has no signature."""
    sig = bug.signature
    if sig is None or (not sig.functions and not sig.message):
        return None
    names = list(dict.fromkeys(normalize_function(f) for f in sig.functions if f.strip()))
    seq = _oops_sequence(oops)
    why: list[str] = []
    parts: dict[str, tuple[float, float]] = {}  # evidence -> (weight, score)

    if names and oops.function:
        fault = 0.0
        if oops.function in names:
            fault = function_weight(oops.function)
            why.append(f"faulting function {oops.function}")
        else:
            # A helper (memcpy, refcount_warn_saturate...) faulted for its caller: credit
            # the first non-helper frame, a little less.
            eff = next((f for f, r in seq if r == 1.0 and function_weight(f) == 1.0), None)
            if eff is not None and eff != oops.function and eff in names:
                fault = 0.8
                why.append(f"faulting in {oops.function} called from {eff}")
        parts["fault"] = (_W_FAULT, fault)

    has_trace = sum(1 for f in oops.frames if f.reliable and function_weight(f.function) > 0.1)
    if names and (has_trace >= 2 or (not oops.function and seq)):
        total = sum(function_weight(n) for n in names)
        lcs_w, lcs_n = _weighted_lcs(names, seq)
        present = {f for f, _ in seq}
        anyorder_w = sum(function_weight(n) for n in names if n in present)
        anyorder_n = sum(1 for n in names if n in present)
        trace = (0.8 * lcs_w + 0.2 * anyorder_w) / total if total else 0.0
        parts["trace"] = (_W_TRACE, min(1.0, trace))
        if "fault" in parts and 0.0 < parts["fault"][1] < 1.0:
            # A fault in a shared function (__queue_work) is as telling as any once the
            # callers agree with the signature too.
            f = parts["fault"][1]
            parts["fault"] = (_W_FAULT, f + (1.0 - f) * min(1.0, trace))
        if lcs_n:
            extra = f" ({anyorder_n} present)" if anyorder_n > lcs_n else ""
            why.append(f"{lcs_n} of {len(names)} signature functions in trace order{extra}")

    if sig.message and (oops.headline or oops.details):
        h, hwhy = _headline_score(oops, sig.message)
        parts["headline"] = (_W_HEAD, h)
        if hwhy:
            why.append(hwhy)

    if not parts:
        score = 0.0
    elif "fault" not in parts and "trace" not in parts:
        # A headline alone ("NULL pointer dereference") fits too many crashes to decide.
        score = 0.5 * parts["headline"][1]
    else:
        # Evidence the log lacks (no trace, no message) is left out rather than counted 0.
        score = sum(w * s for w, s in parts.values()) / sum(w for w, _ in parts.values())
    return Match(
        bug.id, round(min(1.0, max(0.0, score)), 4), "; ".join(why) if why else "nothing specific matched"
    )


def match(oops: Oops, bugs: Iterable[Bug], threshold: float = DEFAULT_THRESHOLD) -> list[Match]:
    """Bugs whose signature fits ``oops`` with score >= ``threshold``, best first."""
    out = [m for b in bugs if (m := score_bug(oops, b)) is not None and m.score >= threshold]
    out.sort(key=lambda m: (-m.score, m.bug))
    return out


def triage_text(
    text: str, bugs: Iterable[Bug], threshold: float = DEFAULT_THRESHOLD
) -> tuple[Oops | None, list[Match]]:
    oops = parse_oops(text)
    if oops is None:
        return None, []
    return oops, match(oops, bugs, threshold)
