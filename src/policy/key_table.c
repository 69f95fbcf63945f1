/* The API key table: open addressing with linear probing, indexed by the
 * first bytes of the digest (SHA-256 output is uniform, so no other hash is
 * needed). */
#include "policy/key_table.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tls/digest.h"

static size_t slot_of(const uint8_t digest[32], size_t mask)
{
    uint64_t v;
    memcpy(&v, digest, sizeof(v));
    return (size_t)v & mask;
}

int jn_key_table_init(struct jn_key_table *t, const struct jn_cfg_consumer *consumers, size_t n)
{
    size_t nkeys = 0;
    for (size_t i = 0; i < n; i++)
        nkeys += consumers[i].nkeys;
    size_t cap = 8;
    while (cap < 2 * nkeys)
        cap *= 2;
    *t = (struct jn_key_table){ .slots = calloc(cap, sizeof(*t->slots)), .mask = cap - 1 };
    if (t->slots == NULL)
        return JN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < consumers[i].nkeys; k++) {
            const uint8_t *d = consumers[i].key_digests[k];
            if (jn_key_table_find_digest(t, d) != NULL)
                continue;
            size_t at = slot_of(d, t->mask);
            while (t->slots[at].consumer != NULL)
                at = (at + 1) & t->mask;
            memcpy(t->slots[at].digest, d, 32);
            t->slots[at].consumer = &consumers[i];
            t->nkeys++;
        }
    }
    return 0;
}

void jn_key_table_free(struct jn_key_table *t)
{
    free(t->slots);
    *t = (struct jn_key_table){ 0 };
}

const struct jn_cfg_consumer *jn_key_table_find_digest(const struct jn_key_table *t,
                                                       const uint8_t digest[32])
{
    if (t->slots == NULL)
        return NULL;
    for (size_t at = slot_of(digest, t->mask); t->slots[at].consumer != NULL;
         at = (at + 1) & t->mask)
        if (CRYPTO_memcmp(t->slots[at].digest, digest, 32) == 0)
            return t->slots[at].consumer;
    return NULL;
}

const struct jn_cfg_consumer *jn_key_table_find(const struct jn_key_table *t, const char *key,
                                                size_t len)
{
    uint8_t digest[32];
    if (jn_sha256(key, len, digest) != 0)
        return NULL;
    return jn_key_table_find_digest(t, digest);
}
