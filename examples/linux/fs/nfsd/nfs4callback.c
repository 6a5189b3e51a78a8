// SPDX-License-Identifier: GPL-2.0
/*
 * Demo callback code for patchcheck's example tree. It mimics the shape of a
 * callback channel with one global work queue; it is not kernel code.
 */
#include "state.h"

static struct demo_workqueue *callback_wq;

int demo_setup_callback_queue(void)
{
	callback_wq = demo_alloc_ordered_workqueue("demo_cb", 0);
	if (!callback_wq)
		return -12;
	return 0;
}

void demo_destroy_callback_queue(void)
{
	demo_destroy_workqueue(callback_wq);
}

static void demo_run_cb_work(struct demo_cb *cb)
{
	struct demo_client *clp = cb->cb_clp;

	if (cb->cb_need_restart)
		cb->cb_need_restart = 0;
	clp->cl_cb_state = 1;
}

void demo_run_cb(struct demo_cb *cb)
{
	/* queued on the global queue: nothing keeps it alive for this client */
	demo_queue_work(callback_wq, cb);
}

void demo_probe_callback(struct demo_client *clp)
{
	clp->cl_flags |= 1;
	demo_run_cb(&clp->cl_cb_null);
}

void demo_shutdown_callback(struct demo_client *clp)
{
	clp->cl_flags &= ~1UL;
	demo_flush_workqueue(callback_wq);
	demo_run_cb_work(&clp->cl_cb_null);
}
