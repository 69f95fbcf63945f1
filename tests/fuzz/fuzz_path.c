/* libFuzzer target for jn_path_normalize: the first byte picks the options,
 * the rest is the request-target. Besides memory errors it checks the
 * contract: output no longer than input, a normalised path is a fixed point,
 * holds no dot-segment and (with merge_slashes) no empty segment. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"

static void jn_fuzz_check_segments(struct jn_slice p, bool merge)
{
    if (p.len == 0 || p.ptr[0] != '/')
        abort();
    size_t start = 1;
    for (size_t i = 1; i <= p.len; i++) {
        if (i < p.len && p.ptr[i] != '/')
            continue;
        size_t n = i - start;
        const char *s = p.ptr + start;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            abort();
        if (merge && n == 0 && i < p.len)
            abort();
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct jn_path_opts opts = {(data[0] & 1) != 0, (enum jn_escaped_slash)((data[0] >> 1) % 3)};
    struct jn_slice target = {(const char *)data + 1, size - 1};
    char *out = malloc(target.len + 1);
    char *again = malloc(target.len + 1);
    if (out == NULL || again == NULL)
        abort();
    struct jn_slice path, query, authority, path2, query2, authority2;
    const char *err = NULL;
    if (jn_path_normalize(target, &opts, out, &path, &query, &authority, &err) == 0) {
        if (path.ptr != out || path.len > target.len || out[path.len] != '\0')
            abort();
        if (query.len &&
            (query.ptr < target.ptr || query.ptr + query.len > target.ptr + target.len))
            abort();
        jn_fuzz_check_segments(path, opts.merge_slashes);
        if (jn_path_normalize(path, &opts, again, &path2, &query2, &authority2, &err) != 0)
            abort();
        if (!jn_slice_eq(path, path2) || query2.len != 0 || authority2.ptr != NULL)
            abort();
    } else if (err == NULL) {
        abort();
    }
    free(again);
    free(out);
    return 0;
}
