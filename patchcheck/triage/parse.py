"""Reading a dmesg / vmcore-dmesg / crash(8) session: the first oops in it, as an :class:`Oops`.

Console prefixes (log level, timestamps, syslog/journal, printk caller ids) are dropped, the
first headline found, then its faulting function, call trace, release and command read
around it; a crash(8) ``bt`` fills in what the console log lacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from patchcheck.triage.signals import MACHINERY, Frame, Oops, normalize_function

# ---- line clean-up -------------------------------------------------------------------------

_PREFIX_RES = [
    re.compile(r"<\d>"),  # console log level
    re.compile(r"\d+,\d+,\d+,[-c][^;]*;"),  # /dev/kmsg record header
    re.compile(
        r"(?:kern|user|daemon|syslog)\s*:\s*(?:emerg|alert|crit|err|warn|notice|info"
        r"|debug)\s*:"
    ),  # dmesg -x
    # syslog / journal: "Mar  3 10:00:00 host kernel:" or "2025-03-03T10:00:00+08:00 host kernel:"
    re.compile(r"[^\[\]]{0,60}?\d\d:\d\d:\d\d\S*\s+\S+\s+kernel:"),
    re.compile(r"kernel:"),
    re.compile(r"\[\s*\d+\.\d+\]"),  # printk time
    re.compile(r"\[[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d+ [\d:]+ \d{4}\]"),  # dmesg -T
]
_CALLER_RE = re.compile(r"\[\s*([TC]\d+)\]")  # printk caller id (CONFIG_PRINTK_CALLER)


@dataclass(frozen=True)
class _Line:
    text: str  # prefixes removed, stripped
    caller: str | None
    raw: str


def _clean(raw: str) -> _Line:
    s = raw.rstrip("\r\n").strip()
    caller: str | None = None
    changed = True
    while changed and s:
        changed = False
        m = _CALLER_RE.match(s)
        if m:
            caller = m.group(1)
            s = s[m.end() :].lstrip()
            changed = True
            continue
        for rx in _PREFIX_RES:
            m = rx.match(s)
            if m and m.end() > 0:
                s = s[m.end() :].lstrip()
                changed = True
                break
    return _Line(s, caller, raw)


# ---- headlines -----------------------------------------------------------------------------

_HEADLINE_RES = [
    re.compile(r"BUG: \S"),  # unable to handle..., kernel NULL pointer..., KASAN, soft lockup
    re.compile(r"watchdog: BUG: soft lockup"),
    re.compile(r"Unable to handle kernel "),
    re.compile(r"(?:Oops: )?general protection fault"),
    re.compile(r"KASAN: \S"),
    re.compile(r"UBSAN: \S"),
    # kernel WARN()/lockdep shapes only: "WARNING: apt does not have a stable CLI" is not one
    re.compile(
        r"WARNING: (?:CPU: \d+|at \S+|possible |suspicious |inconsistent |bad unlock"
        r"|lock held|held lock|nested lock|.*\+0x[0-9a-f]+)"
    ),
    re.compile(r"kernel BUG at "),
    re.compile(r"divide error: "),
    re.compile(r"stack segment: "),
    re.compile(r"double fault: "),
    re.compile(r"INFO: task \S+ blocked for more than"),
    re.compile(r"INFO: rcu_\w+ (?:self-)?detected stall"),
]
# Only when nothing above is in the log: these usually follow a real headline.
_SECONDARY_RES = [
    re.compile(r"Internal error: "),
    re.compile(r"invalid opcode: "),
    re.compile(r"Oops(?: -[^:]*)?: [0-9a-f]+ \[#\d+\]"),
    re.compile(r"Kernel panic - not syncing: "),
]


def _is_headline(text: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(rx.match(text) for rx in patterns)


# ---- frames --------------------------------------------------------------------------------

_NAME = r"[A-Za-z_$][\w$.]*"
_MOD = r"(?:\s+\[(?P<mod>[\w-]+)(?:\s+[0-9a-f]+)?\])?"
_FRAME_RES = [
    # "? func+0x12/0x170 [mod]" with an optional "[<ffffffff8100>]" address (old kernels)
    re.compile(
        r"(?P<q>\?\s*)?(?:\[<[0-9a-f]+>\]\s*)?(?P<q2>\?\s*)?(?P<f>"
        + _NAME
        + r")\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?"
        + _MOD
        + r"(?P<rest>.*)$"
    ),
    # syzbot / decode_stacktrace: "func fs/x.c:12 [inline]", "func (fs/x.c:12)"
    re.compile(
        r"(?P<q>\?\s*)?(?P<f>" + _NAME + r")\s+\(?[\w./-]+\.[chS]:\d+.*?"
        r"(?P<rest>\[inline\]|\(inlined\))?\s*$"
    ),
    # arm32: "[<c01a2b3c>] (func) from [<c01a2c40>] (caller+0x40/0x68)"
    re.compile(
        r"\[<[0-9a-f]+>\]\s+\((?P<f>" + _NAME + r")(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?\)"
        r" from (?P<rest>.*)$"
    ),
    # "func (inlined)"
    re.compile(r"(?P<f>" + _NAME + r")\s+(?P<rest>\(inlined\)|\[inline\])\s*$"),
]
_ADDR_ONLY_RE = re.compile(r"\??\s*(?:\[<)?(?:0x)?[0-9a-f]{8,16}(?:>\])?\s*$")
_MARKER_RE = re.compile(r"</?(?:TASK|IRQ|NMI|EOI|SOFTIRQ|#\w+)>$|\.\.\.$")
_REGISTER_RE = re.compile(
    r"(?:[RE]?(?:IP|SP|AX|BX|CX|DX|SI|DI|BP)|R\d+|[FGCDE]S|CR\d|DR\d|PKRU|Code|ORIG_RAX"
    r"|EFLAGS|pc|lr|sp|pstate|x\d+|[XW]\d+|LR|PC|SP|PSTATE)\s*:",
    re.I,
)
_TRACE_HEAD_RE = re.compile(r"(?:Call [Tt]race|Backtrace)\s*:\s*$")
_TRACE_END_RE = re.compile(
    r"Modules linked in|---\[ end trace|Kernel panic|Allocated by task|Freed by task"
    r"|The buggy address|Last potentially related|Second to last|Memory state around"
    r"|irq event stamp|NMI backtrace|Sending NMI|CPU: \d+ (?:UID: \d+ )?PID:|Hardware name"
    r"|={10,}|(?:Call [Tt]race|Backtrace)\s*:|Process \S+ \(pid:"
)


def _frame(text: str) -> Frame | None:
    for rx in _FRAME_RES:
        m = rx.match(text)
        if not m:
            continue
        gd = m.groupdict()
        name = normalize_function(m.group("f"))
        q = bool(gd.get("q") or gd.get("q2"))
        rest = gd.get("rest") or ""
        return Frame(name, gd.get("mod"), reliable=not q, inlined="[inline]" in rest or "(inlined)" in rest)
    return None


def _read_trace(lines: Sequence[_Line], start: int, stop: int, caller: str | None) -> list[Frame]:
    """Frames after a ``Call Trace:`` header at ``start`` until the trace clearly ends."""
    frames: list[Frame] = []
    unknown = 0
    for ln in lines[start + 1 : stop]:
        t = ln.text
        if caller and ln.caller and ln.caller != caller:
            continue  # another task's printk, interleaved
        if _TRACE_END_RE.match(t) or _is_headline(t, _HEADLINE_RES):
            break
        if not t or _MARKER_RE.match(t) or _REGISTER_RE.match(t) or _ADDR_ONLY_RE.match(t):
            continue
        fr = _frame(t)
        if fr is None:
            # Tolerate a few interleaved lines from other CPUs; a long run ends the trace.
            unknown += 1
            if unknown > 3:
                break
            continue
        unknown = 0
        if fr.function not in MACHINERY:
            frames.append(fr)
    return frames


# ---- faulting function ---------------------------------------------------------------------

_FAULT_RES = [
    # x86: "RIP: 0010:func+0x12/0x170" (user-mode "RIP: 0033:0x7f.." has no symbol)
    re.compile(r"RIP:\s*(?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s*)*(?P<f>" + _NAME + r")\+0x[0-9a-f]+"),
    re.compile(r"IP:\s*(?:\[<[0-9a-f]+>\]\s*)*(?P<f>" + _NAME + r")\+0x[0-9a-f]+"),
    # arm64: "pc : func+0xb4/0x3f0"; older arm/arm64: "PC is at func+0x..."
    re.compile(r"pc\s*:\s*(?:\[<[0-9a-f]+>\]\s*)?(?P<f>" + _NAME + r")\+0x[0-9a-f]+"),
    re.compile(r"PC is at (?P<f>" + _NAME + r")\+0x[0-9a-f]+"),
    re.compile(r"NIP\s*\[[0-9a-f]+\]\s*(?P<f>" + _NAME + r")\+0x"),  # powerpc
    re.compile(r"epc\s*:\s*(?:[0-9a-f]+\s*)?(?P<f>" + _NAME + r")\+0x"),  # riscv
]
_HEADLINE_FUNC_RE = re.compile(r"(?:\bin|\bat \S+:\d+|\bat) (?P<f>" + _NAME + r")\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?")
# crash(8) bt: "[exception RIP: bpf_test_run+315]", "PC: ffff0000...  [__queue_work+180]"
_BT_EXC_RE = re.compile(
    r"\[exception RIP: (?P<f>" + _NAME + r")(?:\+\d+)?\]"
    r"|^PC:\s*[0-9a-f]+\s+\[(?P<g>" + _NAME + r")(?:\+\d+)?\]"
)
_BT_FRAME_RE = re.compile(r"#\d+\s+\[[0-9a-f]+\]\s+(?P<f>" + _NAME + r")\s+at\s+[0-9a-f]+" + _MOD)
_BT_HEAD_RE = re.compile(r'PID:\s*\d+\s+TASK:\s*[0-9a-f]+\s+CPU:\s*\d+\s+COMMAND:\s*"(?P<c>.*)"')
_PROMPT_RE = re.compile(r"crash>\s*(?P<cmd>\S*)")

# ---- release / command ---------------------------------------------------------------------

_RELEASE_RES = [
    re.compile(r"\b(?:Not tainted|Tainted:(?:\s+[A-Z]+)*)\s+(?P<r>\d+\.\d+[\w.+~-]*)"),
    re.compile(r"^RELEASE:\s*(?P<r>\d+\.\d+\S*)"),
    re.compile(r"^Linux version (?P<r>\d+\.\d+\S*)"),
    re.compile(r"^KERNEL:\s*\S*/(?:lib/)?modules/(?P<r>\d+\.\d+[^/\s]*)/"),
]
_COMM_RES = [
    re.compile(r"\bComm: (?P<c>.+?)\s+(?:Kdump: \S+\s+)?(?:Not tainted|Tainted:)"),
    re.compile(r"\bComm: (?P<c>\S+)"),
    re.compile(r"^Process (?P<c>.+?) \(pid: \d+"),
    re.compile(r'COMMAND:\s*"(?P<c>[^"]*)"'),
]
_PANIC_RE = re.compile(r'^PANIC:\s*"?(?P<m>[^"]+)"?\s*$')
_CUT_RE = re.compile(r"-+\[ cut here \]-+")
_DETAIL_AFTER_RE = re.compile(
    r"(?:Read|Write) of size|#PF: |.*corruption|refcount_t:"
    r"|list_(?:add|del) corruption|Mem abort info"
)


def _first(patterns: Sequence[re.Pattern[str]], lines: Iterable[_Line], group: str) -> str | None:
    for ln in lines:
        for rx in patterns:
            m = rx.search(ln.text)
            if m and m.group(group):
                return m.group(group).strip()
    return None


@dataclass
class _Bt:
    """The first crash(8) ``bt`` block of a session."""

    function: str | None = None
    comm: str | None = None
    frames: list[Frame] = field(default_factory=list)


def _read_bt(lines: Sequence[_Line]) -> _Bt | None:
    start = None
    for i, ln in enumerate(lines):
        p = _PROMPT_RE.match(ln.text)
        if (p and p.group("cmd") == "bt") or _BT_HEAD_RE.match(ln.text):
            start = i
            break
    if start is None:
        return None
    bt = _Bt()
    before: list[Frame] = []
    after: list[Frame] = []
    seen_exc = False
    unknown = 0
    for ln in lines[start:]:
        t = ln.text
        if ln is not lines[start] and _PROMPT_RE.match(t):
            break
        if (h := _BT_HEAD_RE.match(t)) is not None:
            if bt.comm is not None:
                break  # the next task's backtrace
            bt.comm = h.group("c")
            continue
        if (e := _BT_EXC_RE.search(t)) is not None:
            if bt.function is None:
                bt.function = normalize_function(e.group("f") or e.group("g"))
            seen_exc = True
            continue
        if (f := _BT_FRAME_RE.match(t)) is not None:
            unknown = 0
            fr = Frame(normalize_function(f.group("f")), f.group("mod"))
            (after if seen_exc else before).append(fr)
            continue
        if not t or _REGISTER_RE.match(t) or re.match(r"[A-Z][A-Z0-9_]*:\s", t):
            continue
        unknown += 1
        if unknown > 2:
            break
    # Frames above the exception frame are kexec/oops handling: keep only what lies below.
    chosen = after if seen_exc else before
    bt.frames = [f for f in chosen if f.function not in MACHINERY]
    if bt.function is None and bt.comm is None and not bt.frames:
        return None
    return bt


def _guess_arch(lines: Sequence[_Line], release: str | None) -> str | None:
    if release:
        for a in ("x86_64", "aarch64", "arm64", "ppc64le", "s390x", "riscv64"):
            if a in release:
                return "aarch64" if a == "arm64" else a
    for ln in lines:
        t = ln.text
        if t.startswith(("RIP:", "RSP:")):
            return "x86_64"
        if re.match(r"(?:pc|lr)\s+:\s", t) or t.startswith("pstate:"):
            return "aarch64"
    return None


def parse_oops(text: str) -> Oops | None:
    """The first kernel oops/BUG/WARNING of ``text``, or None when the log holds none."""
    lines = [_clean(r) for r in text.splitlines()]
    heads: list[int] = []
    seen: set[str] = set()
    for i, ln in enumerate(lines):
        if _is_headline(ln.text, _HEADLINE_RES):
            key = ln.raw.strip()
            # A write-up often quotes the same timestamped line twice: one event, not two.
            if key in seen:
                continue
            seen.add(key)
            heads.append(i)
    if not heads:
        for i, ln in enumerate(lines):
            if _is_headline(ln.text, _SECONDARY_RES):
                heads.append(i)
                break
    bt = _read_bt(lines)
    panic = _first([_PANIC_RE], lines, "m")
    if not heads and bt is None and panic is None:
        return None

    notes: list[str] = []
    headline: str | None = None
    function: str | None = None
    frames: list[Frame] = []
    details: list[str] = []
    region: Sequence[_Line] = ()
    if heads:
        h0 = heads[0]
        stop = heads[1] if len(heads) > 1 else len(lines)
        head_line = lines[h0]
        headline = head_line.text
        caller = head_line.caller
        region = [ln for ln in lines[h0:stop] if not (caller and ln.caller and ln.caller != caller)]
        # headline-borne function (KASAN "in f+0x", WARNING "at file:line f+0x")
        hm = _HEADLINE_FUNC_RE.search(headline)
        function = _first(_FAULT_RES, region, "f")
        if hm and (function is None or headline.startswith(("BUG: KASAN", "KASAN", "BUG: KFENCE", "WARNING"))):
            function = hm.group("f")
        for k in range(h0 + 1, stop):
            if _TRACE_HEAD_RE.match(lines[k].text):
                frames = _read_trace(lines, k, stop, caller)
                break
        # Lines that qualify the headline: between "cut here" and it, and right after it.
        for k in range(max(0, h0 - 4), h0):
            if _CUT_RE.search(lines[k].text):
                details = [ln.text for ln in lines[k + 1 : h0] if ln.text]
        for ln in lines[h0 + 1 : min(stop, h0 + 4)]:
            if _DETAIL_AFTER_RE.match(ln.text):
                details.append(ln.text)
        if len(heads) > 1:
            notes.append(f"{len(heads)} oops reports in the log; triaged the first")
    elif panic:
        headline = panic
    if bt is not None:
        if function is None:
            function = bt.function
        if not any(f.reliable for f in frames) and bt.frames:
            frames = bt.frames
            notes.append("call trace taken from crash bt")
    if function is not None:
        function = normalize_function(function)
    if headline is None and panic:
        headline = panic
    release = _first(_RELEASE_RES, region, "r") or _first(_RELEASE_RES, lines, "r")
    comm = _first(_COMM_RES, region, "c") or (bt.comm if bt else None) or _first(_COMM_RES, lines, "c")
    return Oops(
        headline=headline,
        function=function,
        frames=tuple(frames),
        release=release,
        comm=comm,
        arch=_guess_arch(region or lines, release),
        details=tuple(details),
        oops_count=max(1, len(heads)),
        notes=tuple(notes),
    )
