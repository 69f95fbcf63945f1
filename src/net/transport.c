/* The plain transport: bytes go to and from the socket as they are. */
#include "net/transport.h"

#include "core/common.h"

static ssize_t plain_read(struct jn_transport *t, struct jn_buf *b, bool *drained)
{
    return jn_buf_read_fd(b, t->fd, drained);
}

static ssize_t plain_write(struct jn_transport *t, struct jn_buf *b)
{
    return jn_buf_write_fd(b, t->fd);
}

const struct jn_transport_ops jn_transport_plain = {plain_read, plain_write};
