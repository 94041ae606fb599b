/*
 * project.h - the vault's projects and their metadata in the backing store.
 *
 * A project is a top-level directory of the mount: BACKING/P.  The table
 * holds one struct vproj per project name met since the mount (never
 * removed: a host has few projects), loaded on first use: the backing
 * directory made if missing, the project's name key unwrapped by keyd.
 *
 * Metadata files (docs/FORMAT.md); every metadata name starts with '.', so
 * retention never takes it for a trace:
 *   BACKING/P/.tvproject   "TVP1" | u32 kek_version | wrapped name key[72]
 *   every dir/.tvdir       16 random bytes: the directory IV for names
 *   dir/.<backing>.name    the full encoded name of a long-named entry
 *   BACKING/P/.tvjournal/  tail journals, by file ID (vault/fileio.h)
 * Metadata functions take held directory fds and use *at calls with
 * O_NOFOLLOW.  Everything returns 0 or a negative errno.
 *
 * Locks: the table lock guards the table only (a leaf); a project's lock
 * serialises its loading and the wiping of its name keys, and is taken
 * before keyd is called (vault/keys.h locks are below it).
 */
#ifndef TV_VAULT_PROJECT_H
#define TV_VAULT_PROJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "vault/blockcrypt.h"
#include "vault/names.h"

#define META_PROJECT ".tvproject"
#define META_DIRIV ".tvdir"
#define META_PROJECT_LEN (4 + 4 + BC_WRAPPED)
#define PROJECTS_MAX 256

struct keys;

struct vproj {
    char name[TV_PROJECT_NAME_MAX + 1];
    pthread_mutex_t lock;           /* loading, wiping nk */
    atomic_bool loaded;             /* nk valid; set once, under lock */
    atomic_bool shredded;           /* every key of it is gone: all its files fail */
    struct names_keys *nk;          /* sodium_malloc'd */
    _Atomic int64_t used;           /* plaintext bytes of its files: counted at load,
                                       then kept by every size change (proj_charge) */
    int jdir;                       /* O_PATH of P/.tvjournal (tail journals), once loaded */
    _Atomic dev_t dev;              /* its backing directory, once looked up */
    _Atomic ino_t ino;
};

struct projects;

/* A table for the backing directory ROOTFD (borrowed) with keys from KEYS
 * (borrowed).  NULL on ENOMEM. */
struct projects *projects_new(int rootfd, struct keys *keys);
/* Free the table; name keys are wiped. */
void projects_free(struct projects *pt);

/* The project NAME; with CREATE an entry is made if missing.  NULL if none
 * (or the table is full, or ENOMEM).  The entry lives as long as the table. */
struct vproj *proj_find(struct projects *pt, const char *name, bool create);

/* Make P usable: backing directory made if missing, name keys loaded, its
 * usage counted, and every file whose rewrite a kill interrupted restored
 * from its tail journal (journals of files that are gone are removed).
 * 0; -ENOENT (keyd does not know it); -EIO (shredded, damaged metadata, or
 * keyd unreachable: logged). */
int proj_load(struct projects *pt, struct vproj *p);

/* Ask keyd whether loaded project P still exists: -EKEYREVOKED if it was
 * shredded, 0 otherwise (also when keyd cannot say). */
int proj_recheck(struct projects *pt, struct vproj *p);

/* Wipe P's name keys and mark it shredded: from now on nothing of it loads. */
void proj_shred(struct projects *pt, struct vproj *p);

/* Charge DELTA plaintext bytes to P's usage (negative: give back).  A
 * charge that would take the usage past QUOTA (> 0) charges nothing and
 * returns -EDQUOT. */
int proj_charge(struct vproj *p, int64_t delta, int64_t quota);

/* Up to MAX projects of the table into OUT; returns how many. */
int proj_list(struct projects *pt, struct vproj **out, int max);

/* ---- metadata ---------------------------------------------------------- */

/* Read PROJECT's name key via DIRFD/.tvproject and unwrap it into KEY
 * (guarded memory).  With CREATE, make the file (atomically, from a fresh
 * pooled DEK) when it does not exist yet and the directory holds no entries
 * (-EBADMSG if it does: the key was lost). */
int meta_project_key(int dirfd, struct keys *k, const char *project, bool create,
                     unsigned char key[NAMES_KEY]);

/* Read / replace (atomically) DIRFD/.tvproject. */
int meta_project_read(int dirfd, uint32_t *version, unsigned char wrapped[BC_WRAPPED]);
int meta_project_write(int dirfd, uint32_t version, const unsigned char wrapped[BC_WRAPPED]);

/* Parse / encode a .tvproject file. */
int meta_project_parse(const unsigned char *buf, size_t len, uint32_t *version,
                       unsigned char wrapped[BC_WRAPPED]);
void meta_project_encode(uint32_t version, const unsigned char wrapped[BC_WRAPPED],
                         unsigned char out[META_PROJECT_LEN]);

/* The directory IV of DIRFD into IV; with CREATE, make one if missing and
 * the directory holds no entries (-EBADMSG if it does: the IV was lost). */
int meta_dir_iv(int dirfd, bool create, unsigned char iv[NAMES_IV]);

/* Write a fresh directory IV into the new, empty directory DIRFD. */
int meta_dir_iv_new(int dirfd);

/* Read the full encoded name of long-named BACKING in DIRFD into ENC. */
int meta_long_read(int dirfd, const char *backing, char enc[NAMES_ENC_MAX]);

/* Write the side file for long-named BACKING holding ENC. */
int meta_long_write(int dirfd, const char *backing, const char *enc);

#endif
