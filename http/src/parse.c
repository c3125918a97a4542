/*
 * parse.c - the server's strict HTTP/1.1 request parser (RFC 9112), in
 * place: the head stays in the connection's input buffer, the parser
 * writes NULs into it and hands out pointers, so a request costs no
 * allocation and no copy.
 *
 * What it owns: the grammar and the framing rules of a request head.
 * What it does not: I/O, limits on sizes, deadlines (server.c).
 *
 * Strictness, and why each rule (every violation is 400 unless noted):
 *   P1. Lines end in CRLF; a bare LF or a CR inside a line is refused
 *       (lenient line endings are how requests get smuggled past a proxy
 *       that splits them differently). Empty lines before the request
 *       line are skipped by server.c (RFC 9112 2.2).
 *   P2. Request line: token SP target SP "HTTP/1.1" or "HTTP/1.0",
 *       single spaces, nothing after. The target is visible ASCII without
 *       '#': origin form ("/p?q"), absolute form ("http://h/p", served by
 *       its path, as a proxy would receive it), or "*" for OPTIONS.
 *   P3. Header fields: token ":" OWS value OWS; no whitespace before the
 *       colon, no obsolete line folding, no control bytes in values
 *       (HTAB and obs-text are allowed). More than max_headers is 431.
 *   P4. Framing: Content-Length is digits only (at most 18); repeated,
 *       the copies must agree. Transfer-Encoding must be exactly
 *       "chunked" (anything else is 501, not implemented), not repeated,
 *       not with Content-Length, and not in HTTP/1.0 (both are the
 *       classic request-smuggling ambiguities).
 *   P5. HTTP/1.1 needs exactly one Host; HTTP/1.0 at most one.
 *   P6. Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only
 *       with "Connection: keep-alive".
 */
#include <string.h>
#include <strings.h>

#include "parse.h"

enum { C_TCHAR = 1, C_VALUE = 2, C_TARGET = 4 };

/* Byte classes: C_TCHAR for token characters, C_VALUE for what a field
 * value may hold (HTAB, SP, VCHAR, obs-text), C_TARGET for visible ASCII. */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static inline bool is(char c, int klass) { return cls[(unsigned char)c] & klass; }

static inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

ssize_t weft__http_head_end(const char *buf, size_t len, weft__http_scan *sc) { /* P1 */
  size_t pos = sc->scanned;
  while (pos < len) {
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl)
      break;
    size_t i = (size_t)(nl - buf);
    if (i == 0 || buf[i - 1] != '\r')
      return -1;
    sc->lines++;
    sc->scanned = pos = i + 1;
    /* Every LF before this one had its CR: "\n\r\n" ends the head. */
    if (i >= 2 && buf[i - 2] == '\n')
      return (ssize_t)(i + 1);
  }
  sc->scanned = len;
  return 0;
}

/* ---- request line ------------------------------------------------------------- */

/* Does s (n bytes) start with the lower-case ASCII prefix, in any case? */
static bool prefix_nocase(const char *s, size_t n, const char *prefix) {
  size_t pl = strlen(prefix);
  return n >= pl && strncasecmp(s, prefix, pl) == 0;
}

/* P2: the target's forms; path and query. target is NUL-terminated. */
static int parse_target(weft__http_head *h) {
  char *t = h->target;
  size_t n = h->target_len;
  if (memchr(t, '#', n))
    return 400;
  const char *path;
  if (t[0] == '/') {
    path = t;
  } else if (n == 1 && t[0] == '*') {
    if (strcmp(h->method, "OPTIONS") != 0)
      return 400;
    path = t;
  } else {
    size_t skip = prefix_nocase(t, n, "http://")    ? 7
                  : prefix_nocase(t, n, "https://") ? 8
                                                    : 0;
    if (!skip)
      return 400;
    path = t + skip;
    while (*path && *path != '/' && *path != '?')
      path++;
    if (path == t + skip)
      return 400; /* no authority */
  }
  const char *end = t + n;
  char *q = memchr(path, '?', (size_t)(end - path));
  h->path = path;
  h->path_len = (size_t)((q ? q : end) - path);
  h->query = q ? q + 1 : NULL;
  return 0;
}

/* P2: line [p, e), e at its CR. */
static int parse_request_line(char *p, char *e, weft__http_head *h) {
  char *m = p;
  while (p < e && is(*p, C_TCHAR))
    p++;
  if (p == m || p >= e || *p != ' ')
    return 400;
  *p++ = 0;
  h->method = m;
  char *t = p;
  while (p < e && is(*p, C_TARGET))
    p++;
  if (p == t || p >= e || *p != ' ')
    return 400;
  h->target = t;
  h->target_len = (size_t)(p - t);
  *p++ = 0;
  if (e - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
    return 400;
  h->version = p[7] == '1' ? 11 : 10;
  h->is_head = strcmp(m, "HEAD") == 0;
  return parse_target(h);
}

/* ---- header fields ------------------------------------------------------------- */

bool weft__http_has_token(const char *value, const char *token) {
  size_t tl = strlen(token);
  const char *p = value;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *e = p;
    while (*e && *e != ',')
      e++;
    const char *t = e;
    while (t > p && is_ows(t[-1]))
      t--;
    if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
      return true;
    p = e;
  }
  return false;
}

/* Digits only, at most 18 of them (so no overflow). */
static bool parse_length(const char *v, size_t n, uint64_t *out) {
  if (n == 0 || n > 18)
    return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return false;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *out = x;
  return true;
}

typedef struct field_state {
  int hosts;
  bool conn_close, conn_keep;
} field_state;

/* P4-P6: what the fields that frame the request say. */
static int field_meaning(weft__http_head *h, field_state *st, const char *name, size_t nlen,
                         const char *v, size_t vlen) {
  switch (nlen) {
  case 4:
    if (strcasecmp(name, "host") == 0)
      st->hosts++;
    break;
  case 6:
    if (strcasecmp(name, "expect") == 0 && strcasecmp(v, "100-continue") == 0)
      h->expect_continue = true;
    break;
  case 10:
    if (strcasecmp(name, "connection") == 0) {
      st->conn_close |= weft__http_has_token(v, "close");
      st->conn_keep |= weft__http_has_token(v, "keep-alive");
    }
    break;
  case 14:
    if (strcasecmp(name, "content-length") == 0) {
      uint64_t n;
      if (!parse_length(v, vlen, &n) || (h->has_length && n != h->content_length))
        return 400;
      h->has_length = true;
      h->content_length = n;
    }
    break;
  case 17:
    if (strcasecmp(name, "transfer-encoding") == 0) {
      if (h->chunked)
        return 400;
      if (strcasecmp(v, "chunked") != 0)
        return 501;
      h->chunked = true;
    }
    break;
  }
  return 0;
}

/* P3: one field line [p, e), e at its CR; *name and *value NUL-terminated
 * in place. */
static int parse_field(char *p, char *e, char **name, size_t *nlen, char **value,
                       size_t *vlen) {
  char *n = p;
  while (p < e && is(*p, C_TCHAR))
    p++;
  if (p == n || p >= e || *p != ':')
    return 400; /* also: obs-fold (a leading space), space before ':' */
  *nlen = (size_t)(p - n);
  *p++ = 0;
  while (p < e && is_ows(*p))
    p++;
  char *v = p;
  while (p < e && is(*p, C_VALUE))
    p++;
  if (p != e)
    return 400; /* a control byte, a bare CR */
  while (p > v && is_ows(p[-1]))
    p--;
  *p = 0;
  *name = n;
  *value = v;
  *vlen = (size_t)(p - v);
  return 0;
}

int weft__http_parse_head(char *buf, size_t len, weft__http_head *h,
                          weft_http_header *hdrs, size_t max_headers) {
  memset(h, 0, sizeof *h);
  char *end = buf + len;
  char *nl = memchr(buf, '\n', len);
  int rc = parse_request_line(buf, nl - 1, h);
  if (rc)
    return rc;
  field_state st = {0};
  for (char *p = nl + 1; p + 2 <= end && !(p[0] == '\r' && p[1] == '\n'); p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(end - p));
    char *name, *value;
    size_t nlen, vlen;
    if ((rc = parse_field(p, nl - 1, &name, &nlen, &value, &vlen)))
      return rc;
    if (h->nheaders == max_headers)
      return 431;
    hdrs[h->nheaders++] = (weft_http_header){name, value};
    if ((rc = field_meaning(h, &st, name, nlen, value, vlen)))
      return rc;
  }
  if (h->chunked && (h->has_length || h->version == 10))
    return 400;
  if (st.hosts > 1 || (h->version == 11 && st.hosts == 0))
    return 400;
  h->keep_alive = h->version == 11 ? !st.conn_close : st.conn_keep && !st.conn_close;
  return 0;
}

/* ---- chunked bodies -------------------------------------------------------------- */

int weft__http_chunk_size(const char *line, size_t len, uint64_t *size) {
  size_t i = 0;
  uint64_t v = 0;
  for (; i < len; i++) {
    int d = hexval(line[i]);
    if (d < 0)
      break;
    if (i >= 15)
      return 400;
    v = v * 16 + (uint64_t)d;
  }
  if (i == 0)
    return 400;
  while (i < len && is_ows(line[i]))
    i++;
  if (i < len && line[i] != ';')
    return 400;
  for (; i < len; i++) /* extensions: ignored, but no control bytes */
    if (!is(line[i], C_VALUE))
      return 400;
  *size = v;
  return 0;
}

int weft__http_trailer_line(const char *line, size_t len) {
  size_t i = 0;
  while (i < len && is(line[i], C_TCHAR))
    i++;
  if (i == 0 || i >= len || line[i] != ':')
    return 400;
  for (i++; i < len; i++)
    if (!is(line[i], C_VALUE))
      return 400;
  return 0;
}
