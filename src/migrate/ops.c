/* ops.c - the migration engine wired to the snapshot code
 * (snapshot.h) and the VM layer (vm.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/migrate.h"
#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

const struct migrate_source_ops migrate_snapshot_source_ops = {
	.state_save = snapshot_state_save,
	.config_save = NULL, /* from a state save at the start (see migrate.h) */
	.quiesce = snapshot_devices_quiesce,
	.resume = snapshot_devices_resume,
};

static int build(void *ctx, struct vm_config *cfg, struct vm **out, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct cv_error e = { 0 };
	int r;

	(void)ctx;
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* mem_fd -1: zeroed anonymous RAM that the stream fills. */
	if ((r = vm_create_restore(vm, cfg, -1, &e))) {
		vm_destroy(vm);
		free(vm);
		return cv_errf(err, errlen, r, "%s", e.msg[0] ? e.msg : strerror(-r));
	}
	*out = vm;
	return 0;
}

static int start(void *ctx, struct vm *vm, char *err, size_t errlen)
{
	int r = vm_start(vm);

	(void)ctx;
	if (r)
		snprintf(err, errlen, "starting the vCPUs: %s", strerror(-r));
	return r;
}

static void destroy(void *ctx, struct vm *vm)
{
	(void)ctx;
	if (!vm)
		return;
	vm_request_stop(vm, VM_STOP_HOST, NULL);
	vm_join(vm);
	vm_destroy(vm);
	free(vm);
}

const struct migrate_target_ops migrate_default_target_ops = {
	.config_load = snapshot_config_load,
	.cpu_model = snapshot_cpu_model,
	.build = build,
	.state_load = snapshot_state_load_incoming,
	.start = start,
	.destroy = destroy,
};
