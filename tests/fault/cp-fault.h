/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Making saves fail for real, in a child process: a file size limit, a
 * full filesystem, and a crash exactly between write and rename. Used to
 * test that whatever is written with cp_file_replace survives a failure
 * with its previous content intact.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

/*
 * Writes past limit bytes fail with EFBIG (SIGXFSZ is ignored, as a
 * program that handles errors sees it). Call in the child.
 */
void cp_fault_file_size_limit(gsize limit);

/*
 * A kernel filter that kills the calling process (SIGSYS) at its first
 * rename, renameat or renameat2, before the call does anything: a crash
 * exactly after the new file was written and synced. Call in the child.
 * FALSE (errno set) where seccomp is not available.
 */
gboolean cp_fault_kill_on_rename(void);

/*
 * Mount a tmpfs of size bytes on dir, in a mount namespace of the calling
 * process's own: nothing outside sees it, and it goes when the process
 * does. Needs root (CAP_SYS_ADMIN). Call in the child.
 */
gboolean cp_fault_private_tmpfs(const char *dir, gsize size, GError **error);

/* Fill the filesystem of dir with dir/name until it has no room left. */
gboolean cp_fault_fill(const char *dir, const char *name, GError **error);

/*
 * Whether this machine lets the test do each of the above: probed in a
 * child, so the caller is unchanged. NULL when it can, or why not (a
 * static string, for g_test_skip).
 */
const char *cp_fault_cannot_tmpfs(void);
const char *cp_fault_cannot_seccomp(void);

/* Wait for pid; the raw status of waitpid. */
int cp_fault_wait(pid_t pid);
