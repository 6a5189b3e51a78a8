"""Acceptance: the three seed bugs, end to end, on 4.19-like trees named ``linux-4.19``.

The shipped known-bug files are used as they are; their fix series are made here (patchcheck
never reaches lore in a test) in the seeds' formats, under the shipped msgids: Chuck Lever's
and Jeff Layton's git diffs for nfsd, Peter Zijlstra's quilt diff (``Index:`` /
``linux-2.6.orig/``) as patch 13 of a 19-patch series for perf, and git diffs for the
conntrack fixes. The C below is written for these tests: only the lines the fixes need.

Expected on a 4.19 tree without the fixes: nfsd and perf backportable, nf-ct-lookup-opts
not-applicable (net/netfilter/nf_conntrack_bpf.c is not in 4.19); with the fixes applied:
nfsd and perf present. Skipped where the seeds in ``shared/`` beside the repository are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchcheck.bugs.load import default_bugs_dir, load_bugs
from testing.kfixtures import make_diff, write_tree
from testing.mailgen import make_cover, make_mbox, make_patch_mail, simple_diff
from testing.pi_server import PIServer
from testing.rig import env

# beside the repository, or where PATCHCHECK_ACCEPTANCE_SHARED says (a worktree elsewhere)
SHARED = Path(
    os.environ.get("PATCHCHECK_ACCEPTANCE_SHARED") or Path(__file__).resolve().parents[2].parent / "shared"
)
if not (SHARED / "seeds").is_dir():
    pytest.skip(f"{SHARED / 'seeds'} not present", allow_module_level=True)

pytestmark = pytest.mark.acceptance

BUGS = ("nfsd-callback-wq", "perf-bpf-prog-detach", "nf-ct-lookup-opts")
MAKEFILE = 'VERSION = 4\nPATCHLEVEL = 19\nSUBLEVEL = 90\nEXTRAVERSION =\nNAME = "People\'s Front"\n'

# ---- fs/nfsd: the global callback_wq (before) and one per client (after) ----------------

CALLBACK_OLD = """\
#include "nfsd.h"
#include "state.h"

static struct workqueue_struct *callback_wq;

static void nfsd4_run_cb_work(struct work_struct *work)
{
\tstruct nfsd4_callback *cb =
\t\tcontainer_of(work, struct nfsd4_callback, cb_work);

\tif (cb->cb_ops && cb->cb_ops->prepare)
\t\tcb->cb_ops->prepare(cb);
\trpc_call_async(cb->cb_clp->cl_cb_client, &cb->cb_msg, RPC_TASK_SOFT, cb);
}

int nfsd4_create_callback_queue(void)
{
\tcallback_wq = alloc_ordered_workqueue("nfsd4_callbacks", 0);
\tif (!callback_wq)
\t\treturn -ENOMEM;
\treturn 0;
}

void nfsd4_destroy_callback_queue(void)
{
\tdestroy_workqueue(callback_wq);
}

static bool nfsd4_queue_cb(struct nfsd4_callback *cb)
{
\treturn queue_work(callback_wq, &cb->cb_work);
}

void nfsd4_run_cb(struct nfsd4_callback *cb)
{
\tstruct nfs4_client *clp = cb->cb_clp;

\tnfsd41_cb_inflight_begin(clp);
\tif (!nfsd4_queue_cb(cb))
\t\tnfsd41_cb_inflight_end(clp);
}
"""
CALLBACK_NEW = (
    CALLBACK_OLD.replace("static struct workqueue_struct *callback_wq;\n\n", "")
    .replace(
        """int nfsd4_create_callback_queue(void)
{
\tcallback_wq = alloc_ordered_workqueue("nfsd4_callbacks", 0);
\tif (!callback_wq)
\t\treturn -ENOMEM;
\treturn 0;
}

void nfsd4_destroy_callback_queue(void)
{
\tdestroy_workqueue(callback_wq);
}

""",
        "",
    )
    .replace(
        "\treturn queue_work(callback_wq, &cb->cb_work);",
        "\tstruct nfs4_client *clp = cb->cb_clp;\n\n\treturn queue_work(clp->cl_callback_wq, &cb->cb_work);",
    )
)
STATE_H_OLD = """\
#ifndef _NFSD4_STATE_H
#define _NFSD4_STATE_H

struct nfs4_client {
\tstruct list_head\tcl_idhash;
\tstruct rpc_clnt\t\t*cl_cb_client;
\tu32\t\t\tcl_cb_ident;
\tatomic_t\t\tcl_cb_inflight;
};

extern void nfsd4_probe_callback(struct nfs4_client *clp);
extern void nfsd4_run_cb(struct nfsd4_callback *cb);
extern int nfsd4_create_callback_queue(void);
extern void nfsd4_destroy_callback_queue(void);
extern void nfsd4_shutdown_callback(struct nfs4_client *);

#endif   /* NFSD4_STATE_H */
"""
STATE_H_NEW = STATE_H_OLD.replace(
    "\tatomic_t\t\tcl_cb_inflight;\n",
    "\tatomic_t\t\tcl_cb_inflight;\n\tstruct workqueue_struct\t*cl_callback_wq;\n",
).replace("extern int nfsd4_create_callback_queue(void);\nextern void nfsd4_destroy_callback_queue(void);\n", "")
STATE_C_OLD = """\
#include "nfsd.h"
#include "state.h"

static struct nfs4_client *alloc_client(struct xdr_netobj name)
{
\tstruct nfs4_client *clp;

\tclp = kmem_cache_zalloc(client_slab, GFP_KERNEL);
\tif (clp == NULL)
\t\treturn NULL;
\tINIT_LIST_HEAD(&clp->cl_idhash);
\treturn clp;
}

static void free_client(struct nfs4_client *clp)
{
\tkfree(clp->cl_name.data);
\tkmem_cache_free(client_slab, clp);
}

int nfs4_state_start(void)
{
\tint ret;

\tret = nfsd4_create_callback_queue();
\tif (ret)
\t\treturn ret;
\tset_max_delegations();
\treturn 0;
}

void nfs4_state_shutdown(void)
{
\tnfsd4_destroy_callback_queue();
}
"""
STATE_C_NEW = (
    STATE_C_OLD.replace(
        "\tINIT_LIST_HEAD(&clp->cl_idhash);\n\treturn clp;\n",
        '\tclp->cl_callback_wq = alloc_ordered_workqueue("nfsd4_callbacks", 0);\n'
        "\tif (!clp->cl_callback_wq) {\n\t\tkmem_cache_free(client_slab, clp);\n\t\treturn NULL;\n\t}\n"
        "\tINIT_LIST_HEAD(&clp->cl_idhash);\n\treturn clp;\n",
    )
    .replace(
        "\tkfree(clp->cl_name.data);\n", "\tdestroy_workqueue(clp->cl_callback_wq);\n\tkfree(clp->cl_name.data);\n"
    )
    .replace("\tint ret;\n\n\tret = nfsd4_create_callback_queue();\n\tif (ret)\n\t\treturn ret;\n", "")
    .replace(
        "void nfs4_state_shutdown(void)\n{\n\tnfsd4_destroy_callback_queue();\n}\n",
        "void nfs4_state_shutdown(void)\n{\n}\n",
    )
)

# ---- kernel/events/core.c: perf_event_free_bpf_prog without / with the early return -----

CORE_OLD = """\
static void perf_event_free_bpf_handler(struct perf_event *event)
{
\tstruct bpf_prog *prog = event->prog;

\tif (!prog)
\t\treturn;

\tevent->prog = NULL;
\tbpf_prog_put(prog);
}

static void perf_event_free_bpf_prog(struct perf_event *event)
{
\tif (!perf_event_is_tracing(event)) {
\t\tperf_event_free_bpf_handler(event);
\t\treturn;
\t}
\tperf_event_detach_bpf_prog(event);
}

static void _free_event(struct perf_event *event)
{
\tirq_work_sync(&event->pending);
\tperf_event_free_bpf_prog(event);
}
"""
CORE_NEW = CORE_OLD.replace(
    "static void perf_event_free_bpf_prog(struct perf_event *event)\n{\n",
    "static void perf_event_free_bpf_prog(struct perf_event *event)\n{\n\tif (!event->prog)\n\t\treturn;\n\n",
)

OLD = {
    "Makefile": MAKEFILE,
    "fs/nfsd/nfs4callback.c": CALLBACK_OLD,
    "fs/nfsd/nfs4state.c": STATE_C_OLD,
    "fs/nfsd/state.h": STATE_H_OLD,
    "kernel/events/core.c": CORE_OLD,
}
NEW = {
    **OLD,
    "fs/nfsd/nfs4callback.c": CALLBACK_NEW,
    "fs/nfsd/nfs4state.c": STATE_C_NEW,
    "fs/nfsd/state.h": STATE_H_NEW,
    "kernel/events/core.c": CORE_NEW,
}
# the optional nfsd hardening: a flag so callback work never runs twice at once
CALLBACK_FLAGGED = CALLBACK_OLD.replace(
    "\tif (cb->cb_ops && cb->cb_ops->prepare)\n",
    "\tif (test_and_set_bit(NFSD4_CALLBACK_RUNNING, &cb->cb_flags))\n\t\treturn;\n"
    "\tif (cb->cb_ops && cb->cb_ops->prepare)\n",
)


def _quilt(diff: bytes) -> bytes:
    """A git diff of one file as quilt writes it (Peter Zijlstra's series)."""
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(b"diff --git a/"):
            path = line.split()[2][2:]
            out.append(b"Index: linux-2.6/" + path + b"\n" + b"=" * 67 + b"\n")
        elif line.startswith(b"index "):
            continue
        elif line.startswith(b"--- a/"):
            out.append(b"--- linux-2.6.orig/" + line[6:])
        elif line.startswith(b"+++ b/"):
            out.append(b"+++ linux-2.6/" + line[6:])
        else:
            out.append(line)
    return b"".join(out)


def _threads(work: Path) -> list[tuple[bytes, list[str]]]:
    """(mbox, msgids served) for every fix of the three bugs, under the shipped msgids."""
    out: list[tuple[bytes, list[str]]] = []
    # nfsd: Chuck Lever's RFC, one patch
    nfsd = make_diff(work, OLD, {**OLD, **{k: NEW[k] for k in NEW if k.startswith("fs/nfsd/")}})
    mid = "171200183231.5439.7855646322906072619.stgit@klimt.1015granger.net"
    mail = make_patch_mail("NFSD: Move callback_wq into struct nfs4_client", nfsd, mid, tag="PATCH RFC")
    out.append((make_mbox([mail]), [mid]))
    # nfsd: Jeff Layton's v2, patch 1 of 5 (b4-style msgids)
    stem, key = "20250220-nfsd-callback-v2-{}-6a57f46e1c3a@kernel.org", "nfsd-callback"
    msgs = [make_cover("nfsd: callback fixes", stem.format(0), 5, revision=2)]
    diffs = [make_diff(work, OLD, {**OLD, "fs/nfsd/nfs4callback.c": CALLBACK_FLAGGED})]
    diffs += [simple_diff(f"fs/nfsd/{key}{i}.c", f"old{i}", f"new{i}").encode() for i in range(2, 6)]
    subjects = ["nfsd: prevent callback tasks running concurrently"] + [
        f"nfsd: callback part {i}" for i in range(2, 6)
    ]
    for i, (subject, diff) in enumerate(zip(subjects, diffs, strict=True), 1):
        msgs.append(make_patch_mail(subject, diff, stem.format(i), i, 5, 2, in_reply_to=stem.format(0)))
    out.append((make_mbox(msgs), [stem.format(i) for i in range(6)]))
    # perf: patch 13 of Peter Zijlstra's 19, a quilt diff
    cover = "20241104133909.669111662@infradead.org"
    ids = [f"20241104135518.9789566{i:02d}@infradead.org" for i in range(1, 20)]
    ids[12] = "20241104135518.978956692@infradead.org"
    perf = _quilt(make_diff(work, {"kernel/events/core.c": CORE_OLD}, {"kernel/events/core.c": CORE_NEW}))
    msgs = [make_cover("perf: Robustify and uprobes", cover, 19)]
    for i, mid in enumerate(ids, 1):
        diff = perf if i == 13 else _quilt(simple_diff(f"kernel/events/part{i}.c", f"o{i}", f"n{i}").encode())
        subject = "perf: Robustify perf_event_free_bpf_prog()" if i == 13 else f"perf: part {i}"
        msgs.append(
            make_patch_mail(
                subject, diff, mid, i, 19, in_reply_to=cover, author="Peter Zijlstra <peterz@infradead.org>"
            )
        )
    out.append((make_mbox(msgs), [cover, *ids]))
    # perf, optional: CVE-2024-56665 (kernel/trace/bpf_trace.c: not in this fixture)
    mid = "20241208142507.1207698-1-jolsa@kernel.org"
    diff = simple_diff(
        "kernel/trace/bpf_trace.c", "\told_array = bpf_event_rcu_dereference(", "\tif (!event->prog)"
    )
    mail = make_patch_mail("bpf,perf: Fix invalid prog_array access in perf_event_detach_bpf_prog", diff, mid)
    out.append((make_mbox([mail]), [mid]))
    # conntrack: the guard (patch 1 of its series) and Brad Cowie's v4
    cover = "cover.1781765747.git.chenyy23@mails.tsinghua.edu.cn"
    mid = "9535e781fe14449b1d4e9bbc3baa7566a93bf512.1781765747.git.chenyy23@mails.tsinghua.edu.cn"
    diff = simple_diff("net/netfilter/nf_conntrack_bpf.c", "\t\topts->error = -EINVAL;", "\t\tif (opts_len >= 8)")
    msgs = [
        make_cover("bpf: conntrack opts", cover, 1),
        make_patch_mail(
            "bpf: Guard conntrack opts error writes", diff, mid, 1, 1, in_reply_to=cover, numbered=True
        ),
    ]
    out.append((make_mbox(msgs), [cover, mid]))
    mid = "20240522050712.732558-1-brad@faucet.nz"
    diff = simple_diff(
        "net/netfilter/nf_conntrack_bpf.c", "#define NF_BPF_CT_OPTS_SZ 12", "#define NF_BPF_CT_OPTS_SZ 16"
    )
    subject = "net: netfilter: Make ct zone opts configurable for bpf ct helpers"
    out.append((make_mbox([make_patch_mail(subject, diff, mid, revision=4)]), [mid]))
    return out


def _run(root: Path, server: PIServer, tree: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    argv = [sys.executable, "-m", "patchcheck", "--tree", tree]
    for b in BUGS:
        argv += ["--bug", b]
    argv += ["--trees-file", str(root / "trees.toml"), "--cache-dir", str(root / "cache")]
    argv += ["--lore-url", server.url, "--format", "json", "-j", "2"]
    cp = subprocess.run(argv, capture_output=True, text=True, env=env(), cwd=root, timeout=180)
    assert "Traceback" not in cp.stderr, cp.stderr
    data = json.loads(cp.stdout)
    return cp.returncode, {r["bug"]: r for r in data["results"]}, cp.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PIServer]]:
    shipped = load_bugs(default_bugs_dir())
    for b in BUGS:
        shipped.get(b)  # the shipped files are the ones checked
    root = tmp_path_factory.mktemp("seed-trees")
    write_tree(root / "linux-4.19", OLD)
    write_tree(root / "linux-4.19-fixed", NEW)
    (root / "trees.toml").write_text(
        '[linux-4.19]\npath = "linux-4.19"\n\n[linux-4.19-fixed]\npath = "linux-4.19-fixed"\n'
    )
    server = PIServer()
    work = root / "gen"
    work.mkdir()
    for mbox, ids in _threads(work):
        server.add_thread(mbox, ids)
    with server:
        yield root, server


def test_seed_bugs_on_a_4_19_tree_without_the_fixes(world: tuple[Path, PIServer]) -> None:
    root, server = world
    code, res, err = _run(root, server, "linux-4.19")
    assert set(res) == set(BUGS), err
    verdicts = {b: (r["verdict"], r["method"]) for b, r in res.items()}
    assert verdicts == {
        "nfsd-callback-wq": ("backportable", "clean"),
        "perf-bpf-prog-detach": ("backportable", "clean"),
        "nf-ct-lookup-opts": ("not-applicable", None),
    }, json.dumps(res, indent=1)[:4000]
    assert code == 1, err
    perf = [p for p in res["perf-bpf-prog-detach"]["patches"] if p["msgid"].startswith("20241104135518.978956692")]
    assert [p["verdict"] for p in perf] == ["backportable"]  # the quilt diff never reads present here
    assert all(r["tree"] == "linux-4.19" for r in res.values())


def test_seed_bugs_on_a_4_19_tree_with_the_fixes(world: tuple[Path, PIServer]) -> None:
    root, server = world
    code, res, err = _run(root, server, "linux-4.19-fixed")
    verdicts = {b: (r["verdict"], r["method"]) for b, r in res.items()}
    assert verdicts == {
        "nfsd-callback-wq": ("present", "exact"),
        "perf-bpf-prog-detach": ("present", "exact"),
        "nf-ct-lookup-opts": ("not-applicable", None),
    }, json.dumps(res, indent=1)[:4000]
    assert code == 0, err
