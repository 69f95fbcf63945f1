/* The ring of session ticket keys of a TLS listener (ticket_keys.h). Rotation
 * is lazy: the handshake that finds it due does it, against the clock, so no
 * thread or timer is needed; the random bytes are drawn before the lock is
 * taken, and readers hold it only to copy 80 bytes. */
#include "tls/ticket_keys.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

struct jn_ticket_keys {
    pthread_rwlock_t lock;
    struct jn_ticket_key ring[JN_TICKET_KEYS]; /* ring[newest] encrypts; the others decrypt */
    unsigned newest;
    uint64_t interval;              /* ms */
    _Atomic uint64_t next_rotation; /* ms, caller's clock: when the newest key steps back */
};

struct jn_ticket_keys *jn_ticket_keys_new(uint64_t interval_ms, uint64_t now_ms)
{
    struct jn_ticket_keys *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    /* Every slot gets a random key at once: a name nobody has seen matches no
     * ticket, so the older slots behave as empty until rotations fill them. */
    if (interval_ms == 0 || RAND_bytes((unsigned char *)k->ring, sizeof(k->ring)) != 1 ||
        pthread_rwlock_init(&k->lock, NULL) != 0) {
        OPENSSL_cleanse(k->ring, sizeof(k->ring));
        free(k);
        return NULL;
    }
    k->interval = interval_ms;
    atomic_init(&k->next_rotation, now_ms + interval_ms);
    return k;
}

void jn_ticket_keys_free(struct jn_ticket_keys *k)
{
    if (k == NULL)
        return;
    pthread_rwlock_destroy(&k->lock);
    OPENSSL_cleanse(k->ring, sizeof(k->ring));
    free(k);
}

/* Rotations due at now: one per interval passed since the newest key became
 * current, at most the whole ring. 0 when none is due. */
static uint64_t steps_due(const struct jn_ticket_keys *k, uint64_t due, uint64_t now)
{
    return now < due ? 0 : (now - due) / k->interval + 1;
}

/* Returns 0 (rotated, or nothing was due) or JN_EIO (no random bytes: the
 * ring is left as it was). */
static int rotate_if_due(struct jn_ticket_keys *k, uint64_t now)
{
    uint64_t steps =
        steps_due(k, atomic_load_explicit(&k->next_rotation, memory_order_acquire), now);
    if (steps == 0)
        return 0;
    struct jn_ticket_key fresh[JN_TICKET_KEYS];
    size_t nfresh = steps < JN_TICKET_KEYS ? (size_t)steps : JN_TICKET_KEYS;
    if (RAND_bytes((unsigned char *)fresh, (int)(nfresh * sizeof(fresh[0]))) != 1)
        return JN_EIO;
    pthread_rwlock_wrlock(&k->lock);
    /* Another thread may have rotated while the bytes were drawn. */
    uint64_t due = atomic_load_explicit(&k->next_rotation, memory_order_relaxed);
    steps = steps_due(k, due, now);
    for (uint64_t i = 0; i < steps && i < nfresh; i++) {
        k->newest = (k->newest + 1) % JN_TICKET_KEYS;
        k->ring[k->newest] = fresh[i];
    }
    if (steps > 0)
        atomic_store_explicit(&k->next_rotation, due + steps * k->interval, memory_order_release);
    pthread_rwlock_unlock(&k->lock);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return 0;
}

int jn_ticket_keys_current(struct jn_ticket_keys *k, uint64_t now_ms, struct jn_ticket_key *out)
{
    if (rotate_if_due(k, now_ms) != 0)
        return JN_EIO;
    pthread_rwlock_rdlock(&k->lock);
    *out = k->ring[k->newest];
    pthread_rwlock_unlock(&k->lock);
    return 0;
}

enum jn_ticket_match jn_ticket_keys_find(struct jn_ticket_keys *k, const unsigned char name[16],
                                         uint64_t now_ms, struct jn_ticket_key *out)
{
    /* A ring that could not rotate might still hold a key that should be
     * gone: refuse every ticket rather than accept one too old. */
    if (rotate_if_due(k, now_ms) != 0)
        return JN_TICKET_UNKNOWN;
    enum jn_ticket_match m = JN_TICKET_UNKNOWN;
    pthread_rwlock_rdlock(&k->lock);
    for (unsigned i = 0; i < JN_TICKET_KEYS; i++) {
        if (memcmp(k->ring[i].name, name, sizeof(k->ring[i].name)) == 0) {
            *out = k->ring[i];
            m = i == k->newest ? JN_TICKET_CURRENT : JN_TICKET_RENEW;
            break;
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return m;
}
