/*
 * util.c - see util.h.
 */
#include "config.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tv_read_full(int fd, void *buf, size_t len, off_t off, int timeout_ms)
{
    char *p = buf;
    size_t got = 0;

    while (got < len) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return -errno;
            if (pr == 0)
                return -ETIMEDOUT;
        }
        ssize_t r = off < 0 ? read(fd, p + got, len - got)
                            : pread(fd, p + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ENODATA;
        got += (size_t)r;
    }
    return 0;
}

int tv_write_full(int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    size_t done = 0;
    int sock = off < 0;         /* try send() first; ENOTSOCK says it is not one */

    while (done < len) {
        ssize_t w;
        if (off >= 0) {
            w = pwrite(fd, p + done, len - done, off + (off_t)done);
        } else if (sock) {
            w = send(fd, p + done, len - done, MSG_NOSIGNAL);
            if (w < 0 && errno == ENOTSOCK) {
                sock = 0;
                continue;
            }
        } else {
            w = write(fd, p + done, len - done);
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        done += (size_t)w;
    }
    return 0;
}

/* Thread exit: free the buffers of the exiting thread.  The key's value is
 * the head of that thread's list; the __thread storage they live in is still
 * valid while key destructors run (glibc frees it afterwards). */
static pthread_key_t scratch_key;
static int scratch_key_ok;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread struct tv_scratch *scratch_list;

static void scratch_release(void *head)
{
    for (struct tv_scratch *s = head; s; s = s->next) {
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
        s->listed = 0;
    }
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

char *tv_list_next(char *list, char **save)
{
    char *tok;
    while ((tok = strtok_r(list, ",", save))) {
        list = NULL;
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*tok)
            return tok;
    }
    return NULL;
}

size_t tv_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
            return 0;                   /* overlong, surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
            return 0;                   /* overlong, above U+10FFFF */
        return 4;
    }
    return 0;
}

void *tv_scratch(struct tv_scratch *s, size_t need)
{
    if (!s->listed) {
        pthread_once(&scratch_once, scratch_key_init);
        if (scratch_key_ok) {
            s->next = scratch_list;
            scratch_list = s;
            s->listed = 1;
            pthread_setspecific(scratch_key, scratch_list);
        }
    }
    if (need > s->cap) {
        free(s->buf);
        s->buf = malloc(need);
        s->cap = s->buf ? need : 0;
    }
    return s->buf;
}

int tv_harden_process(void)
{
    struct rlimit rl = { 0, 0 };

    /* Deny core dumps and ptrace attach by same-uid processes: memory holds
     * unencrypted keys and trace content. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -errno;
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return -errno;
    return 0;
}

static int fsync_dirfd_of(int dirfd, const char *name)
{
    int fd, r = 0;

    if (dirfd != AT_FDCWD)
        return fsync(dirfd) == 0 ? 0 : -errno;
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        r = -errno;
    close(fd);
    return r;
}

int tv_buf_add(struct tv_buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int tv_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    const unsigned char *p = data;
    int fd, r = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", name, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    r = tv_write_full(fd, p, len, -1);
    if (r == 0 && fchmod(fd, mode) != 0)
        r = -errno;
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        r = -errno;
    if (r != 0) {
        unlinkat(dirfd, tmp, 0);
        return r;
    }
    return fsync_dirfd_of(dirfd, name);
}

int tv_fsync_parent(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int r = fsync(fd) == 0 ? 0 : -errno;
        close(fd);
        return r;
    }
    return fsync_dirfd_of(AT_FDCWD, path);
}

int tv_read_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max + 1) {
                free(buf);
                close(fd);
                return -EFBIG;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int tv_mkdir_p(const char *dir, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -errno;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

void tv_hex(const void *buf, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tv_unhex(const char *hex, void *out, size_t len)
{
    unsigned char *o = out;
    if (strlen(hex) != 2 * len)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        o[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

uint64_t tv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tv_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tv_rfc3339(uint64_t wall_ns, char out[32])
{
    time_t s = (time_t)(wall_ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    /* The modulo keeps every field's width known to the compiler. */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)((wall_ns / 1000000u) % 1000u));
}
