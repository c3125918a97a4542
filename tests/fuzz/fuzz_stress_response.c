/*
 * fuzz_stress_response.c - weft-stress's response parser
 * (tools/weft-stress/resp_parse.c) driven the way engine_native.c reads
 * responses, over a connection's bytes held in memory.
 *
 * What it fuzzes. After one control byte (bit 0: the requests are HEAD),
 * the input is what a server sent on one keep-alive connection. The
 * driver reads responses from it as engine_native.c's read_response does
 * (N1-N4 in its design comment): the head up to the first "\r\n\r\n"
 * (at most 1 MiB), resp_parse_head, 1xx heads skipped and 101 refused,
 * then the body by its framing: none for HEAD, 204 and 304; chunked
 * (resp_chunk_size on each size line, the data, its CRLF, the trailers,
 * a line limited to 8 KiB); Content-Length; else to the end of the
 * stream. Then the next response, while the connection is kept alive.
 * Reads, deadlines and retries are engine_native.c's and not modelled.
 *
 * What it checks, besides ASan's watch on every read (each parser call
 * gets a heap copy of exactly its bytes):
 *   S1. An accepted head has a status in 100-599 read from the status
 *       line's digits and a minor version of 0 or 1; the framing it
 *       reports agrees with a plain reading of its field lines (the last
 *       Content-Length, any Transfer-Encoding, "close" in Connection).
 *   S2. The driver never steps past the bytes it has, and a body counted
 *       by its framing never exceeds the bytes consumed for it.
 *   S3. Chunk sizes: resp_chunk_size accepts every line the server's own
 *       parser (weft__http_chunk_size, stricter) accepts, with the same
 *       size, and its size is the line's leading hex digits.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "parse.h"
#include "resp_parse.h"

#include <weft/weft.h>

enum { HEAD_MAX = 1024 * 1024, LINE_MAX = 8 * 1024, MAX_RESPONSES = 64 };

typedef struct stream {
  const uint8_t *data;
  size_t size, off;
} stream;

/* A CRLF line at s->off: its length without the CRLF; false if there is
 * none (the stream ends) or it is over LINE_MAX without one. */
static bool read_line(stream *s, size_t *n) {
  const uint8_t *b = s->data + s->off;
  size_t avail = s->size - s->off;
  const uint8_t *e = avail >= 2 ? memmem(b, avail, "\r\n", 2) : NULL;
  if (!e)
    return false;
  *n = (size_t)(e - b);
  return true;
}

/* S1's oracle: the field lines of head[0, n), read plainly. */
typedef struct plain {
  bool has_len, chunked, other_te, close;
  uint64_t len;
} plain;

static void plain_read(const char *head, size_t n, plain *p) {
  *p = (plain){0};
  const char *line = memchr(head, '\n', n) + 1, *end = head + n - 2;
  while (line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end + 2 - line));
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = (size_t)(eol - 1 - v);
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
      p->has_len = true;
      p->len = 0;
      for (size_t i = 0; i < vlen; i++)
        if (v[i] >= '0' && v[i] <= '9')
          p->len = p->len * 10 + (uint64_t)(v[i] - '0');
    } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
      bool ch = false;
      for (size_t i = 0; i + 7 <= vlen; i++)
        ch |= strncasecmp(v + i, "chunked", 7) == 0;
      if (ch)
        p->chunked = true;
      else
        p->other_te = true;
    } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
      for (size_t i = 0; i + 5 <= vlen; i++)
        p->close |= strncasecmp(v + i, "close", 5) == 0;
    }
    line = eol + 1;
  }
}

static void check_head(const char *b, size_t n, const resp_head *h) {
  FUZZ_CHECK(h->status >= 100 && h->status <= 599);
  FUZZ_CHECK(h->status == (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0'));
  FUZZ_CHECK(h->minor == 0 || h->minor == 1);
  plain p;
  plain_read(b, n, &p);
  FUZZ_CHECK(p.has_len == h->has_len && (!h->has_len || p.len == h->len));
  if (h->chunked)
    FUZZ_CHECK(p.chunked);
  if (h->other_te)
    FUZZ_CHECK(p.other_te || p.chunked);
  if (!p.chunked && !p.other_te)
    FUZZ_CHECK(!h->chunked && !h->other_te);
  if (h->minor == 1 && !p.close)
    FUZZ_CHECK(!h->close);
}

/* S3 on one size line. */
static int chunk_size(const char *line, size_t n, uint64_t *size) {
  char *copy = dup_exact(line, n);
  int rc = resp_chunk_size(copy, n, size);
  FUZZ_CHECK(rc == 0 || rc == WEFT_EHTTP_PROTOCOL);
  uint64_t strict;
  if (weft__http_chunk_size(copy, n, &strict) == 0)
    FUZZ_CHECK(rc == 0 && strict == *size);
  if (rc == 0) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && ((copy[i] >= '0' && copy[i] <= '9') ||
                     ((copy[i] | 0x20) >= 'a' && (copy[i] | 0x20) <= 'f'));
         i++)
      v = v * 16 + (uint64_t)(copy[i] <= '9' ? copy[i] - '0' : (copy[i] | 0x20) - 'a' + 10);
    FUZZ_CHECK(i > 0 && i <= 15 && v == *size);
  }
  free(copy);
  return rc;
}

/* N3, chunked: false on a protocol error or the stream's end. */
static bool read_chunked(stream *s, uint64_t *body) {
  size_t begin = s->off;
  for (;;) {
    size_t n;
    uint64_t size;
    if (!read_line(s, &n) || chunk_size((const char *)s->data + s->off, n, &size))
      return false;
    s->off += n + 2;
    if (size == 0)
      break;
    if (size > s->size - s->off)
      return false;
    s->off += (size_t)size;
    *body += size;
    FUZZ_CHECK(*body <= s->off - begin); /* S2 */
    if (!read_line(s, &n) || n != 0)
      return false;
    s->off += 2;
  }
  for (;;) {
    size_t n;
    if (!read_line(s, &n))
      return false;
    s->off += n + 2;
    if (n == 0)
      return true;
  }
}

/* One response (N1-N3); false when the connection closes after it. */
static bool read_response(stream *s, bool head_req) {
  for (;;) {
    const uint8_t *b = s->data + s->off;
    size_t avail = s->size - s->off;
    const uint8_t *e = avail >= 4 ? memmem(b, avail, "\r\n\r\n", 4) : NULL;
    if (!e || (size_t)(e - b) + 4 > HEAD_MAX)
      return false;
    size_t n = (size_t)(e - b) + 4;
    char *copy = dup_exact(b, n);
    resp_head h;
    int rc = resp_parse_head(copy, n, &h);
    FUZZ_CHECK(rc == 0 || rc == WEFT_EHTTP_PROTOCOL);
    if (rc == 0)
      check_head(copy, n, &h);
    free(copy);
    if (rc)
      return false;
    s->off += n;
    if (h.status == 101)
      return false;
    if (h.status < 200)
      continue;
    uint64_t body = 0;
    bool ok = true, close = h.close;
    size_t at = s->off;
    if (head_req || h.status == 204 || h.status == 304) {
    } else if (h.chunked) {
      ok = read_chunked(s, &body);
    } else if (h.has_len && !h.other_te) {
      ok = h.len <= s->size - s->off;
      if (ok)
        s->off += (size_t)h.len, body = h.len;
    } else {
      body = s->size - s->off;
      s->off = s->size;
      close = true;
    }
    FUZZ_CHECK(s->off <= s->size && body <= s->off - at); /* S2 */
    return ok && !close;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  stream s = {.data = data + 1, .size = size - 1};
  bool head_req = data[0] & 1;
  for (int i = 0; i < MAX_RESPONSES && s.off < s.size && read_response(&s, head_req); i++)
    FUZZ_CHECK(s.off <= s.size);
  return 0;
}
