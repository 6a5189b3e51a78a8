"""Acceptance: each seed write-up's crash log ranks its own known bug first.

Reads the seeds from ``shared/`` beside the repository and matches them against the
**shipped** ``patchcheck/known_bugs/`` (``PATCHCHECK_ACCEPTANCE_BUGS_DIR`` may point at another
folder, e.g. to try proposed signatures before they ship).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchcheck.bugs.load import default_bugs_dir, load_bugs
from patchcheck.triage.score import triage_text

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEEDS = SHARED / "seeds"

if not SEEDS.is_dir():
    pytest.skip(f"{SEEDS} not present", allow_module_level=True)

pytestmark = pytest.mark.acceptance

# seed file prefix -> the bug its write-up is about
EXPECTED = {
    "000": "perf-bpf-prog-detach",  # bpf_prog_array_copy <- perf_event_detach_bpf_prog, 4.19 ctl2
    "002": "nf-ct-lookup-opts",  # bpf_test_run page fault after bpf_skb_ct_lookup, 6.8.0-59
    "003": "nfsd-callback-wq",  # __queue_work NULL pwq under nfsd4_run_cb, 4.19 ky10 aarch64
}


def _seed(prefix: str) -> Path:
    found = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not found:
        pytest.skip(f"no seed {prefix}_*.txt in {SEEDS}")
    return found[0]


@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_seed_ranks_its_bug_first(prefix: str) -> None:
    bugs_dir = Path(os.environ.get("PATCHCHECK_ACCEPTANCE_BUGS_DIR") or default_bugs_dir())
    bugs = load_bugs(bugs_dir).all()
    text = _seed(prefix).read_text(encoding="utf-8", errors="replace")
    oops, matches = triage_text(text, bugs)
    assert oops is not None, f"no oops found in seed {prefix}"
    assert matches, f"seed {prefix}: no known bug in {bugs_dir} matches {oops}"
    assert matches[0].bug == EXPECTED[prefix], (
        f"seed {prefix}: expected {EXPECTED[prefix]} first, got "
        + ", ".join(f"{m.bug} {m.score:.2f}" for m in matches)
    )
