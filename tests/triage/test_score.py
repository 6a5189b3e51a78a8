"""Crash triage: parsing oopses of several shapes and ranking known bugs against them."""

# ruff: noqa: E501  (the kernel log fixtures keep their real, long lines)

from __future__ import annotations

from pathlib import Path

import pytest

from patchcheck.bugs.load import load_bugs
from patchcheck.model import Bug
from patchcheck.triage.parse import parse_oops
from patchcheck.triage.score import match, score_bug
from patchcheck.triage.signals import Oops, normalize_function
from tests.triage.oopses import (
    ARM64_419,
    CRASH_BT,
    EXT4_NULL,
    KASAN_SUNRPC,
    NO_OOPS,
    REFCOUNT_WARN,
    X86_68,
    X86_419,
)


def syslogify(log: str, host: str = "node01") -> str:
    """The same log as /var/log/messages keeps it: date, host and 'kernel:' before it."""
    return "".join(f"Sep 26 10:26:{i % 60:02d} {host} kernel: {ln}\n" for i, ln in enumerate(log.splitlines()))


def interleave(log: str, noise: list[str], after: str) -> str:
    """Insert other CPUs' lines into the trace, right after the line holding ``after``."""
    out: list[str] = []
    for ln in log.splitlines():
        out.append(ln)
        if after in ln:
            out.extend(noise)
    return "\n".join(out) + "\n"


def ranked(log: str, bugs: list[Bug]) -> tuple[Oops, list[str]]:
    oops = parse_oops(log)
    assert oops is not None
    return oops, [m.bug for m in match(oops, bugs)]


# ---- parsing -------------------------------------------------------------------------------


def test_x86_419_paging_request(bugs: list[Bug]) -> None:
    oops, ids = ranked(X86_419, bugs)
    assert oops.headline == "BUG: unable to handle kernel paging request at 00000003a1b2c3d8"
    assert oops.function == "bpf_prog_array_copy"
    assert oops.release == "4.19.90-2102.2.0.0068.ctl2.x86_64"
    assert oops.comm == "node-agent"
    assert oops.arch == "x86_64"
    # "?" frames are kept apart, the user-mode RIP after the trace is not a frame
    assert oops.trace[:4] == (
        "perf_event_detach_bpf_prog",
        "_free_event",
        "perf_event_release_kernel",
        "perf_release",
    )
    assert "ring_buffer_put" not in oops.trace and "ring_buffer_put" in oops.unreliable
    assert oops.trace[-1] == "entry_SYSCALL_64_after_hwframe"
    assert ids[0] == "perf-bpf-prog-detach"
    best = match(oops, bugs)[0]
    assert best.score > 0.9
    assert "faulting function bpf_prog_array_copy" in best.why
    assert "4 of 4" in best.why and "paging request" in best.why


def test_x86_68_task_markers_and_module_suffixes(bugs: list[Bug]) -> None:
    oops, ids = ranked(X86_68, bugs)
    assert oops.headline is not None and "page fault for address" in oops.headline
    assert oops.function == "__bpf_nf_ct_lookup"  # .isra.0 and [nf_conntrack] dropped
    assert oops.release == "6.8.0-59-generic"
    assert oops.comm == "cilium-test"
    # oops machinery (show_regs, __die, asm_exc_page_fault...) is not part of the trace
    assert oops.trace[:3] == ("bpf_skb_ct_lookup", "bpf_prog_8fb5a4c4bd4e3ea5_call_kfunc", "bpf_test_run")
    assert not {"show_regs", "__die", "asm_exc_page_fault"} & set(oops.unreliable)
    assert oops.frames[0].module == "nf_conntrack"
    assert ids[0] == "nf-ct-lookup-opts"
    assert "kmem_cache_alloc" not in oops.trace


def test_aarch64_419(bugs: list[Bug]) -> None:
    oops, ids = ranked(ARM64_419, bugs)
    assert oops.headline is not None
    assert oops.headline.startswith("Unable to handle kernel NULL pointer dereference")
    assert oops.function == "__queue_work"
    assert oops.arch == "aarch64"
    assert oops.comm == "nfsd"
    assert oops.release == "4.19.90-52.39.v2207.ky10.aarch64"
    assert oops.trace[:4] == ("__queue_work", "queue_work_on", "nfsd4_run_cb", "nfsd4_probe_callback")
    assert ids[0] == "nfsd-callback-wq"
    best = match(oops, bugs)[0]
    assert "4 of 4 signature functions in trace order" in best.why
    assert "NULL pointer dereference" in best.why


def test_crash_bt_session(bugs: list[Bug]) -> None:
    oops, ids = ranked(CRASH_BT, bugs)
    assert oops.function == "__queue_work"
    assert oops.comm == "nfsd"
    assert oops.release == "4.19.90-52.39.v2207.ky10.aarch64"
    assert oops.headline is not None and "NULL pointer dereference" in oops.headline
    # frames above the exception (kexec, panic, die, el1_da) are the dump machinery
    assert oops.trace[0] == "__queue_work"
    assert "machine_kexec" not in oops.trace and "el1_da" not in oops.trace
    assert oops.trace[2] == "nfsd4_run_cb" and oops.frames[2].module == "nfsd"
    assert ids[0] == "nfsd-callback-wq"


def test_crash_bt_exception_rip_x86() -> None:
    log = """\
crash> bt
PID: 4242     TASK: ffff94dfc1392f40  CPU: 0    COMMAND: "perf-agent"
 #0 [ffffbb198d02f5a0] machine_kexec at ffffffffadab9ada
 #1 [ffffbb198d02f608] __crash_kexec at ffffffffadc31713
 #2 [ffffbb198d02f6e0] oops_end at ffffffffada5bb11
 #3 [ffffbb198d02f768] no_context at ffffffffadad5669
 #4 [ffffbb198d02f850] page_fault at ffffffffaee00bc7
    [exception RIP: bpf_prog_array_copy+18]
    RIP: ffffffffae9af0cb  RSP: ffffbb198d02f908  RFLAGS: 00010246
    RAX: 0000000000000001  RBX: ffffbb19882b5000  RCX: 0000000000000000
    ORIG_RAX: ffffffffffffffff  CS: 0010  SS: 0018
 #5 [ffffbb198d02f9c0] perf_event_detach_bpf_prog at ffffffffae9b0005
 #6 [ffffbb198d02fa40] _free_event at ffffffffadd1b19a
 #7 [ffffbb198d02fb18] perf_event_release_kernel at ffffffffadd1bb7a
 #8 [ffffbb198d02fb28] perf_release at ffffffffada07248
crash>
"""
    oops = parse_oops(log)
    assert oops is not None
    assert oops.function == "bpf_prog_array_copy"
    assert oops.comm == "perf-agent"
    assert oops.trace == ("perf_event_detach_bpf_prog", "_free_event", "perf_event_release_kernel", "perf_release")


def test_syslog_prefixed(bugs: list[Bug]) -> None:
    oops, ids = ranked(syslogify(X86_419), bugs)
    assert oops.function == "bpf_prog_array_copy"
    assert oops.release == "4.19.90-2102.2.0.0068.ctl2.x86_64"
    assert "perf_event_release_kernel" in oops.trace
    assert ids[0] == "perf-bpf-prog-detach"


def test_loglevel_and_journal_prefixes(bugs: list[Bug]) -> None:
    journal = "".join(
        f"2025-05-28T02:04:{i % 60:02d}.123456+08:00 k8s-node01 kernel: <4>{ln}\n"
        for i, ln in enumerate(ARM64_419.splitlines())
    )
    oops, ids = ranked(journal, bugs)
    assert oops.function == "__queue_work"
    assert ids[0] == "nfsd-callback-wq"


def test_interleaved_lines_from_other_cpus(bugs: list[Bug]) -> None:
    noise = [
        "[24211.774470] IPv6: ADDRCONF(NETDEV_CHANGE): veth3a1f: link becomes ready",
        "[24211.774471] nfsd: last server has exited, flushing export cache",
    ]
    log = interleave(ARM64_419, noise, "queue_work_on+0x84/0x90")
    oops, ids = ranked(syslogify(log), bugs)
    assert oops.trace[:4] == ("__queue_work", "queue_work_on", "nfsd4_run_cb", "nfsd4_probe_callback")
    assert ids[0] == "nfsd-callback-wq"


def test_printk_caller_ids_filter_other_tasks(bugs: list[Bug]) -> None:
    lines = []
    for ln in X86_419.splitlines():
        ts, _, rest = ln.partition("] ")
        lines.append(f"{ts}] [T31337] {rest}")
        if "_free_event" in ln:
            # another task prints something frame-shaped in the middle of our trace
            lines.append(f"{ts}] [T99]  e1000e_watchdog_task+0x44/0x90 [e1000e]")
    oops, ids = ranked("\n".join(lines), bugs)
    assert "e1000e_watchdog_task" not in oops.trace
    assert ids[0] == "perf-bpf-prog-detach"


def test_kasan_report(bugs: list[Bug]) -> None:
    oops, ids = ranked(KASAN_SUNRPC, bugs)
    assert oops.headline is not None and oops.headline.startswith("BUG: KASAN: slab-use-after")
    assert oops.function == "svc_tcp_listen_data_ready"
    assert oops.trace[0] == "svc_tcp_listen_data_ready"  # kasan_report etc. dropped
    # the allocation / free stacks are not the crash's call trace
    assert "svc_setup_socket" not in oops.trace and "svc_sock_free" not in oops.trace
    assert oops.release == "6.4.0-rc2"
    assert ids[0] == "sunrpc-listen-data-ready-uaf"


def test_refcount_warning(bugs: list[Bug]) -> None:
    oops, ids = ranked(REFCOUNT_WARN, bugs)
    assert oops.headline is not None and oops.headline.startswith("WARNING: CPU: 1")
    assert oops.function == "refcount_warn_saturate"
    assert "refcount_t: underflow; use-after-free." in oops.details
    assert oops.trace[:3] == ("svc_xprt_put", "nfsd4_process_cb_update", "nfsd4_run_cb_work")
    assert oops.comm == "kworker/u8:3"
    assert ids[0] == "nfsd-cb-xprt-double-put"
    best = match(oops, bugs)[0]
    assert "refcount_warn_saturate called from svc_xprt_put" in best.why


def test_unrelated_oops_matches_nothing(bugs: list[Bug]) -> None:
    oops = parse_oops(EXT4_NULL)
    assert oops is not None and oops.function == "ext4_es_insert_extent"
    assert match(oops, bugs) == []
    # below the threshold the NULL-deref headline alone gives a little, no more
    low = match(oops, bugs, threshold=0.0)
    assert max(m.score for m in low) < 0.35


def test_no_oops_is_none() -> None:
    assert parse_oops(NO_OOPS) is None
    assert parse_oops("") is None


def test_several_oopses_take_the_first(bugs: list[Bug]) -> None:
    oops = parse_oops(ARM64_419 + X86_419)
    assert oops is not None
    assert oops.function == "__queue_work"
    assert oops.oops_count == 2
    assert any("2 oops reports" in n for n in oops.notes)
    assert "perf_event_detach_bpf_prog" not in oops.trace


def test_quoted_twice_counts_once() -> None:
    head = X86_419.splitlines()[0]
    oops = parse_oops(X86_419 + "\nthe key line again:\n" + head + "\n")
    assert oops is not None and oops.oops_count == 1


def test_normalize_function() -> None:
    assert normalize_function("kernelmode_fixup_or_oops.isra.0") == "kernelmode_fixup_or_oops"
    assert normalize_function("foo.constprop.0.cold") == "foo"
    assert normalize_function("bar.llvm.1234567890") == "bar"


def test_threshold_and_order(bugs: list[Bug]) -> None:
    oops = parse_oops(X86_419)
    assert oops is not None
    everything = match(oops, bugs, threshold=0.0)
    assert [m.score for m in everything] == sorted((m.score for m in everything), reverse=True)
    assert "no-signature" not in {m.bug for m in everything}
    assert all(0.0 <= m.score <= 1.0 for m in everything)
    assert match(oops, bugs, threshold=1.01) == []


def test_signature_without_message_and_headline_only(tmp_path: Path) -> None:
    d = tmp_path / "b"
    d.mkdir()
    (d / "fn-only.toml").write_text(
        'id = "fn-only"\ntitle = "t"\n[signature]\nfunctions = ["bpf_prog_array_copy"]\n[[fix]]\nmsgid = "a@b"\n'
    )
    (d / "msg-only.toml").write_text(
        'id = "msg-only"\ntitle = "t"\n[signature]\nmessage = "paging request"\n[[fix]]\nmsgid = "a@b"\n'
    )
    bugs = load_bugs(d).all()
    oops = parse_oops(X86_419)
    assert oops is not None
    by_id = {b.id: score_bug(oops, b) for b in bugs}
    fn_only, msg_only = by_id["fn-only"], by_id["msg-only"]
    assert fn_only is not None and fn_only.score == 1.0
    # a headline fragment alone is weak evidence: it stays at 0.5 at most
    assert msg_only is not None and msg_only.score == 0.5


@pytest.mark.parametrize(
    ("log", "headline", "function"),
    [
        (
            "[  10.1] general protection fault: 0000 [#1] SMP PTI\n"
            "[  10.1] CPU: 0 PID: 1 Comm: systemd Not tainted 4.19.0-27-amd64 #1 Debian 4.19.316-1\n"
            "[  10.1] RIP: 0010:svc_xprt_put+0x1c/0x80 [sunrpc]\n",
            "general protection fault: 0000 [#1] SMP PTI",
            "svc_xprt_put",
        ),
        (
            "[  10.1] Oops: general protection fault, probably for non-canonical address "
            "0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN NOPTI\n"
            "[  10.1] RIP: 0010:nfsd4_run_cb+0x2a/0x90 [nfsd]\n",
            "Oops: general protection fault, probably for non-canonical address "
            "0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN NOPTI",
            "nfsd4_run_cb",
        ),
        (
            "[  10.1] ------------[ cut here ]------------\n"
            "[  10.1] kernel BUG at fs/nfsd/nfs4state.c:2290!\n"
            "[  10.1] invalid opcode: 0000 [#1] SMP NOPTI\n"
            "[  10.1] RIP: 0010:free_client.part.0+0x9b/0xa0 [nfsd]\n",
            "kernel BUG at fs/nfsd/nfs4state.c:2290!",
            "free_client",
        ),
        (
            "<1>[  10.1] Unable to handle kernel paging request at virtual address ffff00000abc\n"
            "<4>[  10.1] PC is at bpf_prog_array_copy+0x40/0x170\n"
            "<4>[  10.1] LR is at perf_event_detach_bpf_prog+0x60/0xc0\n",
            "Unable to handle kernel paging request at virtual address ffff00000abc",
            "bpf_prog_array_copy",
        ),
        (
            "kern  :alert : [  10.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
            "kern  :warn  : [  10.1] RIP: 0010:__queue_work+0x1d4/0x3f0\n",
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "__queue_work",
        ),
    ],
)
def test_headline_and_function_shapes(log: str, headline: str, function: str) -> None:
    oops = parse_oops(log)
    assert oops is not None
    assert oops.headline == headline
    assert oops.function == function


def test_userspace_warning_is_not_an_oops() -> None:
    assert parse_oops("WARNING: apt does not have a stable CLI interface.\n") is None
