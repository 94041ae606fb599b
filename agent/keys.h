/*
 * keys.h - the agent's secrets from keyd: each project's pseudonymisation key
 * (for session and user id hashes) and its upstream API key.
 *
 * Pseudonym keys are cached for the agent's lifetime in sodium_malloc'd
 * memory; API keys are fetched per delivery attempt (so `keyctl apikey-set`
 * takes effect at the next retry) and wiped after use.
 *
 * Development fallback: when the configured keyd socket does not exist at
 * all (a plain directory, no keyd), a random per-project key is kept in
 * STATE_DIR/pseudonym-<project>.key (0600) and a warning is logged; its
 * key_version starts with "local-".  A socket that exists but does not answer
 * is an error (the caller retries): hashes never silently change keys.
 *
 * Lifetime rule: a project's entry, once loaded, has a stable address until
 * keys_free().  The key bytes and the version string that keys_pseudonym()
 * hands out stay valid (same address, same bytes) while documents prepared
 * with them wait to be encoded, however many other projects load their keys
 * meanwhile.  keys_shred() wipes the bytes at once (they read as zeros from
 * then on) but never frees them, so a stale pointer can only hash under a
 * zero key, never read freed memory; callers check keys_shredded() before
 * shipping anything made with them.
 */
#ifndef TV_AGENT_KEYS_H
#define TV_AGENT_KEYS_H

struct keys;
struct tv_config;

int keys_new(const struct tv_config *cfg, struct keys **out);
void keys_free(struct keys *k);

/* PROJECT's pseudonym key (32 bytes, owned by K) and its short version
 * string.  0, or a negative errno (keyd unreachable, project unknown). */
int keys_pseudonym(struct keys *k, const char *project, const unsigned char **key,
                   const char **version);

/* PROJECT was shredded (a keyd SHRED event): wipe its pseudonym key now and
 * remember the shred, so that keys_pseudonym() fails with -EKEYREVOKED and
 * keys_apikey() with -EKEYREVOKED from now on.  Returns 1 if a loaded key was
 * wiped, 0 if none was loaded. */
int keys_shred(struct keys *k, const char *project);

/* 1 if PROJECT was shredded while this agent ran. */
int keys_shredded(const struct keys *k, const char *project);

/* keyd's events (pseudonym_keys = keyd only).  Call keys_events() once per
 * main-loop turn and poll keys_events_fd() (-1: none now) for POLLIN.  It
 * (re)subscribes when due (with backoff while keyd is away), reads what is
 * pending without blocking, and for each SHRED wipes the project's key
 * (keys_shred) and calls FN(ARG, project) so the caller drops its records.
 * Events sent while the agent was not subscribed are lost, so after every
 * (re)subscription each loaded key is asked for again: a project keyd no
 * longer has, or whose key changed, counts as shredded too; so does one
 * whose key or API key keyd refuses with EKEYREVOKED (records queued before
 * a restart).  FN is called once per project, from keys_events only. */
typedef void (*keys_shred_fn)(void *arg, const char *project);
void keys_events(struct keys *k, keys_shred_fn fn, void *arg);
int keys_events_fd(const struct keys *k);

/* PROJECT's API key in a sodium_malloc'd string the caller sodium_free()s.
 * -ENOENT if none is set. */
int keys_apikey(struct keys *k, const char *project, char **key);

/* The last keyd error text (never key bytes). */
const char *keys_error(struct keys *k);

#endif
