/* Helpers on the protocol-neutral HTTP message. */
#include "http/msg.h"

struct jn_slice jn_http_field_get(const struct jn_http_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (jn_slice_ieq(fields[i].name, name))
            return fields[i].value;
    return (struct jn_slice){ NULL, 0 };
}
