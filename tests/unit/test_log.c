/*
 * test_log.c - log output is one line per call whatever the message holds:
 * names chosen by trace writers (newlines, escapes, terminal sequences)
 * cannot forge log lines.
 */
#include "config.h"
#include "lib/log.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char out[64];
    int pfd[2];
    char buf[4096];

    plan(10);
    log_escape(out, sizeof(out), "plain name.json");
    is_str(out, "plain name.json", "printable text is unchanged");
    log_escape(out, sizeof(out), "a\nb\rc\td");
    is_str(out, "a\\nb\\rc\\td", "newline, CR and tab are escaped");
    log_escape(out, sizeof(out), "\x1b[31mred\x7f");
    is_str(out, "\\x1b[31mred\\x7f", "ESC and DEL are escaped");
    log_escape(out, sizeof(out), "back\\nslash");
    is_str(out, "back\\\\nslash", "a literal backslash is doubled, so escapes cannot be forged");
    log_escape(out, sizeof(out), "caf\xc3\xa9");
    is_str(out, "caf\xc3\xa9", "UTF-8 passes unchanged");
    is_int(log_escape(out, 6, "\n\n\n\n"), 4, "an escape is never cut in half at the end");
    is_str(out, "\\n\\n", "... only whole escapes are kept");

    /* Through the logger: stderr into a pipe. */
    if (pipe(pfd) != 0 || dup2(pfd[1], STDERR_FILENO) < 0)
        return 1;
    log_init("test_log", 0, LOG_LVL_INFO);
    log_warn("file \"%s\": malformed", "x\ntracevault-agent: error: FORGED.json");
    close(pfd[1]);
    close(STDERR_FILENO);
    ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    ok(nl && nl[1] == '\0', "one call, exactly one line: %s", buf);
    ok(strstr(buf, "x\\ntracevault-agent: error: FORGED.json") != NULL, "the name is shown escaped");
    ok(strncmp(buf, "test_log: warning: ", 19) == 0, "prefix intact");
    return done();
}
