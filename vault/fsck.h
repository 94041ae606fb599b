/*
 * fsck.h - offline tools over the backing store (need keyd, not the mount).
 *
 * vault_fsck: authenticate every name and every block of every file of
 * PROJECT (or of every configured project when NULL); print one line per
 * damaged object naming its plaintext path ("P/dir/file") or, when the name
 * itself is damaged, its backing path; returns the exit status: 0 clean,
 * 1 damage found or a check could not run.
 *
 * vault_rewrap: re-wrap the DEKs in every header of PROJECT (and its name
 * key) to the project's newest KEK version via keyd REWRAP.  Each header is
 * replaced by one pwrite of the same size and fdatasync'd, so an interrupted
 * run leaves every file readable and a rerun finishes the job.  Returns the
 * exit status.
 */
#ifndef TV_VAULT_FSCK_H
#define TV_VAULT_FSCK_H

struct tv_config;

int vault_fsck(const struct tv_config *cfg, const char *project);
int vault_rewrap(const struct tv_config *cfg, const char *project);

#endif
