/* Field list editing. */
#include "http/fields.h"

#include <string.h>

void jn_fields_remove(struct jn_fields *f, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < f->n; i++)
        if (!jn_slice_ieq(f->v[i].name, name))
            f->v[j++] = f->v[i];
    f->n = j;
}

int jn_fields_add(struct jn_fields *f, struct jn_slice name, struct jn_slice value)
{
    if (f->n >= f->cap)
        return JN_ETOOBIG;
    f->v[f->n++] = (struct jn_http_field){ name, value };
    return 0;
}

int jn_fields_set(struct jn_fields *f, struct jn_slice name, struct jn_slice value)
{
    char tmp[256];
    size_t n = JN_MIN(name.len, sizeof(tmp) - 1);
    memcpy(tmp, name.ptr, n);
    tmp[n] = '\0';
    jn_fields_remove(f, tmp);
    return jn_fields_add(f, name, value);
}

static struct jn_slice cstr(const char *s)
{
    return (struct jn_slice){ s, strlen(s) };
}

int jn_fields_apply(struct jn_fields *f, const struct jn_cfg_header_ops *ops)
{
    int rc = 0;
    for (size_t i = 0; i < ops->nremove; i++)
        jn_fields_remove(f, ops->remove[i]);
    for (size_t i = 0; i < ops->nset && rc == 0; i++)
        rc = jn_fields_set(f, cstr(ops->set[i].name),
                           (struct jn_slice){ ops->set[i].value, ops->set[i].value_len });
    for (size_t i = 0; i < ops->nadd && rc == 0; i++)
        rc = jn_fields_add(f, cstr(ops->add[i].name),
                           (struct jn_slice){ ops->add[i].value, ops->add[i].value_len });
    return rc;
}
