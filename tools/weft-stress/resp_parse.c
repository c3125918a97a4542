/*
 * resp_parse.c - the grammar of the responses engine_native.c reads: the
 * status line, the three headers that frame a body (Content-Length,
 * Transfer-Encoding, Connection) and chunk-size lines.
 *
 * What it owns: turning bytes already in memory into a resp_head or a
 * chunk size. What it does not: reading, buffering, skipping bodies
 * (engine_native.c, N1-N4). It is lenient where a load generator can
 * afford to be (other headers are not looked at, chunk extensions are
 * not checked) and strict where framing is at stake: a status line that
 * is not "HTTP/1.x NNN", a field line without a colon or without its CR,
 * and Content-Length copies that disagree are protocol errors, since a
 * wrong framing would misread every later response on the connection.
 */
#include "resp_parse.h"

#include <string.h>
#include <strings.h>

#include <weft/weft.h>

/* Does the comma-separated list v[0..n) hold token tok (any case)? */
static bool has_token(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  const char *end = v + n;
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
      v++;
    const char *e = v;
    while (e < end && *e != ',')
      e++;
    const char *te = e;
    while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
      te--;
    if ((size_t)(te - v) == tl && strncasecmp(v, tok, tl) == 0)
      return true;
    v = e;
  }
  return false;
}

/* Digits only, at most 19 of them (so no overflow). */
static bool parse_u64(const char *v, size_t n, uint64_t *out) {
  if (n == 0 || n > 19)
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

int resp_parse_head(const char *b, size_t n, resp_head *h) {
  memset(h, 0, sizeof *h);
  if (n < 16 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1') || b[8] != ' ' ||
      b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9' ||
      (b[12] != ' ' && b[12] != '\r'))
    return WEFT_EHTTP_PROTOCOL;
  h->minor = b[7] - '0';
  h->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
  bool keep_alive = false, close = false;
  const char *end = b + n - 2; /* the blank line's CRLF */
  const char *line = memchr(b, '\n', n);
  for (line = line + 1; line < end;) {
    const char *eol = memchr(line, '\n', (size_t)(end + 2 - line));
    if (!eol || eol[-1] != '\r')
      return WEFT_EHTTP_PROTOCOL;
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (!colon || colon == line)
      return WEFT_EHTTP_PROTOCOL;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *ve = eol - 1;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    size_t vlen = (size_t)(ve - v);
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
      uint64_t len;
      if (!parse_u64(v, vlen, &len) || (h->has_len && len != h->len))
        return WEFT_EHTTP_PROTOCOL;
      h->len = len;
      h->has_len = true;
    } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
      if (has_token(v, vlen, "chunked"))
        h->chunked = true;
      else
        h->other_te = true;
    } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
      close |= has_token(v, vlen, "close");
      keep_alive |= has_token(v, vlen, "keep-alive");
    }
    line = eol + 1;
  }
  h->close = close || (h->minor == 0 && !keep_alive);
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int resp_chunk_size(const char *p, size_t n, uint64_t *size) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < n && hexval(p[i]) >= 0; i++) {
    if (i >= 15)
      return WEFT_EHTTP_PROTOCOL;
    v = v << 4 | (uint64_t)hexval(p[i]);
  }
  if (i == 0 || (i < n && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
    return WEFT_EHTTP_PROTOCOL;
  *size = v;
  return 0;
}
