/*
 * test_vault_names.c - name encryption: round trips, determinism per
 * directory, authentication, long names and the backing-name conventions.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sodium.h>

#include "tests/unit/tap.h"
#include "vault/names.h"

int main(void)
{
    struct names_keys k, k2;
    unsigned char key[NAMES_KEY], iv[NAMES_IV], iv2[NAMES_IV];
    char enc[NAMES_ENC_MAX], enc2[NAMES_ENC_MAX], back[NAMES_PLAIN_MAX + 1], bn[NAMES_ENC_MAX];
    char side[NAMES_ENC_MAX];

    if (sodium_init() < 0)
        return 1;
    randombytes_buf(key, sizeof key);
    randombytes_buf(iv, sizeof iv);
    randombytes_buf(iv2, sizeof iv2);
    names_derive(&k, key);
    key[0] ^= 1;
    names_derive(&k2, key);

    const char *name = "user-4411-2026-11-22.json";
    is_int(names_encrypt(&k, iv, name, enc), 0, "encrypt a trace name");
    ok(strstr(enc, "4411") == NULL && strstr(enc, "json") == NULL && strstr(enc, "user") == NULL,
       "the encoding does not contain parts of the name");
    ok(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(enc),
       "the encoding is base64url");
    ok(enc[0] != '.' && enc[0] != NAMES_LONG_PREFIX, "the encoding is not metadata nor long");
    ok(names_decrypt(&k, iv, enc, back) == 0 && strcmp(back, name) == 0, "decrypts back");
    names_encrypt(&k, iv, name, enc2);
    is_str(enc2, enc, "deterministic in one directory");
    names_encrypt(&k, iv2, name, enc2);
    ok(strcmp(enc2, enc) != 0, "differs in another directory");
    is_int(names_decrypt(&k, iv2, enc, back), -EBADMSG, "name moved to another directory fails");
    is_int(names_decrypt(&k2, iv, enc, back), -EBADMSG, "another project's key fails");
    names_encrypt(&k, iv, "user-4411-2026-11-22.jsoo", enc2);
    ok(strncmp(enc, enc2, 22) != 0, "a one-letter change changes the tag (SIV)");
    /* flip each character of the encoding */
    int accepted = 0;
    size_t len = strlen(enc);
    for (size_t i = 0; i < len; i++) {
        char c = enc[i];
        enc[i] = c == 'A' ? 'B' : 'A';
        if (names_decrypt(&k, iv, enc, back) == 0)
            accepted++;
        enc[i] = c;
    }
    is_int(accepted, 0, "every changed character is detected");
    is_int(names_decrypt(&k, iv, "short", back), -EBADMSG, "too short to hold a tag");
    is_int(names_decrypt(&k, iv, "not*base64", back), -EBADMSG, "not base64url");
    is_int(names_decrypt(&k, iv, "", back), -EBADMSG, "empty encoding");

    is_int(names_encrypt(&k, iv, "", enc), -EINVAL, "empty name refused");
    is_int(names_encrypt(&k, iv, "a/b", enc), -EINVAL, "slash refused");
    is_int(names_encrypt(&k, iv, ".", enc), -EINVAL, "dot refused");
    is_int(names_encrypt(&k, iv, "..", enc), -EINVAL, "dot-dot refused");
    is_int(names_encrypt(&k, iv, ".hidden", enc), 0, "a dot-file name is fine");
    ok(enc[0] != '.', "and is not stored as metadata");

    /* lengths around the short/long boundary and the 255 maximum */
    int rt_fail = 0, short_long_wrong = 0;
    for (size_t n = 1; n <= NAMES_PLAIN_MAX; n++) {
        char nm[NAMES_PLAIN_MAX + 1];
        memset(nm, 'a' + (int)(n % 26), n);
        nm[n] = '\0';
        if (names_encrypt(&k, iv, nm, enc) < 0 || names_decrypt(&k, iv, enc, back) < 0 ||
            strcmp(back, nm) != 0)
            rt_fail++;
        int lng = names_backing(enc, bn);
        if (lng != (strlen(enc) > NAMES_SHORT_MAX) || strlen(bn) > 255 ||
            (lng && (bn[0] != NAMES_LONG_PREFIX || strlen(bn) != 44)) || (!lng && strcmp(bn, enc)))
            short_long_wrong++;
    }
    is_int(rt_fail, 0, "names of 1..255 bytes round-trip");
    is_int(short_long_wrong, 0, "short names stored as is, long ones hashed to 44 characters");
    char longname[256];
    memset(longname, 'x', 255);
    longname[255] = '\0';
    names_encrypt(&k, iv, longname, enc);
    is_int(names_backing(enc, bn), 1, "a 255-byte name is long");
    ok(names_is_long(bn), "its backing name is recognised as long");
    names_side(bn, side);
    ok(side[0] == '.' && strlen(side) < 255 && strstr(side, bn) == side + 1 &&
       strcmp(side + strlen(side) - 5, ".name") == 0, "side file is .<backing>.name");
    char toolong[300];
    memset(toolong, 'y', 256);
    toolong[256] = '\0';
    is_int(names_encrypt(&k, iv, toolong, enc), -ENAMETOOLONG, "256-byte name refused");
    /* UTF-8 names */
    const char *u = "r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.jsonl";
    ok(names_encrypt(&k, iv, u, enc) == 0 && names_decrypt(&k, iv, enc, back) == 0 &&
       strcmp(back, u) == 0, "UTF-8 name round-trips");
    return done();
}
