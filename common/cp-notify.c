/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sd_notify's datagram protocol, see cp-notify.h. */
#include "cp-notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
cp_notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t sa_len;
	size_t len;
	ssize_t n;
	int fd, err = 0;

	if (!state || !*state)
		return -EINVAL;
	if (!name || !*name)
		return 0;
	len = strlen(name);
	if (name[0] != '/' && name[0] != '@')
		return strchr(name, ':') ? -EAFNOSUPPORT : -EINVAL;
	if (len > sizeof sa.sun_path - (name[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, name, len);
	/* An abstract name: a NUL first, and the address is exactly that
	 * long (no terminator: the NUL would be part of the name). */
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Blocking, like sd_notify(): READY=1 must not be dropped. */
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (const struct sockaddr *)&sa, sa_len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(state))
		err = -EMSGSIZE;
	close(fd);
	return err ? err : 1;
}

int
cp_notify_watchdog(uint64_t *usec)
{
	const char *s = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end = NULL;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-' || v == 0)
		return -EINVAL;
	if (p && *p) {
		long pid;

		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno || *end || pid <= 0)
			return -EINVAL;
		if ((pid_t)pid != getpid())
			return 0;
	}
	if (usec)
		*usec = v;
	return 1;
}
