/*
 * test_vault_audit.c - the vault audit log: one JSON object per line with the
 * required fields and errno names, chained and verified (a flipped byte and
 * a cut tail are caught), no lost or merged records under concurrent FUSE
 * threads, hostile strings neutralised, fail-closed writes (audit_log
 * returns -EIO when the log cannot grow, and the log still verifies), a
 * flood of denials costing bounded disk (one full record plus one summary
 * per uid and interval, with the exact count), and rotation on reopen.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/util.h"
#include "tests/unit/tap.h"
#include "vault/audit.h"

static unsigned char key[AUDIT_MAC_LEN];
static char path[256], err[512];

static void *writer(void *arg)
{
    uid_t uid = (uid_t)(uintptr_t)arg;
    for (int i = 0; i < 500; i++)
        audit_log(uid, (pid_t)uid, "p", "open", 0, NULL, NULL);
    return NULL;
}

static int verify(void)
{
    struct audit_scan sc;
    const char *p = path;
    memset(&sc, 0, sizeof sc);
    return vault_audit_verify(&p, 1, key, &sc, err, sizeof err);
}

static int count(const char *needle)
{
    char *b = NULL, *p;
    size_t len;
    int n = 0;
    if (tv_read_file(path, 1 << 26, &b, &len) != 0)
        return -1;
    for (p = b; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(b);
    return n;
}

int main(void)
{
    char dir[] = "/tmp/tv-vaudit.XXXXXX", *buf = NULL, rotated[300];
    pthread_t t[4];

    plan(21);
    signal(SIGXFSZ, SIG_IGN);
    if (sodium_init() < 0 || !mkdtemp(dir))
        return 1;
    randombytes_buf(key, sizeof key);
    snprintf(path, sizeof path, "%s/a.log", dir);
    is_int(vault_audit_open(path, key, 0, err, sizeof err), 0, "audit log opens");
    is_int(audit_log(1001, 42, "checkout", "open", 0, "00112233445566778899aabbccddeeff", NULL),
           0, "a record is written");
    audit_log(1002, 43, "checkout", "read", -EACCES, NULL, "denied");
    audit_log(0, 0, "checkout", "integrity", -EIO, NULL, "block");
    audit_log(5, 6, "bad\"proj\\\n", "open", 0, NULL, NULL);
    /* concurrent FUSE threads: 4 x 500 records */
    for (int c = 0; c < 4; c++)
        pthread_create(&t[c], NULL, writer, (void *)(uintptr_t)(100 + c));
    for (int c = 0; c < 4; c++)
        pthread_join(t[c], NULL);
    vault_audit_close();

    FILE *f = fopen(path, "r");
    size_t cap = 0;
    int lines = 0, wellformed = 0;
    char first[512] = "", second[512] = "", third[512] = "", fourth[512] = "";
    while (f && getline(&buf, &cap, f) > 0) {
        lines++;
        size_t l = strlen(buf);
        if (buf[0] == '{' && l > 2 && buf[l - 2] == '}' && buf[l - 1] == '\n' &&
            strstr(buf, "{\"seq\":") == buf && strstr(buf, ",\"mac\":\"") &&
            strstr(buf, "\"time\":\"") && strstr(buf, "\"uid\":") && strstr(buf, "\"pid\":") &&
            strstr(buf, "\"project\":") && strstr(buf, "\"op\":") && strstr(buf, "\"result\":"))
            wellformed++;
        if (lines == 1) snprintf(first, sizeof first, "%s", buf);
        if (lines == 2) snprintf(second, sizeof second, "%s", buf);
        if (lines == 3) snprintf(third, sizeof third, "%s", buf);
        if (lines == 4) snprintf(fourth, sizeof fourth, "%s", buf);
    }
    if (f)
        fclose(f);
    is_int(lines, 2004, "one line per record, none lost or merged");
    is_int(wellformed, 2004, "every line is a JSON object with seq, time, uid, pid, project, op, result, mac");
    ok(strstr(first, "{\"seq\":1,") &&
       strstr(first, "\"uid\":1001,\"pid\":42,\"project\":\"checkout\",\"op\":\"open\",\"result\":\"ok\"") &&
       strstr(first, "\"file_id\":\"00112233445566778899aabbccddeeff\""), "success record");
    ok(strstr(second, "\"result\":\"EACCES\"") && strstr(second, "\"detail\":\"denied\""),
       "denial record names the errno (aggregation off)");
    ok(strstr(third, "\"op\":\"integrity\",\"result\":\"EIO\""), "integrity record");
    ok(strstr(fourth, "\"project\":\"bad?proj??\"") != NULL, "quotes, backslashes and newlines are neutralised");
    char eb[16];
    is_str(audit_errname(EIO, eb), "EIO", "errno name");
    is_str(audit_errname(9999, eb), "E9999", "unknown errno");
    is_int(verify(), 0, "the log verifies");
    {
        char *b;
        size_t len;
        tv_read_file(path, 1 << 26, &b, &len);
        b[len / 2] ^= 1;
        FILE *w = fopen(path, "w");
        fwrite(b, 1, len, w);
        fclose(w);
        is_int(verify(), -EBADMSG, "a flipped byte is detected");
        b[len / 2] ^= 1;
        /* Cut at a record boundary, so what is left is a valid chain. */
        size_t keep = (size_t)((char *)memrchr(b, '\n', len - 200) - b) + 1;
        w = fopen(path, "w");
        fwrite(b, 1, keep, w);
        fclose(w);
        ok(verify() == -EBADMSG && strstr(err, "cut from the end"), "a cut tail is detected");
        is_int(vault_audit_open(path, key, 0, err, sizeof err), -EBADMSG,
               "the vault refuses to append to a cut log (fail closed)");
        w = fopen(path, "w");
        fwrite(b, 1, len, w);
        fclose(w);
        free(b);
    }

    /* Fail closed: the log cannot grow (RLIMIT_FSIZE). */
    is_int(vault_audit_open(path, key, 0, err, sizeof err), 0, "reopened after repair");
    struct rlimit rl, small;
    getrlimit(RLIMIT_FSIZE, &rl);
    small = rl;
    small.rlim_cur = 1;
    setrlimit(RLIMIT_FSIZE, &small);
    is_int(audit_log(7, 7, "p", "open", 0, NULL, NULL), -EIO,
           "a record that cannot be written fails with -EIO");
    setrlimit(RLIMIT_FSIZE, &rl);
    is_int(audit_log(7, 7, "p", "open", 0, NULL, "after"), 0, "then records work again");
    vault_audit_close();
    ok(verify() == 0 && count("\"detail\":\"after\"") == 1, "no partial record left behind");

    /* A flood of denials: bounded records, exact count. */
    unlink(path);
    snprintf(rotated, sizeof rotated, "%s.head", path);
    unlink(rotated);
    vault_audit_open(path, key, 1, err, sizeof err);
    for (int i = 0; i < 5000; i++)
        audit_log(2001, 9, "p", "getattr", -EACCES, NULL, "denied");
    usleep(1600 * 1000);              /* the interval ends; the summary is written */
    ok(count("\"detail\":\"denied\"") == 1 && count("\"op\":\"denied-summary\"") == 1 &&
       count("\"count\":4999,") == 1, "5000 denials: one full record and one summary counting 4999");

    /* Rotation. */
    snprintf(rotated, sizeof rotated, "%s/a.log.1", dir);
    rename(path, rotated);
    is_int(audit_reopen(path), 0, "reopen after rotation");
    audit_log(1, 1, "p", "open", 0, NULL, NULL);
    vault_audit_close();
    {
        struct audit_scan sc;
        const char *both[] = { rotated, path };
        memset(&sc, 0, sizeof sc);
        ok(count("\"op\":\"log-continues\"") == 1 && verify() == 0 &&
           vault_audit_verify(both, 2, key, &sc, err, sizeof err) == 0 && sc.records == 4,
           "the new file continues the chain: alone and with the rotated file it verifies");
    }
    free(buf);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return done();
}
