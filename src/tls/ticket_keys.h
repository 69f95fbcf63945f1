/* Session ticket keys of a TLS listener: a small ring shared by every worker
 * thread. The newest key encrypts new tickets; the older ones still decrypt
 * (and the ticket is renewed); a key rotated out of the ring decrypts
 * nothing, so its tickets fall back to a full handshake. See docs/tls.md. */
#ifndef JN_TLS_TICKET_KEYS_H
#define JN_TLS_TICKET_KEYS_H

#include <stdint.h>

/* Keys in the ring: the current one and the two before it. */
#define JN_TICKET_KEYS 3

/* One key: the name a ticket carries in clear, and its secrets. */
struct jn_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];  /* AES-256-CBC */
    unsigned char hmac[32]; /* HMAC-SHA256 */
};

enum jn_ticket_match {
    JN_TICKET_UNKNOWN = 0, /* no key of that name: full handshake */
    JN_TICKET_CURRENT = 1, /* the newest key */
    JN_TICKET_RENEW = 2,   /* an older key of the ring: accept, issue a new ticket */
};

struct jn_ticket_keys;

/* A ring of fresh random keys that rotates every interval_ms (> 0), the
 * clock being the caller's (milliseconds, monotonic) with now_ms its value
 * at start. Returns NULL when out of memory or without randomness. */
struct jn_ticket_keys *jn_ticket_keys_new(uint64_t interval_ms, uint64_t now_ms);
/* Zeroes every key and frees the ring. NULL is fine. */
void jn_ticket_keys_free(struct jn_ticket_keys *k);
/* Copies the key that encrypts new tickets at now_ms into *out, rotating the
 * ring first when rotation is due (each interval passed since the last
 * rotation moves the ring one step). Thread-safe; the caller zeroes *out
 * after use. Returns 0, or JN_EIO when no random key could be made. */
int jn_ticket_keys_current(struct jn_ticket_keys *k, uint64_t now_ms, struct jn_ticket_key *out);
/* Finds the key named name at now_ms (rotating first when due) and copies it
 * into *out unless the answer is JN_TICKET_UNKNOWN. Thread-safe. */
enum jn_ticket_match jn_ticket_keys_find(struct jn_ticket_keys *k, const unsigned char name[16],
                                         uint64_t now_ms, struct jn_ticket_key *out);

#endif
