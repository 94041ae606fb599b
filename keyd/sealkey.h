/*
 * sealkey.h - the keystore's sealing key file, KEYSTORE.seal
 * (docs/KEYD.md "Keystore", "Shredding is final").
 *
 * The keystore is sealed under a random sealing key, not under the master
 * key itself, so that destroying keys can be made final against copies: a
 * re-seal writes a fresh sealing key into the spare slot, saves the
 * keystore under it, and overwrites the old slot.  Whoever holds a copy of
 * the keystore from before, and the master key and .seal file as they are
 * after, holds no key that opens the copy.
 *
 * File: two 128-byte slots, each "TVSK" 0x01 || nonce(24) ||
 * XChaCha20-Poly1305(sealing key (32), AAD = "TVSK" 0x01) || tag(16) under
 * the master key's SEAL_SUB_SEALKEY subkey, zero-padded; a wiped slot is
 * random bytes.  Slots are overwritten in place (never by rename), so the
 * old key's blocks are rewritten rather than left to the allocator.
 *
 * Functions return 0 or a negative errno; keys are in caller-owned guarded
 * memory (SEAL_KEY_LEN bytes).
 */
#ifndef TV_KEYD_SEALKEY_H
#define TV_KEYD_SEALKEY_H

#define SK_SLOTS 2

/* Open the slots of PATH under WRAP (the SEAL_SUB_SEALKEY subkey): KEYS[i]
 * receives slot i's key and FOUND[i] is set if it authenticates.  Returns
 * the number found, -ENOENT if PATH does not exist, -EPERM if it gives
 * access to group or others, or another -errno. */
int sk_read(const char *path, const unsigned char *wrap, unsigned char *keys[SK_SLOTS],
            int found[SK_SLOTS]);

/* Seal KEY under WRAP into SLOT of PATH (created 0600, with its directory
 * fsync'd, if missing) and fdatasync it. */
int sk_write(const char *path, const unsigned char *wrap, int slot, const unsigned char *key);

/* Overwrite SLOT of PATH with random bytes and fdatasync: the key that was
 * there is gone. */
int sk_wipe(const char *path, int slot);

#endif
