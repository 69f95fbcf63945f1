/* SHA-256 with a per-thread context (see digest.h). */
#include "tls/digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "core/common.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;          /* fetched once, kept for the process */
static pthread_key_t ctx_key;   /* each thread's EVP_MD_CTX, freed at thread exit */

static void free_ctx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void setup(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&ctx_key, free_ctx) != 0) {
        EVP_MD_free(sha256);
        sha256 = NULL;
    }
}

int jn_sha256(const void *data, size_t len, uint8_t out[32])
{
    pthread_once(&once, setup);
    EVP_MD_CTX *ctx = sha256 != NULL ? pthread_getspecific(ctx_key) : NULL;
    if (sha256 != NULL && ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(ctx_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    unsigned int n = 0;
    if (ctx == NULL || EVP_DigestInit_ex2(ctx, sha256, NULL) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != 32) {
        memset(out, 0, 32);
        return JN_ENOMEM;
    }
    return 0;
}
