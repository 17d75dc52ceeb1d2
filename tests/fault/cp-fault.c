/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-fault.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define CP_FAULT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CP_FAULT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define CP_FAULT_ARCH AUDIT_ARCH_I386
#elif defined(__arm__) && defined(__ARMEL__)
#define CP_FAULT_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define CP_FAULT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CP_FAULT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define CP_FAULT_ARCH AUDIT_ARCH_S390X
#endif

void
cp_fault_file_size_limit(gsize limit)
{
	struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		g_error("setrlimit(RLIMIT_FSIZE): %s", g_strerror(errno));
}

#define KILL_ON(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)

gboolean
cp_fault_kill_on_rename(void)
{
#ifdef CP_FAULT_ARCH
	struct sock_filter filter[] = {
		/* a system call of another ABI: kill, it could be a rename */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CP_FAULT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __NR_rename
		KILL_ON(__NR_rename),
#endif
#ifdef __NR_renameat
		KILL_ON(__NR_renameat),
#endif
#ifdef __NR_renameat2
		KILL_ON(__NR_renameat2),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = G_N_ELEMENTS(filter), .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return FALSE;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
	errno = ENOSYS;
	return FALSE;
#endif
}

gboolean
cp_fault_private_tmpfs(const char *dir, gsize size, GError **error)
{
	g_autofree char *opts = g_strdup_printf("size=%zu,mode=0700", (size_t)size);

	if (unshare(CLONE_NEWNS) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "unshare(CLONE_NEWNS): %s", g_strerror(errno));
		return FALSE;
	}
	/* nothing mounted from here on reaches the parent's namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("cp-fault", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "mount tmpfs on %s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
cp_fault_fill(const char *dir, const char *name, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	char block[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "cannot create %s: %s", path, g_strerror(errno));
		return FALSE;
	}
	memset(block, 0x55, sizeof(block));
	for (;;) {
		ssize_t n = write(fd, block, sizeof(block));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOSPC)
			break;
		if (n <= 0) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
				    "cannot fill %s: %s", path, g_strerror(errno));
			close(fd);
			return FALSE;
		}
	}
	close(fd);
	return TRUE;
}

int
cp_fault_wait(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			g_error("waitpid: %s", g_strerror(errno));
	}
	return status;
}

/* Run fn(data) in a child: TRUE when it returned TRUE there. */
static gboolean
probe(gboolean (*fn)(gpointer), gpointer data)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return FALSE;
	if (pid == 0)
		_exit(fn(data) ? 0 : 1);
	status = cp_fault_wait(pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static gboolean
probe_tmpfs(gpointer dir)
{
	return cp_fault_private_tmpfs(dir, 4096, NULL);
}

static gboolean
probe_seccomp(gpointer data)
{
	return cp_fault_kill_on_rename();
}

const char *
cp_fault_cannot_tmpfs(void)
{
	g_autofree char *dir = NULL;
	gboolean ok;

	if (geteuid() != 0)
		return "needs root: mounting a tmpfs in a private mount namespace";
	dir = g_dir_make_tmp("cp-fault-XXXXXX", NULL);
	if (!dir)
		return "cannot make a temporary directory";
	ok = probe(probe_tmpfs, dir);
	/* the mount went with the child's namespace */
	rmdir(dir);
	return ok ? NULL : "this machine does not allow a private mount namespace (unshare CLONE_NEWNS)";
}

const char *
cp_fault_cannot_seccomp(void)
{
	return probe(probe_seccomp, NULL) ? NULL : "no seccomp filters on this machine or architecture";
}
