/*
 * meta.h - the vault's metadata files in the backing store (docs/FORMAT.md).
 * Every metadata name starts with '.', so retention never treats it as a
 * trace:
 *   BACKING/P/.tvproject   "TVP1" | u32 kek_version | wrapped name key[72]
 *   every dir/.tvdir       16 random bytes: the directory IV for names
 *   dir/.<backing>.name    the full encoded name of a long-named entry
 * Functions take held directory fds and use *at calls with O_NOFOLLOW.
 * They return 0 or a negative errno.
 */
#ifndef TV_VAULT_META_H
#define TV_VAULT_META_H

#include <stddef.h>
#include <stdint.h>

#include "vault/blockcrypt.h"
#include "vault/names.h"

#define META_PROJECT ".tvproject"
#define META_DIRIV ".tvdir"
#define META_PROJECT_LEN (4 + 4 + BC_WRAPPED)

struct keys;

/* Read PROJECT's name key via DIRFD/.tvproject and unwrap it into KEY
 * (guarded memory).  With CREATE, make the file (atomically, from a fresh
 * pooled DEK) when it does not exist yet and the directory holds no entries
 * (-EBADMSG if it does: the key was lost). */
int meta_project_key(int dirfd, struct keys *k, const char *project, int create,
                     unsigned char key[NAMES_KEY]);

/* Parse / encode a .tvproject file. */
int meta_project_parse(const unsigned char *buf, size_t len, uint32_t *version,
                       unsigned char wrapped[BC_WRAPPED]);
void meta_project_encode(uint32_t version, const unsigned char wrapped[BC_WRAPPED],
                         unsigned char out[META_PROJECT_LEN]);

/* The directory IV of DIRFD into IV; with CREATE, make one if missing and
 * the directory holds no entries (-EBADMSG if it does: the IV was lost). */
int meta_dir_iv(int dirfd, int create, unsigned char iv[NAMES_IV]);

/* Write a fresh directory IV into the new, empty directory DIRFD. */
int meta_dir_iv_new(int dirfd);

/* Read the full encoded name of long-named BACKING in DIRFD into ENC. */
int meta_long_read(int dirfd, const char *backing, char enc[NAMES_ENC_MAX]);

/* Write the side file for long-named BACKING holding ENC. */
int meta_long_write(int dirfd, const char *backing, const char *enc);

/* Read exactly LEN bytes at OFF (-EBADMSG on a short read). */
int meta_pread_full(int fd, void *buf, size_t len, off_t off);

#endif
