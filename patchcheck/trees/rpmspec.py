"""Enough of an RPM spec file for a kernel SRPM: its Patch/Source tags, the %prep order in which
the patches are applied, the %changelog, and the macros that name the files.

The queue order comes from %prep: ``%patchN``, ``%patch -P N``, ``%autosetup``, ``%autopatch``
and the kernel specs' ``ApplyPatch``/``ApplyOptionalPatch`` helpers.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_SECTION = re.compile(
    r"^%(prep|build|install|check|clean|files|changelog|description|package|pre|post|preun|"
    r"postun|pretrans|posttrans|triggerin|triggerun|triggerpostun|verifyscript|conf|"
    r"generate_buildrequires|sourcelist|patchlist)\b"
)
_TAG = re.compile(r"^(Patch|Source)(\d*)\s*:\s*(\S.*?)\s*$", re.I)
_DEFINE = re.compile(r"^%(?:define|global)\s+(\w+)(?:\(.*?\))?\s+(.*?)\s*$")
_SIMPLE_TAG = re.compile(r"^(Name|Version|Release|Epoch)\s*:\s*(\S.*?)\s*$", re.I)


@dataclass
class QueueStep:
    """One patch application found in %prep: by number (%patch) or by file (ApplyPatch)."""

    number: int | None
    file: str | None
    strip: int
    reverse: bool = False


@dataclass
class SpecInfo:
    patches: dict[int, str] = field(default_factory=dict)  # PatchN: -> file name
    sources: dict[int, str] = field(default_factory=dict)
    steps: list[QueueStep] = field(default_factory=list)
    changelog: str | None = None
    conditional: bool = False  # %prep has %if: every listed step is applied regardless
    macros: dict[str, str] = field(default_factory=dict)


def expand(text: str, macros: dict[str, str]) -> str:
    """Enough rpm macro expansion for file names: %{x}, %x, %{?x}, %{?x:y}, %{!?x:y}."""

    def one(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        if body is None:
            return m.group(0)
        neg = body.startswith("!?")
        cond = body.startswith("?") or neg
        name, _, alt = body.lstrip("!?").partition(":")
        if not cond:
            return macros.get(name, m.group(0))
        defined = name in macros
        if alt:
            return alt if defined != neg else ""
        return "" if neg else macros.get(name, "")

    for _ in range(10):  # nested macros; bounded against self-reference
        new = re.sub(r"%\{([^{}]+)\}|%(\w+)", one, text)
        if new == text:
            break
        text = new
    return text


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


def parse_spec(text: str, macros: dict[str, str] | None = None) -> SpecInfo:
    info = SpecInfo(macros=dict(macros or {}))
    section = "preamble"
    prep: list[str] = []
    changelog: list[str] = []
    next_patch = 0
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        if m := _SECTION.match(line):
            section = m.group(1)
            continue
        if section == "changelog":
            changelog.append(line)
            continue
        if m := _DEFINE.match(line):
            info.macros.setdefault(m.group(1), m.group(2))
            continue
        if section == "preamble" or section == "package":
            if m := _SIMPLE_TAG.match(line):
                info.macros.setdefault(m.group(1).lower(), expand(m.group(2), info.macros))
            elif m := _TAG.match(line):
                value = expand(m.group(3), info.macros).rsplit("/", 1)[-1]
                if m.group(1).lower() == "patch":
                    num = int(m.group(2)) if m.group(2) else next_patch
                    info.patches[num] = value
                    next_patch = max(next_patch, num + 1)
                    info.macros[f"PATCH{num}"] = value
                else:
                    num = int(m.group(2) or 0)
                    info.sources[num] = value
                    info.macros[f"SOURCE{num}"] = value
        elif section == "prep":
            prep.append(line)
    for raw in prep:
        line = raw.strip()
        if line.startswith(("%if", "%else", "%elif")):
            info.conditional = True
        info.steps += _prep_steps(line, info)
    info.changelog = "\n".join(changelog).strip() + "\n" if changelog else None
    return info


def _prep_steps(line: str, info: SpecInfo) -> list[QueueStep]:
    if not line or line.startswith("#"):
        return []
    if m := re.match(r"^%patch(\d+)\b(.*)$", line):  # the old %patchN form
        strip, rev, _, _ = _opts(_split(m.group(2)))
        return [QueueStep(int(m.group(1)), None, 1 if strip is None else strip, rev)]
    if line == "%patch" or line.startswith("%patch "):
        strip, rev, pos, vals = _opts(_split(line[len("%patch") :]))
        nums = [int(n) for n in (vals.get("P", "").split() + pos) if n.isdigit()] or [0]
        return [QueueStep(n, None, 1 if strip is None else strip, rev) for n in nums]
    if line.startswith(("%autosetup", "%autopatch")):
        args = _split(line)[1:]
        if line.startswith("%autosetup") and "-N" in args:
            return []
        strip, rev, pos, vals = _opts(args)
        lo = int(vals["m"]) if vals.get("m", "").isdigit() else None
        hi = int(vals["M"]) if vals.get("M", "").isdigit() else None
        picked = [int(n) for n in pos if n.isdigit()] if line.startswith("%autopatch") else []
        nums = picked or [n for n in sorted(info.patches) if (lo is None or n >= lo) and (hi is None or n <= hi)]
        return [QueueStep(n, None, 1 if strip is None else strip, rev) for n in nums]
    words = _split(expand(line, info.macros))
    if words and words[0] in ("ApplyPatch", "ApplyOptionalPatch") and len(words) > 1:
        # kernel specs' shell helper: `ApplyPatch file [-R]`, always -p1
        return [QueueStep(None, words[1].rsplit("/", 1)[-1], 1, "-R" in words[2:])]
    if words and words[0] == "patch" and "<" in words:  # a plain `patch -p1 < %{PATCH3}`
        strip, rev, _, _ = _opts(words[1 : words.index("<")])
        target = words[words.index("<") + 1] if words.index("<") + 1 < len(words) else ""
        if target and "$" not in target:  # `$1` etc.: the body of a helper function
            return [QueueStep(None, target.rsplit("/", 1)[-1], 1 if strip is None else strip, rev)]
    return []
