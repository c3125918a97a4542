/*
 * http_model.h - a model of how http/src/server.c reads requests, built on
 * its parser (http/src/parse.c), for fuzz_http_request.c (which checks the
 * parser through it) and fuzz_http_server.c (which checks the real server
 * against it).
 *
 * The model replays server.c's sequence per request (C1-C3 in its design
 * comment) against a connection's byte stream, with the server's limits:
 * skip blank lines; look for the head's end with weft__http_head_end, as
 * bytes trickle in (conn.piece is the size of each "read", so the
 * scanner's resumable state is exercised); 431 past max_header_bytes or
 * when the field lines (counted by the scanner) exceed max_headers;
 * weft__http_parse_head in place; then the body: Content-Length (413 past
 * max_body) or chunked, decoded line by line with weft__http_chunk_size
 * and weft__http_trailer_line, a line limited to 4096 bytes and the
 * trailers to the header limits; then the next request on the same
 * stream while the request is keep-alive (pipelining). Each request's
 * outcome (the status the server answers with, or none when the stream
 * ends first) is recorded, with the other status a server may answer
 * where the order it reads bytes in decides (see read_head).
 * Connection-level matters (deadlines, writes, the input buffer's growth)
 * are server.c's and not modelled: for inputs under 4 KiB the buffer
 * never fills, so they do not change an outcome.
 *
 * On the way it checks (FUZZ_CHECK), besides ASan's watch on every read
 * (each parser call gets a heap copy of exactly the bytes it may look at):
 *   F1. The scanner's answer does not depend on how the bytes arrived:
 *       fed in pieces or whole, it finds the same end and counts the
 *       same lines, and a head it accepts ends in "\r\n\r\n" with no
 *       bare LF before.
 *   F2. A parsed head: every pointer (method, target, path, query,
 *       names, values) lies within the head; target_len is the target's
 *       length; one header per field line; a chunked request has no
 *       Content-Length and is HTTP/1.1; results are 0, 400, 431 or 501.
 *   F3. Round trip: the parsed head, written out again canonically
 *       ("name: value" lines), parses to the same request.
 *   F4. Chunk sizes agree with a plain reading of the line's hex digits,
 *       and a decoded body never exceeds max_body or the bytes consumed.
 */
#ifndef WEFT_FUZZ_HTTP_MODEL_H
#define WEFT_FUZZ_HTTP_MODEL_H

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "parse.h"

enum { LINE_MAX_BYTES = 4096, MAX_REQUESTS = 256, R_END = -1 };

typedef struct limits {
  size_t max_header_bytes, max_headers;
  uint64_t max_body;
} limits;

/* server.c's defaults, and small ones so short inputs reach the limits. */
static const limits server_limits = {16 * 1024, 100, 1 << 20};
static const limits small_limits = {200, 4, 64};

/* Read sizes the control byte chooses from (0: everything at once). */
static const size_t pieces[8] = {0, 1, 2, 3, 7, 16, 61, 512};

/* The connection: the stream, how much of it has "arrived", and how much
 * the server has consumed. */
/* What the server answers a request with (serve_one). */
typedef struct outcome {
  int status;       /* 200 (the handler ran), 400, 413, 431, 501 */
  int alt;          /* another status the server may give instead, or 0 */
  bool head;        /* a HEAD request: a 200 has no body */
  bool stream;      /* the target starts with "/s" (fuzz_http_server.c) */
  uint64_t body_len; /* the request body's length, decoded */
} outcome;

/* The connection: the stream, how much of it has "arrived", and how much
 * the server has consumed; the outcomes so far. */
typedef struct conn {
  const uint8_t *data;
  size_t size, arrived, off, piece;
  limits lim;
  outcome out[MAX_REQUESTS];
  size_t nout;
  uint64_t body_len; /* of the request being read */
  int alt;           /* of the request being read: see read_head */
} conn;

/* One read: the next piece of the stream; false at its end. */
static bool conn_read(conn *c) {
  if (c->arrived == c->size)
    return false;
  size_t n = c->piece ? c->piece : c->size - c->arrived;
  c->arrived += n < c->size - c->arrived ? n : c->size - c->arrived;
  return true;
}

static void skip_blank(conn *c) {
  while (c->off < c->arrived && (c->data[c->off] == '\r' || c->data[c->off] == '\n'))
    c->off++;
}

/* The scanner over buf[0, len) in one call, from a fresh state. */
static ssize_t head_end_whole(const char *buf, size_t len, weft__http_scan *sc) {
  *sc = (weft__http_scan){0};
  char *copy = dup_exact(buf, len);
  ssize_t e = weft__http_head_end(copy, len, sc);
  free(copy);
  return e;
}

/* C2: the head's length into *len; 0, R_END, 400 or 431; *lines set. */
static int read_head(conn *c, size_t *len, size_t *lines) {
  weft__http_scan sc = {0};
  for (;;) {
    if (sc.scanned == 0)
      skip_blank(c);
    size_t avail = c->arrived - c->off;
    char *copy = dup_exact(c->data + c->off, avail);
    ssize_t e = weft__http_head_end(copy, avail, &sc);
    free(copy);
    FUZZ_CHECK(sc.scanned <= avail);
    if (e != 0) { /* F1: the same answer as one call over the same bytes */
      weft__http_scan whole;
      ssize_t w = head_end_whole((const char *)c->data + c->off, avail, &whole);
      FUZZ_CHECK(w == e);
      if (e > 0)
        FUZZ_CHECK(whole.lines == sc.lines);
    }
    if (e < 0) {
      /* A bare LF past max_header_bytes: a server that read the bytes
       * before it in pieces stops at the limit first (431); one that read
       * them at once sees the LF (400). Either is its answer. */
      const uint8_t *h = c->data + c->off;
      size_t i = 0;
      while (i < avail && !(h[i] == '\n' && (i == 0 || h[i - 1] != '\r')))
        i++;
      FUZZ_CHECK(i < avail);
      if (i >= c->lim.max_header_bytes)
        c->alt = 431;
      return 400;
    }
    if (e > 0) {
      const char *h = (const char *)c->data + c->off;
      FUZZ_CHECK((size_t)e <= avail && e >= 4 && sc.lines >= 2);
      FUZZ_CHECK(memcmp(h + e - 4, "\r\n\r\n", 4) == 0);
      for (ssize_t i = 0; i < e; i++) /* F1: no bare LF, and lines counted right */
        FUZZ_CHECK(h[i] != '\n' || (i > 0 && h[i - 1] == '\r'));
      *len = (size_t)e;
      *lines = sc.lines;
      return (size_t)e > c->lim.max_header_bytes ? 431 : 0;
    }
    if (avail >= c->lim.max_header_bytes)
      return 431;
    if (!conn_read(c))
      return R_END;
  }
}

static bool within(const void *p, const char *buf, size_t len) {
  return (const char *)p >= buf && (const char *)p < buf + len;
}

/* F2 on a head parsed in buf[0, len). */
static void check_head(const weft__http_head *h, const weft_http_header *hdrs, const char *buf,
                       size_t len, size_t fields) {
  FUZZ_CHECK(within(h->method, buf, len) && *h->method);
  FUZZ_CHECK(within(h->target, buf, len) && strlen(h->target) == h->target_len);
  FUZZ_CHECK(h->target_len > 0);
  FUZZ_CHECK(h->path >= h->target && h->path + h->path_len <= h->target + h->target_len);
  if (h->query) {
    FUZZ_CHECK(h->query > h->target && h->query <= h->target + h->target_len);
    FUZZ_CHECK(h->query[-1] == '?');
  }
  FUZZ_CHECK(h->version == 10 || h->version == 11);
  FUZZ_CHECK(h->nheaders == fields);
  for (size_t i = 0; i < h->nheaders; i++) {
    FUZZ_CHECK(within(hdrs[i].name, buf, len) && *hdrs[i].name);
    FUZZ_CHECK(within(hdrs[i].value, buf, len));
    FUZZ_CHECK(hdrs[i].value + strlen(hdrs[i].value) < buf + len);
  }
  if (h->chunked)
    FUZZ_CHECK(!h->has_length && h->version == 11);
  if (h->has_length)
    FUZZ_CHECK(h->content_length <= 999999999999999999ull);
}

/* F3: write the request out canonically and parse it again. */
static void check_round_trip(const weft__http_head *h, const weft_http_header *hdrs) {
  size_t cap = strlen(h->method) + h->target_len + 16;
  for (size_t i = 0; i < h->nheaders; i++)
    cap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
  cap += 2;
  char *out = malloc(cap);
  FUZZ_CHECK(out);
  size_t n = (size_t)snprintf(out, cap, "%s %s HTTP/1.%d\r\n", h->method, h->target,
                              h->version == 11 ? 1 : 0);
  for (size_t i = 0; i < h->nheaders; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s: %s\r\n", hdrs[i].name, hdrs[i].value);
  n += (size_t)snprintf(out + n, cap - n, "\r\n");
  FUZZ_CHECK(n < cap);
  char *again = dup_exact(out, n);
  weft__http_scan sc;
  FUZZ_CHECK(head_end_whole(again, n, &sc) == (ssize_t)n);
  FUZZ_CHECK(sc.lines - 2 == h->nheaders);
  weft__http_head h2;
  weft_http_header *hdrs2 = malloc((h->nheaders ? h->nheaders : 1) * sizeof *hdrs2);
  FUZZ_CHECK(hdrs2);
  FUZZ_CHECK(weft__http_parse_head(again, n, &h2, hdrs2, h->nheaders) == 0);
  FUZZ_CHECK(strcmp(h2.method, h->method) == 0 && strcmp(h2.target, h->target) == 0);
  FUZZ_CHECK(h2.version == h->version && h2.nheaders == h->nheaders);
  FUZZ_CHECK(h2.path_len == h->path_len && memcmp(h2.path, h->path, h->path_len) == 0);
  FUZZ_CHECK(!h2.query == !h->query && (!h->query || strcmp(h2.query, h->query) == 0));
  FUZZ_CHECK(h2.content_length == h->content_length && h2.has_length == h->has_length);
  FUZZ_CHECK(h2.chunked == h->chunked && h2.keep_alive == h->keep_alive);
  FUZZ_CHECK(h2.expect_continue == h->expect_continue && h2.is_head == h->is_head);
  for (size_t i = 0; i < h->nheaders; i++)
    FUZZ_CHECK(strcmp(hdrs2[i].name, hdrs[i].name) == 0 &&
               strcmp(hdrs2[i].value, hdrs[i].value) == 0);
  free(hdrs2);
  free(again);
  free(out);
}

/* server.c's in_line: a CRLF line (its length without the CRLF) at
 * c->off, looking only at bytes that arrived; 0, R_END or 400. */
static int in_line(conn *c, size_t *start, size_t *len) {
  size_t scanned = 0;
  for (;;) {
    size_t avail = c->arrived - c->off;
    const uint8_t *s = c->data + c->off;
    const uint8_t *nl = memchr(s + scanned, '\n', avail - scanned);
    if (nl) {
      if (nl == s || nl[-1] != '\r')
        return 400;
      *start = c->off;
      *len = (size_t)(nl - 1 - s);
      c->off += (size_t)(nl + 1 - s);
      return 0;
    }
    scanned = avail;
    if (avail >= LINE_MAX_BYTES)
      return 400;
    if (!conn_read(c))
      return R_END;
  }
}

/* Exactly n bytes of body: what arrived, then more reads. */
static int take(conn *c, uint64_t n) {
  while (c->arrived - c->off < n)
    if (!conn_read(c))
      return R_END;
  c->off += (size_t)n;
  return 0;
}

/* F4's oracle: the leading hex digits of a line, if at most 15. */
static bool plain_hex(const char *p, size_t n, uint64_t *v) {
  size_t i = 0;
  *v = 0;
  while (i < n && ((p[i] >= '0' && p[i] <= '9') || ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f'))) {
    if (i == 15)
      return false;
    *v = *v * 16 + (uint64_t)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    i++;
  }
  return i > 0;
}

/* C3, chunked: 0, R_END, 400, 413, 431. */
static int read_chunked(conn *c) {
  uint64_t body = 0;
  size_t begin = c->off;
  for (;;) {
    size_t at, len;
    int rc = in_line(c, &at, &len);
    if (rc)
      return rc;
    char *line = dup_exact(c->data + at, len);
    uint64_t size = 0, want;
    rc = weft__http_chunk_size(line, len, &size);
    bool plain = plain_hex(line, len, &want);
    free(line);
    FUZZ_CHECK(rc == 0 || rc == 400);
    if (rc)
      return 400;
    FUZZ_CHECK(plain && size == want); /* F4 */
    if (size == 0)
      break;
    if (size > c->lim.max_body - body)
      return 413;
    if ((rc = take(c, size)))
      return rc;
    body += size;
    c->body_len = body;
    FUZZ_CHECK(body <= c->lim.max_body && body <= c->off - begin);
    if ((rc = in_line(c, &at, &len)))
      return rc;
    if (len)
      return 400;
  }
  size_t bytes = 0, fields = 0;
  for (;;) {
    size_t at, len;
    int rc = in_line(c, &at, &len);
    if (rc)
      return rc;
    if (!len)
      return 0;
    char *line = dup_exact(c->data + at, len);
    rc = weft__http_trailer_line(line, len);
    FUZZ_CHECK(rc == 0 || rc == 400);
    if (rc == 0) /* a trailer is a field line: a colon after a non-empty name */
      FUZZ_CHECK(memchr(line, ':', len) && line[0] != ':');
    free(line);
    if (rc)
      return 400;
    bytes += len + 2;
    if (++fields > c->lim.max_headers || bytes > c->lim.max_header_bytes)
      return 431;
  }
}

static void answer(conn *c, int status, bool head, bool stream) {
  if (c->nout < MAX_REQUESTS)
    c->out[c->nout++] = (outcome){status, c->alt, head, stream, c->body_len};
}

/* C1-C3 for one request, its outcome recorded (none if the connection
 * just closes); true if the connection goes on to another. */
static bool serve_one(conn *c) {
  skip_blank(c);
  while (c->off == c->arrived) { /* C1: wait for a request's first byte */
    if (!conn_read(c))
      return false;
    skip_blank(c);
  }
  c->body_len = 0;
  c->alt = 0;
  size_t head_len = 0, lines = 0;
  int rc = read_head(c, &head_len, &lines);
  if (rc == R_END)
    return false;
  if (rc) {
    answer(c, rc, false, false); /* 400 or 431, then the connection closes */
    return false;
  }
  size_t fields = lines - 2;
  if (fields > c->lim.max_headers) {
    answer(c, 431, false, false);
    return false;
  }
  char *head = dup_exact(c->data + c->off, head_len);
  weft__http_head h;
  weft_http_header *hdrs = malloc((fields ? fields : 1) * sizeof *hdrs);
  FUZZ_CHECK(hdrs);
  rc = weft__http_parse_head(head, head_len, &h, hdrs, fields);
  FUZZ_CHECK(rc == 0 || rc == 400 || rc == 431 || rc == 501);
  FUZZ_CHECK(rc != 431); /* the array was sized from the scanner's count */
  bool next = false;
  if (rc == 0) {
    check_head(&h, hdrs, head, head_len, fields);
    check_round_trip(&h, hdrs);
    c->off += head_len;
    if (h.chunked)
      rc = read_chunked(c);
    else if (h.has_length && h.content_length > c->lim.max_body)
      rc = 413;
    else if (h.content_length) {
      rc = take(c, h.content_length);
      c->body_len = h.content_length;
    }
    next = rc == 0 && h.keep_alive;
  }
  if (rc != R_END)
    answer(c, rc ? rc : 200, h.is_head,
           rc == 0 && h.version == 11 && h.path_len >= 2 && h.path[0] == '/' && h.path[1] == 's');
  free(hdrs);
  free(head);
  return next;
}
#endif
