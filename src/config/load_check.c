/* Validators for configuration values that reach the wire or the router:
 * header names and values, names, hosts and paths. A value the gateway could
 * never match or must never send is refused at load time. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config/load.h"
#include "core/common.h"

static bool jn_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool jn_is_hex(char c)
{
    return jn_hex_digit_value((unsigned char)c) >= 0;
}

bool jn_ld_is_token(const char *s, size_t len)
{
    /* RFC 9110 section 5.6.2 tchar. */
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!jn_is_alnum(s[i]) && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
            return false;
    return true;
}

bool jn_ld_is_name(const char *s)
{
    /* Names end up in logs and metric labels, where anything else needs quoting. */
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!jn_is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

const char *jn_ld_host_error(const char *s)
{
    if (strchr(s, ':') != NULL || strchr(s, '[') != NULL)
        return "host must be a name without a port (IPv6 literals are not supported)";
    if (strcmp(s, "*") == 0)
        return "leave host out to match any host; wildcards look like \"*.example.com\"";
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return "host must be 1 to 253 characters long";
    for (size_t i = 0; i <= len; i++) {
        if (s[i] == '.' || s[i] == '\0') {
            if (label == 0 || label > 63)
                return "host labels (between dots) must be 1 to 63 characters long";
            label = 0;
        } else if (s[i] == '*') {
            return "a wildcard must be the whole first label, as in \"*.example.com\"";
        } else if (!jn_is_alnum(s[i]) && s[i] != '-' && s[i] != '_') {
            return "host may contain only letters, digits, '-', '_' and '.'";
        } else {
            label++;
        }
    }
    return NULL;
}

/* Checks the percent-encoding at s (s[0] == '%') against the normal form
 * that http/path.h gives every request path. */
static const char *jn_ld_pct_error(const char *s, const struct jn_cfg_http *http)
{
    if (!jn_is_hex(s[1]) || !jn_is_hex(s[2]))
        return "path has an invalid percent-encoding";
    if ((s[1] >= 'a' && s[1] <= 'f') || (s[2] >= 'a' && s[2] <= 'f'))
        return "path percent-encodings must use upper-case hex digits (requests are "
               "normalised to them)";
    char c = (char)(jn_hex_digit_value((unsigned char)s[1]) * 16 + jn_hex_digit_value((unsigned char)s[2]));
    if (c == '\0')
        return "path must not contain %00";
    if (jn_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
        return "path must not percent-encode letters, digits, '-', '.', '_' or '~' (requests "
               "are normalised to the plain character)";
    if (c == '/' && http->escaped_slashes != JN_SLASH_KEEP)
        return "path contains %2F, which requests never keep unless escaped_slashes is keep";
    return NULL;
}

static const char *jn_ld_segment_error(const char *seg, size_t len, bool merge_slashes)
{
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
        return "path must not contain '.' or '..' segments (requests are normalised "
               "without them)";
    if (len == 0 && merge_slashes)
        return "path contains '//', which requests never have while merge_slashes is true";
    return NULL;
}

const char *jn_ld_path_error(const char *s, const struct jn_cfg_http *http)
{
    if (s[0] != '/')
        return "path must start with '/'";
    size_t seg = 1;
    for (size_t i = 1;; i++) {
        char c = s[i];
        if (c == '/' || c == '\0') {
            const char *err = jn_ld_segment_error(s + seg, i - seg, http->merge_slashes);
            /* An empty last segment is the trailing slash of "/users/". */
            if (err != NULL && (c != '\0' || i != seg))
                return err;
            if (c == '\0')
                return NULL;
            seg = i + 1;
        } else if (c == '%') {
            const char *err = jn_ld_pct_error(s + i, http);
            if (err != NULL)
                return err;
        } else if (c == '?' || c == '#') {
            return "path must not contain '?' or '#' (routes match the path only)";
        } else if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f) {
            return "path must not contain spaces, control or non-ASCII bytes (percent-encode "
                   "them)";
        } else if (!jn_is_alnum(c) && strchr("-._~!$&'()*+,;=:@", c) == NULL) {
            return "path contains a character requests cannot have (percent-encode it)";
        }
    }
}

const char *jn_ld_header_value_error(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == '\0')
            return "header value must not contain CR, LF or NUL";
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "header value must not contain control characters";
    }
    return NULL;
}

void jn_ld_canonical_address(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    }
}
