/* STUB metrics: stands in for helper "metrics"' module on the admin branch. */
#include "admin/metrics.h"

#include <stdlib.h>
#include <string.h>

char *jn_metrics_render(size_t *len)
{
    static const char text[] = "# HELP junction_up Junction is running.\n"
                               "# TYPE junction_up gauge\n"
                               "junction_up 1\n";
    char *out = malloc(sizeof(text));
    if (out != NULL)
        memcpy(out, text, sizeof(text));
    *len = out != NULL ? sizeof(text) - 1 : 0;
    return out;
}

json_t *jn_metrics_stats_json(void)
{
    return json_pack("{s:f, s:i}", "time", 0.0, "requests_total", 0);
}
