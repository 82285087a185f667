/* vm_console.c - the guest's consoles on ptys, as the VM owns them: the
 * 8250's with --serial pty (its input fed to the UART here), and the
 * paths of both ptys for `cvisor info` and the Cloud Hypervisor API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/pty.h"
#include "cvisor/virtio_console.h"
#include "cvisor/vm.h"

/* How soon to look again while the guest has not drained the UART's
 * receive buffer (the UART says nothing when it has room). */
#define SERIAL_RETRY_NS (10 * 1000000ULL)

/* Input on the 8250's pty (main thread): as much as the UART takes. */
static void serial_readable(void *ctx)
{
	struct vm *vm = ctx;
	uint8_t buf[256];
	size_t room = serial8250_rx_room(&vm->uart);
	ssize_t n;

	if (!room) {
		pty_input_pause(vm->serial_pty, SERIAL_RETRY_NS);
		return;
	}
	n = pty_read(vm->serial_pty, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n < 0) {
		cv_warn("serial pty %s: %s; console input stopped", pty_path(vm->serial_pty),
			strerror((int)-n));
		pty_input_pause(vm->serial_pty, 0);
		return;
	}
	serial8250_rx(&vm->uart, buf, (size_t)n);
}

int vm_serial_open(struct vm *vm, struct cv_error *e)
{
	int r;

	if (vm->cfg->serial != CONFIG_SERIAL_PTY)
		return 0;
	if (!(vm->serial_pty = malloc(sizeof(*vm->serial_pty))))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "serial: out of memory");
	if ((r = pty_open(vm->serial_pty, &vm->loop, "serial", serial_readable, vm, e))) {
		free(vm->serial_pty);
		vm->serial_pty = NULL;
	}
	return r;
}

void vm_serial_close(struct vm *vm)
{
	if (!vm->serial_pty)
		return;
	pty_close(vm->serial_pty);
	free(vm->serial_pty);
	vm->serial_pty = NULL;
}

const char *vm_serial_pty_path(const struct vm *vm)
{
	return vm->serial_pty ? pty_path(vm->serial_pty) : NULL;
}

const char *vm_console_pty_path(const struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++)
		if (vm->virtio[i]->dev.ops->device_id == VIRTIO_ID_CONSOLE)
			return virtio_console_pty_path(&vm->virtio[i]->dev);
	return NULL;
}
