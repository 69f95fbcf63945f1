/* The admin dashboard page (dashboard.html), built into the binary by dashboard.S
 * so the admin listener serves it with nothing to find on disk. */
#ifndef JN_ADMIN_DASHBOARD_H
#define JN_ADMIN_DASHBOARD_H

/* The whole page, UTF-8 HTML, jn_dashboard_html_len bytes; a NUL follows them
 * (not counted) so it can also be used as a C string. Read-only, static. */
extern const char jn_dashboard_html[];
extern const unsigned int jn_dashboard_html_len;

#endif
