/*
 * listen.c - binding the listen addresses (listen.h).
 */
#include "config.h"
#include "ingest/listen.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return a->s6_addr[12] == 127;
    }
    return 0;
}

static int open_unix(const char *path, struct listener *l, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "listen unix:%s: not an absolute path of at most %zu bytes",
                 path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "listen unix:%s: exists and is not a socket", path);
            return -1;
        }
        unlink(path);         /* a stale socket of an earlier run */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, 256) != 0) {
        snprintf(err, errlen, "listen unix:%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    l->fd = fd;
    l->is_unix = 1;
    return 0;
}

static int open_tcp(const char *spec, struct listener *l, char *err, size_t errlen)
{
    char host[80];
    const char *port;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int fd = -1, one = 1, r;

    if (spec[0] == '[') {
        const char *close_b = strchr(spec, ']');
        if (!close_b || close_b[1] != ':' || (size_t)(close_b - spec - 1) >= sizeof(host))
            goto bad;
        memcpy(host, spec + 1, (size_t)(close_b - spec - 1));
        host[close_b - spec - 1] = '\0';
        port = close_b + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host) || colon == spec)
            goto bad;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    if (!*port)
        goto bad;
    for (const char *p = port; *p; p++)
        if (!isdigit((unsigned char)*p))
            goto bad;
    if ((r = getaddrinfo(host, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "listen %s: %s", spec, gai_strerror(r));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 256) != 0) {
        snprintf(err, errlen, "listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    l->fd = fd;
    l->loopback = is_loopback(ai->ai_addr);
    freeaddrinfo(ai);
    return 0;
bad:
    snprintf(err, errlen, "listen \"%s\": not HOST:PORT, [V6ADDR]:PORT or unix:/PATH", spec);
    return -1;
}

int listen_open(const char *list, struct listener **out, size_t *n, char *err, size_t errlen)
{
    char *copy = strdup(list), *save = NULL, *tok;
    struct listener *ls = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (tok = tv_list_next(copy, &save); tok; tok = tv_list_next(NULL, &save)) {
        struct listener *nl = realloc(ls, (cnt + 1) * sizeof(*ls));
        if (!nl) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        ls = nl;
        memset(&ls[cnt], 0, sizeof(ls[cnt]));
        snprintf(ls[cnt].name, sizeof(ls[cnt].name), "%s", tok);
        int r = strncmp(tok, "unix:", 5) == 0 ? open_unix(tok + 5, &ls[cnt], err, errlen)
                                               : open_tcp(tok, &ls[cnt], err, errlen);
        if (r != 0)
            goto fail;
        cnt++;
    }
    free(copy);
    if (cnt == 0) {
        snprintf(err, errlen, "listen: no address");
        free(ls);
        return -1;
    }
    *out = ls;
    *n = cnt;
    return 0;
fail:
    free(copy);
    listen_close(ls, cnt);
    return -1;
}

int listen_systemd(struct listener **out, size_t *n, char *err, size_t errlen)
{
    int k = sd_listen_fds(1);
    struct listener *ls;

    *out = NULL;
    *n = 0;
    if (k < 0) {
        snprintf(err, errlen, "systemd sockets: %s", strerror(-k));
        return -1;
    }
    if (k == 0)
        return 0;
    ls = calloc((size_t)k, sizeof(*ls));
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < k; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ls[i].fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(ls[i].fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
            getsockname(ls[i].fd, (struct sockaddr *)&ss, &sl) != 0) {
            snprintf(err, errlen, "systemd socket %d is not a listening stream socket", ls[i].fd);
            free(ls);
            return -1;
        }
        ls[i].is_unix = ss.ss_family == AF_UNIX;
        ls[i].loopback = is_loopback((struct sockaddr *)&ss);
        snprintf(ls[i].name, sizeof(ls[i].name), "systemd socket %d", ls[i].fd);
    }
    *out = ls;
    *n = (size_t)k;
    return 0;
}

void listen_close(struct listener *l, size_t n)
{
    if (!l)
        return;
    for (size_t i = 0; i < n; i++)
        if (l[i].fd >= 0)
            close(l[i].fd);
    free(l);
}
