// SPDX-License-Identifier: GPL-2.0
/* Demo state handling for patchcheck's example tree (illustrative, not kernel code). */
#include "state.h"

static struct demo_client *demo_alloc_client(void)
{
	struct demo_client *clp;

	clp = demo_kzalloc(sizeof(*clp));
	if (!clp)
		return 0;
	clp->cl_minorversion = 1;
	return clp;
}

static void demo_free_client(struct demo_client *clp)
{
	demo_kfree(clp);
}

int demo_state_start(void)
{
	int ret;

	ret = demo_setup_callback_queue();
	if (ret)
		return ret;
	return 0;
}

void demo_state_shutdown(void)
{
	demo_destroy_callback_queue();
}

struct demo_client *demo_create_client(void)
{
	return demo_alloc_client();
}

void demo_expire_client(struct demo_client *clp)
{
	demo_free_client(clp);
}
