/* SPDX-License-Identifier: GPL-2.0 */
/* Demo header for patchcheck's example tree (illustrative, not kernel code). */
#ifndef DEMO_NFSD_STATE_H
#define DEMO_NFSD_STATE_H

struct demo_workqueue;

struct demo_cb {
	struct demo_client	*cb_clp;
	int			cb_status;
	int			cb_need_restart;
};

struct demo_client {
	unsigned long		cl_flags;
	unsigned int		cl_cb_state;
	struct demo_cb		cl_cb_null;
	int			cl_minorversion;
};

int demo_setup_callback_queue(void);
void demo_destroy_callback_queue(void);
void demo_run_cb(struct demo_cb *cb);
void demo_probe_callback(struct demo_client *clp);

#endif
