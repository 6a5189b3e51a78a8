"""engine/fast.py against git apply and GNU patch on every real patch of the corpus.

Every modified .c/.h file between two Debian linux-source-6.1 versions, graded on the old
file (backportable), the new file (present), and the old file with two lines inserted at
its top (offsets: the fast path must decline): wherever the in-process decision answers, it
must be exactly the tools' (testing/fastcheck.py grades each case both ways).
"""

from __future__ import annotations

from collections import Counter

import pytest

from testing.fastcheck import grade_both
from testing.kfixtures import DictTree
from testing.realtrees import RealPair, Unavailable, real_pair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair() -> RealPair:
    try:
        return real_pair()
    except Unavailable as e:
        pytest.skip(f"real Debian kernel trees unavailable: {e}")


def test_fast_path_agrees_with_the_tools_on_every_real_patch(pair: RealPair) -> None:
    taken: Counter[str] = Counter()
    wrong: list[str] = []
    for fd in pair.diffs:
        old = (pair.old / fd.path).read_bytes()
        variants = {
            "old": old,
            "new": (pair.new / fd.path).read_bytes(),
            "shifted": b"/* patchcheck 1 */\n/* patchcheck 2 */\n" + old,
        }
        for name, data in variants.items():
            b = grade_both(DictTree({fd.path: data}), fd.diff)
            taken[f"{name} {'fast' if b.fast_runs is not None else 'tools'}"] += 1
            why = b.disagreement()
            if why:
                wrong.append(f"{name} {fd.path}: {why}")
    print(f"\n{len(pair.diffs)} real patches: " + ", ".join(f"{k} {v}" for k, v in sorted(taken.items())))
    assert not wrong, "\n".join(wrong[:10])
    assert not taken["shifted fast"]
    # the fast path answers the plain majority (else it saves nothing)
    assert taken["old fast"] > 0.8 * len(pair.diffs)
    assert taken["new fast"] > 0.8 * len(pair.diffs)
