/* STUB dashboard: a tiny page standing in for helper "dashboard"'s. */
#include "admin/dashboard.h"

const char jn_dashboard_html[] = "<!doctype html><html><head><title>Junction</title></head>"
                                 "<body><h1>Junction dashboard</h1></body></html>\n";
const unsigned int jn_dashboard_html_len = sizeof(jn_dashboard_html) - 1;
