/*
 * test_vault_audit.c - the vault audit log: one well-formed JSON line per
 * record with the required fields, errno names, no interleaving under
 * concurrent writers, and hostile strings neutralised.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/tap.h"
#include "vault/audit.h"

int main(void)
{
    char dir[] = "/tmp/tv-audit.XXXXXX", path[256], *buf = NULL;
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/a.log", dir);
    is_int(audit_open(path), 0, "audit log opens");
    audit_log(1001, 42, "checkout", "open", 0, "00112233445566778899aabbccddeeff", NULL);
    audit_log(1002, 43, "checkout", "read", -EACCES, NULL, "denied");
    audit_log(0, 0, "checkout", "integrity", -EIO, NULL, "block");
    audit_log(5, 6, "bad\"proj\\\n", "open", 0, NULL, NULL);
    /* concurrent writers: 4 processes x 500 records */
    for (int c = 0; c < 4; c++) {
        if (fork() == 0) {
            for (int i = 0; i < 500; i++)
                audit_log((uid_t)(100 + c), getpid(), "p", "open", 0, NULL, NULL);
            _exit(0);
        }
    }
    for (int c = 0; c < 4; c++)
        wait(NULL);
    audit_close();

    FILE *f = fopen(path, "r");
    size_t cap = 0;
    int lines = 0, wellformed = 0;
    char first[512] = "", second[512] = "", third[512] = "", fourth[512] = "";
    while (f && getline(&buf, &cap, f) > 0) {
        lines++;
        size_t l = strlen(buf);
        if (buf[0] == '{' && l > 2 && buf[l - 2] == '}' && buf[l - 1] == '\n' &&
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
    is_int(wellformed, 2004, "every line is a JSON object with time, uid, pid, project, op, result");
    ok(strstr(first, "\"uid\":1001,\"pid\":42,\"project\":\"checkout\",\"op\":\"open\",\"result\":\"ok\"") &&
       strstr(first, "\"file_id\":\"00112233445566778899aabbccddeeff\""), "success record");
    ok(strstr(second, "\"result\":\"EACCES\"") && strstr(second, "\"detail\":\"denied\""),
       "denial record names the errno");
    ok(strstr(third, "\"op\":\"integrity\",\"result\":\"EIO\""), "integrity record");
    ok(strstr(fourth, "\"project\":\"bad?proj??\"") != NULL, "quotes, backslashes and newlines are neutralised");
    char eb[16];
    is_str(audit_errname(EIO, eb), "EIO", "errno name");
    is_str(audit_errname(9999, eb), "E9999", "unknown errno");
    free(buf);
    unlink(path);
    rmdir(dir);
    return done();
}
