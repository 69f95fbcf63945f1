/* Embeds dashboard.html (the admin dashboard page) as read-only data, so the
 * binary serves it without reading a file; declared in dashboard.h.
 * .incbin takes the path from the directory make runs in (the repository root). */
    .section .rodata
    .global jn_dashboard_html
    .type jn_dashboard_html, @object
    .balign 16
jn_dashboard_html:
    .incbin "src/admin/dashboard.html"
.Ljn_dashboard_html_end:
    .byte 0
    .size jn_dashboard_html, . - jn_dashboard_html

    .global jn_dashboard_html_len
    .type jn_dashboard_html_len, @object
    .balign 4
jn_dashboard_html_len:
    .int .Ljn_dashboard_html_end - jn_dashboard_html
    .size jn_dashboard_html_len, 4

/* No executable stack: without this note the linker would mark the whole
 * binary as needing one. */
    .section .note.GNU-stack, "", @progbits
