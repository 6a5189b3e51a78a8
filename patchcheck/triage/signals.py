"""What triage extracts from an oops: the faulting function, the call trace, the headline.

The :class:`Oops` and :class:`Frame` types, and the classes of function names that say how
much a frame tells about a crash (kdump machinery, entry plumbing, shared helpers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---- function-name classes ----------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frames of the oops/kdump machinery itself: they say how the kernel died, not where.
MACHINERY = _words("""
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


# Coarse headline classes, so "paging request" (4.x) matches "page fault" (5.x+).
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
