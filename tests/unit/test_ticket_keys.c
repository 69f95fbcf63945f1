/* Unit tests of the session ticket key ring (src/tls/ticket_keys.c), with
 * the clock given by the test: which key encrypts, which ones still decrypt,
 * and when a key has left the ring. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/common.h"
#include "tls/ticket_keys.h"

static struct jn_ticket_key current(struct jn_ticket_keys *k, uint64_t now)
{
    struct jn_ticket_key key;
    cr_assert_eq(jn_ticket_keys_current(k, now, &key), 0);
    return key;
}

static enum jn_ticket_match find(struct jn_ticket_keys *k, const struct jn_ticket_key *key,
                                 uint64_t now)
{
    struct jn_ticket_key found;
    enum jn_ticket_match m = jn_ticket_keys_find(k, key->name, now, &found);
    if (m != JN_TICKET_UNKNOWN)
        cr_expect(memcmp(&found, key, sizeof(found)) == 0, "the key found is the key named");
    return m;
}

Test(ticket_keys, the_newest_key_encrypts_until_the_interval_passes)
{
    struct jn_ticket_keys *k = jn_ticket_keys_new(1000, 5000);
    cr_assert_not_null(k);
    struct jn_ticket_key a = current(k, 5000);
    struct jn_ticket_key a2 = current(k, 5999);
    cr_expect(memcmp(&a, &a2, sizeof(a)) == 0);
    cr_expect_eq(find(k, &a, 5999), JN_TICKET_CURRENT);
    struct jn_ticket_key b = current(k, 6000);
    cr_expect(memcmp(a.name, b.name, sizeof(a.name)) != 0, "a new key after the interval");
    cr_expect(memcmp(a.aes, b.aes, sizeof(a.aes)) != 0);
    cr_expect_eq(find(k, &b, 6000), JN_TICKET_CURRENT);
    jn_ticket_keys_free(k);
}

Test(ticket_keys, older_keys_decrypt_and_renew_until_they_leave_the_ring)
{
    struct jn_ticket_keys *k = jn_ticket_keys_new(1000, 0);
    cr_assert_not_null(k);
    struct jn_ticket_key a = current(k, 0);
    cr_expect_eq(find(k, &a, 999), JN_TICKET_CURRENT);
    cr_expect_eq(find(k, &a, 1000), JN_TICKET_RENEW);     /* previous */
    cr_expect_eq(find(k, &a, 2999), JN_TICKET_RENEW);     /* the one before */
    cr_expect_eq(find(k, &a, 3000), JN_TICKET_UNKNOWN);   /* rotated out */
    cr_expect_eq(find(k, &a, 100000), JN_TICKET_UNKNOWN); /* never back */
    jn_ticket_keys_free(k);
}

Test(ticket_keys, a_long_pause_rotates_every_key_out_at_once)
{
    /* Rotation is lazy: nothing ran for many intervals, and the first
     * handshake after that must not accept any key of before. */
    struct jn_ticket_keys *k = jn_ticket_keys_new(1000, 0);
    cr_assert_not_null(k);
    struct jn_ticket_key a = current(k, 0);
    struct jn_ticket_key b = current(k, 1500);
    cr_expect_eq(find(k, &a, 1500), JN_TICKET_RENEW);
    struct jn_ticket_key c = current(k, 60000);
    cr_expect_eq(find(k, &a, 60000), JN_TICKET_UNKNOWN);
    cr_expect_eq(find(k, &b, 60000), JN_TICKET_UNKNOWN);
    cr_expect_eq(find(k, &c, 60000), JN_TICKET_CURRENT);
    /* The schedule stays on its grid: 60000 began the interval [60000, 61000). */
    cr_expect_eq(find(k, &c, 60999), JN_TICKET_CURRENT);
    cr_expect_eq(find(k, &c, 61000), JN_TICKET_RENEW);
    jn_ticket_keys_free(k);
}

Test(ticket_keys, an_unknown_name_matches_nothing)
{
    struct jn_ticket_keys *k = jn_ticket_keys_new(1000, 0);
    cr_assert_not_null(k);
    struct jn_ticket_key other;
    memset(&other, 0, sizeof(other));
    cr_expect_eq(find(k, &other, 0), JN_TICKET_UNKNOWN);
    cr_expect_null(jn_ticket_keys_new(0, 0));
    jn_ticket_keys_free(k);
    jn_ticket_keys_free(NULL);
}
