"""Crash triage: parsing oopses of several shapes and ranking known bugs against them."""

# ruff: noqa: E501  (the kernel log fixtures keep their real, long lines)

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from patchcheck.bugs.load import load_bugs
from patchcheck.cli import main
from patchcheck.model import Bug
from patchcheck.triage.parse import parse_oops
from patchcheck.triage.score import match, score_bug, triage_text
from patchcheck.triage.signals import Oops, normalize_function

# ---- bug files: signatures as proposed for the shipped known_bugs/ -------------------------

BUG_FILES = {
    "perf-bpf-prog-detach": """
title = "perf: garbage prog_array read when a perf fd with a BPF program is released"
subsystem = "perf"
[signature]
functions = ["bpf_prog_array_copy", "perf_event_detach_bpf_prog", "_free_event",
             "perf_event_release_kernel"]
message = "unable to handle kernel paging request"
[[fix]]
msgid = "20241104135518.978956692@infradead.org"
""",
    "nf-ct-lookup-opts": """
title = "netfilter/bpf: ct lookup kfuncs read and write opts beyond opts_len"
subsystem = "netfilter"
[signature]
functions = ["__bpf_nf_ct_lookup", "bpf_skb_ct_lookup", "bpf_test_run",
             "bpf_prog_test_run_skb"]
message = "unable to handle page fault"
[[fix]]
msgid = "20240522050712.732558-1-brad@faucet.nz"
""",
    "nfsd-callback-wq": """
title = "nfsd: callback work queued on a destroyed callback_wq"
subsystem = "nfsd"
[signature]
functions = ["__queue_work", "queue_work_on", "nfsd4_run_cb", "nfsd4_probe_callback"]
message = "NULL pointer dereference"
[[fix]]
msgid = "171200183231.5439.7855646322906072619.stgit@klimt.1015granger.net"
""",
    "nfsd-cb-xprt-double-put": """
title = "nfsd: double svc_xprt_put when rpc_create fails for an NFSv4.1 backchannel"
subsystem = "nfsd"
cves = ["CVE-2022-50401"]
[signature]
functions = ["svc_xprt_put", "nfsd4_process_cb_update", "nfsd4_run_cb_work"]
message = "refcount_t: underflow"
[[fix]]
msgid = "20221212111106.131472-1-dan.aloni@vastdata.com"
""",
    "sunrpc-listen-data-ready-uaf": """
title = "SUNRPC: use-after-free of the listener in svc_tcp_listen_data_ready"
subsystem = "sunrpc"
cves = ["CVE-2023-52885"]
[signature]
functions = ["svc_tcp_listen_data_ready"]
message = "use-after-free"
[[fix]]
msgid = "20230515021307.3072-1-dinghui@sangfor.com.cn"
""",
    # no [signature]: must simply be skipped
    "no-signature": """
title = "a bug without a crash signature"
[[fix]]
msgid = "20200101000000.1-1-someone@example.org"
""",
}


def write_bugs(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for bug_id, body in BUG_FILES.items():
        (d / f"{bug_id}.toml").write_text(f'id = "{bug_id}"\n{body}')
    return d


@pytest.fixture
def bugs_dir(tmp_path: Path) -> Path:
    return write_bugs(tmp_path / "bugs")


@pytest.fixture
def bugs(bugs_dir: Path) -> list[Bug]:
    return load_bugs(bugs_dir).all()


# ---- logs (hand-written in the shapes real kernels print) ----------------------------------

X86_419 = """\
[ 8811.203344] BUG: unable to handle kernel paging request at 00000003a1b2c3d8
[ 8811.203401] PGD 8000000ad2a55067 P4D 8000000ad2a55067 PUD 0
[ 8811.203433] Oops: 0000 [#1] SMP PTI
[ 8811.203460] CPU: 7 PID: 31337 Comm: node-agent Kdump: loaded Not tainted 4.19.90-2102.2.0.0068.ctl2.x86_64 #1
[ 8811.203502] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.13.0 04/01/2014
[ 8811.203533] RIP: 0010:bpf_prog_array_copy+0x1e/0x170
[ 8811.203560] Code: 00 00 0f 1f 44 00 00 48 85 ff 41 56 41 55 41 54 55 53 74 56 <48> 8b 47 10
[ 8811.203600] RSP: 0018:ffffb1c2c8b3fdd0 EFLAGS: 00010202
[ 8811.203630] RAX: ffff9f2a31b0d0c8 RBX: ffff9f2a11aa4000 RCX: ffffb1c2c8b3fe00
[ 8811.203660] RDX: 0000000000000000 RSI: ffffb1c2c64d1000 RDI: 00000003a1b2c3c8
[ 8811.203701] CR2: 00000003a1b2c3d8 CR3: 0000000912ec4004 CR4: 00000000003606e0
[ 8811.203744] Call Trace:
[ 8811.203769]  ? ring_buffer_put+0x2a/0x40
[ 8811.203791]  perf_event_detach_bpf_prog+0x58/0xc0
[ 8811.203815]  _free_event+0xe6/0x3a0
[ 8811.203840]  ? __schedule+0x2b3/0x880
[ 8811.203866]  perf_event_release_kernel+0x1f1/0x350
[ 8811.203890]  perf_release+0x11/0x20
[ 8811.203912]  __fput+0xd9/0x220
[ 8811.203935]  task_work_run+0x91/0xb0
[ 8811.203957]  exit_to_usermode_loop+0xc6/0xe0
[ 8811.203979]  do_syscall_64+0x19e/0x1d0
[ 8811.204001]  entry_SYSCALL_64_after_hwframe+0x44/0xa9
[ 8811.204025] RIP: 0033:0x49d8ee
[ 8811.204048] Code: Bad RIP value.
[ 8811.204070] RSP: 002b:000000c0007bf6f8 EFLAGS: 00000212 ORIG_RAX: 0000000000000003
[ 8811.204099] Modules linked in: xt_conntrack nf_conntrack nf_defrag_ipv6 overlay xfs ext4
[ 8811.204140] CR2: 00000003a1b2c3d8
[ 8811.204161] ---[ end trace 5d1e0f3c7a9b2e11 ]---
"""

X86_68 = """\
[ 2203.118201] BUG: unable to handle page fault for address: ffffb4a0c0b7fff8
[ 2203.118233] #PF: supervisor read access in kernel mode
[ 2203.118250] #PF: error_code(0x0000) - not-present page
[ 2203.118267] PGD 100000067 P4D 100000067 PUD 1001c7067 PMD 0
[ 2203.118290] Oops: 0000 [#1] PREEMPT SMP NOPTI
[ 2203.118305] CPU: 3 PID: 5521 Comm: cilium-test Tainted: G           OE      6.8.0-59-generic #61-Ubuntu
[ 2203.118330] Hardware name: LENOVO 20XW0055GE/20XW0055GE, BIOS N32ET86W (1.62 ) 06/13/2023
[ 2203.118352] RIP: 0010:__bpf_nf_ct_lookup.isra.0+0x61/0x1d0 [nf_conntrack]
[ 2203.118377] Code: 85 c9 0f 84 b5 00 00 00 66 83 79 0a 00 48 89 cb 0f 85 a7 00 00 00 <41> 83 f8 0c
[ 2203.118402] RSP: 0018:ffffb4a0c0b7f9c8 EFLAGS: 00010246
[ 2203.118420] RAX: 0000000000000000 RBX: ffffb4a0c0b7fa37 RCX: ffffb4a0c0b7fa37
[ 2203.118440] CR2: ffffb4a0c0b7fff8 CR3: 00000001094d6004 CR4: 0000000000770ef0
[ 2203.118461] PKRU: 55555554
[ 2203.118470] Call Trace:
[ 2203.118478]  <TASK>
[ 2203.118485]  ? show_regs+0x6d/0x80
[ 2203.118497]  ? __die+0x24/0x80
[ 2203.118508]  ? page_fault_oops+0x99/0x1b0
[ 2203.118520]  ? kernelmode_fixup_or_oops.isra.0+0x69/0x90
[ 2203.118533]  ? __bad_area_nosemaphore+0x19d/0x2c0
[ 2203.118546]  ? bad_area_nosemaphore+0x16/0x30
[ 2203.118558]  ? do_kern_addr_fault+0x7b/0xa0
[ 2203.118570]  ? exc_page_fault+0x1a4/0x1b0
[ 2203.118581]  ? asm_exc_page_fault+0x27/0x30
[ 2203.118593]  ? __bpf_nf_ct_lookup.isra.0+0x61/0x1d0 [nf_conntrack]
[ 2203.118610]  bpf_skb_ct_lookup+0x25/0x70 [nf_conntrack]
[ 2203.118626]  bpf_prog_8fb5a4c4bd4e3ea5_call_kfunc+0x3a/0x5e
[ 2203.118641]  bpf_test_run+0x13b/0x350
[ 2203.118653]  ? kmem_cache_alloc+0x1a6/0x370
[ 2203.118665]  bpf_prog_test_run_skb+0x3a5/0x7a0
[ 2203.118678]  __sys_bpf+0xd7a/0x2450
[ 2203.118690]  __x64_sys_bpf+0x1a/0x30
[ 2203.118701]  x64_sys_call+0x1b98/0x25c0
[ 2203.118713]  do_syscall_64+0x7f/0x180
[ 2203.118725]  entry_SYSCALL_64_after_hwframe+0x78/0x80
[ 2203.118738] RIP: 0033:0x407bee
[ 2203.118747] Code: 24 28 44 8b 44 24 2c e9 70 ff ff ff cc cc cc cc cc cc cc cc cc cc cc cc cc cc
[ 2203.118770] RSP: 002b:000000c00087bb18 EFLAGS: 00000202 ORIG_RAX: 0000000000000141
[ 2203.118790]  </TASK>
[ 2203.118797] Modules linked in: nf_conntrack nf_defrag_ipv6 nf_defrag_ipv4 veth bridge stp llc
[ 2203.118821] CR2: ffffb4a0c0b7fff8
[ 2203.118830] ---[ end trace 0000000000000000 ]---
"""

ARM64_419 = """\
[24211.774102] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000
[24211.774150] Mem abort info:
[24211.774163]   ESR = 0x96000005
[24211.774177]   Exception class = DABT (current EL), IL = 32 bits
[24211.774195] Data abort info:
[24211.774208]   ISV = 0, ISS = 0x00000005
[24211.774221] user pgtable: 64k pages, 48-bit VAs, pgdp = 00000000a7c1d2e3
[24211.774240] Internal error: Oops: 96000005 [#1] SMP
[24211.774257] Modules linked in: nfsd auth_rpcgss nfs_acl lockd grace sunrpc xfs
[24211.774290] CPU: 21 PID: 88123 Comm: nfsd Kdump: loaded Not tainted 4.19.90-52.39.v2207.ky10.aarch64 #1
[24211.774315] Hardware name: Huawei TaiShan 200 (Model 2280)/BC82AMDD, BIOS 1.79 08/21/2021
[24211.774338] pstate: 20400009 (nzCv daif +PAN -UAO)
[24211.774352] pc : __queue_work+0xb4/0x4c0
[24211.774366] lr : __queue_work+0x78/0x4c0
[24211.774379] sp : ffff80086d1cfa40
[24211.774391] x29: ffff80086d1cfa40 x28: 0000000000000000
[24211.774407] x27: ffff0000095b2000 x26: ffff000009460b48
[24211.774424] Process nfsd (pid: 88123, stack limit = 0x00000000c5a1b2f3)
[24211.774441] Call trace:
[24211.774450]  __queue_work+0xb4/0x4c0
[24211.774463]  queue_work_on+0x84/0x90
[24211.774476]  nfsd4_run_cb+0x54/0x80 [nfsd]
[24211.774490]  nfsd4_probe_callback+0x6c/0x90 [nfsd]
[24211.774504]  nfsd4_probe_callback_sync+0x20/0x38 [nfsd]
[24211.774519]  nfsd4_init_conn+0xac/0xd8 [nfsd]
[24211.774533]  nfsd4_create_session+0x784/0x960 [nfsd]
[24211.774548]  nfsd4_proc_compound+0x3f8/0x780 [nfsd]
[24211.774562]  nfsd_dispatch+0xe0/0x238 [nfsd]
[24211.774577]  svc_process_common+0x3f8/0x750 [sunrpc]
[24211.774592]  svc_process+0xe0/0x1a0 [sunrpc]
[24211.774605]  nfsd+0xf4/0x160 [nfsd]
[24211.774618]  kthread+0x130/0x138
[24211.774630]  ret_from_fork+0x10/0x18
[24211.774642] Code: 93407c00 91008800 f8607b13 b5000f60 (f9400262)
[24211.774660] ---[ end trace 9f0a3b4c1d2e5f60 ]---
[24211.774700] Kernel panic - not syncing: Fatal exception
"""

CRASH_BT = """\
crash> sys
      KERNEL: usr/lib/debug/lib/modules/4.19.90-52.39.v2207.ky10.aarch64/vmlinux
    DUMPFILE: vmcore  [PARTIAL DUMP]
        CPUS: 64
     RELEASE: 4.19.90-52.39.v2207.ky10.aarch64
       PANIC: "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000"
crash> bt
PID: 88123  TASK: ffff8005e1c2a000  CPU: 21  COMMAND: "nfsd"
 #0 [ffff80086d1cf6f0] machine_kexec at ffff0000080a2d4c
 #1 [ffff80086d1cf750] __crash_kexec at ffff0000081a41e4
 #2 [ffff80086d1cf8e0] panic at ffff0000080f40d0
 #3 [ffff80086d1cf9c0] die at ffff00000808fa3c
 #4 [ffff80086d1cfa00] __do_kernel_fault at ffff0000080a5e1c
 #5 [ffff80086d1cfa30] do_page_fault at ffff0000080a6070
 #6 [ffff80086d1cfa40] do_translation_fault at ffff0000080a6380
 #7 [ffff80086d1cfa50] do_mem_abort at ffff000008081260
 #8 [ffff80086d1cfa80] el1_da at ffff0000080832bc
     PC: ffff000048111014  [__queue_work+180]
     LR: ffff000048110fd8  [__queue_work+120]
     SP: ffff80086d1cfa40  PSTATE: 20400009
    X29: ffff80086d1cfa40  X28: 0000000000000000  X27: ffff0000095b2000
 #9 [ffff80086d1cfa40] __queue_work at ffff000048111010
#10 [ffff80086d1cfa90] queue_work_on at ffff000048111670
#11 [ffff80086d1cfab0] nfsd4_run_cb at ffff000001a9e0c4 [nfsd]
#12 [ffff80086d1cfad0] nfsd4_probe_callback at ffff000001a9f12c [nfsd]
#13 [ffff80086d1cfaf0] nfsd4_probe_callback_sync at ffff000001a9f170 [nfsd]
#14 [ffff80086d1cfb10] nfsd4_init_conn at ffff000001a8d39c [nfsd]
#15 [ffff80086d1cfb40] nfsd4_create_session at ffff000001a94a1c [nfsd]
#16 [ffff80086d1cfbd0] nfsd4_proc_compound at ffff000001a84e18 [nfsd]
#17 [ffff80086d1cfc50] nfsd_dispatch at ffff000001a6a2a0 [nfsd]
#18 [ffff80086d1cfc90] svc_process_common at ffff000001452e38 [sunrpc]
#19 [ffff80086d1cfd10] svc_process at ffff0000014532a0 [sunrpc]
#20 [ffff80086d1cfd40] nfsd at ffff000001a69d44 [nfsd]
#21 [ffff80086d1cfd70] kthread at ffff000008112c70
crash> dis -l __queue_work
"""

KASAN_SUNRPC = """\
[  611.301150] ==================================================================
[  611.301181] BUG: KASAN: slab-use-after-free in svc_tcp_listen_data_ready+0x1a3/0x1f0 [sunrpc]
[  611.301240] Read of size 8 at addr ffff88811a2b3c28 by task ncat/40411
[  611.301262] CPU: 2 PID: 40411 Comm: ncat Not tainted 6.4.0-rc2 #3
[  611.301280] Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2 04/01/2014
[  611.301301] Call Trace:
[  611.301309]  <IRQ>
[  611.301316]  dump_stack_lvl+0x48/0x70
[  611.301330]  print_address_description.constprop.0+0x2c/0x3d0
[  611.301346]  print_report+0xb6/0x270
[  611.301358]  kasan_report+0xb3/0xf0
[  611.301370]  svc_tcp_listen_data_ready+0x1a3/0x1f0 [sunrpc]
[  611.301392]  tcp_data_queue+0x1021/0x2190
[  611.301406]  tcp_rcv_established+0x3e1/0x1070
[  611.301420]  tcp_v4_do_rcv+0x2f8/0x4a0
[  611.301433]  tcp_v4_rcv+0x1b3e/0x1c90
[  611.301446]  ip_protocol_deliver_rcu+0x51/0x2d0
[  611.301461]  ip_local_deliver_finish+0x1d2/0x2c0
[  611.301475]  __netif_receive_skb_one_core+0x10c/0x130
[  611.301490]  process_backlog+0x143/0x3b0
[  611.301503]  __napi_poll+0x54/0x2f0
[  611.301515]  net_rx_action+0x489/0x5a0
[  611.301528]  __do_softirq+0x107/0x41f
[  611.301540]  do_softirq+0x86/0xb0
[  611.301552]  </IRQ>
[  611.301559]
[  611.301562] Allocated by task 40388:
[  611.301575]  kasan_save_stack+0x22/0x50
[  611.301588]  __kasan_kmalloc+0x8b/0x90
[  611.301601]  svc_setup_socket+0x4e/0x620 [sunrpc]
[  611.301620]  svc_create_socket+0x1c3/0x380 [sunrpc]
[  611.301637]
[  611.301640] Freed by task 40390:
[  611.301652]  kasan_save_stack+0x22/0x50
[  611.301665]  __kasan_slab_free+0x10c/0x190
[  611.301678]  svc_sock_free+0x5e/0x90 [sunrpc]
[  611.301694]  svc_xprt_free+0x6e/0x90 [sunrpc]
[  611.301709] ==================================================================
"""

REFCOUNT_WARN = """\
[   71.404411] ------------[ cut here ]------------
[   71.404427] refcount_t: underflow; use-after-free.
[   71.404466] WARNING: CPU: 1 PID: 219 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110
[   71.404502] Modules linked in: nfsd auth_rpcgss nfs_acl lockd grace sunrpc
[   71.404540] CPU: 1 PID: 219 Comm: kworker/u8:3 Not tainted 6.1.0 #7
[   71.404561] Workqueue: nfsd4_callbacks nfsd4_run_cb_work [nfsd]
[   71.404580] RIP: 0010:refcount_warn_saturate+0xba/0x110
[   71.404598] RSP: 0018:ffffc900009bfe08 EFLAGS: 00010286
[   71.404613] Call Trace:
[   71.404620]  <TASK>
[   71.404627]  svc_xprt_put+0x7d/0x80 [sunrpc]
[   71.404644]  nfsd4_process_cb_update.isra.0+0x4b3/0x5c0 [nfsd]
[   71.404664]  ? __schedule+0x33c/0x9a0
[   71.404677]  nfsd4_run_cb_work+0x10e/0x130 [nfsd]
[   71.404693]  process_one_work+0x1c7/0x380
[   71.404706]  worker_thread+0x4d/0x380
[   71.404718]  kthread+0xe9/0x110
[   71.404730]  ret_from_fork+0x22/0x30
[   71.404742]  </TASK>
[   71.404749] ---[ end trace 0000000000000000 ]---
"""

EXT4_NULL = """\
[ 5120.776001] BUG: kernel NULL pointer dereference, address: 0000000000000028
[ 5120.776035] #PF: supervisor read access in kernel mode
[ 5120.776052] Oops: 0000 [#1] PREEMPT SMP NOPTI
[ 5120.776066] CPU: 0 PID: 2719 Comm: rsync Not tainted 6.8.0-59-generic #61-Ubuntu
[ 5120.776093] RIP: 0010:ext4_es_insert_extent+0x5c/0x6a0
[ 5120.776110] Call Trace:
[ 5120.776117]  <TASK>
[ 5120.776124]  ? __die+0x24/0x80
[ 5120.776136]  ext4_map_blocks+0x1c4/0x6b0
[ 5120.776150]  ext4_mpage_readpages+0x2b3/0x8a0
[ 5120.776164]  read_pages+0x6d/0x2b0
[ 5120.776176]  page_cache_ra_unbounded+0x160/0x1e0
[ 5120.776190]  filemap_get_pages+0x104/0x660
[ 5120.776203]  filemap_read+0xec/0x3b0
[ 5120.776215]  vfs_read+0x1f0/0x360
[ 5120.776227]  ksys_read+0x73/0x100
[ 5120.776239]  do_syscall_64+0x7f/0x180
[ 5120.776251]  entry_SYSCALL_64_after_hwframe+0x78/0x80
[ 5120.776264]  </TASK>
"""

NO_OOPS = """\
[    0.000000] Linux version 6.8.0-59-generic (buildd@lcy02-amd64-098) (gcc 13.2.0) #61-Ubuntu
[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.8.0-59-generic root=/dev/vda1 ro
[    2.114210] EXT4-fs (vda1): mounted filesystem with ordered data mode.
[   14.509811] NFSD: starting 90-second grace period (net f0000000)
"""


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


# ---- the command ---------------------------------------------------------------------------


def triage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bugs_dir: Path, log: str, *args: str
) -> tuple[int, str, str]:
    """``patchcheck triage`` through the real command line: (exit code, stdout, stderr)."""
    argv = ["triage", log, "--bugs-dir", str(bugs_dir), "--cache-dir", str(tmp_path / "c"), "--offline", *args]
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def kernel_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\n")
    return tree


def test_command_table(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "vmcore-dmesg.txt"
    log.write_text(X86_419)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log))
    assert rc == 0
    assert "bpf_prog_array_copy" in out
    assert "4.19.90-2102.2.0.0068.ctl2.x86_64" in out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("score"))
    assert lines[header + 1].split()[1] == "perf-bpf-prog-detach"


def test_command_json(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_68)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert set(doc) == {"oops", "matches"}
    assert {"headline", "function", "trace", "release", "comm"} <= set(doc["oops"])
    assert doc["oops"]["function"] == "__bpf_nf_ct_lookup"
    assert isinstance(doc["oops"]["trace"], list)
    assert doc["matches"][0]["bug"] == "nf-ct-lookup-opts"
    assert set(doc["matches"][0]) == {"bug", "score", "why"}
    assert 0.35 <= doc["matches"][0]["score"] <= 1.0


def test_command_unknown_format_is_table(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--format", "html")
    assert rc == 0 and "perf-bpf-prog-detach" in out


def test_command_no_oops(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(NO_OOPS)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log))
    assert rc == 0 and out.strip() == "no oops found"


def test_command_stdin(
    tmp_path: Path, bugs_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = io.TextIOWrapper(io.BytesIO(CRASH_BT.encode() + b"\xff\xfe junk\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, "-", "--format", "json")
    assert rc == 0
    assert json.loads(out)["matches"][0]["bug"] == "nfsd-callback-wq"


def test_command_unreadable_file(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(tmp_path / "missing.log"))
    assert rc == 2 and out == ""
    assert "missing.log" in err and len(err.strip().splitlines()) == 1


def test_command_tree_checks_the_top_matches(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(ARM64_419)
    tree = kernel_tree(tmp_path)
    report = tmp_path / "r.json"
    args = ("--tree", str(tree), "--top", "1", "--format", "json", "-o", str(report))
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), *args)
    # offline with an empty cache: the one matched bug is checked, and its series is missing
    assert rc == 3, err
    doc = json.loads(report.read_text())
    assert [r["bug"] for r in doc["results"]] == ["nfsd-callback-wq"]


def test_command_tree_without_matches_skips_check(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(EXT4_NULL)
    # a tree that does not exist: opening it would be exit 2, so 0 says no check was tried
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tmp_path / "absent"))
    assert rc == 0 and "no known bug matches" in out


def test_triage_text_api(bugs: list[Bug]) -> None:
    oops, matches = triage_text(KASAN_SUNRPC, bugs)
    assert oops is not None and matches[0].bug == "sunrpc-listen-data-ready-uaf"
    assert triage_text(NO_OOPS, bugs) == (None, [])


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


def test_command_output_file(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(KASAN_SUNRPC)
    report = tmp_path / "triage.json"
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--format", "json", "-o", str(report))
    assert rc == 0 and out == ""
    assert json.loads(report.read_text())["matches"][0]["bug"] == "sunrpc-listen-data-ready-uaf"


def test_command_tree_json_keeps_stdout_for_the_check(
    tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    tree = kernel_tree(tmp_path)
    rc, out, err = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tree), "--format", "json")
    assert rc == 3
    assert json.loads(out)["results"][0]["bug"] == "perf-bpf-prog-detach"
    assert json.loads(err)["matches"][0]["bug"] == "perf-bpf-prog-detach"


def test_command_tree_goes_on_to_check(tmp_path: Path, bugs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg"
    log.write_text(X86_419)
    tree = kernel_tree(tmp_path)
    # offline with an empty cache: the matched bug is checked, and its series is missing
    rc, out, _ = triage(capsys, tmp_path, bugs_dir, str(log), "--tree", str(tree), "--format", "json")
    assert rc == 3
    assert '"verdict": "error"' in out and "not in cache (offline)" in out
