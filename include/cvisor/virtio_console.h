/* virtio_console.h - the console device (virtio 1.2 section 5.3): one
 * port (no VIRTIO_CONSOLE_F_MULTIPORT, no F_SIZE, no F_EMERG_WRITE), its
 * receiveq0 and transmitq0, on a pty the VMM makes (pty.h): the guest's
 * hvc0 (`console=hvc0`) is the pty's slave, /dev/pts/N.
 *
 * Output the pty does not take at once waits in its bounded ring and the
 * oldest is dropped when nobody reads (the guest is never held up); input
 * fills the buffers the driver gives on receiveq0, and waits in the pty
 * while there are none. Snapshots and migrations keep no pty state: the
 * restored guest gets a new pty (its path in `cvisor info`). */
#ifndef CVISOR_VIRTIO_CONSOLE_H
#define CVISOR_VIRTIO_CONSOLE_H

#include "cvisor/error.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

/* A transmit chain larger than this is a broken driver (Linux sends at
 * most 32 KiB at once): the device is put in NEEDS_RESET. */
#define VIRTIO_CONSOLE_TX_MAX (64u << 10)

/* The device table's check (devices.h): --console's spec is "pty".
 * -EINVAL with e filled (CV_EXIT_USAGE). */
int virtio_console_check(const char *what, const char *spec, struct cv_error *e) CV_MUST;

/* The device table's create: a new pty served on env->loop. 0, or -errno
 * with e filled and nothing left open. */
int virtio_console_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
				 const struct virtio_env *env, struct cv_error *e) CV_MUST;

/* The pty slave's path ("/dev/pts/N") of a virtio-console device d. */
const char *virtio_console_pty_path(const struct virtio_dev *d);

#endif
