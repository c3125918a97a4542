/*
 * server.c - the HTTP/1.1 server (weft/http_server.h): the listener and
 * its acceptor, one coroutine per connection, responses, shutdown. The
 * request grammar is parse.c's.
 *
 * What it owns. A server owns its listening socket, an acceptor
 * coroutine, and a registry (a list under s->lock) of its connections.
 * A connection (conn) owns its socket, its coroutine (detached), an input
 * buffer, and the request and response records the handler sees; all
 * are made once per connection and reused by every request on it, so a
 * request costs no allocation unless it outgrows them.
 *
 * A connection, request by request (conn_main, serve_one):
 *   C1. wait for the first byte of a request, marked IDLE (see S3):
 *       until header_timeout_ms after the accept for the first request,
 *       idle_timeout_ms for a later one. Bytes already buffered
 *       (pipelining) skip the wait.
 *   C2. read until the head is complete, in place in the input buffer,
 *       by the header deadline: header_timeout_ms from the accept for a
 *       first request, else from the first bytes (worked out only when a
 *       read has to wait: most heads arrive whole); over
 *       max_header_bytes is 431, the deadline is 408.
 *   C3. parse it in place (parse.c); read the body: Content-Length bytes
 *       in place when they fit the input buffer, else into a body buffer;
 *       chunked ones decoded into the body buffer (the head is moved out
 *       of the input buffer first, since decoding reads lines through
 *       it); "100 Continue" first if asked and nothing of the body came.
 *       Every body read must progress within idle_timeout_ms.
 *   C4. run the handler on this coroutine (it may park as it likes),
 *       then send the response: head and buffered body in one writev (a
 *       raw sendmsg first; weft_write_until for what the kernel did not
 *       take), or finish a streamed one.
 *   C5. keep going while the request and response are keep-alive (C1
 *       then closes it if the server is stopping); else a lingering close: shut down
 *       writing, drain the client's input (at most 1 s, 1 MiB), close.
 *       Closing with unread input would send an RST, which can destroy
 *       the response still in flight. A request the parser refuses is
 *       answered (400, 413, 431, 501) and closed the same way.
 *
 * Shutdown (weft_http_server_stop), against the connection's state word
 * c->state (IDLE, BUSY, CANCELLED):
 *   S1. set s->stopping (seq_cst, under the lock: a connection registers
 *       under it too, so it is either in the list or sees the flag);
 *   S2. cancel and join the acceptor, then close the listener (in this
 *       order: the acceptor never touches a closed, reused fd number);
 *   S3. for every registered connection, CAS its state IDLE ->
 *       CANCELLED and cancel its coroutine. A connection stores IDLE
 *       (seq_cst) before it loads s->stopping (seq_cst) at C1 and leaves
 *       if it is set; with bytes in hand it CASes IDLE -> BUSY and leaves
 *       if that fails. Store-load on both sides: either the connection
 *       sees the flag or stop sees IDLE, so no idle connection is missed
 *       and none is cancelled in the middle of a request;
 *   S4. wait for the connections' wait group, until grace_ms; a request
 *       in progress finishes, answers with "Connection: close" and its
 *       connection leaves at C5;
 *   S5. on the deadline, cancel every connection left and shut its socket
 *       down (so that a wait after the one cancel was delivered, a write
 *       say, fails at once instead of waiting out its deadline), then
 *       wait for them all.
 * A connection unregisters under the lock before it closes its fd, and
 * stop cancels and shuts down only under the lock, so stop never touches
 * a finished coroutine or a reused fd number. The lock is a pthread mutex
 * held for list surgery, cancels and sums, never across a park.
 *
 * Counters: connections, active and rejected are atomics of the server;
 * requests are counted per connection (written by its coroutine only) and
 * summed when asked, so the request path touches no shared cache line.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"
#include "parse.h"
#include "weft/http_server.h"
#include "weft/io.h"

#define MS 1000000ull

enum {
  DEF_BACKLOG = 1024,
  DEF_MAX_HEADER_BYTES = 16 * 1024,
  DEF_MAX_HEADERS = 100,
  DEF_MAX_BODY = 1 << 20,
  DEF_HEADER_MS = 10000,
  DEF_IDLE_MS = 60000,
  IN_INITIAL = 4096,           /* input buffer of a new connection */
  LINE_MAX_BYTES = 4096,       /* a chunk-size line */
  KEEP_CAP = 256 * 1024,       /* buffers larger are freed after a request */
  BODY_STEP = 64 * 1024,       /* body buffers grow as bytes arrive */
  LINGER_MS = 1000,
  LINGER_BYTES = 1 << 20,
  HEAD_CAP = 320,              /* the server's part of a response head */
};

enum { C_IDLE, C_BUSY, C_CANCELLED }; /* c->state (S3) */

/* What a request leaves the connection to do (serve_one). */
enum { NEXT, LINGER, ABORT, HIJACKED };

/* Results of reading, besides 0 and HTTP statuses. */
enum { R_END = -1 };

typedef struct wbuf {
  char *p;
  size_t len, cap;
} wbuf;

typedef struct conn conn;

struct weft_http_server_response {
  conn *c;
  int status;
  wbuf hdrs;       /* the handler's header lines, "Name: value\r\n" each */
  wbuf body;       /* the buffered body */
  uint64_t length; /* the handler's Content-Length (has_length) */
  uint64_t sent;   /* streaming: body bytes sent */
  bool has_length, has_date, has_server;
  bool close;     /* close the connection after this response */
  bool committed; /* the head is on the wire (streaming) */
  bool chunked;   /* streaming with the chunked coding */
  bool hijacked;
  bool failed;  /* a write failed: the connection is done */
  bool lost;    /* a header or body append ran out of memory: what was
                   built is not what the handler meant (send_buffered) */
  bool no_body; /* HEAD, 204, 304: the head only (set when committing) */
};

struct conn {
  weft_http_server *s;
  int fd;
  weft_co *co;
  conn *prev, *next;
  uint32_t state;    /* atomic: C_IDLE, C_BUSY, C_CANCELLED (S3) */
  uint64_t requests; /* atomic: written by this connection's coroutine only */
  uint64_t born_ns;
  uint64_t head_deadline;
  /* Input: bytes [off, len) are read and not yet consumed. */
  char *in;
  size_t off, len, cap;
  weft__http_scan scan;
  weft__http_head head;
  weft_http_header *hdrs;
  size_t hdrs_cap;
  wbuf path;  /* the path, copied out when a query follows it */
  wbuf moved; /* the head, moved out of the input for a chunked body */
  wbuf body;  /* a request body that is not in place */
  weft_http_server_request req;
  struct weft_http_server_response resp;
  struct sockaddr_storage peer;
  int64_t date_sec;
  char date[40]; /* "Date: ...\r\n" for date_sec */
  size_t date_len;
};

struct weft_http_server {
  weft_http_server_config cfg; /* defaults filled in */
  struct sockaddr_storage addr;
  int lfd;
  uint16_t port;
  weft_co *acceptor;
  pthread_mutex_t lock; /* guards head, requests_done; stopping set under it */
  conn *head;
  uint32_t stopping; /* atomic (S1) */
  weft_waitgroup conns;
  uint64_t requests_done; /* requests of connections gone */
  uint64_t connections, rejected, active; /* atomics */
};

/* ---- buffers ------------------------------------------------------------------------ */

/* Room for n bytes in all; false if out of memory. */
static bool wbuf_reserve(wbuf *b, size_t n) {
  if (n <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n)
    cap *= 2;
  char *p = weft__malloc(cap);
  if (!p)
    return false;
  if (b->len)
    memcpy(p, b->p, b->len);
  if (b->p)
    weft__free(b->p, b->cap);
  b->p = p;
  b->cap = cap;
  return true;
}

static bool wbuf_add(wbuf *b, const void *data, size_t n) {
  if (!wbuf_reserve(b, b->len + n + 1))
    return false;
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return true;
}

static void wbuf_free(wbuf *b) {
  if (b->p)
    weft__free(b->p, b->cap);
  *b = (wbuf){0};
}

/* After a request: empty, and freed if it grew large. */
static void wbuf_reset(wbuf *b) {
  if (b->cap > KEEP_CAP)
    wbuf_free(b);
  b->len = 0;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t deadline_after(uint64_t ms) {
  uint64_t now = weft_now_ns();
  return ms > (UINT64_MAX - now) / MS ? UINT64_MAX : now + ms * MS;
}

static size_t put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return n;
}

#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

static size_t put_u64(char *p, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    p[i] = tmp[n - 1 - i];
  return n;
}

static const char *reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 413: return "Content Too Large";
  case 418: return "I'm a teapot";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Status";
  }
}

static bool stopping(const weft_http_server *s) {
  return weft__ld_sc((uint32_t *)&s->stopping) != 0;
}

/* ---- output ------------------------------------------------------------------------------ */

/* "Date: <IMF-fixdate>\r\n", formatted once a second per connection. */
static void date_refresh(conn *c) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec == c->date_sec && c->date_len)
    return;
  struct tm tm;
  time_t t = ts.tv_sec;
  gmtime_r(&t, &tm);
  c->date_len = strftime(c->date, sizeof c->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  c->date_sec = ts.tv_sec;
}

/* Write iov[0, n) in full: one sendmsg, then weft_write_until (parking,
 * by a deadline per wait) for whatever the kernel did not take. 0 or
 * -errno. */
static int write_iov_rc(conn *c, struct iovec *iov, int n) {
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
  ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) {
    int e = errno; /* read at once: no switch since the call */
    if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
      return -e;
    w = 0;
  }
  size_t done = (size_t)w;
  for (int i = 0; i < n; i++) {
    if (done >= iov[i].iov_len) {
      done -= iov[i].iov_len;
      continue;
    }
    const char *p = (const char *)iov[i].iov_base + done;
    size_t rest = iov[i].iov_len - done;
    done = 0;
    ssize_t r = weft_write_until(c->fd, p, rest, deadline_after(c->s->cfg.idle_timeout_ms));
    if (r != (ssize_t)rest)
      return r < 0 ? (int)r : -EPIPE;
  }
  return 0;
}

static bool write_iov(conn *c, struct iovec *iov, int n) { return write_iov_rc(c, iov, n) == 0; }

/* Does a response with this status carry a body (and a length)? */
static bool status_has_body(int status) { return status != 204 && status != 304; }

/* The server's part of the head into out (HEAD_CAP bytes): status line,
 * Server, Date, framing, Connection. length < 0: no Content-Length. */
static size_t head_build(conn *c, char *out, int status, int64_t length, bool chunked) {
  weft_http_server_response *r = &c->resp;
  const char *why = reason(status);
  size_t n = PUTS(out, "HTTP/1.1 ");
  n += put_u64(out + n, (uint64_t)status);
  out[n++] = ' ';
  size_t wl = strlen(why);
  n += put(out + n, why, wl);
  n += PUTS(out + n, "\r\n");
  if (!r->has_server)
    n += PUTS(out + n, "Server: weft\r\n");
  if (!r->has_date) {
    date_refresh(c);
    n += put(out + n, c->date, c->date_len);
  }
  if (length >= 0) {
    n += PUTS(out + n, "Content-Length: ");
    n += put_u64(out + n, (uint64_t)length);
    n += PUTS(out + n, "\r\n");
  }
  if (chunked)
    n += PUTS(out + n, "Transfer-Encoding: chunked\r\n");
  if (stopping(c->s))
    r->close = true;
  if (r->close || !c->head.keep_alive)
    n += PUTS(out + n, "Connection: close\r\n");
  else if (c->head.version == 10)
    n += PUTS(out + n, "Connection: keep-alive\r\n");
  return n;
}

/* A refusal: status, a one-line text body, and the connection closes. */
static void respond_error(conn *c, int status) {
  weft_http_server_response *r = &c->resp;
  r->close = true;
  r->has_date = r->has_server = false;
  const char *why = reason(status);
  char head[HEAD_CAP + 64], body[64];
  size_t bl = (size_t)snprintf(body, sizeof body, "%s\n", why);
  size_t n = head_build(c, head, status, (int64_t)bl, false);
  n += PUTS(head + n, "Content-Type: text/plain\r\n\r\n");
  struct iovec iov[2] = {{head, n}, {body, bl}};
  write_iov(c, iov, 2);
  weft__st_rlx(&c->requests, weft__ld_rlx(&c->requests) + 1);
  weft__add_rlx(&c->s->rejected, 1);
}

/* C4: a buffered response, head and body in one writev. */
static bool send_buffered(conn *c) {
  weft_http_server_response *r = &c->resp;
  if (r->lost) {
    /* A header or part of the body is missing (out of memory, whether or
     * not the handler looked at the error): never send that as the
     * handler's answer. Say 500 and close. (Found by tests/torture.) */
    r->status = 500;
    r->hdrs.len = r->body.len = 0;
    r->has_length = false;
    r->close = true;
  }
  bool body = status_has_body(r->status);
  int64_t length = -1;
  if (body)
    length = c->head.is_head && r->has_length ? (int64_t)r->length : (int64_t)r->body.len;
  char head[HEAD_CAP];
  size_t n = head_build(c, head, r->status, length, false);
  struct iovec iov[4];
  int k = 0;
  iov[k++] = (struct iovec){head, n};
  if (r->hdrs.len)
    iov[k++] = (struct iovec){r->hdrs.p, r->hdrs.len};
  iov[k++] = (struct iovec){"\r\n", 2};
  if (body && !c->head.is_head && r->body.len)
    iov[k++] = (struct iovec){r->body.p, r->body.len};
  return write_iov(c, iov, k);
}

/* ---- the response API ---------------------------------------------------------------------- */

static bool is_token(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          (ch && strchr("!#$%&'*+-.^_`|~", ch))))
      return false;
  }
  return true;
}

static bool is_field_value(const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch < ' ' && ch != '\t') || ch == 0x7f)
      return false;
  }
  return true;
}

static bool parse_length(const char *v, uint64_t *out) {
  uint64_t x = 0;
  size_t n = 0;
  for (; v[n]; n++) {
    if (v[n] < '0' || v[n] > '9' || n >= 18)
      return false;
    x = x * 10 + (uint64_t)(v[n] - '0');
  }
  *out = x;
  return n > 0;
}

int weft_http_server_status(weft_http_server_response *resp, int status) {
  if (!resp || status < 200 || status > 599)
    return -EINVAL;
  if (resp->committed || resp->hijacked)
    return -EALREADY;
  resp->status = status;
  return 0;
}

/* The framing headers are the server's; the rest are kept in order. */
int weft_http_server_add_header(weft_http_server_response *resp, const char *name,
                                const char *value) {
  if (!resp || !name || !value || !is_token(name) || !is_field_value(value))
    return -EINVAL;
  if (resp->committed || resp->hijacked)
    return -EALREADY;
  size_t nl = strlen(name);
  switch (nl) { /* the names the server minds, by length first */
  case 14:
    if (strcasecmp(name, "content-length") == 0) {
      if (!parse_length(value, &resp->length))
        return -EINVAL;
      resp->has_length = true;
      return 0;
    }
    break;
  case 17:
    if (strcasecmp(name, "transfer-encoding") == 0)
      return -EINVAL;
    break;
  case 10:
    if (strcasecmp(name, "connection") == 0) {
      if (weft__http_has_token(value, "close"))
        resp->close = true;
      return 0;
    }
    break;
  case 4:
    resp->has_date |= strcasecmp(name, "date") == 0;
    break;
  case 6:
    resp->has_server |= strcasecmp(name, "server") == 0;
    break;
  }
  wbuf *h = &resp->hdrs;
  while (*value == ' ' || *value == '\t') /* surrounding whitespace is not the value's */
    value++;
  size_t vl = strlen(value);
  while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
    vl--;
  if (!wbuf_reserve(h, h->len + nl + vl + 5)) {
    resp->lost = true;
    return -ENOMEM;
  }
  h->len += put(h->p + h->len, name, nl);
  h->len += PUTS(h->p + h->len, ": ");
  h->len += put(h->p + h->len, value, vl);
  h->len += PUTS(h->p + h->len, "\r\n");
  return 0;
}

int weft_http_server_body(weft_http_server_response *resp, const void *data, size_t n) {
  if (!resp || (n && !data))
    return -EINVAL;
  if (resp->hijacked)
    return -EALREADY;
  if (resp->committed)
    return weft_http_server_write(resp, data, n);
  if (n && !wbuf_add(&resp->body, data, n)) {
    resp->lost = true;
    return -ENOMEM;
  }
  return 0;
}

/* A chunk-size line for n: "<hex>\r\n" into out (at least 20 bytes). */
static size_t chunk_line(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char tmp[16];
  size_t k = 0;
  do {
    tmp[k++] = hex[n & 15];
    n >>= 4;
  } while (n);
  for (size_t i = 0; i < k; i++)
    out[i] = tmp[k - 1 - i];
  out[k] = '\r';
  out[k + 1] = '\n';
  return k + 2;
}

/* Append data to iov as the body's next piece, framed as a chunk if
 * chunked (size line in line[]). */
static int add_piece(weft_http_server_response *r, struct iovec *iov, int k, char *line,
                     const void *data, size_t n) {
  if (!n)
    return k;
  if (r->chunked)
    iov[k++] = (struct iovec){line, chunk_line(line, n)};
  iov[k++] = (struct iovec){(void *)data, n};
  if (r->chunked)
    iov[k++] = (struct iovec){"\r\n", 2};
  return k;
}

/* The head of a streamed response: its framing is decided here. */
static int commit_head(weft_http_server_response *r, struct iovec *iov, char *head) {
  conn *c = r->c;
  r->committed = true;
  r->no_body = c->head.is_head || !status_has_body(r->status);
  int64_t length = -1;
  if (!status_has_body(r->status))
    ; /* neither a length nor chunks */
  else if (r->has_length)
    length = (int64_t)r->length;
  else if (c->head.version == 11)
    r->chunked = true;
  else
    r->close = true; /* HTTP/1.0: the close ends the body */
  int k = 0;
  iov[k++] = (struct iovec){head, head_build(c, head, r->status, length, r->chunked)};
  if (r->hdrs.len)
    iov[k++] = (struct iovec){r->hdrs.p, r->hdrs.len};
  iov[k++] = (struct iovec){"\r\n", 2};
  return k;
}

int weft_http_server_write(weft_http_server_response *resp, const void *data, size_t n) {
  if (!resp || (n && !data))
    return -EINVAL;
  weft_http_server_response *r = resp;
  if (r->hijacked)
    return -EALREADY;
  if (r->failed)
    return -EPIPE;
  struct iovec iov[9];
  char head[HEAD_CAP], line1[24], line2[24];
  int k = 0;
  size_t pending = r->committed ? 0 : r->body.len; /* appended before */
  if (r->has_length && r->sent + pending + n > r->length)
    return -EINVAL;
  if (!r->committed)
    k = commit_head(r, iov, head);
  if (!r->no_body) {
    k = add_piece(r, iov, k, line1, r->body.p, pending);
    k = add_piece(r, iov, k, line2, data, n);
  }
  r->sent += pending + n;
  r->body.len = 0;
  int rc = k ? write_iov_rc(r->c, iov, k) : 0;
  if (rc)
    r->failed = true;
  return rc;
}

int weft_http_server_hijack(weft_http_server_response *resp) {
  if (!resp)
    return -EINVAL;
  if (resp->committed || resp->hijacked)
    return -EALREADY;
  resp->hijacked = true;
  return resp->c->fd;
}

/* C4: the end of a streamed response; false if it could not be ended
 * properly (the connection must then close). */
static bool stream_end(conn *c) {
  weft_http_server_response *r = &c->resp;
  if (r->failed)
    return false;
  if (r->no_body)
    return true;
  if (r->chunked) {
    struct iovec iov = {"0\r\n\r\n", 5};
    return write_iov(c, &iov, 1);
  }
  return !r->has_length || r->sent == r->length;
}

/* ---- input ------------------------------------------------------------------------------ */

/* Read more input, compacting or growing the buffer up to limit; by
 * deadline. >0 bytes, 0 end of stream, <0 an error (-E2BIG: full). */
static ssize_t in_fill(conn *c, size_t limit, uint64_t deadline) {
  if (c->off == c->len)
    c->off = c->len = 0;
  if (c->off && c->cap - c->len < 1024) {
    memmove(c->in, c->in + c->off, c->len - c->off);
    c->len -= c->off;
    c->off = 0;
  }
  if (c->len == c->cap) {
    if (c->cap >= limit)
      return -E2BIG;
    size_t cap = c->cap * 2 < limit ? c->cap * 2 : limit;
    char *p = weft__malloc(cap);
    if (!p)
      return -ENOMEM;
    memcpy(p, c->in, c->len);
    weft__free(c->in, c->cap);
    c->in = p;
    c->cap = cap;
  }
  ssize_t n = weft_read_until(c->fd, c->in + c->len, c->cap - c->len, deadline);
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

/* The input buffer's limit while reading a head: room for a whole one. */
static size_t head_limit(const weft_http_server *s) {
  return s->cfg.max_header_bytes > IN_INITIAL ? s->cfg.max_header_bytes : IN_INITIAL;
}

/* Skip empty lines before a request (RFC 9112 2.2). */
static void skip_blank(conn *c) {
  while (c->off < c->len && (c->in[c->off] == '\r' || c->in[c->off] == '\n'))
    c->off++;
  if (c->off == c->len)
    c->off = c->len = 0;
}

/* C1: 0 when a request's first bytes are in (state BUSY), R_END when the
 * connection should just close. */
static int wait_request(conn *c, bool first) {
  weft_http_server *s = c->s;
  skip_blank(c);
  if (c->off == c->len) {
    weft__st_sc(&c->state, C_IDLE); /* S3: store, then load */
    if (stopping(s))
      return R_END;
    uint64_t deadline = first ? c->born_ns + s->cfg.header_timeout_ms * MS
                              : deadline_after(s->cfg.idle_timeout_ms);
    do {
      ssize_t n = weft_read_until(c->fd, c->in, c->cap, deadline);
      if (n <= 0) {
        if (n == -ETIMEDOUT && first)
          weft__add_rlx(&s->rejected, 1); /* a new connection that said nothing */
        return R_END;
      }
      c->len = (size_t)n;
      skip_blank(c);
    } while (c->off == c->len);
    uint32_t idle = C_IDLE;
    if (!weft__cas_sc(&c->state, &idle, C_BUSY))
      return R_END; /* S3: stop cancelled this connection */
  }
  /* The header deadline runs from the first byte; it is worked out when
   * a read has to wait for the rest (most heads come whole). */
  c->head_deadline = first ? c->born_ns + s->cfg.header_timeout_ms * MS : 0;
  return 0;
}

/* C2: the head complete at in + off, *len bytes; 0, R_END, 400, 408, 431. */
static int read_head(conn *c, size_t *len) {
  const weft_http_server *s = c->s;
  c->scan = (weft__http_scan){0};
  for (;;) {
    if (c->scan.scanned == 0)
      skip_blank(c);
    ssize_t e = weft__http_head_end(c->in + c->off, c->len - c->off, &c->scan);
    if (e < 0)
      return 400;
    if (e > 0) {
      *len = (size_t)e;
      return (size_t)e > s->cfg.max_header_bytes ? 431 : 0;
    }
    if (c->len - c->off >= s->cfg.max_header_bytes)
      return 431;
    if (!c->head_deadline)
      c->head_deadline = deadline_after(s->cfg.header_timeout_ms);
    ssize_t n = in_fill(c, head_limit(s), c->head_deadline);
    if (n == -ETIMEDOUT)
      return 408;
    if (n <= 0)
      return R_END;
  }
}

/* Exactly n bytes into dst: what is buffered, then from the socket. 0 or
 * R_END. */
static int in_take(conn *c, char *dst, size_t n) {
  size_t have = c->len - c->off;
  size_t k = have < n ? have : n;
  memcpy(dst, c->in + c->off, k);
  c->off += k;
  for (; k < n;) {
    ssize_t r = weft_read_until(c->fd, dst + k, n - k,
                                deadline_after(c->s->cfg.idle_timeout_ms));
    if (r <= 0)
      return R_END;
    k += (size_t)r;
  }
  return 0;
}

/* One CRLF-terminated line of a chunked body (without its CRLF), valid
 * until the next read. 0, R_END or 400. */
static int in_line(conn *c, char **line, size_t *len) {
  size_t scanned = 0;
  for (;;) {
    char *start = c->in + c->off;
    size_t avail = c->len - c->off;
    char *nl = memchr(start + scanned, '\n', avail - scanned);
    if (nl) {
      if (nl == start || nl[-1] != '\r')
        return 400;
      *line = start;
      *len = (size_t)(nl - 1 - start);
      c->off += (size_t)(nl + 1 - start);
      return 0;
    }
    scanned = avail;
    if (avail >= LINE_MAX_BYTES)
      return 400;
    size_t limit = head_limit(c->s);
    ssize_t n = in_fill(c, limit > 2 * LINE_MAX_BYTES ? limit : 2 * LINE_MAX_BYTES,
                        deadline_after(c->s->cfg.idle_timeout_ms));
    if (n <= 0)
      return R_END;
  }
}

/* n more body bytes into c->body, growing it as they arrive (a client
 * that announces a large body but sends little costs little). */
static int body_take(conn *c, uint64_t n) {
  while (n) {
    size_t step = n < BODY_STEP ? (size_t)n : BODY_STEP;
    size_t want = c->body.len + step + 1;
    if (want > c->body.cap && !wbuf_reserve(&c->body, want))
      return R_END;
    if (in_take(c, c->body.p + c->body.len, step))
      return R_END;
    c->body.len += step;
    n -= step;
  }
  return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* Point the head's strings, parsed at from, at their copy at to. */
static void head_rebase(conn *c, const char *from, char *to) {
  weft__http_head *h = &c->head;
#define REBASE(p) ((p) = (void *)(to + ((const char *)(p) - from)))
  REBASE(h->method);
  REBASE(h->target);
  REBASE(h->path);
  if (h->query)
    REBASE(h->query);
  for (size_t i = 0; i < h->nheaders; i++) {
    REBASE(c->hdrs[i].name);
    REBASE(c->hdrs[i].value);
  }
#undef REBASE
}

/* C3: a chunked body into c->body. 0, R_END, 400, 413, 431. */
static int read_chunked(conn *c) {
  const weft_http_server_config *cfg = &c->s->cfg;
  for (;;) {
    char *line;
    size_t len;
    uint64_t size;
    int rc = in_line(c, &line, &len);
    if (rc)
      return rc;
    if (weft__http_chunk_size(line, len, &size))
      return 400;
    if (size == 0)
      break;
    if (size > cfg->max_body - c->body.len)
      return 413;
    if ((rc = body_take(c, size)))
      return rc;
    if ((rc = in_line(c, &line, &len)))
      return rc;
    if (len)
      return 400; /* data longer than its size line said */
  }
  size_t bytes = 0, fields = 0; /* trailers: checked and dropped */
  for (;;) {
    char *line;
    size_t len;
    int rc = in_line(c, &line, &len);
    if (rc)
      return rc;
    if (!len)
      return 0;
    if (weft__http_trailer_line(line, len))
      return 400;
    bytes += len + 2;
    if (++fields > cfg->max_headers || bytes > cfg->max_header_bytes)
      return 431;
  }
}

/* C3: the body; *consumed grows by the input bytes it used in place. */
static int read_body(conn *c, size_t head_len, size_t *consumed) {
  weft__http_head *h = &c->head;
  const weft_http_server_config *cfg = &c->s->cfg;
  c->body.len = 0;
  c->req.body = "";
  c->req.body_len = 0;
  if (!h->chunked && h->content_length == 0)
    return 0;
  if (h->has_length && h->content_length > cfg->max_body)
    return 413;
  if (h->expect_continue && h->version == 11 && c->len - c->off == head_len) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (weft_write_until(c->fd, cont, sizeof cont - 1, deadline_after(cfg->idle_timeout_ms)) !=
        sizeof cont - 1)
      return R_END;
  }
  if (h->chunked) { /* the decoding reads through the input: move the head out */
    if (!wbuf_reserve(&c->moved, head_len))
      return R_END;
    memcpy(c->moved.p, c->in + c->off, head_len);
    head_rebase(c, c->in + c->off, c->moved.p);
    c->off += head_len;
    *consumed = 0;
    int rc = read_chunked(c);
    if (rc)
      return rc;
  } else if (c->off + head_len + h->content_length < c->cap) { /* in place */
    size_t need = c->off + head_len + (size_t)h->content_length;
    while (c->len < need) {
      ssize_t n = weft_read_until(c->fd, c->in + c->len, c->cap - c->len,
                                  deadline_after(cfg->idle_timeout_ms));
      if (n <= 0)
        return R_END;
      c->len += (size_t)n;
    }
    c->req.body = c->in + c->off + head_len;
    c->req.body_len = (size_t)h->content_length;
    *consumed += (size_t)h->content_length;
    return 0;
  } else { /* alongside: the head stays where it is, nothing reads into the input */
    size_t at = c->off;
    c->off += head_len;
    int rc = body_take(c, h->content_length);
    *consumed = c->off - at - head_len; /* the body bytes that were buffered */
    c->off = at;
    *consumed += head_len;
    if (rc)
      return rc;
  }
  if (c->body.p) { /* body_take left room for the NUL */
    c->body.p[c->body.len] = 0;
    c->req.body = c->body.p;
    c->req.body_len = c->body.len;
  }
  return 0;
}

/* The header array sized for fields lines (known before parsing). */
static bool hdrs_room(conn *c, size_t fields) {
  if (fields <= c->hdrs_cap)
    return true;
  size_t cap = c->hdrs_cap ? c->hdrs_cap : 16;
  while (cap < fields)
    cap *= 2;
  weft_http_header *p = weft__malloc(cap * sizeof *p);
  if (!p)
    return false;
  if (c->hdrs)
    weft__free(c->hdrs, c->hdrs_cap * sizeof *p);
  c->hdrs = p;
  c->hdrs_cap = cap;
  return true;
}

/* C3: parse the head at in + off; 0, R_END, 400, 431, 501. */
static int parse(conn *c, size_t head_len) {
  size_t fields = c->scan.lines - 2, max = c->s->cfg.max_headers;
  if (fields > max)
    return 431;
  if (!hdrs_room(c, fields))
    return R_END;
  return weft__http_parse_head(c->in + c->off, head_len, &c->head, c->hdrs,
                               c->hdrs_cap < max ? c->hdrs_cap : max);
}

/* The request record from the parsed head: path without its query (a
 * copy only when a query follows it; the query is the target's tail). */
static bool request_fill(conn *c) {
  weft__http_head *h = &c->head;
  weft_http_server_request *q = &c->req;
  q->method = h->method;
  q->target = h->target;
  q->version = h->version;
  q->headers = c->hdrs;
  q->nheaders = h->nheaders;
  q->query = h->query ? h->query : "";
  if (h->path_len == 0) {
    q->path = "/";
  } else if (!h->query) {
    q->path = h->path;
  } else {
    c->path.len = 0;
    if (!wbuf_add(&c->path, h->path, h->path_len))
      return false;
    c->path.p[c->path.len] = 0;
    q->path = c->path.p;
  }
  return true;
}

static void resp_reset(weft_http_server_response *r) {
  wbuf_reset(&r->hdrs);
  wbuf_reset(&r->body);
  conn *c = r->c;
  *r = (weft_http_server_response){.c = c, .status = 200, .hdrs = r->hdrs, .body = r->body};
}

/* C4: run the handler and answer. */
static int handle(conn *c) {
  weft_http_server *s = c->s;
  s->cfg.handler(s->cfg.arg, &c->req, &c->resp);
  weft_http_server_response *r = &c->resp;
  weft__st_rlx(&c->requests, weft__ld_rlx(&c->requests) + 1);
  if (r->hijacked)
    return HIJACKED;
  bool ok = r->committed ? stream_end(c) : send_buffered(c);
  if (!ok)
    return ABORT;
  /* A response sent as keep-alive goes back to C1 even when the server
   * is stopping by now: C1 sees the flag and closes it as an idle
   * connection. Lingering instead would wait for a client that was told
   * to keep the connection, up to LINGER_MS, holding up the stop. */
  return r->close || !c->head.keep_alive ? LINGER : NEXT;
}

/* C1-C5 for one request. */
static int serve_one(conn *c, bool first) {
  resp_reset(&c->resp);
  c->head.keep_alive = false; /* for an answer before the head is parsed */
  c->head.version = 11;
  c->head.is_head = false;
  if (wait_request(c, first))
    return ABORT;
  size_t head_len = 0;
  int rc = read_head(c, &head_len);
  if (rc == 0)
    rc = parse(c, head_len);
  size_t consumed = head_len;
  char saved = 0;
  char *nul = NULL;
  if (rc == 0)
    rc = read_body(c, head_len, &consumed);
  if (rc == 0 && !request_fill(c))
    rc = R_END;
  if (rc == R_END)
    return ABORT;
  if (rc) {
    c->head.keep_alive = false;
    c->head.is_head = false;
    respond_error(c, rc);
    return LINGER;
  }
  if (c->req.body_len && c->req.body == c->in + c->off + head_len) { /* NUL in place */
    nul = c->in + c->off + head_len + c->req.body_len;
    saved = *nul;
    *nul = 0;
  }
  int next = handle(c);
  if (nul)
    *nul = saved;
  c->off += consumed;
  if (c->off >= c->len)
    c->off = c->len = 0;
  wbuf_reset(&c->body);
  return next;
}

/* ---- connections ---------------------------------------------------------------------------- */

/* C5: shut down writing, drain what the client still sends, close. */
static void lingering_close(conn *c) {
  weft_shutdown(c->fd, SHUT_WR);
  uint64_t deadline = deadline_after(LINGER_MS);
  size_t drained = 0;
  ssize_t n;
  char sink[2048];
  while (drained < LINGER_BYTES && (n = weft_read_until(c->fd, sink, sizeof sink, deadline)) > 0)
    drained += (size_t)n;
}

static void conn_free(conn *c) {
  if (c->in)
    weft__free(c->in, c->cap);
  if (c->hdrs)
    weft__free(c->hdrs, c->hdrs_cap * sizeof *c->hdrs);
  wbuf_free(&c->path);
  wbuf_free(&c->moved);
  wbuf_free(&c->body);
  wbuf_free(&c->resp.hdrs);
  wbuf_free(&c->resp.body);
  weft__free(c, sizeof *c);
}

/* Register (S1: or leave at once if stopping). */
static bool conn_register(conn *c) {
  weft_http_server *s = c->s;
  pthread_mutex_lock(&s->lock);
  bool ok = !weft__ld_rlx(&s->stopping);
  if (ok) {
    c->co = weft_self();
    c->next = s->head;
    if (s->head)
      s->head->prev = c;
    s->head = c;
  }
  pthread_mutex_unlock(&s->lock);
  return ok;
}

static void conn_unregister(conn *c) {
  weft_http_server *s = c->s;
  pthread_mutex_lock(&s->lock);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->requests_done += weft__ld_rlx(&c->requests);
  pthread_mutex_unlock(&s->lock);
}

static void *conn_main(void *arg) {
  conn *c = arg;
  weft_http_server *s = c->s;
  if (conn_register(c)) {
    int how = NEXT;
    for (bool first = true; how == NEXT; first = false)
      how = serve_one(c, first);
    if (how == LINGER)
      lingering_close(c);
    conn_unregister(c);
  }
  weft_close(c->fd);
  conn_free(c);
  weft__add_rlx(&s->active, (uint64_t)-1);
  weft_waitgroup_done(&s->conns); /* the last touch of s: stop may free it now */
  return NULL;
}

static conn *conn_new(weft_http_server *s, int fd, const struct sockaddr_storage *peer,
                      socklen_t plen) {
  conn *c = weft__calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->in = weft__malloc(IN_INITIAL);
  if (!c->in) {
    weft__free(c, sizeof *c);
    return NULL;
  }
  c->cap = IN_INITIAL;
  c->s = s;
  c->fd = fd;
  c->state = C_IDLE;
  c->born_ns = weft_now_ns();
  c->peer = *peer;
  c->req.peer = (const struct sockaddr *)&c->peer;
  c->req.peer_len = plen;
  c->resp.c = c;
  return c;
}

/* Transient accept failures: out of descriptors or memory. */
static bool accept_should_wait(int rc) {
  return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

static void *acceptor(void *arg) {
  weft_http_server *s = arg;
  while (!stopping(s)) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int fd = weft_accept(s->lfd, (struct sockaddr *)&peer, &plen);
    if (fd < 0) {
      if (accept_should_wait(fd)) {
        if (weft_sleep_ms(10))
          return NULL;
        continue;
      }
      if (fd == -ECONNABORTED || fd == -EINTR || fd == -EPROTO || fd == -EPERM)
        continue;
      return NULL; /* -ECANCELED (S2) */
    }
    if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    weft__add_rlx(&s->connections, 1);
    conn *c = conn_new(s, fd, &peer, plen);
    if (c) {
      weft__add_rlx(&s->active, 1);
      weft_waitgroup_add(&s->conns, 1);
      if (weft_spawn(NULL, conn_main, c) == 0)
        continue;
      weft__add_rlx(&s->active, (uint64_t)-1);
      weft_waitgroup_done(&s->conns);
      conn_free(c);
    }
    weft_close(fd);
    if (weft_sleep_ms(10)) /* no memory: let it pass */
      return NULL;
  }
  return NULL;
}

/* ---- the server ------------------------------------------------------------------------------ */

static void config_defaults(weft_http_server_config *c) {
  if (c->backlog <= 0)
    c->backlog = DEF_BACKLOG;
  if (!c->max_header_bytes)
    c->max_header_bytes = DEF_MAX_HEADER_BYTES;
  if (!c->max_headers)
    c->max_headers = DEF_MAX_HEADERS;
  if (!c->max_body)
    c->max_body = DEF_MAX_BODY;
  if (!c->header_timeout_ms)
    c->header_timeout_ms = DEF_HEADER_MS;
  if (!c->idle_timeout_ms)
    c->idle_timeout_ms = DEF_IDLE_MS;
  /* Deadlines are sums in ns: keep them far from overflowing. */
  const uint64_t max_ms = UINT64_MAX / MS / 4;
  if (c->header_timeout_ms > max_ms)
    c->header_timeout_ms = max_ms;
  if (c->idle_timeout_ms > max_ms)
    c->idle_timeout_ms = max_ms;
  if (c->max_body > SIZE_MAX / 2)
    c->max_body = SIZE_MAX / 2;
}

static uint16_t port_of(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return 0;
}

int weft_http_server_start(const weft_http_server_config *cfg, weft_http_server **out) {
  if (!cfg || !out || !cfg->handler ||
      (cfg->addr && (cfg->addr_len == 0 || cfg->addr_len > sizeof(struct sockaddr_storage))))
    return -EINVAL;
  if (!weft_self())
    return WEFT_ENOTCO;
  weft_http_server *s = weft__calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->cfg = *cfg;
  config_defaults(&s->cfg);
  if (cfg->addr) {
    memcpy(&s->addr, cfg->addr, cfg->addr_len);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&s->addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->cfg.addr_len = sizeof *a;
  }
  s->cfg.addr = (const struct sockaddr *)&s->addr;
  pthread_mutex_init(&s->lock, NULL);
  s->conns = (weft_waitgroup)WEFT_WAITGROUP_INIT;
  s->lfd = weft_listen(s->cfg.addr, s->cfg.addr_len, s->cfg.backlog,
                       s->cfg.reuseport ? WEFT_LISTEN_REUSEPORT : 0);
  int rc = s->lfd < 0 ? s->lfd : 0;
  if (!rc) {
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    if (getsockname(s->lfd, (struct sockaddr *)&bound, &len) == 0)
      s->port = port_of(&bound);
    rc = weft_spawn(&s->acceptor, acceptor, s);
    if (rc)
      weft_close(s->lfd);
  }
  if (rc) {
    pthread_mutex_destroy(&s->lock);
    weft__free(s, sizeof *s);
    return rc;
  }
  *out = s;
  return 0;
}

uint16_t weft_http_server_port(const weft_http_server *s) { return s ? s->port : 0; }

void weft_http_server_get_stats(const weft_http_server *s, weft_http_server_stats *st) {
  if (!st)
    return;
  *st = (weft_http_server_stats){0};
  if (!s)
    return;
  weft_http_server *m = (weft_http_server *)s;
  pthread_mutex_lock(&m->lock);
  uint64_t requests = m->requests_done;
  for (conn *c = m->head; c; c = c->next)
    requests += weft__ld_rlx(&c->requests);
  pthread_mutex_unlock(&m->lock);
  st->requests = requests;
  st->connections = weft__ld_rlx(&m->connections);
  st->rejected = weft__ld_rlx(&m->rejected);
  st->active = weft__ld_rlx(&m->active);
}

/* S3: cancel the idle connections. */
static void cancel_idle(weft_http_server *s) {
  pthread_mutex_lock(&s->lock);
  for (conn *c = s->head; c; c = c->next) {
    uint32_t idle = C_IDLE;
    if (weft__cas_sc(&c->state, &idle, C_CANCELLED))
      weft_cancel(c->co);
  }
  pthread_mutex_unlock(&s->lock);
}

/* S5: cut every connection left. */
static void cut_all(weft_http_server *s) {
  pthread_mutex_lock(&s->lock);
  for (conn *c = s->head; c; c = c->next) {
    weft__st_sc(&c->state, C_CANCELLED);
    shutdown(c->fd, SHUT_RDWR); /* first: a handler woken by the cancel cannot answer */
    weft_cancel(c->co);
  }
  pthread_mutex_unlock(&s->lock);
}

/* Is the caller one of s's connections? (It would wait for itself.) */
static bool is_own_connection(weft_http_server *s) {
  weft_co *me = weft_self();
  bool own = false;
  pthread_mutex_lock(&s->lock);
  for (conn *c = s->head; c && !own; c = c->next)
    own = c->co == me;
  pthread_mutex_unlock(&s->lock);
  return own;
}

int weft_http_server_stop(weft_http_server *s, uint64_t grace_ms) {
  if (!s)
    return -EINVAL;
  if (!weft_self())
    return WEFT_ENOTCO;
  if (is_own_connection(s))
    return -EDEADLK;
  weft_shield_enter();
  pthread_mutex_lock(&s->lock); /* S1 */
  weft__st_sc(&s->stopping, 1);
  pthread_mutex_unlock(&s->lock);
  weft_cancel(s->acceptor); /* S2 */
  weft_join(s->acceptor, NULL);
  weft_close(s->lfd);
  cancel_idle(s); /* S3 */
  uint64_t deadline = deadline_after(grace_ms);
  if (weft_waitgroup_wait_until(&s->conns, deadline)) { /* S4 */
    cut_all(s);                                          /* S5 */
    weft_waitgroup_wait(&s->conns);
  }
  weft_shield_leave();
  pthread_mutex_destroy(&s->lock);
  weft__free(s, sizeof *s);
  return 0;
}

const char *weft_http_server_header(const weft_http_server_request *req, const char *name) {
  if (!req || !name)
    return NULL;
  for (size_t i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}
