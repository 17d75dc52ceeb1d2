/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * common/cp-notify.c against real AF_UNIX datagram sockets, as systemd
 * binds them: a path and an abstract ('@') name, every message received
 * byte for byte; no NOTIFY_SOCKET; names that are not sockets; and
 * WATCHDOG_USEC / WATCHDOG_PID as sd_watchdog_enabled() reads them.
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cp-notify.h"

/* A bound datagram socket, as the service manager holds one. */
static int
listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	socklen_t sa_len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(len, <, sizeof sa.sun_path);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '/'));
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sa_len), ==, 0);
	return fd;
}

static char *
receive(int fd)
{
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	return g_strndup(buf, (gsize)n);
}

static void
check_round_trip(const char *name)
{
	static const char *const msgs[] = {
		"READY=1", "STATUS=provisioning: writing the USIM", "WATCHDOG=1",
		"STOPPING=1\nSTATUS=stopping",
	};
	int fd = listener(name);

	g_setenv("NOTIFY_SOCKET", name, TRUE);
	for (gsize i = 0; i < G_N_ELEMENTS(msgs); i++) {
		g_autofree char *got = NULL;

		g_assert_cmpint(cp_notify(msgs[i]), ==, 1);
		got = receive(fd);
		g_assert_cmpstr(got, ==, msgs[i]);
	}
	g_assert_null(receive(fd));
	close(fd);
}

static void
test_path(void)
{
	g_autofree char *dir = g_dir_make_tmp("cp-notify-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "notify", NULL);

	check_round_trip(path);
	g_unlink(path);
	/* Nobody listens any more: the socket's error, not a success. */
	g_assert_cmpint(cp_notify("READY=1"), ==, -ENOENT);
	g_rmdir(dir);
}

static void
test_abstract(void)
{
	g_autofree char *name = g_strdup_printf("@cp-notify-test/%d", (int)getpid());

	check_round_trip(name);
	/* The name is exactly its bytes: a longer one is another socket. */
	{
		g_autofree char *longer = g_strconcat(name, "x", NULL);
		int fd = listener(name);

		g_setenv("NOTIFY_SOCKET", longer, TRUE);
		g_assert_cmpint(cp_notify("READY=1"), ==, -ECONNREFUSED);
		g_assert_null(receive(fd));
		close(fd);
	}
}

static void
test_not_set(void)
{
	g_unsetenv("NOTIFY_SOCKET");
	g_assert_cmpint(cp_notify("READY=1"), ==, 0);
	g_setenv("NOTIFY_SOCKET", "", TRUE);
	g_assert_cmpint(cp_notify("READY=1"), ==, 0);
}

static void
test_bad_names(void)
{
	char longname[200];

	g_setenv("NOTIFY_SOCKET", "relative/path", TRUE);
	g_assert_cmpint(cp_notify("READY=1"), ==, -EINVAL);
	g_setenv("NOTIFY_SOCKET", "vsock:2:1234", TRUE);
	g_assert_cmpint(cp_notify("READY=1"), ==, -EAFNOSUPPORT);
	memset(longname, 'a', sizeof longname - 1);
	longname[0] = '/';
	longname[sizeof longname - 1] = '\0';
	g_setenv("NOTIFY_SOCKET", longname, TRUE);
	g_assert_cmpint(cp_notify("READY=1"), ==, -ENAMETOOLONG);
	g_setenv("NOTIFY_SOCKET", "@x", TRUE);
	g_assert_cmpint(cp_notify(""), ==, -EINVAL);
	g_assert_cmpint(cp_notify(NULL), ==, -EINVAL);
	g_unsetenv("NOTIFY_SOCKET");
}

static void
test_watchdog(void)
{
	g_autofree char *me = g_strdup_printf("%d", (int)getpid());
	g_autofree char *other = g_strdup_printf("%d", (int)getpid() + 1);
	uint64_t usec = 0;

	g_unsetenv("WATCHDOG_PID");
	g_unsetenv("WATCHDOG_USEC");
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, 0);
	g_setenv("WATCHDOG_USEC", "400000", TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, 1);
	g_assert_cmpuint(usec, ==, 400000);
	g_setenv("WATCHDOG_PID", me, TRUE);
	usec = 0;
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, 1);
	g_assert_cmpuint(usec, ==, 400000);
	/* Meant for another process (a parent that kept the variables). */
	g_setenv("WATCHDOG_PID", other, TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, 0);
	g_setenv("WATCHDOG_PID", "12x", TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, -EINVAL);
	g_unsetenv("WATCHDOG_PID");
	g_setenv("WATCHDOG_USEC", "0", TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, -EINVAL);
	g_setenv("WATCHDOG_USEC", "-5", TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, -EINVAL);
	g_setenv("WATCHDOG_USEC", "10s", TRUE);
	g_assert_cmpint(cp_notify_watchdog(&usec), ==, -EINVAL);
	g_unsetenv("WATCHDOG_USEC");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/notify/path", test_path);
	g_test_add_func("/notify/abstract", test_abstract);
	g_test_add_func("/notify/not-set", test_not_set);
	g_test_add_func("/notify/bad-names", test_bad_names);
	g_test_add_func("/notify/watchdog", test_watchdog);
	return g_test_run();
}
