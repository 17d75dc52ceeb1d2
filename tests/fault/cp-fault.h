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
 * The same exactly at the Nth rename, or a filesystem filled up right
 * after one, for a program that renames more than once: the child calls
 * cp_fault_trace_renames_child() (before its exec), which stops it for
 * the parent and then makes each rename stop for the parent's ptrace;
 * the parent calls cp_fault_trace_renames(), which counts the renames of
 * every thread and process of the child, does what f says, and returns
 * the raw status of the child when it ends. Renames are counted from 1;
 * 0 is never.
 */
typedef struct {
	guint kill_at;          /* SIGKILL at the entry of this rename */
	guint fill_after;       /* cp_fault_fill() once this rename returned */
	const char *fill_dir;
	const char *fill_name;
} CpFaultRenames;

gboolean cp_fault_trace_renames_child(void);
int cp_fault_trace_renames(pid_t pid, const CpFaultRenames *f, guint *renames);

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
const char *cp_fault_cannot_ptrace(void);

/* Wait for pid; the raw status of waitpid. */
int cp_fault_wait(pid_t pid);
