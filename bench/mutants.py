"""The two mutated copies of the old tree for the benchmark's matrix.

Each holds the top Makefile and one version of every file a patch touches (patchcheck reads
nothing else), so each patch meets a known mix of cases. Per file, by its place k in the
sorted list of patched files:

    tree     k % 4 == 0               k % 4 == 1        otherwise
    mut-a    old, 2 lines on top      new               old
             (offsets: the tools)     (present)         (clean)
    mut-b    absent                   old, first hunk's new
             (not-applicable)         context edited    (present)
                                      (fuzz or conflict:
                                      the tools)

So a quarter of each mutated tree's cells goes to git apply / GNU patch, the rest is the plain
case most real audits are made of.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from testing.realtrees import FileDiff, RealPair

_HUNK = re.compile(rb"^@@ -(\d+)", re.M)


def _edit_context(old: bytes, diff: bytes) -> bytes:
    """The old file with the first line of the first hunk (a context line) changed."""
    m = _HUNK.search(diff)
    lines = old.splitlines(keepends=True)
    at = int(m.group(1)) - 1 if m else 0
    if 0 <= at < len(lines):
        body = lines[at].rstrip(b"\n")
        lines[at] = body + b" /* bench */" + lines[at][len(body) :]
    return b"".join(lines)


def build(root: Path, pair: RealPair, diffs: list[FileDiff]) -> list[Path]:
    """Both mutated trees under ``root`` (made once; a marker says they are complete)."""
    trees = [root / "mut-a", root / "mut-b"]
    done = root / ".complete"
    if done.exists():
        return trees
    for t in trees:
        shutil.rmtree(t, ignore_errors=True)
        t.mkdir(parents=True)
        shutil.copyfile(pair.old / "Makefile", t / "Makefile")
    for k, fd in enumerate(sorted(diffs, key=lambda d: d.path)):
        old = (pair.old / fd.path).read_bytes()
        new = (pair.new / fd.path).read_bytes()
        a = (b"/* bench 1 */\n/* bench 2 */\n" + old) if k % 4 == 0 else new if k % 4 == 1 else old
        b = None if k % 4 == 0 else _edit_context(old, fd.diff) if k % 4 == 1 else new
        for tree, data in zip(trees, (a, b), strict=True):
            if data is not None:
                dest = tree / fd.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
    done.touch()
    return trees
