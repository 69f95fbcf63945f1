/* Request-target normalisation: done once per request; routing and every
 * policy see only its result, so no two spellings of a path can reach
 * different routes. Policy (RFC 3986 section 6.2.2):
 *  - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded,
 *    other percent-encodings are kept with upper-case hex digits;
 *  - "%2F" is kept encoded (not a separator), decoded, or rejected per options;
 *  - "%00", invalid percent-encodings, and bytes outside the RFC 3986 path set are rejected;
 *  - "." and ".." segments are removed (".." never climbs above "/");
 *  - duplicate slashes are merged when merge_slashes is set. */
#ifndef JN_HTTP_PATH_H
#define JN_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"
#include "config/config.h"

struct jn_path_opts {
    bool merge_slashes;
    enum jn_escaped_slash escaped_slashes;
};

/* Splits an origin-form target ("/p?q") or absolute-form target
 * ("http://host/p?q") and normalises its path into out, which must hold at
 * least target.len + 1 bytes (the result is never longer, and is NUL-terminated).
 * On success returns 0 and sets *path (a view of out) and *query (a view of
 * target, without '?', empty when absent); *authority is set for absolute-form
 * (ptr NULL otherwise). Returns JN_EINVAL with *err set for a target to reject
 * with 400 (including a '#' fragment and asterisk/authority forms). */
int jn_path_normalize(struct jn_slice target, const struct jn_path_opts *opts, char *out,
                      struct jn_slice *path, struct jn_slice *query, struct jn_slice *authority,
                      const char **err);

#endif
