/* Editing a protocol-neutral field list in place (set, add, remove), as the
 * header filters and the proxy do. The array's capacity is the caller's. */
#ifndef JN_HTTP_FIELDS_H
#define JN_HTTP_FIELDS_H

#include "config/config.h"
#include "http/msg.h"

struct jn_fields {
    struct jn_http_field *v; /* borrowed array */
    size_t n;
    size_t cap;
};

/* Drops every field named name. */
void jn_fields_remove(struct jn_fields *f, const char *name);
/* Appends a field. Returns 0 or JN_ETOOBIG when the array is full. */
int jn_fields_add(struct jn_fields *f, struct jn_slice name, struct jn_slice value);
/* Replaces every field named name by one with value. Returns 0 or JN_ETOOBIG. */
int jn_fields_set(struct jn_fields *f, struct jn_slice name, struct jn_slice value);
/* Applies a route's header operations: remove, then set, then add. */
int jn_fields_apply(struct jn_fields *f, const struct jn_cfg_header_ops *ops);

#endif
