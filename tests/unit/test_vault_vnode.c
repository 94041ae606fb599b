/*
 * test_vault_vnode.c - the vnode table without FUSE: lookup references
 * (one vnode per backing object, freed by the last forget), file IDs,
 * open-state references (adopt, release, the DEK cache and the reaper, its
 * clean stop), purge of a shredded project, stat of plaintext sizes,
 * hammering from threads (lookups, forgets, opens, closes and purges at once),
 * and lock-free descriptor pins racing the clock that closes descriptors.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "tests/unit/tap.h"
#include "vault/fileio.h"
#include "vault/keymem.h"
#include "vault/project.h"
#include "vault/vnode.h"

static char dir[] = "/tmp/tv-vnode.XXXXXX";
static int dirfd_;
static struct vproj proj = { .name = "unit" };
static unsigned char dek[BC_DEK];

/* A sealed file NAME with LEN bytes; returns its open state, *PFD its O_PATH fd. */
static struct fileio *make_file(const char *name, size_t len, int *pfd, struct stat *st)
{
    struct bc_header h;
    struct fileio *f = NULL;
    char buf[5000];
    memset(buf, 'x', sizeof buf);
    randombytes_buf(h.file_id, sizeof h.file_id);
    memset(h.wrapped, 0, sizeof h.wrapped);
    h.kek_version = 1;
    int fd = openat(dirfd_, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fio_attach(&f, fd, dek, &h, true, proj.name, -1) < 0)
        return NULL;
    if (len && fio_write(f, buf, len, 0, NULL) < 0)
        return NULL;
    *pfd = openat(dirfd_, name, O_PATH | O_CLOEXEC);
    if (*pfd < 0 || fstat(*pfd, st) < 0)
        return NULL;
    return f;
}

static struct vtable *vt;
static struct vnode *shared;

/* Descriptors taken and given back from threads while the limit forces
 * the clock to close others all the time: a pinned descriptor must stay
 * open and be its own vnode's (a descriptor closed under its user would be
 * EBADF, or another vnode's once the number is reused by a reopen). */
enum { PIN_NODES = 64, PIN_ROUNDS = 20000 };
static struct vnode *pin_nodes[PIN_NODES];

static void *pin_hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    long bad = 0;
    struct stat st;
    for (int i = 0; i < PIN_ROUNDS; i++) {
        struct vnode *a = pin_nodes[rand_r(&seed) % PIN_NODES];
        struct vnode *b = pin_nodes[rand_r(&seed) % PIN_NODES];
        int fa = vn_fd_get(vt, a);
        int fb = vn_fd_get(vt, b);          /* may reopen b, pressing the clock */
        bad += fa < 0 || fstatat(fa, "", &st, AT_EMPTY_PATH) != 0 || st.st_ino != a->bino;
        bad += fb < 0 || fstatat(fb, "", &st, AT_EMPTY_PATH) != 0 || st.st_ino != b->bino;
        if (fb >= 0)
            vn_fd_put(vt, b);
        if (fa >= 0)
            vn_fd_put(vt, a);
    }
    return (void *)bad;
}

static int open_fd_count(void)
{
    int n = 0;
    char p[32];
    for (int fd = 0; fd < 4096; fd++) {
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        n += access(p, F_OK) == 0;
    }
    return n;
}

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg, bad = 0;
    char name[32];
    struct stat st;
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "t%d-%d", id, i % 7);
        int pfd;
        struct fileio *f = make_file(name, (size_t)(i % 3) * 1000, &pfd, &st);
        if (!f)
            return (void *)1;
        struct vnode *n = vt_get(vt, pfd, &st, &proj, false);
        struct vnode *again = vt_get(vt, openat(dirfd_, name, O_PATH | O_CLOEXEC), &st, &proj,
                                     false);
        bad += n != again;
        vn_adopt(vt, n, f);
        struct stat s2;
        bad += vn_stat(vt, n, &s2) != 0 || s2.st_size != (off_t)((i % 3) * 1000);
        vn_release(vt, n);
        vt_forget(vt, n, 2);
        /* the shared vnode: references from every thread at once */
        struct stat sst;
        fstatat(dirfd_, "shared", &sst, 0);
        struct vnode *s = vt_get(vt, openat(dirfd_, "shared", O_PATH | O_CLOEXEC), &sst, &proj,
                                 false);
        bad += s != shared;
        vt_forget(vt, s, 1);
    }
    return (void *)(intptr_t)bad;
}

int main(void)
{
    struct stat st, st2;
    int pfd;

    if (sodium_init() < 0 || !mkdtemp(dir))
        return 1;
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    randombytes_buf(dek, sizeof dek);
    pthread_mutex_init(&proj.lock, NULL);
    atomic_store(&proj.loaded, true);

    vt = vt_new(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), NULL, 0, 0);
    ok(vt != NULL, "a table on a backing directory");
    is_int(vt_count(vt), 0, "starts empty");

    struct fileio *f = make_file("a", 5000, &pfd, &st);
    struct vnode *a = vt_get(vt, pfd, &st, &proj, false);
    ok(a && !a->is_dir && a->nlookup == 1, "a regular file gets a vnode with one reference");
    struct vnode *a2 = vt_get(vt, openat(dirfd_, "a", O_PATH | O_CLOEXEC), &st, &proj, false);
    ok(a2 == a && a->nlookup == 2, "the same backing object is the same vnode");
    is_int(vt_count(vt), 1, "one vnode in the table");

    char hex[2 * BC_FILE_ID + 1];
    ok(!vt_file_id(vt, &st, hex), "no file ID before the file is loaded");
    vn_adopt(vt, a, f);
    ok(vt_file_id(vt, &st, hex) && strcmp(hex, fio_file_id_hex(f)) == 0,
       "adopting an open state publishes the file ID");
    ok(vn_stat(vt, a, &st2) == 0 && st2.st_size == 5000 && st2.st_nlink == 1,
       "stat shows the plaintext size");
    unsigned slots = keymem_in_use();
    vn_release(vt, a);
    ok(a->io == NULL && keymem_in_use() == slots - 1,
       "with no DEK cache, the last close drops the open state and wipes the DEK");
    ok(vn_stat(vt, a, &st2) == 0 && st2.st_size == 5000, "stat of an unloaded file from the backing size");

    /* the DEK cache and the reaper */
    vt_set_cache_ms(vt, 300);
    f = make_file("b", 10, &pfd, &st);
    struct vnode *b = vt_get(vt, pfd, &st, &proj, false);
    vn_adopt(vt, b, f);
    vn_release(vt, b);
    ok(b->io != NULL, "with a DEK cache, a closed file keeps its open state");
    is_int(vt_start_reaper(vt), 0, "the reaper starts");
    for (int i = 0; i < 40 && b->io; i++)
        usleep(100000);
    ok(b->io == NULL, "the reaper drops it after the cache time");
    vt_stop_reaper(vt);
    ok(1, "the reaper stops cleanly");

    /* purge: open handles of a shredded project fail from now on */
    f = make_file("c", 100, &pfd, &st);
    struct vnode *c = vt_get(vt, pfd, &st, &proj, false);
    vn_adopt(vt, c, f);
    atomic_store(&proj.shredded, true);
    vt_purge(vt, &proj);
    ok(c->io == NULL && c->nopen == 1, "a purge drops the state of a file still open");
    is_int(vn_acquire(vt, c), -EIO, "a file of a shredded project does not load again");
    vn_release(vt, c);
    atomic_store(&proj.shredded, false);
    struct vnode **list;
    size_t nl = vt_loaded(vt, NULL, &list);
    ok(nl >= 1, "loaded vnodes can be listed for invalidation");
    free(list);

    vt_forget(vt, a, 2);
    vt_forget(vt, b, 1);
    vt_forget(vt, c, 1);
    is_int(vt_count(vt), 0, "the last forget frees each vnode");

    /* threads */
    vt_set_cache_ms(vt, 0);
    f = make_file("shared", 1, &pfd, &st);
    fio_close(f, false);
    shared = vt_get(vt, pfd, &st, &proj, false);
    vt_start_reaper(vt);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)(intptr_t)r;
    }
    is_int(bad, 0, "4 threads x 300 lookups, opens, closes and forgets agree");
    is_int(vt_count(vt), 1, "only the shared vnode is left");
    vt_forget(vt, shared, 1);
    vt_free(vt);
    is_int(keymem_in_use(), 0, "every DEK slot is back");

    /* a descriptor limit: 200 vnodes, at most 16 descriptors open */
    vt = vt_new(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), NULL, 0, 16);
    struct vnode *many[200];
    int made = 0, seen = 0;
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%03d", i);
        struct fileio *mf = make_file(name, (size_t)i, &pfd, &st);
        fio_close(mf, false);
        many[i] = vt_get(vt, pfd, &st, &proj, false);
        made += many[i] != NULL;
    }
    is_int(made, 200, "200 vnodes");
    ok(vt_open_fds(vt) <= 16, "at most 16 of their descriptors are open (%zu)", vt_open_fds(vt));
    for (int i = 0; i < 200; i++)
        seen += vn_stat(vt, many[i], &st2) == 0 && st2.st_size == i;
    is_int(seen, 200, "every one still stats right: closed descriptors reopen from handles");
    ok(vt_open_fds(vt) <= 16, "and the limit holds after (%zu)", vt_open_fds(vt));
    int fd0 = vn_fd_get(vt, many[0]);
    for (int i = 1; i < 100; i++)
        vn_stat(vt, many[i], &st2);
    ok(fd0 >= 0 && fcntl(fd0, F_GETFD) >= 0 && fstatat(fd0, "", &st2, AT_EMPTY_PATH) == 0 &&
       st2.st_ino == many[0]->bino, "a descriptor in use is never closed under its user");
    vn_fd_put(vt, many[0]);
    for (int i = 0; i < 200; i++)
        vt_forget(vt, many[i], 1);
    is_int(vt_open_fds(vt), 0, "forgetting them closes the rest");
    vt_free(vt);

    /* lock-free pins against the clock, from 4 threads */
    int fds_before = open_fd_count();
    vt = vt_new(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), NULL, 0, 8);
    for (int i = 0; i < PIN_NODES; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%03d", i);
        int cfd = openat(dirfd_, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(cfd);
        int gfd = openat(dirfd_, name, O_PATH | O_CLOEXEC);
        fstat(gfd, &st);
        pin_nodes[i] = vt_get(vt, gfd, &st, &proj, false);
    }
    pthread_t pt[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&pt[i], NULL, pin_hammer, (void *)(uintptr_t)(i + 1));
    long pin_bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(pt[i], &r);
        pin_bad += (long)r;
    }
    is_int(pin_bad, 0, "4 threads x 20,000 pins of 64 vnodes under an 8-descriptor limit: "
           "every pinned descriptor open and its own vnode's");
    int pinned = 0;
    for (int i = 0; i < PIN_NODES; i++)
        pinned += atomic_load(&pin_nodes[i]->pins) != 0;
    is_int(pinned, 0, "every pin given back");
    ok(vt_open_fds(vt) <= 8 + 8, "descriptors near the limit after (%zu)", vt_open_fds(vt));
    for (int i = 0; i < PIN_NODES; i++)
        vt_forget(vt, pin_nodes[i], 1);
    vt_free(vt);
    is_int(open_fd_count(), fds_before, "no descriptor leaked by reopen races");

    /* closed files past the descriptor cap keep their DEK only (parked) and
     * reopen without keyd (this table has none) */
    vt = vt_new(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), NULL, 60000, 16);
    int parked = 0, cached = 0, back = 0;
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%03d", i);
        struct fileio *pf = make_file(name, 100 + (size_t)i, &pfd, &st);
        many[i] = vt_get(vt, pfd, &st, &proj, false);
        vn_adopt(vt, many[i], pf);
        vn_release(vt, many[i]);
        parked += many[i]->parked && many[i]->io != NULL;
        cached += many[i]->cached;
    }
    ok(cached == 16 && parked == 24, "16 closed files keep their descriptors, 24 are parked "
       "(%d, %d)", cached, parked);
    ok(vt_open_fds(vt) <= 16 + 16, "descriptors stay bounded (%zu)", vt_open_fds(vt));
    for (int i = 0; i < 40; i++) {
        unsigned char buf[200];
        size_t got = 0;
        if (vn_acquire(vt, many[i]) == 0 && fio_read(many[i]->io, buf, sizeof buf, 0, &got) == 0 &&
            got == 100 + (size_t)i)
            back++;
        vn_release(vt, many[i]);
    }
    is_int(back, 40, "every one opens again and reads, parked ones without keyd");
    for (int i = 0; i < 40; i++)
        vt_forget(vt, many[i], 1);
    vt_free(vt);
    is_int(keymem_in_use(), 0, "and every DEK slot is back at the end");

    /* the hash table grows (4,096 buckets, doubled past two vnodes per
     * bucket): 20,000 vnodes, each found again, then all forgotten */
    enum { BIG = 20000 };
    struct vnode **big = calloc(BIG, sizeof *big);
    struct stat *bst = calloc(BIG, sizeof *bst);
    vt = vt_new(open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), NULL, 0, 64);
    int got = 0, found = 0;
    for (int i = 0; big && bst && i < BIG; i++) {
        char name[16];
        snprintf(name, sizeof name, "g%05d", i);
        int cfd = openat(dirfd_, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (cfd < 0)
            break;
        close(cfd);
        int gfd = openat(dirfd_, name, O_PATH | O_CLOEXEC);
        if (gfd < 0 || fstat(gfd, &bst[i]) < 0)
            break;
        big[i] = vt_get(vt, gfd, &bst[i], &proj, false);
        got += big[i] != NULL;
    }
    is_int(vt_count(vt), BIG, "20,000 vnodes in the table (%d made)", got);
    for (int i = 0; i < got; i++)
        found += vt_get_known(vt, bst[i].st_dev, bst[i].st_ino) == big[i];
    is_int(found, BIG, "each found again by its inode after the table grew");
    for (int i = 0; i < got; i++)
        vt_forget(vt, big[i], 2);
    is_int(vt_count(vt), 0, "and all forgotten");
    ok(vt_open_fds(vt) == 0, "no descriptor left (%zu)", vt_open_fds(vt));
    vt_free(vt);
    free(big);
    free(bst);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return done();
}
