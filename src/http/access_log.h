/* The access log: one line per request, JSON or text, buffered per worker
 * and written once per batch of events (never a lock on the request path). */
#ifndef JN_HTTP_ACCESS_LOG_H
#define JN_HTTP_ACCESS_LOG_H

#include "http/stream.h"

/* Appends the stream's line to its worker's buffer. */
void jn_access_log_write(struct jn_stream *s);
/* Writes the worker's buffered lines. */
void jn_access_log_flush(struct jn_worker *w);

#endif
