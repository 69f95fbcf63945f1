/* STUB (helper "dashboard" provides the real page, embedded at build time). */
#ifndef JN_ADMIN_DASHBOARD_H
#define JN_ADMIN_DASHBOARD_H

extern const char jn_dashboard_html[];
extern const unsigned int jn_dashboard_html_len;

#endif
