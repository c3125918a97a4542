/*
 * fuzz_http_server.c - the real HTTP server (http/src/server.c) over a
 * loopback TCP connection, its answers checked against http_model.h's
 * model of it.
 *
 * The setup, made once and kept for every input: a weft runtime (one
 * worker) running two servers on 127.0.0.1, one with the default limits
 * and one with the small limits of the model (http_model.h). Their
 * handler checks the request it is given (R1 below) and answers 200 with
 * "<method> <path> <body length>\n" and the body; for a path starting
 * with "/s" in HTTP/1.1 it streams that answer (chunked) instead.
 *
 * Each input is one connection: a control byte (bits 0-2: the size of
 * each write, as the model's reads; bit 3: the small-limits server),
 * then the bytes sent on it, after which this side shuts down writing
 * and reads the server's bytes to the end of the stream. So this drives
 * what the model leaves out: the input buffer, compaction and growth,
 * bodies in place or alongside, the head moved out for a chunked body,
 * pipelined requests, error answers and the lingering close.
 *
 * What it checks, besides ASan and UBSan on the server's code:
 *   R1. The handler's request: method, target and path non-empty, the
 *       query "" or after a '?', the body NUL-terminated at body_len and
 *       no longer than max_body, header names non-empty.
 *   R2. The server closes the connection once the client has said all
 *       (within 5 s: it never waits for more after the end of stream).
 *   R3. The server's bytes are exactly a sequence of complete responses
 *       (read with weft-stress's parser, tools/weft-stress/resp_parse.c),
 *       one per request the model answers, with the model's status in
 *       that order (1xx interim responses aside; where the model allows
 *       two, for a bare LF past the header limit, either), and each
 *       200's body names the body length the model decoded; for inputs
 *       under 4000 bytes (past that, where the server's buffer fills
 *       matters).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_model.h"
#include "resp_parse.h"

#include <weft/http_server.h>
#include <weft/weft.h>

enum { MODEL_MAX_INPUT = 4000, READ_MS = 5000 };

static weft_runtime *rt;
static weft_http_server *servers[2]; /* kept for the process's life */
static uint16_t ports[2];            /* the default limits, the small ones */

/* R1, then the answer. */
static void handler(void *arg, const weft_http_server_request *req,
                    weft_http_server_response *resp) {
  const limits *lim = arg;
  FUZZ_CHECK(req->method && *req->method && req->target && *req->target);
  FUZZ_CHECK(req->path && *req->path && req->query);
  FUZZ_CHECK(!*req->query || req->query[-1] == '?');
  FUZZ_CHECK(req->version == 10 || req->version == 11);
  FUZZ_CHECK(req->body && req->body[req->body_len] == 0 && req->body_len <= lim->max_body);
  for (size_t i = 0; i < req->nheaders; i++)
    FUZZ_CHECK(*req->headers[i].name && req->headers[i].value);
  char line[64];
  int n = snprintf(line, sizeof line, "%.16s %.16s %zu\n", req->method, req->path, req->body_len);
  FUZZ_CHECK(n > 0 && (size_t)n < sizeof line);
  if (req->version == 11 && req->path[0] == '/' && req->path[1] == 's') {
    /* A write may fail once the client is gone: not the server's fault. */
    if (weft_http_server_write(resp, line, (size_t)n) == 0)
      weft_http_server_write(resp, req->body, req->body_len);
    return;
  }
  FUZZ_CHECK(weft_http_server_body(resp, line, (size_t)n) == 0);
  FUZZ_CHECK(weft_http_server_body(resp, req->body, req->body_len) == 0);
}

static void *start_servers(void *arg) {
  (void)arg;
  static const limits *lims[2] = {&server_limits, &small_limits};
  for (int i = 0; i < 2; i++) {
    weft_http_server_config cfg = {.handler = handler, .arg = (void *)lims[i]};
    if (i == 1) {
      cfg.max_header_bytes = small_limits.max_header_bytes;
      cfg.max_headers = (unsigned)small_limits.max_headers;
      cfg.max_body = small_limits.max_body;
    }
    FUZZ_CHECK(weft_http_server_start(&cfg, &servers[i]) == 0);
    ports[i] = weft_http_server_port(servers[i]);
  }
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  weft_config cfg = {.workers = 1};
  FUZZ_CHECK(weft_runtime_start(&cfg, &rt) == 0);
  weft_co *co;
  FUZZ_CHECK(weft_runtime_spawn(rt, &co, start_servers, NULL) == 0);
  FUZZ_CHECK(weft_join(co, NULL) == 0);
  return 0;
}

/* The whole exchange: send data in pieces, then read to the end. */
static char *exchange(uint16_t port, const uint8_t *data, size_t size, size_t piece,
                      size_t *got) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0);
  /* This side closes first, so each connection leaves a port in
   * TIME_WAIT for a minute: at 1,500 connections a second one source
   * address runs out of ports. Any 127.x.y.z is this machine: a new one
   * every 256 connections. */
  static uint32_t conns;
  uint32_t k = conns++ >> 8;
  struct sockaddr_in src = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(0x7f000000u | (10u + k / 65536 % 200) << 16 |
                                                     (k / 256 % 256) << 8 | (1 + k % 254))};
  FUZZ_CHECK(bind(fd, (struct sockaddr *)&src, sizeof src) == 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  if (rc && errno == EINTR) { /* libFuzzer's timer; the connect goes on: wait for it */
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (poll(&p, 1, READ_MS) < 0 && errno == EINTR)
      ;
    int err = 0;
    socklen_t el = sizeof err;
    rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err ? -1 : 0;
    errno = err;
  }
  if (rc)
    perror("connect");
  FUZZ_CHECK(rc == 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (size_t off = 0; off < size;) {
    size_t n = piece && piece < size - off ? piece : size - off;
    ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break; /* the server closed on an error: what it sent is still read */
    off += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  FUZZ_CHECK(buf);
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, READ_MS);
    if (r == 0)
      fprintf(stderr, "the server did not close within %d ms\n", READ_MS);
    FUZZ_CHECK(r != 0); /* R2 */
    if (r < 0)
      continue;
    if (len == cap) {
      buf = realloc(buf, cap *= 2);
      FUZZ_CHECK(buf);
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) /* the end, or a reset after an error answer */
      break;
    len += (size_t)n;
  }
  close(fd);
  *got = len;
  return buf;
}

/* What the server sent, for the report of a failed R3. */
static void dump(const char *b, size_t len) {
  fprintf(stderr, "the server sent %zu bytes:\n", len);
  for (size_t i = 0; i < len && i < 4096; i++)
    fprintf(stderr, b[i] == '\n' || (b[i] >= ' ' && b[i] < 0x7f) ? "%c" : "\\x%02x",
            (unsigned char)b[i]);
  fprintf(stderr, "\n");
}

/* R3's reading of one response at *off (1xx interim ones skipped), its
 * body starting at *body_at; false if it is not complete. */
static bool next_response(const char *b, size_t len, size_t *off, bool head_req,
                          resp_head *h, size_t *body_at) {
  for (;;) {
    const char *s = b + *off;
    size_t avail = len - *off;
    const char *e = avail >= 4 ? memmem(s, avail, "\r\n\r\n", 4) : NULL;
    if (!e)
      return false;
    size_t n = (size_t)(e - s) + 4;
    char *copy = dup_exact(s, n);
    int rc = resp_parse_head(copy, n, h);
    free(copy);
    if (rc)
      return false;
    *off += n;
    if (h->status >= 100 && h->status < 200)
      continue;
    *body_at = *off;
    if (head_req)
      return true;
    if (h->chunked) {
      for (;;) {
        const char *p = b + *off;
        const char *crlf = memmem(p, len - *off, "\r\n", 2);
        uint64_t size;
        if (!crlf || resp_chunk_size(p, (size_t)(crlf - p), &size))
          return false;
        *off += (size_t)(crlf - p) + 2;
        if (size == 0)
          break;
        if (size + 2 > len - *off || memcmp(b + *off + size, "\r\n", 2) != 0)
          return false;
        *off += (size_t)size + 2;
      }
      if (len - *off < 2 || memcmp(b + *off, "\r\n", 2) != 0)
        return false;
      *off += 2;
      return true;
    }
    if (!h->has_len || h->len > len - *off)
      return false;
    *off += (size_t)h->len;
    return true;
  }
}

/* The body length a 200's first line names ("<method> <path> <n>\n"),
 * from the response that ends at end. */
static uint64_t echoed_length(const char *b, size_t start, size_t end) {
  const char *nl = memchr(b + start, '\n', end - start);
  if (!nl)
    return UINT64_MAX;
  const char *sp = nl;
  while (sp > b + start && sp[-1] != ' ')
    sp--;
  return strtoull(sp, NULL, 10);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  bool small = data[0] & 8;
  size_t piece = pieces[data[0] & 7];
  size_t len;
  char *out = exchange(ports[small], data + 1, size - 1, piece, &len);
  if (size - 1 < MODEL_MAX_INPUT) {
    conn c = {.data = data + 1, .size = size - 1, .piece = 0,
              .lim = small ? small_limits : server_limits};
    while (c.nout < MAX_REQUESTS && serve_one(&c))
      ;
    size_t off = 0;
    for (size_t i = 0; i < c.nout; i++) { /* R3 */
      const outcome *o = &c.out[i];
      resp_head h;
      size_t bstart = 0;
      bool whole = next_response(out, len, &off, o->status == 200 && o->head, &h, &bstart);
      bool same = whole && (h.status == o->status || (o->alt && h.status == o->alt));
      if (!same) {
        fprintf(stderr, "response %zu of %zu: %s, status %d, the model says %d\n", i, c.nout,
                whole ? "complete" : "incomplete", whole ? h.status : 0, o->status);
        dump(out, len);
      }
      FUZZ_CHECK(same);
      if (o->status == 200 && !o->head) {
        if (o->stream) /* chunked: the first chunk's size line comes first */
          bstart = (size_t)((const char *)memmem(out + bstart, off - bstart, "\r\n", 2) + 2 - out);
        uint64_t echoed = echoed_length(out, bstart, off);
        if (echoed != o->body_len) {
          fprintf(stderr, "response %zu: a body of %llu bytes, the model says %llu\n", i,
                  (unsigned long long)echoed, (unsigned long long)o->body_len);
          dump(out, len);
        }
        FUZZ_CHECK(echoed == o->body_len);
      }
    }
    if (c.nout < MAX_REQUESTS && off != len) {
      fprintf(stderr, "%zu bytes after the %zu responses the model expects\n", len - off, c.nout);
      dump(out, len);
    }
    FUZZ_CHECK(c.nout == MAX_REQUESTS || off == len);
  }
  free(out);
  return 0;
}
