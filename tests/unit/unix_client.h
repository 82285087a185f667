/* unix_client.h - unix_client(path): a client socket connected to the
 * unix socket at path, for the tests of servers (control, REST API);
 * -1 if it fails. */
#ifndef TESTS_UNIT_UNIX_CLIENT_H
#define TESTS_UNIT_UNIX_CLIENT_H

#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static inline int unix_client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

#endif
