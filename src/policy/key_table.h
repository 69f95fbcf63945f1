/* The API keys of every consumer in one open-addressing table, for
 * key_auth: a presented key is hashed with SHA-256 and its digest looked up,
 * compared with CRYPTO_memcmp, so that the time a lookup takes does not say
 * how many bytes of a stored digest a guess got right. */
#ifndef JN_POLICY_KEY_TABLE_H
#define JN_POLICY_KEY_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct jn_key_slot {
    uint8_t digest[32];
    const struct jn_cfg_consumer *consumer; /* borrowed from the snapshot; NULL: empty */
};

struct jn_key_table {
    struct jn_key_slot *slots; /* owned: a power of two of them, at most half full */
    size_t mask;
    size_t nkeys;
};

/* Fills t with the key digests of the n consumers. Returns 0 or JN_ENOMEM
 * (t is then empty but may be freed). A digest held twice (the loader
 * reports it) maps to the first consumer. */
int jn_key_table_init(struct jn_key_table *t, const struct jn_cfg_consumer *consumers, size_t n);
void jn_key_table_free(struct jn_key_table *t);
/* The consumer whose key hashes to digest, or NULL. */
const struct jn_cfg_consumer *jn_key_table_find_digest(const struct jn_key_table *t,
                                                       const uint8_t digest[32]);
/* The consumer whose API key is key[0..len), or NULL. */
const struct jn_cfg_consumer *jn_key_table_find(const struct jn_key_table *t, const char *key,
                                                size_t len);

#endif
