"""The patch queue a kernel spec's %prep applies for one architecture, in order.

The spec is first reduced to its active lines by ``specprep.preprocess`` (``%if``/``%ifarch``
decided for the arch, never rpm's own expansion). Among %prep's lines, rpm's own forms are read
here: ``%patchN``, ``%patch -P N``, ``%autosetup``, ``%autopatch`` and a plain
``patch -p1 < %{PATCH3}``; the kernel specs' helpers (``ApplyPatch``, ``ApplyOptionalPatch``,
``Applypatches series.conf``) by ``kernelqueue.prep_steps``. Both come out as ``ApplyStep``s in
spec line order.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from patchcheck.errors import TreeError
from patchcheck.trees.kernelqueue import ApplyStep, prep_steps
from patchcheck.trees.specexpr import UNKNOWN, Expander
from patchcheck.trees.specprep import Evaluated, SpecLine, is_header

_PATCH_N = re.compile(r"^%patch(\d+)\b(.*)$")


@dataclass(frozen=True)
class PrepPlan:
    steps: tuple[ApplyStep, ...]  # in %prep order
    notes: tuple[str, ...] = ()  # undecided conditions that matter to the queue, skipped helpers


def _opts(args: list[str]) -> tuple[int | None, bool, list[str], dict[str, str]]:
    """-pN, -R and other -X value options of %patch/%autopatch; returns positional args too."""
    strip: int | None = None
    reverse = False
    positional: list[str] = []
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("-p"):
            val = a[2:] or (args[i + 1] if i + 1 < len(args) else "1")
            i += 0 if a[2:] else 1
            strip = int(val) if val.isdigit() else 1
        elif a == "-R":
            reverse = True
        elif len(a) >= 2 and a[0] == "-" and a[1] in "PmMbzFoSn":
            val = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
            i += 0 if a[2:] else 1
            values.setdefault(a[1], "")
            values[a[1]] += (" " if values[a[1]] else "") + val
        elif not a.startswith("-"):
            positional.append(a)
        i += 1
    return strip, reverse, positional, values


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _numbered(
    nums: list[int], strip: int | None, reverse: bool, sl: SpecLine, patches: Mapping[int, str], label: str
) -> list[ApplyStep]:
    steps: list[ApplyStep] = []
    for n in nums:
        name = patches.get(n)
        if name is None:
            raise TreeError(f"{label}: line {sl.number}: applies patch {n} but declares no Patch{n}:")
        steps.append(ApplyStep("patch", name, sl.number, 1 if strip is None else strip, reverse, (), sl.certain))
    return steps


def rpm_steps(sl: SpecLine, patches: Mapping[int, str], ex: Expander, label: str = "spec") -> list[ApplyStep]:
    """The patches rpm's own %prep forms on one active line apply (none for other lines)."""
    line = sl.text.strip()
    if m := _PATCH_N.match(line):  # the old %patchN form
        strip, rev, _, _ = _opts(_split(ex.expand(m.group(2))))
        return _numbered([int(m.group(1))], strip, rev, sl, patches, label)
    if line == "%patch" or line.startswith("%patch "):
        strip, rev, pos, vals = _opts(_split(ex.expand(line[len("%patch") :])))
        nums = [int(n) for n in (vals.get("P", "").split() + pos) if n.isdigit()] or [0]
        return _numbered(nums, strip, rev, sl, patches, label)
    if line.startswith(("%autosetup", "%autopatch")):
        args = _split(ex.expand(line))[1:]
        if line.startswith("%autosetup") and "-N" in args:
            return []
        strip, rev, pos, vals = _opts(args)
        lo = int(vals["m"]) if vals.get("m", "").isdigit() else None
        hi = int(vals["M"]) if vals.get("M", "").isdigit() else None
        picked = [int(n) for n in pos if n.isdigit()] if line.startswith("%autopatch") else []
        nums = picked or [n for n in sorted(patches) if (lo is None or n >= lo) and (hi is None or n <= hi)]
        return _numbered(nums, strip, rev, sl, patches, label)
    words = _split(ex.expand(line))
    if words and words[0] == "patch" and "<" in words:  # a plain `patch -p1 < %{PATCH3}`
        strip, rev, _, _ = _opts(words[1 : words.index("<")])
        target = words[words.index("<") + 1] if words.index("<") + 1 < len(words) else ""
        # `$1`, `$patch`: the body of a shell helper; UNKNOWN: a name only rpm could compute
        if target and "$" not in target and UNKNOWN not in target:
            name = posixpath.basename(target)
            return [ApplyStep("patch", name, sl.number, 1 if strip is None else strip, rev, (), sl.certain)]
    return []


def _queue_notes(ev: Evaluated) -> list[str]:
    """The notes of undecided conditions in the preamble and %prep: the ones that may change
    the queue (a condition in %build or %files does not)."""
    heads = [(x.number, x.section) for x in ev.lines if x.section != "preamble" and is_header(x.text)]
    notes: list[str] = []
    for n in ev.undecided:
        section = "preamble"
        for start, name in heads:
            if start < n:
                section = name
        if section in ("preamble", "prep"):
            notes += [x for x in ev.notes if f" at line {n} (" in x]
    return notes


def prep_plan(ev: Evaluated, label: str = "spec") -> PrepPlan:
    """Every patch (or series file) %prep applies for ``ev.arch``, in spec line order."""
    helpers = prep_steps(ev, label=label)
    by_line: dict[int, list[ApplyStep]] = {}
    for step in helpers.steps:
        by_line.setdefault(step.line, []).append(step)
    ex = Expander(ev.macros)
    steps: list[ApplyStep] = []
    for sl in ev.section("prep"):
        steps += by_line.get(sl.number) or rpm_steps(sl, ev.patches, ex, label)
    notes = [*_queue_notes(ev), *helpers.notes]
    uncertain = [s.file for s in steps if not s.certain]
    if uncertain:
        shown = ", ".join(uncertain[:5]) + (f" and {len(uncertain) - 5} more" if len(uncertain) > 5 else "")
        notes.append(f"{label}: applied {shown} though the condition around it could not be decided")
    return PrepPlan(tuple(steps), tuple(notes))
