"""Crash triage: read a dmesg / vmcore-dmesg / crash(8) session and rank the known bugs.

Two pure steps: :func:`parse_oops` turns log text into an :class:`Oops` (headline, faulting
function, call trace, release, command), and :func:`match` scores that oops against the
``[signature]`` of each known bug.

Signature convention: ``functions`` are listed as a call trace prints them, innermost first
(the function that faults, then its callers); ``message`` is a fragment of the headline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from patchcheck.model import Bug

DEFAULT_THRESHOLD = 0.35

# ---- function-name classes ----------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frames of the oops/kdump machinery itself: they say how the kernel died, not where.
_MACHINERY = _words("""
machine_kexec __crash_kexec crash_kexec panic oops_end die __die die_kernel_fault show_regs
dump_stack dump_stack_lvl __dump_stack show_stack dump_backtrace arm64_show_stack
no_context __bad_area_nosemaphore bad_area_nosemaphore bad_area __do_page_fault do_page_fault
page_fault async_page_fault exc_page_fault asm_exc_page_fault do_user_addr_fault
do_kern_addr_fault kernelmode_fixup_or_oops page_fault_oops spurious_kernel_fault
do_general_protection general_protection exc_general_protection asm_exc_general_protection
do_error_trap do_trap do_invalid_op invalid_op exc_invalid_op asm_exc_invalid_op handle_bug
report_bug __warn warn_slowpath_fmt warn_slowpath_null __warn_printk fixup_bug
__do_kernel_fault do_mem_abort do_translation_fault do_bad_area el1_da el1_ia el1_sync
el1_abort el1h_64_sync el1h_64_sync_handler el1_sync_handler do_debug_exception el1_dbg
brk_handler bug_handler call_break_hook die_kernel_fault
kasan_report __kasan_report kasan_report_error print_address_description print_report
print_error_description kasan_check_range check_memory_region kasan_check_read
kasan_check_write __kasan_check_read __kasan_check_write
""")

# Entry, scheduling and deferred-work plumbing seen under every kind of crash.
_GENERIC = _words("""
entry_SYSCALL_64 entry_SYSCALL_64_after_hwframe entry_SYSCALL_64_fastpath
entry_SYSCALL_64_after_swapgs do_syscall_64 x64_sys_call do_fast_syscall_32
entry_SYSENTER_compat entry_INT80_compat
ret_from_fork ret_from_fork_asm kthread worker_thread process_one_work process_scheduled_works
smpboot_thread_fn run_ksoftirqd __fput ____fput fput delayed_fput task_work_run
exit_to_usermode_loop exit_to_user_mode_loop exit_to_user_mode_prepare syscall_exit_to_user_mode
syscall_exit_to_user_mode_prepare prepare_exit_to_usermode do_exit do_group_exit get_signal
do_signal arch_do_signal_or_restart
el0_svc el0_svc_naked el0_svc_handler el0_svc_common do_el0_svc el0_svc_compat el0_sync
el0_sync_handler el0t_64_sync el0t_64_sync_handler invoke_syscall el0_da el0_ia
__do_softirq handle_softirqs do_softirq do_softirq_own_stack irq_exit irq_exit_rcu
__irq_exit_rcu common_interrupt do_IRQ ret_from_intr apic_timer_interrupt
smp_apic_timer_interrupt sysvec_apic_timer_interrupt asm_sysvec_apic_timer_interrupt
call_timer_fn expire_timers __run_timers run_timer_softirq rcu_core rcu_do_batch
rcu_core_si cpu_startup_entry do_idle secondary_startup_64 start_secondary
secondary_start_kernel
vfs_write vfs_read __vfs_write __vfs_read ksys_write ksys_read new_sync_write new_sync_read
do_sys_open do_sys_openat2 __close_fd close_fd filp_close
""")

# Small helpers that fault or warn on behalf of their caller (bad pointer passed in): the
# caller is the interesting frame. Also core functions shared by countless call paths.
_HELPERS = _words("""
refcount_warn_saturate refcount_sub_and_test_checked refcount_dec_and_test_checked kref_put
__list_del_entry_valid __list_add_valid __list_del_entry_valid_or_report
__list_add_valid_or_report list_del __list_add memcpy __memcpy memmove __memmove memset
__memset memcmp strlen strnlen strcmp strncmp strcpy strncpy strscpy kfree kmem_cache_free
__kmalloc kmalloc_trace kmem_cache_alloc __kmem_cache_free _raw_spin_lock
_raw_spin_lock_irqsave _raw_spin_lock_bh _raw_spin_lock_irq _raw_spin_unlock_irqrestore
queued_spin_lock_slowpath native_queued_spin_lock_slowpath do_raw_spin_lock mutex_lock
__mutex_lock mutex_unlock down_read down_write up_read up_write __wake_up __wake_up_common
__wake_up_common_lock _copy_to_user _copy_from_user copy_user_generic_unrolled
copy_user_enhanced_fast_string rep_movs_alternative __check_object_size fortify_panic
__fortify_panic usercopy_abort put_page __put_page dput iput rb_erase rb_insert_color
__queue_work queue_work_on __queue_delayed_work queue_delayed_work_on mod_delayed_work_on
__flush_work flush_workqueue destroy_workqueue call_rcu
""")

_W_GENERIC = 0.1
_W_HELPER = 0.5
_W_UNRELIABLE = 0.3  # a "?" frame is stack garbage as often as a real caller

# score = weighted mean of the evidence that is available (see match()).
_W_FAULT = 0.45
_W_TRACE = 0.40
_W_HEAD = 0.15

_SUFFIX_RE = re.compile(
    r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv|localalias|clone)"
    r"(?:\.\d+)*)+$"
)


def normalize_function(name: str) -> str:
    """Drop compiler clone suffixes so ``foo.isra.0`` and ``foo.cold`` compare as ``foo``."""
    return _SUFFIX_RE.sub("", name.strip())


def function_weight(name: str) -> float:
    if name in _GENERIC or name.startswith(
        ("__x64_sys_", "__ia32_sys_", "__arm64_sys_", "__se_sys_", "__do_sys_", "__x32_compat_sys_")
    ):
        return _W_GENERIC
    if name in _HELPERS:
        return _W_HELPER
    return 1.0


# ---- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    function: str  # normalised (no .isra.0 etc.)
    module: str | None = None
    reliable: bool = True  # False for x86 "?" frames
    inlined: bool = False


@dataclass(frozen=True)
class Oops:
    headline: str | None
    function: str | None  # where it faulted (RIP / pc / exception RIP / KASAN "in ...")
    frames: tuple[Frame, ...] = ()  # innermost first, machinery frames removed
    release: str | None = None
    comm: str | None = None
    arch: str | None = None
    details: tuple[str, ...] = ()  # lines around the headline ("refcount_t: underflow...")
    oops_count: int = 1  # how many reports the log holds; only the first is parsed
    notes: tuple[str, ...] = ()

    @property
    def trace(self) -> tuple[str, ...]:
        """Reliable call-trace functions, innermost first."""
        return tuple(f.function for f in self.frames if f.reliable)

    @property
    def unreliable(self) -> tuple[str, ...]:
        return tuple(f.function for f in self.frames if not f.reliable)

    def to_dict(self) -> dict[str, object]:
        return {
            "headline": self.headline,
            "function": self.function,
            "trace": list(self.trace),
            "release": self.release,
            "comm": self.comm,
            "arch": self.arch,
            "unreliable": list(self.unreliable),
            "oops_count": self.oops_count,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Match:
    bug: str
    score: float  # 0..1
    why: str

    def to_dict(self) -> dict[str, object]:
        return {"bug": self.bug, "score": round(self.score, 3), "why": self.why}


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

_KIND_RES: list[tuple[str, re.Pattern[str]]] = [
    ("null-deref", re.compile(r"NULL pointer dereference", re.I)),
    (
        "bad-access",
        re.compile(
            r"paging request|page fault|general protection fault"
            r"|unable to handle",
            re.I,
        ),
    ),
    ("use-after-free", re.compile(r"use-after-free|use after free", re.I)),
    ("out-of-bounds", re.compile(r"out-of-bounds", re.I)),
    ("double-free", re.compile(r"double-free|double free", re.I)),
    ("bug-on", re.compile(r"kernel BUG at|Oops - BUG|invalid opcode", re.I)),
    ("lockup", re.compile(r"soft lockup|hard lockup|blocked for more than|stall", re.I)),
    ("warning", re.compile(r"^WARNING:|refcount_t:", re.I)),
]


def headline_kind(text: str) -> str | None:
    """Coarse class of a headline, so "paging request" (4.x) matches "page fault" (5.x+)."""
    for kind, rx in _KIND_RES:
        if rx.search(text):
            return kind
    return None


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
        if fr.function not in _MACHINERY:
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
    bt.frames = [f for f in chosen if f.function not in _MACHINERY]
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


# ---- matching ------------------------------------------------------------------------------


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
