"""Kernel logs and known-bug signatures shared by the triage tests."""

# ruff: noqa: E501  (the kernel log fixtures keep their real, long lines)

from __future__ import annotations

from pathlib import Path

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
