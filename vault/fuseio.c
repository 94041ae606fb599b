/*
 * fuseio.c - /dev/fuse reads and writes with the INIT flag and request
 * flags libfuse 3.14 does not handle (see fuseio.h).  Only the kernel's
 * protocol header is used here, not libfuse's: the two define some of the
 * same names.
 */
#include "config.h"
#include "vault/fuseio.h"

#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static atomic_bool want_v2;
static atomic_bool have_v2;
/* the INIT request: its unique ID once read (0: none yet), and whether the
 * kernel offered the flag */
static _Atomic uint64_t init_unique;
static atomic_bool init_offers_v2;
static __thread bool kill_suidgid;

void fuseio_want_killpriv_v2(bool on)
{
    atomic_store(&want_v2, on);
}

bool fuseio_killpriv_v2(void)
{
    return atomic_load(&have_v2);
}

bool fuseio_kill_suidgid(void)
{
    return kill_suidgid;
}

/* The request in BUF (LEN bytes, a whole request: /dev/fuse reads are). */
static void note_request(const unsigned char *buf, size_t len)
{
    struct fuse_in_header h;
    kill_suidgid = false;
    if (len < sizeof h)
        return;
    memcpy(&h, buf, sizeof h);
    const unsigned char *arg = buf + sizeof h;
    size_t alen = len - sizeof h;
    switch (h.opcode) {
    case FUSE_INIT: {
        struct fuse_init_in in;
        if (alen < offsetof(struct fuse_init_in, flags) + sizeof in.flags)
            return;
        memcpy(&in, arg, offsetof(struct fuse_init_in, flags) + sizeof in.flags);
        atomic_store(&init_offers_v2, (in.flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
        atomic_store(&init_unique, h.unique);
        break;
    }
    case FUSE_WRITE: {
        struct fuse_write_in in;
        if (alen >= sizeof in) {
            memcpy(&in, arg, sizeof in);
            kill_suidgid = (in.write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
        }
        break;
    }
    case FUSE_OPEN: {
        struct fuse_open_in in;
        if (alen >= sizeof in) {
            memcpy(&in, arg, sizeof in);
            kill_suidgid = (in.open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
        }
        break;
    }
    default:
        break;
    }
}

ssize_t fuseio_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    ssize_t n = read(fd, buf, len);
    if (n > 0)
        note_request(buf, (size_t)n);
    else
        kill_suidgid = false;
    return n;
}

ssize_t fuseio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    struct fuse_out_header oh;
    uint64_t init = atomic_load_explicit(&init_unique, memory_order_relaxed);
    /* the INIT reply: libfuse's header, then its fuse_init_out */
    if (init && count >= 2 && iov[0].iov_len >= sizeof oh &&
        iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
        memcpy(&oh, iov[0].iov_base, sizeof oh);
        if (oh.unique == init && oh.error == 0) {
            atomic_store(&init_unique, 0);
            if (atomic_load(&want_v2) && atomic_load(&init_offers_v2)) {
                struct fuse_init_out *out = iov[1].iov_base;
                out->flags |= FUSE_HANDLE_KILLPRIV_V2;
                atomic_store(&have_v2, true);
            }
        }
    }
    return writev(fd, iov, count);
}
