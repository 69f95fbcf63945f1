/* basic_auth: names the consumer by `Authorization: Basic` (RFC 7617)
 * against the consumers' bcrypt hashes. bcrypt costs milliseconds by
 * design, so the check runs on the offload pool while the stream waits
 * paused; right credentials are then remembered for cache_ttl, keyed by a
 * salted SHA-256 of username and password, so that a client sending them
 * on every request pays bcrypt once. */
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/load.h"
#include "core/log.h"
#include "core/offload.h"
#include "http/h1/h1_server.h"
#include "http/stream.h"
#include "policy/chain.h"
#include "tls/digest.h"

#define CACHE_WAYS 4         /* entries per set: a new one replaces the one closest to expiry */
#define CACHE_STRIPES 16     /* locks, each guarding every 16th set */
#define MAX_CREDENTIALS 4096 /* decoded user:password bytes */

struct cache_entry {
    uint8_t key[32];
    const struct jn_cfg_consumer *consumer; /* borrowed from the snapshot; NULL: empty */
    uint64_t expires;                       /* ms, loop clock */
};

/* Shared by every worker thread serving the snapshot. */
struct basic_cache {
    struct cache_entry *entries; /* owned: nsets * CACHE_WAYS */
    size_t set_mask;
    pthread_mutex_t locks[CACHE_STRIPES];
    bool locks_made;
};

struct basic_auth {
    char *realm;
    char *challenge; /* the WWW-Authenticate value */
    bool hide_credentials;
    uint64_t cache_ttl; /* ms; 0: no cache */
    uint32_t cache_size;
    uint32_t max_pending; /* checks queued or running at once; more: 503 */
    _Atomic uint32_t pending;
    const struct jn_cfg_consumer *consumers; /* borrowed from the snapshot */
    size_t nconsumers;
    /* A hash an unknown username is checked against, so that the answer
     * takes as long as for a known one: the costliest consumer's. */
    const char *decoy;
    uint8_t salt[16]; /* of the cache keys */
    struct basic_cache cache;
};

/* ---- configuration ---- */

static void set_realm(struct jn_ld *ld, const struct jn_ld_key *key, yaml_node_t *value, void *obj)
{
    struct basic_auth *b = obj;
    char *s = jn_ld_nonempty(ld, value, key->name, "a realm name");
    if (s == NULL)
        return;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') {
            jn_ld_error(ld, value, "realm: %s must be printable ASCII without '\"' or '\\'",
                        jn_ld_quote(ld, s, strlen(s)));
            return;
        }
    }
    if (strlen(s) > 128) {
        jn_ld_error(ld, value, "realm: at most 128 characters");
        return;
    }
    b->realm = s;
}

static const struct jn_ld_key keys[] = {
    JN_LD_KEY("realm", set_realm, 0),
    JN_LD_KEY("hide_credentials", jn_ld_set_bool, offsetof(struct basic_auth, hide_credentials)),
    JN_LD_NUM("cache_ttl", jn_ld_set_duration, offsetof(struct basic_auth, cache_ttl), 0,
              24 * 3600 * 1000),
    JN_LD_NUM("cache_size", jn_ld_set_u32, offsetof(struct basic_auth, cache_size), 1, 1 << 20),
    JN_LD_NUM("max_pending_checks", jn_ld_set_u32, offsetof(struct basic_auth, max_pending), 1,
              1 << 20),
};
static const struct jn_ld_table table = JN_LD_TABLE("basic_auth", keys);

static void free_conf(void *conf)
{
    struct basic_auth *b = conf;
    if (b->cache.locks_made)
        for (size_t i = 0; i < CACHE_STRIPES; i++)
            pthread_mutex_destroy(&b->cache.locks[i]);
    free(b->cache.entries);
}

static int cache_init(struct basic_cache *c, uint32_t size)
{
    size_t nsets = 1;
    while (nsets * CACHE_WAYS < size)
        nsets *= 2;
    c->entries = calloc(nsets * CACHE_WAYS, sizeof(*c->entries));
    if (c->entries == NULL)
        return JN_ENOMEM;
    c->set_mask = nsets - 1;
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    c->locks_made = true;
    return 0;
}

static unsigned bcrypt_cost(const char *hash)
{
    /* "$2y$12$...": the loader checked the prefix and the length. */
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9')
        return 0;
    return (unsigned)(hash[4] - '0') * 10 + (unsigned)(hash[5] - '0');
}

static void *parse(struct jn_ld *ld, yaml_node_t *value)
{
    struct basic_auth *b = jn_ld_calloc(ld, 1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->realm = "junction";
    b->hide_credentials = true;
    b->cache_ttl = 5 * 60 * 1000;
    b->cache_size = 1024;
    size_t before = ld->nerrors;
    if (!jn_ld_is_null(value) && !jn_ld_map(ld, value, &table, b, NULL))
        return NULL;
    if (ld->nerrors != before)
        return NULL;
    size_t cap = strlen(b->realm) + 48;
    b->challenge = jn_ld_calloc(ld, 1, cap);
    if (b->challenge == NULL)
        return NULL;
    snprintf(b->challenge, cap, "Basic realm=\"%s\", charset=\"UTF-8\"", b->realm);
    if (b->max_pending == 0) {
        /* 64 per offload thread, which are as many as the workers. */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        uint32_t workers = ld->cfg->workers > 0 ? ld->cfg->workers : cores > 0 ? (uint32_t)cores : 1;
        b->max_pending = 64 * JN_MIN(workers, 16u);
    }
    b->consumers = ld->cfg->consumers;
    b->nconsumers = ld->cfg->nconsumers;
    for (size_t i = 0; i < b->nconsumers; i++) {
        const char *h = b->consumers[i].basic_password_hash;
        if (h != NULL && (b->decoy == NULL || bcrypt_cost(h) > bcrypt_cost(b->decoy)))
            b->decoy = h;
    }
    if (RAND_bytes(b->salt, sizeof(b->salt)) != 1 ||
        (b->cache_ttl > 0 && cache_init(&b->cache, b->cache_size) != 0)) {
        free_conf(b);
        jn_ld_oom(ld);
        return NULL;
    }
    return b;
}

/* ---- the cache of right credentials ---- */

/* SHA-256 of salt, user, NUL, password. Returns 0 or JN_ENOMEM. */
static int cache_key(struct jn_stream *s, const struct basic_auth *b, struct jn_slice user,
                     struct jn_slice password, uint8_t key[32])
{
    size_t len = sizeof(b->salt) + user.len + 1 + password.len;
    unsigned char *in = jn_arena_alloc(&s->arena, len);
    if (in == NULL)
        return JN_ENOMEM;
    memcpy(in, b->salt, sizeof(b->salt));
    memcpy(in + sizeof(b->salt), user.ptr, user.len);
    in[sizeof(b->salt) + user.len] = '\0';
    memcpy(in + sizeof(b->salt) + user.len + 1, password.ptr, password.len);
    int rc = jn_sha256(in, len, key);
    OPENSSL_cleanse(in, len);
    return rc;
}

static size_t cache_set(const struct basic_cache *c, const uint8_t key[32])
{
    uint64_t v;
    memcpy(&v, key, sizeof(v));
    return (size_t)v & c->set_mask;
}

/* Every way of the set is compared, in constant time, whatever matches. */
static const struct jn_cfg_consumer *cache_get(struct basic_auth *b, const uint8_t key[32],
                                               uint64_t now)
{
    struct basic_cache *c = &b->cache;
    if (c->entries == NULL)
        return NULL;
    size_t set = cache_set(c, key);
    const struct jn_cfg_consumer *found = NULL;
    pthread_mutex_lock(&c->locks[set % CACHE_STRIPES]);
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        const struct cache_entry *e = &c->entries[set * CACHE_WAYS + i];
        bool same = CRYPTO_memcmp(e->key, key, 32) == 0;
        if (same && e->consumer != NULL && e->expires > now)
            found = e->consumer;
    }
    pthread_mutex_unlock(&c->locks[set % CACHE_STRIPES]);
    return found;
}

static void cache_put(struct basic_auth *b, const uint8_t key[32],
                      const struct jn_cfg_consumer *consumer, uint64_t now)
{
    struct basic_cache *c = &b->cache;
    if (c->entries == NULL)
        return;
    size_t set = cache_set(c, key);
    pthread_mutex_lock(&c->locks[set % CACHE_STRIPES]);
    struct cache_entry *ways = &c->entries[set * CACHE_WAYS], *victim = &ways[0];
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (memcmp(ways[i].key, key, 32) == 0 || ways[i].consumer == NULL) {
            victim = &ways[i];
            break;
        }
        if (ways[i].expires < victim->expires)
            victim = &ways[i];
    }
    memcpy(victim->key, key, 32);
    victim->consumer = consumer;
    victim->expires = now + b->cache_ttl;
    pthread_mutex_unlock(&c->locks[set % CACHE_STRIPES]);
}

/* ---- the bcrypt check, on the offload pool ---- */

struct basic_check {
    struct jn_task task;                    /* first: the pool hands it back */
    atomic_bool cancelled;                  /* the stream ended: skip bcrypt */
    struct jn_stream *s;                    /* NULL once the stream ended (cancel) */
    void **state;                           /* the stream's slot, which points here */
    struct basic_auth *conf;                /* read in done only while s lives */
    const struct jn_cfg_consumer *consumer; /* NULL: an unknown user, checked for time only */
    uint8_t key[32];
    bool ok;
    char hash[61];
    size_t password_len;
    char password[]; /* NUL-terminated */
};

static void check_free(struct basic_check *c)
{
    OPENSSL_cleanse(c->password, c->password_len);
    free(c);
}

static void check_work(struct jn_task *t)
{
    struct basic_check *c = (struct basic_check *)t;
    if (atomic_load(&c->cancelled)) {
        jn_log(JN_LOG_DEBUG, "basic_auth: the client left, bcrypt skipped");
        return;
    }
    /* crypt_rn's work area (32 KiB) exists only while a check runs, so a
     * queued check holds a few hundred bytes. */
    struct crypt_data *data = malloc(sizeof(*data));
    if (data == NULL)
        return;
    memset(data, 0, sizeof(*data));
    const char *out = crypt_rn(c->password, c->hash, data, (int)sizeof(*data));
    size_t len = strlen(c->hash);
    bool same = out != NULL && strlen(out) == len && CRYPTO_memcmp(out, c->hash, len) == 0;
    c->ok = same && c->consumer != NULL;
    OPENSSL_cleanse(data, sizeof(*data));
    free(data);
}

static const struct jn_http_field retry_after[] = {
    { JN_SLICE_LIT("Retry-After"), JN_SLICE_LIT("1") },
};

static const struct jn_http_field *challenge(const struct basic_auth *b, struct jn_http_field *f)
{
    *f = (struct jn_http_field){ JN_SLICE_LIT("WWW-Authenticate"),
                                 { b->challenge, strlen(b->challenge) } };
    return f;
}

/* On the stream's worker thread. */
static void check_done(struct jn_task *t)
{
    struct basic_check *c = (struct basic_check *)t;
    struct jn_stream *s = c->s;
    if (s != NULL) {
        *c->state = NULL;
        atomic_fetch_sub(&c->conf->pending, 1);
        if (c->task.skipped) {
            jn_policy_reject(s, 503, "shutting down", retry_after, 1);
        } else if (c->ok) {
            cache_put(c->conf, c->key, c->consumer, jn_loop_now(t->loop));
            s->consumer = c->consumer;
        } else {
            struct jn_http_field f;
            jn_policy_reject(s, 401, "invalid credentials", challenge(c->conf, &f), 1);
        }
        jn_chain_resume(s);
    }
    check_free(c);
}

static void cancel(struct jn_stream *s, void *conf, void **state)
{
    (void)s;
    struct basic_auth *b = conf;
    struct basic_check *c = *state;
    if (c != NULL) {
        atomic_store(&c->cancelled, true);
        c->s = NULL; /* its done frees it */
        atomic_fetch_sub(&b->pending, 1);
    }
    *state = NULL;
}

/* ---- the request ---- */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Strict base64 (padding optional). Returns the decoded length, or -1. */
static long b64_decode(struct jn_slice in, char *out)
{
    size_t len = in.len;
    for (int pad = 0; pad < 2 && len > 0 && in.ptr[len - 1] == '='; pad++)
        len--;
    if (len % 4 == 1 || (len != in.len && in.len % 4 != 0))
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in.ptr[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[n++] = (char)(acc >> 16);
            out[n++] = (char)(acc >> 8);
            out[n++] = (char)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        out[n++] = (char)(acc >> 4);
    } else if (len % 4 == 3) {
        out[n++] = (char)(acc >> 10);
        out[n++] = (char)(acc >> 2);
    }
    return (long)n;
}

/* "Basic <token68>" decoded into user and password (views into s->arena).
 * Returns 1 when parsed, 0 when the field holds no Basic credentials
 * (missing, another scheme), -1 when they are malformed. */
static int read_credentials(struct jn_stream *s, struct jn_slice v, struct jn_slice *user,
                            struct jn_slice *password)
{
    if (v.len < 6 || !jn_slice_ieq((struct jn_slice){ v.ptr, 5 }, "basic") ||
        (v.ptr[5] != ' ' && v.ptr[5] != '\t'))
        return 0;
    size_t at = 5;
    while (at < v.len && (v.ptr[at] == ' ' || v.ptr[at] == '\t'))
        at++;
    struct jn_slice token = { v.ptr + at, v.len - at };
    if (token.len == 0 || token.len / 4 * 3 > MAX_CREDENTIALS)
        return -1;
    char *out = jn_arena_alloc(&s->arena, token.len / 4 * 3 + 3);
    long n = out != NULL ? b64_decode(token, out) : -1;
    const char *colon = n > 0 ? memchr(out, ':', (size_t)n) : NULL;
    if (colon == NULL)
        return -1;
    *user = (struct jn_slice){ out, (size_t)(colon - out) };
    *password = (struct jn_slice){ colon + 1, (size_t)n - user->len - 1 };
    return 1;
}

static const struct jn_cfg_consumer *find_user(const struct basic_auth *b, struct jn_slice user)
{
    for (size_t i = 0; i < b->nconsumers; i++) {
        const char *u = b->consumers[i].basic_username;
        if (u != NULL && strlen(u) == user.len && memcmp(u, user.ptr, user.len) == 0)
            return &b->consumers[i];
    }
    return NULL;
}

static enum jn_filter_verdict start_check(struct jn_stream *s, struct basic_auth *b, void **state,
                                          const struct jn_cfg_consumer *consumer,
                                          struct jn_slice password, const uint8_t key[32])
{
    /* A burst of logins (wrong ones cost a bcrypt each) must not queue
     * seconds of work ahead of the next right one: refused at once. */
    if (atomic_fetch_add(&b->pending, 1) >= b->max_pending) {
        atomic_fetch_sub(&b->pending, 1);
        jn_log(JN_LOG_DEBUG, "basic_auth: %u checks pending, refused", b->max_pending);
        return jn_policy_reject(s, 503, "too many authentication checks", retry_after, 1);
    }
    struct basic_check *c = calloc(1, sizeof(*c) + password.len + 1);
    if (c == NULL) {
        atomic_fetch_sub(&b->pending, 1);
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    }
    atomic_init(&c->cancelled, false);
    c->task.work = check_work;
    c->task.done = check_done;
    c->task.loop = &s->client->worker->loop;
    c->s = s;
    c->state = state;
    c->conf = b;
    c->consumer = consumer;
    memcpy(c->key, key, 32);
    const char *hash = consumer != NULL ? consumer->basic_password_hash : b->decoy;
    snprintf(c->hash, sizeof(c->hash), "%s", hash);
    memcpy(c->password, password.ptr, password.len);
    c->password_len = password.len;
    *state = c;
    jn_offload(&c->task);
    return JN_FILTER_PAUSE;
}

static enum jn_filter_verdict on_request(struct jn_stream *s, struct jn_fields *fields, void *conf,
                                         void **state)
{
    struct basic_auth *b = conf;
    struct jn_http_field f;
    struct jn_slice user, password;
    int rc = read_credentials(s, jn_http_field_get(fields->v, fields->n, "authorization"), &user,
                              &password);
    if (rc == 0)
        return jn_policy_reject(s, 401, "authentication required", challenge(b, &f), 1);
    if (b->hide_credentials)
        jn_fields_remove(fields, "authorization");
    const struct jn_cfg_consumer *consumer = rc > 0 ? find_user(b, user) : NULL;
    /* A NUL would end the password crypt(3) sees: never a right one. */
    if (rc < 0 || memchr(password.ptr, '\0', password.len) != NULL ||
        (consumer == NULL && b->decoy == NULL))
        return jn_policy_reject(s, 401, "invalid credentials", challenge(b, &f), 1);
    uint8_t key[32];
    if (cache_key(s, b, user, password, key) != 0)
        return jn_policy_reject(s, 500, "out of memory", NULL, 0);
    const struct jn_cfg_consumer *cached = cache_get(b, key, jn_loop_now(&s->client->worker->loop));
    if (cached != NULL) {
        jn_log(JN_LOG_DEBUG, "basic_auth: consumer %s from the cache", cached->name);
        s->consumer = cached;
        return JN_FILTER_CONTINUE;
    }
    return start_check(s, b, state, consumer, password, key);
}

const struct jn_policy_ops jn_policy_basic_auth = {
    .name = "basic_auth",
    .parse = parse,
    .free = free_conf,
    .on_request = on_request,
    .cancel = cancel,
};
