/*
 * parse.h - the server's HTTP/1.1 request parser (parse.c): pure
 * functions over bytes in memory, no I/O and no allocation, so that
 * server.c stays about connections and a fuzz driver can call these
 * directly.
 *
 * Results are 0 (fine) or the HTTP status to answer with before closing:
 * 400 (malformed), 431 (too many header fields), 501 (a transfer coding
 * other than chunked). Sizes (413, 431 for bytes) are server.c's, which
 * knows the limits and what has arrived.
 */
#ifndef WEFT_HTTP_PARSE_H
#define WEFT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weft/http.h"

/* A parsed request head. Every pointer points into the buffer that was
 * parsed, which the parser NUL-terminates in place. */
typedef struct weft__http_head {
  char *method;
  char *target;    /* as sent */
  size_t target_len;
  const char *path; /* within target (absolute form: after the authority);
                       not NUL-terminated where a query follows */
  size_t path_len;  /* 0: an absolute form without a path, which means "/" */
  const char *query; /* after '?', NUL-terminated, or NULL without one */
  int version;       /* 10 or 11 */
  size_t nheaders;
  uint64_t content_length;
  bool has_length, chunked, expect_continue, keep_alive, is_head;
} weft__http_head;

/* The search for a head's end, kept between reads: zero it for each
 * request. */
typedef struct weft__http_scan {
  size_t scanned; /* bytes looked at, so bytes that trickle in are looked at once */
  size_t lines;   /* LFs among them: with the head complete, its field
                     lines are lines - 2 (known before parsing, so the
                     header array can be sized first) */
} weft__http_scan;

/* Where the head that starts at buf[0] ends: its length, through the LF
 * of the blank line; 0 if it has not all arrived; -1 for a bare LF (a
 * line that does not end in CRLF). */
ssize_t weft__http_head_end(const char *buf, size_t len, weft__http_scan *sc);

/* Parse the head buf[0, len) (len from weft__http_head_end) in place,
 * headers into hdrs[0, max_headers). 0, 400, 431 or 501. */
int weft__http_parse_head(char *buf, size_t len, weft__http_head *h,
                          weft_http_header *hdrs, size_t max_headers);

/* A chunk-size line without its CRLF: hex digits (at most 15), then
 * optional whitespace and ;extensions (ignored). 0 or 400. */
int weft__http_chunk_size(const char *line, size_t len, uint64_t *size);

/* A trailer field line without its CRLF: name ":" value, as in a head.
 * 0 or 400. */
int weft__http_trailer_line(const char *line, size_t len);

/* Is value (a comma-separated list, NUL-terminated) holding token, in
 * any case? */
bool weft__http_has_token(const char *value, const char *token);

#endif
