/*
 * engine_native.c - HTTP/1.1 on weft's io sockets: the fast path for
 * http:// URLs.
 *
 * One connection coroutine (conn.c) owns one socket per origin, opened
 * before the run starts and kept alive across requests. A request is one
 * weft_write of the bytes target.c built once; the response is parsed in
 * place in the socket's buffer, which it never leaves:
 *
 *   N1. read until the buffer holds "\r\n\r\n" (the head: at most 1 MiB;
 *       the buffer starts at 16 KiB and grows only for a large head);
 *   N2. status line ("HTTP/1.x NNN"), then the three headers that frame
 *       the body: Content-Length, Transfer-Encoding (chunked), Connection
 *       (close, keep-alive), parsed by resp_parse.c; 1xx heads are
 *       skipped (101 is an error: we do not upgrade);
 *   N3. the body is skipped, not kept: bytes already in the buffer are
 *       stepped over and the rest read over the same buffer; chunked
 *       bodies chunk by chunk (size line, data, CRLF; then trailers); a
 *       body with neither length nor chunking runs to the end of stream;
 *       HEAD, 204 and 304 have none;
 *   N4. bytes past the response stay buffered for the next one; the
 *       socket closes when the server said close (HTTP/1.0 unless
 *       keep-alive), the body ran to the end of stream, or anything
 *       failed, and the next request reconnects.
 *
 * A reused connection can be closed by the server just as a request goes
 * out (its keep-alive timeout): a write or read that fails with nothing
 * of the response received (reset, broken pipe, end of stream) is tried
 * once more on a new connection, as browsers and curl do; anything else
 * is the request's error. The per-request deadline is passed to every
 * read and write (-ETIMEDOUT).
 */
#include "stress.h"
#include "resp_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
  BUF_INIT = 16 * 1024,
  HEAD_MAX = 1024 * 1024, /* the most a head (or a chunk line) may take */
  LINE_MAX = 8 * 1024,    /* a chunk-size or trailer line */
};

typedef struct nsock {
  int fd; /* -1: not connected */
  uint32_t served;
  char *buf; /* bytes [off, len) are read and not yet parsed */
  size_t off, len, cap;
} nsock;

typedef struct nconn {
  run *r;
  nsock *socks; /* one per origin */
} nconn;

/* One response being read. */
typedef struct rd {
  nsock *s;
  uint64_t deadline;
  uint64_t wire; /* bytes read */
  bool any;      /* a byte of the response arrived */
} rd;

/* Read more into the buffer (compacting or growing it first if needed). */
static int fill(rd *x) {
  nsock *s = x->s;
  if (s->off == s->len) {
    s->off = s->len = 0;
  } else if (s->off > 0 && s->cap - s->len < s->cap / 4) {
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->off = 0;
  }
  if (s->len == s->cap) {
    if (s->cap >= HEAD_MAX)
      return WEFT_EHTTP_PROTOCOL;
    char *b = realloc(s->buf, s->cap * 2);
    if (!b)
      return -ENOMEM;
    s->buf = b;
    s->cap *= 2;
  }
  ssize_t n = weft_read_until(s->fd, s->buf + s->len, s->cap - s->len, x->deadline);
  if (n < 0)
    return (int)n;
  if (n == 0)
    return WEFT_EHTTP_RESET; /* end of stream inside a response */
  s->len += (size_t)n;
  x->wire += (uint64_t)n;
  x->any = true;
  return 0;
}

/* N1: the length of the head (through its blank line) at s->off. */
static int read_head(rd *x, size_t *head_len) {
  size_t scanned = 0; /* relative to off: searched without a match */
  for (;;) {
    nsock *s = x->s;
    size_t avail = s->len - s->off;
    if (avail >= 4) {
      const char *b = s->buf + s->off;
      const char *e = memmem(b + scanned, avail - scanned, "\r\n\r\n", 4);
      if (e) {
        *head_len = (size_t)(e - b) + 4;
        return 0;
      }
      scanned = avail - 3;
    }
    int rc = fill(x);
    if (rc)
      return rc;
  }
}

/* A line ending in CRLF at s->off: its length without the CRLF. */
static int read_line(rd *x, size_t *n) {
  size_t scanned = 0;
  for (;;) {
    nsock *s = x->s;
    size_t avail = s->len - s->off;
    if (avail >= 2) {
      const char *b = s->buf + s->off;
      const char *e = memmem(b + scanned, avail - scanned, "\r\n", 2);
      if (e) {
        *n = (size_t)(e - b);
        return 0;
      }
      if (avail > LINE_MAX)
        return WEFT_EHTTP_PROTOCOL;
      scanned = avail - 1;
    }
    int rc = fill(x);
    if (rc)
      return rc;
  }
}

/* Step over n body bytes: what the buffer holds, then reads. */
static int skip(rd *x, uint64_t n) {
  nsock *s = x->s;
  size_t avail = s->len - s->off;
  if (avail >= n) {
    s->off += (size_t)n;
    return 0;
  }
  n -= avail;
  s->off = s->len = 0;
  while (n) {
    ssize_t r = weft_read_until(s->fd, s->buf, s->cap, x->deadline);
    if (r < 0)
      return (int)r;
    if (r == 0)
      return WEFT_EHTTP_RESET;
    x->wire += (uint64_t)r;
    if ((uint64_t)r > n) { /* the next response's bytes: keep them */
      s->off = (size_t)n;
      s->len = (size_t)r;
      return 0;
    }
    n -= (uint64_t)r;
  }
  return 0;
}

/* N3, chunked: sizes, data, CRLFs, then the trailers. */
static int read_chunked(rd *x, uint64_t *body) {
  for (;;) {
    size_t n;
    int rc = read_line(x, &n);
    if (rc)
      return rc;
    nsock *s = x->s;
    uint64_t size;
    if ((rc = resp_chunk_size(s->buf + s->off, n, &size)))
      return rc;
    s->off += n + 2;
    if (size == 0)
      break;
    *body += size;
    if ((rc = skip(x, size)) || (rc = read_line(x, &n)))
      return rc;
    if (n != 0)
      return WEFT_EHTTP_PROTOCOL; /* data longer than its size said */
    x->s->off += 2;
  }
  for (;;) { /* trailers, up to the blank line */
    size_t n;
    int rc = read_line(x, &n);
    if (rc)
      return rc;
    x->s->off += n + 2;
    if (n == 0)
      return 0;
  }
}

/* N3, no framing: everything up to the end of stream. */
static int read_to_eof(rd *x, uint64_t *body) {
  nsock *s = x->s;
  for (;;) {
    *body += s->len - s->off;
    s->off = s->len = 0;
    ssize_t r = weft_read_until(s->fd, s->buf, s->cap, x->deadline);
    if (r < 0)
      return (int)r;
    if (r == 0)
      return 0;
    x->wire += (uint64_t)r;
    s->len = (size_t)r;
  }
}

/* One whole response; *close: the socket must close after it. */
static int read_response(rd *x, const target *t, req_result *res, bool *close) {
  for (;;) {
    size_t n;
    resp_head h;
    int rc = read_head(x, &n);
    if (rc)
      return rc;
    if ((rc = resp_parse_head(x->s->buf + x->s->off, n, &h)))
      return rc;
    x->s->off += n;
    if (h.status == 101)
      return WEFT_EHTTP_PROTOCOL;
    if (h.status < 200)
      continue; /* 100 Continue, 103 Early Hints: the real one follows */
    res->status = h.status;
    *close = h.close;
    uint64_t body = 0;
    if (t->head || h.status == 204 || h.status == 304)
      rc = 0;
    else if (h.chunked)
      rc = read_chunked(x, &body);
    else if (h.has_len && !h.other_te)
      rc = skip(x, h.len), body = h.len;
    else
      rc = read_to_eof(x, &body), *close = true;
    res->body_bytes = body;
    return rc;
  }
}

static void sock_close(nsock *s) {
  if (s->fd >= 0)
    weft_close(s->fd);
  s->fd = -1;
  s->off = s->len = 0;
  s->served = 0;
}

static int sock_open(nconn *c, nsock *s, unsigned origin, uint64_t deadline) {
  if (!s->buf) {
    s->buf = malloc(BUF_INIT);
    if (!s->buf)
      return -ENOMEM;
    s->cap = BUF_INIT;
  }
  int fd = origin_connect(&c->r->origins[origin], deadline);
  if (fd < 0)
    return fd;
  s->fd = fd;
  s->served = 0;
  s->off = s->len = 0;
  return 0;
}

static int native_request(void *cv, const target *t, uint64_t deadline, req_result *res) {
  nconn *c = cv;
  nsock *s = &c->socks[t->origin];
  for (int attempt = 0;; attempt++) {
    if (s->fd < 0) {
      int rc = sock_open(c, s, t->origin, deadline);
      if (rc) {
        res->phase = PH_CONNECT;
        return rc;
      }
    }
    bool reused = s->served > 0;
    rd x = {.s = s, .deadline = deadline};
    bool close = false;
    ssize_t w = weft_write_until(s->fd, t->req, t->req_len, deadline);
    int rc = w < 0 ? (int)w : (size_t)w < t->req_len ? -EPIPE : read_response(&x, t, res, &close);
    res->wire_bytes += x.wire;
    if (rc == 0) {
      s->served++;
      if (close)
        sock_close(s);
      return 0;
    }
    sock_close(s);
    if (reused && attempt == 0 && !x.any &&
        (rc == -ECONNRESET || rc == -EPIPE || rc == WEFT_EHTTP_RESET))
      continue; /* a stale keep-alive connection: once more, on a new one */
    res->phase = PH_REQUEST;
    return rc;
  }
}

static void *native_conn_new(run *r, unsigned id) {
  (void)id;
  nconn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->r = r;
  c->socks = calloc(r->norigins, sizeof *c->socks);
  if (!c->socks) {
    free(c);
    return NULL;
  }
  for (size_t i = 0; i < r->norigins; i++)
    c->socks[i].fd = -1;
  return c;
}

static void native_conn_prepare(void *cv, const target *first) {
  nconn *c = cv;
  const options *o = c->r->opt;
  uint64_t deadline = weft_now_ns() + (o->timeout_ns ? o->timeout_ns : 10 * NS_PER_S);
  sock_open(c, &c->socks[first->origin], first->origin, deadline); /* errors: later */
}

static void native_conn_free(void *cv) {
  nconn *c = cv;
  if (!c)
    return;
  for (size_t i = 0; i < c->r->norigins; i++) {
    sock_close(&c->socks[i]);
    free(c->socks[i].buf);
  }
  free(c->socks);
  free(c);
}

static int native_init(run *r) {
  (void)r;
  return 0;
}

static void native_fini(run *r) { (void)r; }

const engine engine_native = {
    .name = "native",
    .init = native_init,
    .fini = native_fini,
    .conn_new = native_conn_new,
    .conn_prepare = native_conn_prepare,
    .request = native_request,
    .conn_free = native_conn_free,
};
