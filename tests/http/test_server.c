/*
 * test_server.c - weft's HTTP/1.1 server (weft/http_server.h), from the
 * outside: raw blocking sockets on threads of their own (so the clients
 * never share the server's workers) and weft_http_do from coroutines.
 *
 * Each case runs a weft runtime (WEFT_WORKERS from CTest: 1, 2, 4) whose
 * main coroutine starts a server with the test handler below, runs the
 * case's client code on an offload thread (weft_offload: the coroutine
 * parks meanwhile), and stops the server; ASan/LSan then say whether
 * anything leaked. The machine running this may be loaded: the checks
 * count events and order them (a handler that blocks until the client
 * says so, a flag set before another is looked at) rather than time
 * things, and the few time bounds are generous.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "rawclient.h"
#include "weft/http.h"
#include "weft/http_server.h"
#include "weft/io.h"

#define MS 1000000ull

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

static char pattern_byte(uint64_t i) { return (char)('a' + i % 26); }

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- the test handler ---------------------------------------------------------------- */

static struct {
  uint32_t entered;   /* /block requests that are waiting */
  uint32_t release;   /* set: they answer */
  uint32_t cancelled; /* handlers that saw -ECANCELED */
  uint32_t api_ok;    /* /api checks passed */
  weft_http_server *server; /* atomic: the case's server, for /stopme */
  char fetch_url[128];
} H;

static uint32_t ld(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void st(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static void inc(uint32_t *p) { __atomic_fetch_add(p, 1, __ATOMIC_ACQ_REL); }

static void text(weft_http_server_response *w, int status, const char *s) {
  CHECK_EQ(weft_http_server_status(w, status), 0);
  CHECK_EQ(weft_http_server_body(w, s, strlen(s)), 0);
}

static uint64_t query_num(const weft_http_server_request *r, const char *key, uint64_t def) {
  const char *p = strstr(r->query, key);
  return p && p[strlen(key)] == '=' ? strtoull(p + strlen(key) + 1, NULL, 10) : def;
}

/* /block: wait (parked, polling every 5 ms) until the test releases it. */
static void ep_block(weft_http_server_response *w) {
  inc(&H.entered);
  uint64_t end = weft_now_ns() + 60000 * MS;
  while (!ld(&H.release) && weft_now_ns() < end) {
    if (weft_sleep_ms(5)) {
      inc(&H.cancelled);
      return;
    }
  }
  text(w, 200, "released");
}

/* /api: the response calls' refusals, checked from inside a handler. */
static void ep_api(const weft_http_server_request *r, weft_http_server_response *w) {
  CHECK_EQ(weft_http_server_status(w, 99), -EINVAL);
  CHECK_EQ(weft_http_server_status(w, 600), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "Bad Name", "x"), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "", "x"), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "X-A", "a\r\nInjected: yes"), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "Transfer-Encoding", "chunked"), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "Content-Length", "x1"), -EINVAL);
  CHECK_EQ(weft_http_server_add_header(w, "X-Ok", "\tfine value\t"), 0);
  CHECK_EQ(weft_http_server_add_header(w, "Content-Length", "999"), 0); /* replaced */
  CHECK_EQ(weft_http_server_status(w, 201), 0);
  CHECK_EQ(weft_http_server_body(w, "ab", 2), 0);
  CHECK_EQ(weft_http_server_body(w, "c", 1), 0);
  CHECK(weft_http_server_header(r, "HOST") != NULL);
  CHECK(weft_http_server_header(r, "x-nope") == NULL);
  inc(&H.api_ok);
}

/* /stream/N?chunk=K: N pattern bytes written K at a time (chunked);
 * /streamcl/N: the same with a Content-Length. */
static void ep_stream(const weft_http_server_request *r, weft_http_server_response *w,
                      uint64_t n, bool with_length) {
  uint64_t chunk = query_num(r, "chunk", 1000);
  if (with_length) {
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)n);
    CHECK_EQ(weft_http_server_add_header(w, "Content-Length", v), 0);
  }
  CHECK_EQ(weft_http_server_body(w, "", 0), 0);
  char *buf = malloc(chunk);
  uint64_t at = 0;
  while (at < n) {
    size_t k = (size_t)(n - at < chunk ? n - at : chunk);
    for (size_t i = 0; i < k; i++)
      buf[i] = pattern_byte(at + i);
    if (weft_http_server_write(w, buf, k))
      break;
    at += k;
  }
  if (with_length && at == n) { /* past the promised length */
    CHECK_EQ(weft_http_server_write(w, "x", 1), -EINVAL);
    CHECK_EQ(weft_http_server_status(w, 500), -EALREADY);
  }
  free(buf);
}

static void ep_fetch(weft_http_server_response *w) {
  weft_http_response r = {0};
  int rc = weft_http_get(H.fetch_url, &r);
  if (rc == 0) {
    char v[96];
    snprintf(v, sizeof v, "fetched %d %s", r.status, r.body);
    text(w, 200, v);
  } else {
    text(w, 502, weft_strerror(rc));
  }
  weft_http_response_free(&r);
}

static void handler(void *arg, const weft_http_server_request *r, weft_http_server_response *w) {
  (void)arg;
  const char *p = r->path;
  char buf[256];
  if (strcmp(p, "/hello") == 0) {
    text(w, 200, "hello");
  } else if (strncmp(p, "/n/", 3) == 0) {
    snprintf(buf, sizeof buf, "%s %s", r->method, p + 3);
    text(w, 200, buf);
  } else if (strcmp(p, "/echo") == 0) {
    snprintf(buf, sizeof buf, "%zu", r->body_len);
    CHECK_EQ(weft_http_server_add_header(w, "X-Len", buf), 0);
    CHECK_EQ(r->body[r->body_len], 0);
    CHECK_EQ(weft_http_server_body(w, r->body, r->body_len), 0);
  } else if (strcmp(p, "/sleep") == 0) {
    if (weft_sleep_ms(query_num(r, "ms", 100)))
      inc(&H.cancelled);
    else
      text(w, 200, "slept");
  } else if (strcmp(p, "/block") == 0) {
    ep_block(w);
  } else if (strcmp(p, "/fetch") == 0) {
    ep_fetch(w);
  } else if (strcmp(p, "/resolve") == 0) { /* DNS from a handler (parks, too) */
    struct addrinfo *ai = NULL;
    int rc = weft_resolve("localhost", "80", NULL, &ai);
    text(w, rc == 0 && ai ? 200 : 502, rc == 0 && ai ? "resolved" : weft_strerror(rc));
    weft_freeaddrinfo(ai);
  } else if (strcmp(p, "/api") == 0) {
    ep_api(r, w);
  } else if (strncmp(p, "/stream/", 8) == 0) {
    ep_stream(r, w, strtoull(p + 8, NULL, 10), false);
  } else if (strncmp(p, "/streamcl/", 10) == 0) {
    ep_stream(r, w, strtoull(p + 10, NULL, 10), true);
  } else if (strcmp(p, "/stopme") == 0) { /* a handler cannot stop its own server */
    weft_http_server *self = __atomic_load_n(&H.server, __ATOMIC_ACQUIRE);
    text(w, 200, weft_http_server_stop(self, 0) == -EDEADLK ? "EDEADLK" : "?");
  } else if (strcmp(p, "/hijack") == 0) {
    int fd = weft_http_server_hijack(w);
    CHECK(fd >= 0);
    CHECK_EQ(weft_http_server_hijack(w), -EALREADY);
    CHECK_EQ(weft_http_server_body(w, "x", 1), -EALREADY);
    static const char raw[] = "HTTP/1.1 299 Taken\r\nContent-Length: 2\r\n\r\nhi";
    CHECK_EQ(weft_write(fd, raw, sizeof raw - 1), sizeof raw - 1);
  } else if (strcmp(p, "/close") == 0) {
    CHECK_EQ(weft_http_server_add_header(w, "Connection", "close"), 0);
    text(w, 200, "bye");
  } else if (strcmp(p, "/204") == 0) {
    CHECK_EQ(weft_http_server_status(w, 204), 0);
    CHECK_EQ(weft_http_server_body(w, "dropped", 7), 0);
  } else if (strcmp(p, "/date") == 0) {
    CHECK_EQ(weft_http_server_add_header(w, "Date", "yesterday"), 0);
    CHECK_EQ(weft_http_server_add_header(w, "Server", "mine"), 0);
    text(w, 200, "dated");
  } else if (strcmp(p, "/target") == 0 || strcmp(p, "*") == 0) {
    snprintf(buf, sizeof buf, "%s|%s|%s|%d", r->target, r->path, r->query, r->version);
    text(w, 200, buf);
  } else {
    text(w, 404, "not found");
  }
}

/* ---- the harness ------------------------------------------------------------------------- */

typedef struct env {
  weft_http_server_config cfg; /* the case's (handler filled in) */
  weft_http_server *s;
  uint16_t port;
  void (*client)(struct env *); /* runs on an offload thread (optional) */
  void (*during)(struct env *); /* optional: a coroutine beside the client */
  bool with_other;              /* a second server, for /fetch */
  weft_http_server *other;
  uint64_t grace_ms;
  bool stopped; /* by the case itself (during) */
} env;

static void stats(env *e, weft_http_server_stats *st) { weft_http_server_get_stats(e->s, st); }

/* Wait (polling; from a client thread) until the server has `active`
 * connections open. */
static void wait_active(env *e, uint64_t active) {
  weft_http_server_stats st;
  uint64_t end = now_ms() + 30000;
  for (;;) {
    stats(e, &st);
    if (st.active == active)
      return;
    if (now_ms() > end) {
      fprintf(stderr, "active %llu, want %llu\n", (unsigned long long)st.active,
              (unsigned long long)active);
      CHECK(!"connections did not settle");
    }
    sleep_ms(5);
  }
}

static void *client_thunk(void *arg) {
  env *e = arg;
  e->client(e);
  return NULL;
}

static void *during_thunk(void *arg) {
  env *e = arg;
  e->during(e);
  return NULL;
}

static void *case_main(void *arg) {
  env *e = arg;
  memset(&H, 0, sizeof H);
  if (e->with_other) { /* a second server: /fetch fetches its /block */
    weft_http_server_config o = {.handler = handler};
    CHECK_EQ(weft_http_server_start(&o, &e->other), 0);
    snprintf(H.fetch_url, sizeof H.fetch_url, "http://127.0.0.1:%u/block",
             weft_http_server_port(e->other));
  }
  e->cfg.handler = handler; /* after H is written: its handlers read it */
  CHECK_EQ(weft_http_server_start(&e->cfg, &e->s), 0);
  e->port = weft_http_server_port(e->s);
  CHECK(e->port > 0);
  __atomic_store_n(&H.server, e->s, __ATOMIC_RELEASE);
  weft_co *during = NULL;
  if (e->during)
    CHECK_EQ(weft_spawn(&during, during_thunk, e), 0);
  if (e->client)
    CHECK_EQ(weft_offload(client_thunk, e, NULL), 0);
  if (during)
    CHECK_EQ(weft_join(during, NULL), 0);
  if (e->other)
    CHECK_EQ(weft_http_server_stop(e->other, e->grace_ms), 0);
  if (!e->stopped)
    CHECK_EQ(weft_http_server_stop(e->s, e->grace_ms), 0);
  return NULL;
}

static void run_case(env *e) {
  void *res = (void *)1;
  CHECK_EQ(weft_run(NULL, case_main, e, &res), 0);
  CHECK(res == NULL);
}

/* ---- malformed requests ----------------------------------------------------------------- */

static const struct {
  const char *req;
  int status;
} bad[] = {
    {"GARBAGE\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
    {"GET / http/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
    {" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET nothing HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET ftp://h/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\n\n", 400},                       /* bare LF */
    {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400},          /* bare LF */
    {"GET / HTTP/1.1\r\n\r\n", 400},                   /* no Host */
    {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
    {"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nName : x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1;ext\x01\r\na\r\n0\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1\r\na\r\n0\r\nBad Trailer\r\n\r\n", 400},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "1000000000000000\r\n", 400}, /* 16 hex digits */
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
};

/* Each on a connection of its own: the status, "Connection: close", then
 * the end of the stream; and the server goes on serving. */
static void malformed_client(env *e) {
  size_t n = sizeof bad / sizeof *bad;
  for (size_t i = 0; i < n; i++) {
    client *c = client_open(e->port);
    send_str(c->fd, bad[i].req);
    resp *r;
    CHECK_EQ(get_resp(c, &r, false), 0);
    if (r->status != bad[i].status)
      fprintf(stderr, "case %zu: %d for %s\n", i, r->status, bad[i].req);
    CHECK_EQ(r->status, bad[i].status);
    CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
    resp_free(r);
    check_end(c);
    client_close(c);
  }
  /* A NUL inside a header value. */
  client *c = client_open(e->port);
  static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
  send_all(c->fd, nul, sizeof nul - 1);
  resp *r;
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK_EQ(r->status, 400);
  resp_free(r);
  check_end(c);
  client_close(c);
  /* A good request after a bad one on the same connection is never read. */
  c = client_open(e->port);
  send_str(c->fd, "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK_EQ(r->status, 400);
  resp_free(r);
  check_end(c);
  client_close(c);
  c = client_open(e->port);
  check_text(roundtrip(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(c);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.rejected, n + 2);
  CHECK_EQ(st.requests, n + 3);
  CHECK_EQ(st.connections, n + 3);
}

static void malformed(void) {
  env e = {.client = malformed_client};
  run_case(&e);
}

/* ---- limits: 431, 413 ----------------------------------------------------------------------- */

/* "GET /hello ...", headers making the head about `bytes` long, or
 * `fields` header fields. */
static char *big_request(size_t bytes, int fields) {
  size_t cap = bytes + 64 * (size_t)fields + 256;
  char *s = malloc(cap);
  size_t n = (size_t)snprintf(s, cap, "GET /hello HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < fields; i++)
    n += (size_t)snprintf(s + n, cap - n, "X-F%d: %d\r\n", i, i);
  if (bytes > n + 16) {
    n += (size_t)snprintf(s + n, cap - n, "X-Big: ");
    size_t fill = bytes - n - 4;
    memset(s + n, 'x', fill);
    n += fill;
    n += (size_t)snprintf(s + n, cap - n, "\r\n");
  }
  snprintf(s + n, cap - n, "\r\n");
  return s;
}

static void expect_refusal(env *e, const char *req, int status) {
  client *c = client_open(e->port);
  send_str(c->fd, req);
  resp *r;
  CHECK_EQ(get_resp(c, &r, false), 0);
  if (r->status != status)
    fprintf(stderr, "%d for %.80s\n", r->status, req);
  CHECK_EQ(r->status, status);
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  resp_free(r);
  check_end(c);
  client_close(c);
}

static void limits_client(env *e) {
  /* max_header_bytes = 2048: at the limit is fine, past it is 431. */
  char *ok = big_request(2000, 0), *over = big_request(2100, 0), *huge = big_request(100000, 0);
  client *c = client_open(e->port);
  check_text(roundtrip(c, ok), 200, "hello");
  client_close(c);
  expect_refusal(e, over, 431);
  expect_refusal(e, huge, 431);
  free(ok);
  free(over);
  free(huge);
  /* A request line longer than the limit. */
  char line[4096];
  memset(line, 'a', sizeof line);
  memcpy(line, "GET /", 5);
  snprintf(line + 3000, sizeof line - 3000, " HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_refusal(e, line, 431);
  /* max_headers = 10 (Host is one). */
  ok = big_request(0, 9);
  over = big_request(0, 10);
  c = client_open(e->port);
  check_text(roundtrip(c, ok), 200, "hello");
  client_close(c);
  expect_refusal(e, over, 431);
  free(ok);
  free(over);
  /* max_body = 1000: by Content-Length (no 100 Continue first), or as the
   * chunks add up; and 1000 exactly is fine. */
  expect_refusal(e, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n"
                    "Expect: 100-continue\r\n\r\n", 413);
  expect_refusal(e, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413);
  char chunks[4096];
  size_t n = (size_t)snprintf(chunks, sizeof chunks,
                              "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 3; i++) {
    n += (size_t)snprintf(chunks + n, sizeof chunks - n, "190\r\n"); /* 400 bytes */
    memset(chunks + n, 'b', 400);
    n += 400;
    n += (size_t)snprintf(chunks + n, sizeof chunks - n, "\r\n");
  }
  snprintf(chunks + n, sizeof chunks - n, "0\r\n\r\n");
  expect_refusal(e, chunks, 413);
  char body[1100];
  n = (size_t)snprintf(body, sizeof body,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
  c = client_open(e->port);
  send_str(c->fd, body);
  memset(body, 'z', 1000);
  send_all(c->fd, body, 1000);
  resp *r;
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->len, 1000);
  CHECK(memcmp(r->body, body, 1000) == 0);
  resp_free(r);
  /* Trailers count against the limits too: 11 trailer fields. */
  n = (size_t)snprintf(chunks, sizeof chunks,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1\r\na\r\n0\r\n");
  for (int i = 0; i < 11; i++)
    n += (size_t)snprintf(chunks + n, sizeof chunks - n, "T%d: v\r\n", i);
  snprintf(chunks + n, sizeof chunks - n, "\r\n");
  client_close(c);
  expect_refusal(e, chunks, 431);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.rejected, 8);
}

static void limits(void) {
  env e = {.client = limits_client,
           .cfg = {.max_header_bytes = 2048, .max_headers = 10, .max_body = 1000}};
  run_case(&e);
}

/* ---- slowloris and idle connections --------------------------------------------------------- */

typedef struct loris {
  env *e;
  int sent;       /* bytes sent before the server cut the connection */
  int status;     /* what it answered, if anything (408), else 0 */
  uint64_t ms;    /* how long it held on */
} loris;

/* One byte of a never-ending head every 100 ms until the server cuts. */
static void *loris_run(void *arg) {
  loris *l = arg;
  client *c = client_open(l->e->port);
  static const char head[] = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  uint64_t t0 = now_ms();
  for (int i = 0; i < 600; i++) {
    char b = i < (int)sizeof head - 1 ? head[i] : 'y';
    if (send(c->fd, &b, 1, MSG_NOSIGNAL) != 1)
      break;
    l->sent++;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 100) == 1)
      break; /* the server said something, or closed */
  }
  l->ms = now_ms() - t0;
  resp *r = NULL;
  if (get_resp(c, &r, false) == 0)
    l->status = r->status;
  resp_free(r);
  CHECK(closed_or_reset(c));
  client_close(c);
  return NULL;
}

static void slowloris_client(env *e) {
  /* A silent connection and two trickling ones, while others are served. */
  client *silent = client_open(e->port);
  loris l[2] = {{.e = e}, {.e = e}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, loris_run, &l[i]), 0);
  client *c = client_open(e->port);
  for (int i = 0; i < 20; i++) {
    check_text(roundtrip(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
    sleep_ms(10);
  }
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(pthread_join(t[i], NULL), 0);
    fprintf(stderr, "slowloris %d: cut after %d bytes, %llu ms, status %d\n", i, l[i].sent,
            (unsigned long long)l[i].ms, l[i].status);
    /* header_timeout_ms = 500: about 5 bytes; loaded machines stretch it. */
    CHECK(l[i].sent >= 2 && l[i].sent < 300);
    CHECK(l[i].ms >= 400);
    CHECK_EQ(l[i].status, 408);
  }
  CHECK(closed_or_reset(silent)); /* cut too, without a word */
  client_close(silent);
  check_text(roundtrip(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(c);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.rejected, 3);
  CHECK_EQ(st.requests, 21 + 2);
}

static void slowloris(void) {
  env e = {.client = slowloris_client, .cfg = {.header_timeout_ms = 500, .idle_timeout_ms = 60000}};
  run_case(&e);
}

static void idle_client(env *e) {
  /* Requests 100 ms apart keep the connection (idle_timeout_ms = 1000)
   * for longer than the idle deadline in all. */
  client *c = client_open(e->port);
  uint64_t t0 = now_ms();
  for (int i = 0; i < 15; i++) {
    check_text(roundtrip(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
    sleep_ms(100);
  }
  CHECK(now_ms() - t0 >= 1000);
  /* Then quiet: closed at the idle deadline, without a response. */
  uint64_t t1 = now_ms();
  check_end(c);
  uint64_t waited = now_ms() - t1;
  fprintf(stderr, "idle connection closed after %llu ms\n", (unsigned long long)waited);
  CHECK(waited >= 500 && waited < 30000);
  client_close(c);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.requests, 15);
  CHECK_EQ(st.rejected, 0); /* an idle close is not a rejection */
  CHECK_EQ(st.connections, 1);
  wait_active(e, 0);
}

static void idle(void) {
  env e = {.client = idle_client, .cfg = {.idle_timeout_ms = 1000}};
  run_case(&e);
}

/* ---- pipelining ------------------------------------------------------------------------------- */

enum { PIPE_N = 200 };

/* Requests of several kinds (GET, HEAD, a Content-Length body, a chunked
 * one, blank lines between) in one buffer; request i's answer names i. */
static char *pipeline(size_t *len) {
  size_t cap = PIPE_N * 256, n = 0;
  char *s = malloc(cap);
  for (int i = 0; i < PIPE_N; i++) {
    switch (i % 5) {
    case 0:
    case 1:
      n += (size_t)snprintf(s + n, cap - n, "GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
      break;
    case 2:
      n += (size_t)snprintf(s + n, cap - n, "HEAD /n/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
      break;
    case 3:
      n += (size_t)snprintf(s + n, cap - n,
                            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nbody%03d",
                            7, i);
      break;
    case 4:
      n += (size_t)snprintf(s + n, cap - n,
                            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "4\r\nbody\r\n3;x=y\r\n%03d\r\n0\r\nTrailer: t\r\n\r\n\r\n",
                            i);
      break;
    }
  }
  *len = n;
  return s;
}

static void check_pipeline(client *c) {
  for (int i = 0; i < PIPE_N; i++) {
    resp *r;
    CHECK_EQ(get_resp(c, &r, i % 5 == 2), 0);
    CHECK_EQ(r->status, 200);
    char want[64];
    if (i % 5 < 3)
      snprintf(want, sizeof want, "%s %d", i % 5 == 2 ? "HEAD" : "GET", i);
    else
      snprintf(want, sizeof want, "body%03d", i);
    if (i % 5 == 2) {
      CHECK_EQ(strtoul(hdr(r, "content-length"), NULL, 10), strlen(want));
      CHECK_EQ(r->len, 0);
    } else {
      if (strcmp(r->body, want) != 0)
        fprintf(stderr, "response %d: \"%s\", want \"%s\"\n", i, r->body, want);
      CHECK(strcmp(r->body, want) == 0);
    }
    resp_free(r);
  }
}

static void pipelining_client(env *e) {
  size_t n;
  char *all = pipeline(&n);
  /* All at once. */
  client *c = client_open(e->port);
  send_all(c->fd, all, n);
  check_pipeline(c);
  client_close(c);
  /* In 7-byte pieces, so heads, bodies and chunk lines split anywhere. */
  c = client_open(e->port);
  for (size_t at = 0; at < n; at += 7) {
    send_all(c->fd, all + at, n - at < 7 ? n - at : 7);
    if (at % 700 == 0)
      sleep_ms(1);
  }
  check_pipeline(c);
  client_close(c);
  free(all);
  /* Pipelined behind a request that asks to close: the rest go unread. */
  c = client_open(e->port);
  send_str(c->fd, "GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /close HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /n/3 HTTP/1.1\r\nHost: x\r\n\r\n");
  resp *r;
  CHECK_EQ(get_resp(c, &r, false), 0);
  check_text(r, 200, "GET 1");
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  check_text(r, 200, "bye");
  check_end(c);
  client_close(c);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.requests, 2 * PIPE_N + 2);
}

static void pipelining(void) {
  env e = {.client = pipelining_client};
  run_case(&e);
}

/* ---- thousands of idle connections ------------------------------------------------------------ */

enum { MANY = 3000 };

static void thousands_client(env *e) {
  raise_nofile();
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 2 * MANY + 200) {
    printf("skipped: RLIMIT_NOFILE is %llu\n", (unsigned long long)rl.rlim_cur);
    exit(77);
  }
  client **c = calloc(MANY, sizeof *c);
  uint64_t t0 = now_ms();
  for (int i = 0; i < MANY; i++)
    c[i] = client_open(e->port);
  wait_active(e, MANY); /* all accepted, none has said anything yet */
  uint64_t t1 = now_ms();
  /* Each is served, in another order than it was opened, and then all
   * are idle keep-alive connections; twice. */
  char req[64];
  for (int round = 0; round < 2; round++) {
    sleep_ms(300); /* still there a moment later: nothing fell over */
    weft_http_server_stats st;
    stats(e, &st);
    CHECK_EQ(st.active, MANY);
    for (int i = 0; i < MANY; i++) {
      int k = (i * 7) % MANY;
      snprintf(req, sizeof req, "GET /n/%d HTTP/1.1\r\nHost: x\r\n\r\n", k);
      send_str(c[k]->fd, req);
    }
    for (int i = 0; i < MANY; i++) {
      resp *r;
      CHECK_EQ(get_resp(c[i], &r, false), 0);
      char want[32];
      snprintf(want, sizeof want, "GET %d", i);
      check_text(r, 200, want);
    }
  }
  uint64_t t2 = now_ms();
  fprintf(stderr, "%d connections: open and idle after %llu ms, all served twice %llu ms later\n",
          MANY, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1));
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.requests, 2 * MANY);
  CHECK_EQ(st.connections, MANY);
  CHECK_EQ(st.rejected, 0);
  for (int i = 0; i < MANY; i++)
    client_close(c[i]);
  free(c);
  wait_active(e, 0);
}

static void thousands(void) {
  /* Sanitizers are slow to open thousands: a header deadline that the
   * first request is sure to beat (the deadlines have cases of their own). */
  env e = {.client = thousands_client, .cfg = {.backlog = 4096, .header_timeout_ms = 300000}};
  run_case(&e);
}

/* ---- handlers that park ----------------------------------------------------------------------- */

enum { SLEEPERS = 50 };

static void sleepers_client(env *e) {
  /* SLEEPERS connections each in a 1 s sleep at once: answered together,
   * not one after another (50 s). */
  client *c[SLEEPERS];
  for (int i = 0; i < SLEEPERS; i++)
    c[i] = client_open(e->port);
  uint64_t t0 = now_ms();
  for (int i = 0; i < SLEEPERS; i++)
    send_str(c[i]->fd, "GET /sleep?ms=1000 HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < SLEEPERS; i++) {
    resp *r;
    CHECK_EQ(get_resp(c[i], &r, false), 0);
    check_text(r, 200, "slept");
    client_close(c[i]);
  }
  uint64_t took = now_ms() - t0;
  fprintf(stderr, "%d sleeps of 1 s took %llu ms\n", SLEEPERS, (unsigned long long)took);
  CHECK(took >= 1000 && took < SLEEPERS * 1000 / 3);
  /* A handler that waits (until we say so) blocks nobody else: 100 fast
   * requests go through while it waits. */
  client *blocked = client_open(e->port);
  send_str(blocked->fd, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
  while (ld(&H.entered) < 1)
    sleep_ms(1);
  client *fast = client_open(e->port);
  for (int i = 0; i < 100; i++)
    check_text(roundtrip(fast, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(fast);
  struct pollfd pf = {.fd = blocked->fd, .events = POLLIN};
  CHECK_EQ(poll(&pf, 1, 0), 0); /* still waiting, still open */
  st(&H.release, 1);
  resp *r;
  CHECK_EQ(get_resp(blocked, &r, false), 0);
  check_text(r, 200, "released");
  client_close(blocked);
}

static void sleeps(void) {
  env e = {.client = sleepers_client};
  run_case(&e);
}

/* A handler that fetches from another server (whose handler waits until
 * we say so) blocks nobody meanwhile. */
static void fetch_client(env *e) {
  client *f = client_open(e->port);
  send_str(f->fd, "GET /fetch HTTP/1.1\r\nHost: x\r\n\r\n");
  while (ld(&H.entered) < 1)
    sleep_ms(1);
  client *fast = client_open(e->port);
  for (int i = 0; i < 100; i++)
    check_text(roundtrip(fast, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  check_text(roundtrip(fast, "GET /resolve HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "resolved");
  client_close(fast);
  struct pollfd pf = {.fd = f->fd, .events = POLLIN};
  CHECK_EQ(poll(&pf, 1, 0), 0);
  st(&H.release, 1);
  resp *r;
  CHECK_EQ(get_resp(f, &r, false), 0);
  check_text(r, 200, "fetched 200 released");
  client_close(f);
}

static void fetch(void) {
  env e = {.client = fetch_client, .with_other = true};
  run_case(&e);
}

/* ---- graceful shutdown ---------------------------------------------------------------------- */

enum { LOOPERS = 4, BLOCKERS = 4, IDLERS = 3 };

static struct {
  uint32_t stop_called, stop_returned;
  uint32_t looper_ok[LOOPERS];
} SD;

/* Requests in a loop, reconnecting, until connections are refused: each
 * response whole, or none at all. */
static void *looper(void *arg) {
  env *e = ((env **)arg)[0];
  int me = (int)(intptr_t)((void **)arg)[1];
  free(arg);
  for (;;) {
    client *c = calloc(1, sizeof *c);
    if (connect_port_rc(e->port, &c->fd)) {
      free(c);
      return NULL; /* refused: the server stopped listening */
    }
    for (;;) {
      static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
      if (send(c->fd, req, sizeof req - 1, MSG_NOSIGNAL) != sizeof req - 1)
        break;
      resp *r;
      int rc = get_resp(c, &r, false);
      if (rc) { /* closed before the response began: a clean boundary */
        CHECK(rc == -EPIPE || rc == -ECONNRESET);
        resp_free(r);
        break;
      }
      CHECK_EQ(r->status, 200);
      CHECK(strcmp(r->body, "hello") == 0);
      bool last = hdr(r, "connection") && strcasecmp(hdr(r, "connection"), "close") == 0;
      resp_free(r);
      __atomic_fetch_add(&SD.looper_ok[me], 1, __ATOMIC_RELAXED);
      if (last)
        break;
    }
    client_close(c);
  }
}

static void shutdown_client(env *e) {
  client *idle[IDLERS];
  for (int i = 0; i < IDLERS; i++)
    idle[i] = client_open(e->port);
  wait_active(e, IDLERS);
  pthread_t t[LOOPERS];
  for (int i = 0; i < LOOPERS; i++) {
    void **a = malloc(2 * sizeof *a);
    a[0] = e;
    a[1] = (void *)(intptr_t)i;
    CHECK_EQ(pthread_create(&t[i], NULL, looper, a), 0);
  }
  for (int i = 0; i < LOOPERS; i++) /* under load */
    while (__atomic_load_n(&SD.looper_ok[i], __ATOMIC_RELAXED) < 20)
      sleep_ms(1);
  client *b[BLOCKERS];
  for (int i = 0; i < BLOCKERS; i++) {
    b[i] = client_open(e->port);
    send_str(b[i]->fd, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  while (ld(&H.entered) < BLOCKERS) /* in flight: the stopper stops now */
    sleep_ms(1);
  /* Idle connections are closed at once, new ones refused... */
  for (int i = 0; i < IDLERS; i++) {
    check_end(idle[i]);
    client_close(idle[i]);
  }
  uint64_t end = now_ms() + 30000;
  int fd = -1, rc;
  while ((rc = connect_port_rc(e->port, &fd)) == 0) {
    close(fd);
    CHECK(now_ms() < end);
    sleep_ms(2);
  }
  CHECK_EQ(rc, -ECONNREFUSED);
  /* ...while the requests in flight are still waited for. */
  sleep_ms(100);
  CHECK_EQ(ld(&SD.stop_returned), 0);
  for (int i = 0; i < BLOCKERS; i++) {
    struct pollfd pf = {.fd = b[i]->fd, .events = POLLIN};
    CHECK_EQ(poll(&pf, 1, 0), 0);
  }
  st(&H.release, 1);
  for (int i = 0; i < BLOCKERS; i++) { /* they finish, and are told to go */
    resp *r;
    CHECK_EQ(get_resp(b[i], &r, false), 0);
    CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
    check_text(r, 200, "released");
    check_end(b[i]);
    client_close(b[i]);
  }
  for (int i = 0; i < LOOPERS; i++)
    CHECK_EQ(pthread_join(t[i], NULL), 0);
  while (!ld(&SD.stop_returned)) {
    CHECK(now_ms() < end);
    sleep_ms(2);
  }
  CHECK_EQ(ld(&H.cancelled), 0); /* nobody was cut */
}

static void shutdown_stopper(env *e) {
  while (ld(&H.entered) < BLOCKERS)
    weft_sleep_ms(1);
  st(&SD.stop_called, 1);
  CHECK_EQ(weft_http_server_stop(e->s, 60000), 0);
  e->stopped = true;
  st(&SD.stop_returned, 1);
}

static void shutdown_graceful(void) {
  memset(&SD, 0, sizeof SD);
  env e = {.client = shutdown_client, .during = shutdown_stopper};
  run_case(&e);
}

/* Past the grace period, requests in flight are cut: their handlers are
 * cancelled, their connections closed without a response. */
static uint64_t cut_ms;

static void cut_client(env *e) {
  client *b[2];
  for (int i = 0; i < 2; i++) {
    b[i] = client_open(e->port);
    send_str(b[i]->fd, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  client *partial = client_open(e->port);
  send_str(partial->fd, "GET /hello HTTP/1.1\r\nHo");
  client *slow = client_open(e->port);
  send_str(slow->fd, "GET /streamcl/100000000?chunk=65536 HTTP/1.1\r\nHost: x\r\n\r\n");
  char first[1024];
  CHECK(recv(slow->fd, first, sizeof first, 0) > 0); /* it is streaming; we stop reading */
  while (ld(&H.entered) < 2)
    sleep_ms(1);
  for (int i = 0; i < 2; i++) {
    resp *r;
    int rc = get_resp(b[i], &r, false);
    CHECK(rc == -EPIPE || rc == -ECONNRESET);
    resp_free(r);
    client_close(b[i]);
  }
  CHECK(closed_or_reset(partial));
  client_close(partial);
  client_close(slow);
}

static void cut_stopper(env *e) {
  while (ld(&H.entered) < 2)
    weft_sleep_ms(1);
  weft_sleep_ms(50);
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_http_server_stop(e->s, 300), 0);
  cut_ms = (weft_now_ns() - t0) / MS;
  e->stopped = true;
}

static void shutdown_cut(void) {
  env e = {.client = cut_client, .during = cut_stopper};
  run_case(&e);
  fprintf(stderr, "stop with 300 ms of grace took %llu ms\n", (unsigned long long)cut_ms);
  CHECK(cut_ms >= 250 && cut_ms < 20000);
  CHECK_EQ(H.cancelled, 2);
}

/* ---- stats ------------------------------------------------------------------------------------- */

static void stats_client(env *e) {
  client *a = client_open(e->port);
  check_text(roundtrip(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  check_text(roundtrip(a, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), 404, "not found");
  client *b = client_open(e->port);
  check_text(roundtrip(b, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 200,
             "hello");
  check_end(b);
  client_close(b);
  expect_refusal(e, "BAD\r\n\r\n", 400);
  client *silent = client_open(e->port); /* cut at the header deadline */
  CHECK(closed_or_reset(silent));
  client_close(silent);
  client *h = client_open(e->port);
  send_str(h->fd, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n");
  resp *r;
  CHECK_EQ(get_resp(h, &r, false), 0);
  check_text(r, 299, "hi");
  check_end(h);
  client_close(h);
  wait_active(e, 1); /* a */
  weft_http_server_stats s;
  stats(e, &s);
  CHECK_EQ(s.connections, 5);
  CHECK_EQ(s.requests, 5); /* hello, 404, hello, 400, hijack */
  CHECK_EQ(s.rejected, 2); /* 400, the silent one */
  CHECK_EQ(s.active, 1);
  client_close(a);
  wait_active(e, 0);
  stats(e, &s);
  CHECK_EQ(s.requests, 5);
}

static void stats_case(void) {
  env e = {.client = stats_client, .cfg = {.header_timeout_ms = 300}};
  run_case(&e);
}

/* ---- the response API, framing, HTTP/1.0, targets --------------------------------------------- */

static void check_pattern(const resp *r, size_t n) {
  CHECK_EQ(r->len, n);
  for (size_t i = 0; i < n; i++)
    if (r->body[i] != pattern_byte(i)) {
      fprintf(stderr, "byte %zu\n", i);
      CHECK(!"pattern");
    }
}

static void response_client(env *e) {
  client *c = client_open(e->port);
  resp *r = roundtrip(c, "GET /api HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 201);
  CHECK(strcmp(hdr(r, "content-length"), "3") == 0); /* the handler's 999 replaced */
  CHECK(strcmp(hdr(r, "x-ok"), "fine value") == 0);
  CHECK(hdr(r, "date") != NULL && strstr(hdr(r, "date"), "GMT") != NULL);
  CHECK(strcmp(hdr(r, "server"), "weft") == 0);
  check_text(r, 201, "abc");
  CHECK_EQ(ld(&H.api_ok), 1);
  r = roundtrip(c, "GET /date HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "date"), "yesterday") == 0 && strcmp(hdr(r, "server"), "mine") == 0);
  int dates = 0;
  for (int i = 0; i < r->nh; i++)
    dates += strcasecmp(r->name[i], "date") == 0 || strcasecmp(r->name[i], "server") == 0;
  CHECK_EQ(dates, 2);
  check_text(r, 200, "dated");
  r = roundtrip(c, "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(hdr(r, "content-length") == NULL);
  check_text(r, 204, "");
  /* Streamed: chunked, one chunk per write; with a length; HEAD of both. */
  r = roundtrip(c, "GET /stream/100000?chunk=777 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->nchunks, (100000 + 776) / 777);
  check_pattern(r, 100000);
  resp_free(r);
  r = roundtrip(c, "GET /streamcl/300000?chunk=65536 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "content-length"), "300000") == 0);
  check_pattern(r, 300000);
  resp_free(r);
  r = roundtrip(c, "HEAD /stream/5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "transfer-encoding"), "chunked") == 0);
  resp_free(r);
  r = roundtrip(c, "HEAD /streamcl/5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "content-length"), "5000") == 0);
  resp_free(r);
  r = roundtrip(c, "HEAD /n/1 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "content-length"), "6") == 0); /* "HEAD 1", not sent */
  resp_free(r);
  /* Blank lines before a request; targets in their forms. */
  check_text(roundtrip(c, "\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  check_text(roundtrip(c, "GET /target?x=1&y HTTP/1.1\r\nHost: x\r\n\r\n"), 200,
             "/target?x=1&y|/target|x=1&y|11");
  check_text(roundtrip(c, "GET HTTP://example.com:8080/target?q HTTP/1.1\r\nHost: x\r\n\r\n"),
             200, "HTTP://example.com:8080/target?q|/target|q|11");
  check_text(roundtrip(c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "*|*||11");
  check_text(roundtrip(c, "GET /stopme HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "EDEADLK");
  /* 100-continue: asked for, and sent before the body is. */
  send_str(c->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  "Expect: 100-continue\r\n\r\n");
  char line[128];
  CHECK_EQ(cl_line(c, line, sizeof line), 0);
  CHECK(strcmp(line, "HTTP/1.1 100 Continue") == 0);
  CHECK_EQ(cl_line(c, line, sizeof line), 0);
  CHECK_EQ(line[0], 0);
  send_str(c->fd, "body");
  CHECK_EQ(get_resp(c, &r, false), 0);
  check_text(r, 200, "body");
  /* A body too large to sit in the input buffer. */
  size_t big = 200000;
  char *body = malloc(big);
  for (size_t i = 0; i < big; i++)
    body[i] = pattern_byte(i);
  snprintf(line, sizeof line, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", big);
  send_str(c->fd, line);
  send_all(c->fd, body, big);
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK_EQ(r->status, 200);
  check_pattern(r, big);
  resp_free(r);
  free(body);
  check_text(roundtrip(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(c);
  /* HTTP/1.0: closes unless asked to keep alive; a stream ends by the close. */
  c = client_open(e->port);
  r = roundtrip(c, "GET /target HTTP/1.0\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  check_text(r, 200, "/target|/target||10");
  check_end(c);
  client_close(c);
  c = client_open(e->port);
  r = roundtrip(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "keep-alive") == 0);
  check_text(r, 200, "hello");
  r = roundtrip(c, "GET /stream/3000?chunk=100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(hdr(r, "transfer-encoding") == NULL && hdr(r, "content-length") == NULL);
  check_pattern(r, 3000);
  resp_free(r);
  client_close(c);
}

static void response(void) {
  env e = {.client = response_client};
  run_case(&e);
}

/* ---- weft's own client against it --------------------------------------------------------------- */

typedef struct upload {
  size_t at, n;
} upload;

static ssize_t upload_read(void *arg, void *buf, size_t n) {
  upload *u = arg;
  size_t k = u->n - u->at < n ? u->n - u->at : n;
  k = k < 3000 ? k : 3000; /* many small chunks */
  for (size_t i = 0; i < k; i++)
    ((char *)buf)[i] = pattern_byte(u->at + i);
  u->at += k;
  return (ssize_t)k;
}

static char base_url[64];

static void *many_get(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++) {
    char u[96];
    snprintf(u, sizeof u, "%s/n/%d", base_url, i);
    weft_http_response r = {0};
    CHECK_EQ(weft_http_get(u, &r), 0);
    char want[32];
    snprintf(want, sizeof want, "GET %d", i);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(r.body, want) == 0);
    weft_http_response_free(&r);
  }
  return NULL;
}

static void weft_client_during(env *e) {
  snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", e->port);
  char u[128];
  weft_http_response r = {0};
  snprintf(u, sizeof u, "%s/hello", base_url);
  CHECK_EQ(weft_http_get(u, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "hello") == 0);
  CHECK(weft_http_header_get(&r, "date") != NULL);
  weft_http_response_free(&r);
  /* A body in memory, and one from a reader (chunked, with Expect). */
  size_t n = 300000;
  char *body = malloc(n);
  for (size_t i = 0; i < n; i++)
    body[i] = pattern_byte(i);
  snprintf(u, sizeof u, "%s/echo", base_url);
  weft_http_request q = {.url = u, .body = body, .body_len = n};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, n);
  CHECK(memcmp(r.body, body, n) == 0);
  weft_http_response_free(&r);
  upload up = {.n = 200000};
  q = (weft_http_request){.url = u, .body_reader = upload_read, .body_arg = &up, .body_size = -1};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, up.n);
  CHECK(memcmp(r.body, body, up.n) == 0);
  CHECK(strcmp(weft_http_header_get(&r, "x-len"), "200000") == 0);
  weft_http_response_free(&r);
  free(body);
  snprintf(u, sizeof u, "%s/stream/100000?chunk=999", base_url);
  CHECK_EQ(weft_http_get(u, &r), 0);
  CHECK_EQ(r.body_len, 100000);
  for (size_t i = 0; i < r.body_len; i++)
    CHECK_EQ(r.body[i], pattern_byte(i));
  weft_http_response_free(&r);
  /* 100 clients at once, 10 requests each, in the server's own runtime. */
  enum { N = 100 };
  weft_co *co[N];
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&co[i], many_get, NULL), 0);
  CHECK_EQ(weft_gather(co, N, NULL), 0);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.requests, 4 + N * 10);
  CHECK_EQ(st.rejected, 0);
}

static void weft_client(void) {
  env e = {.during = weft_client_during};
  run_case(&e);
}

/* ---- faulty clients: garbage after a good request, hang-ups mid-request ------------------------ */

/* Open descriptors of the process (the server's and the test's). */
static int count_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 65536; fd++)
    n += fcntl(fd, F_GETFD) != -1;
  return n;
}

/* A valid request and garbage behind it in one write: the valid one is
 * answered (keep-alive), then the garbage gets 400 and the close. Garbage
 * that never ends a head (no blank line) cannot be judged before it
 * ends: it gets 408 at the header deadline (500 ms here), and the close. */
static void garbage_after_valid_client(env *e) {
  static const struct {
    const char *junk;
    int status;
  } junk[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"\x16\x03\x01\x02\x10\x01\x7f\x01\xfc\x03\x03\r\n\r\n", 400}, /* binary, TLS-like */
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400},
      {"\x16\x03\x01\x02\x10\x01\x7f\x01\xfc\x03\x03", 408}, /* no end of head */
  };
  enum { NJUNK = sizeof junk / sizeof *junk };
  for (int i = 0; i < NJUNK; i++) {
    client *c = client_open(e->port);
    char req[256];
    snprintf(req, sizeof req, "%s%s",
             i == 1 ? "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
                    : "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
             junk[i].junk);
    send_str(c->fd, req);
    resp *r;
    CHECK_EQ(get_resp(c, &r, false), 0);
    CHECK(hdr(r, "connection") == NULL || strcasecmp(hdr(r, "connection"), "close") != 0);
    check_text(r, 200, i == 1 ? "body" : "hello");
    CHECK_EQ(get_resp(c, &r, false), 0);
    CHECK_EQ(r->status, junk[i].status);
    CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
    resp_free(r);
    check_end(c);
    client_close(c);
  }
  wait_active(e, 0);
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.connections, NJUNK);
  CHECK_EQ(st.requests, 2 * NJUNK);
  CHECK_EQ(st.rejected, NJUNK);
}

static void pipelined_garbage_after_valid_gets_answer_then_400_and_close(void) {
  env e = {.client = garbage_after_valid_client, .cfg = {.header_timeout_ms = 500}};
  run_case(&e);
}

/* Clients that hang up (a close, or an RST) halfway through what they
 * send: the server frees each connection at once (not at a deadline:
 * those are minutes here), answers nothing, counts no request, and gives
 * back every descriptor; LSan checks the memory at exit. `parts` are
 * what each client sends before hanging up. */
static void hangups(env *e, const char *const *parts, int nparts) {
  int fds_before = count_fds();
  for (int round = 0; round < 2; round++) { /* round 1: with an RST */
    client *c[16];
    CHECK(nparts <= 16);
    for (int i = 0; i < nparts; i++) {
      c[i] = client_open(e->port);
      send_str(c[i]->fd, parts[i]);
    }
    wait_active(e, (uint64_t)nparts); /* all accepted, all waiting for more */
    for (int i = 0; i < nparts; i++) {
      if (round) {
        struct linger lg = {1, 0};
        CHECK_EQ(setsockopt(c[i]->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      }
      client_close(c[i]);
    }
    wait_active(e, 0); /* freed: the deadlines are far away */
  }
  weft_http_server_stats st;
  stats(e, &st);
  CHECK_EQ(st.connections, 2 * (uint64_t)nparts);
  CHECK_EQ(st.requests, 0);
  CHECK_EQ(st.rejected, 0);
  CHECK_EQ(count_fds(), fds_before);
  /* And the server serves on. */
  client *ok = client_open(e->port);
  check_text(roundtrip(ok, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(ok);
}

static void mid_head_client(env *e) {
  static const char *const parts[] = {
      "G",
      "GET /hello HTTP/1.1\r\n",
      "GET /hello HTTP/1.1\r\nHost: x\r\nX-Partial: ab",
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r", /* all but the last LF */
  };
  hangups(e, parts, sizeof parts / sizeof *parts);
}

static void client_disconnects_mid_head_frees_connection(void) {
  env e = {.client = mid_head_client,
           .cfg = {.header_timeout_ms = 600000, .idle_timeout_ms = 600000}};
  run_case(&e);
}

static void mid_body_client(env *e) {
  static const char *const parts[] = {
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhalf of it",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n01234",
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
  };
  hangups(e, parts, sizeof parts / sizeof *parts);
}

static void client_disconnects_mid_body_frees_connection(void) {
  env e = {.client = mid_body_client,
           .cfg = {.header_timeout_ms = 600000, .idle_timeout_ms = 600000}};
  run_case(&e);
}

/* ---- out of descriptors: the acceptor waits, and serves when they return ----------------------- */

static double cpu_seconds(void) {
  struct rusage ru;
  CHECK_EQ(getrusage(RUSAGE_SELF, &ru), 0);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

enum { EMFILE_WAITING = 3 };

static void emfile_client(env *e) {
  /* A kept-alive connection from before, and sockets made (not yet
   * connected: connect takes no descriptor) for the connections that
   * will wait in the backlog. */
  client *kept = client_open(e->port);
  check_text(roundtrip(kept, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  int waiting[EMFILE_WAITING];
  for (int i = 0; i < EMFILE_WAITING; i++) {
    waiting[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(waiting[i] >= 0);
  }
  /* Out of descriptors: a limit a little above the lowest free number,
   * and every number below it taken. */
  struct rlimit old;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  int lowest = 0;
  while (fcntl(lowest, F_GETFD) != -1)
    lowest++;
  struct rlimit low = {(rlim_t)lowest + 32, old.rlim_max};
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  int fill[64], nfill = 0, fd;
  while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
    CHECK(nfill < 64);
    fill[nfill++] = fd;
  }
  CHECK_EQ(errno, EMFILE);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(e->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < EMFILE_WAITING; i++) {
    CHECK_EQ(connect(waiting[i], (struct sockaddr *)&a, sizeof a), 0); /* in the backlog */
    send_str(waiting[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  /* A second of exhaustion: nothing is accepted, the acceptor neither
   * dies nor spins (the process stays mostly idle: a spinning acceptor
   * would take a core), and the kept connection is still served. */
  uint64_t t0 = now_ms();
  double cpu0 = cpu_seconds();
  sleep_ms(500);
  check_text(roundtrip(kept, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  sleep_ms(500);
  double cpu = cpu_seconds() - cpu0, wall = (double)(now_ms() - t0) / 1e3;
  weft_http_server_stats st;
  stats(e, &st);
  fprintf(stderr, "out of descriptors for %.2f s: %.3f s of CPU, %llu accepted\n", wall, cpu,
          (unsigned long long)st.connections);
  CHECK_EQ(st.connections, 1); /* only `kept` */
  CHECK(cpu < wall / 2);
  /* Descriptors return: the waiting connections are accepted and served. */
  while (nfill)
    close(fill[--nfill]);
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  for (int i = 0; i < EMFILE_WAITING; i++) {
    client *c = calloc(1, sizeof *c);
    c->fd = waiting[i];
    struct timeval tv = {30, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    resp *r;
    CHECK_EQ(get_resp(c, &r, false), 0);
    check_text(r, 200, "hello");
    client_close(c);
  }
  client *fresh = client_open(e->port);
  check_text(roundtrip(fresh, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "hello");
  client_close(fresh);
  client_close(kept);
  wait_active(e, 0);
  stats(e, &st);
  CHECK_EQ(st.connections, 2 + EMFILE_WAITING);
  CHECK_EQ(st.requests, 3 + EMFILE_WAITING);
}

static void emfile_acceptor_waits_then_serves(void) {
  env e = {.client = emfile_client};
  run_case(&e);
}

static const test_case cases[] = {
    {"malformed", malformed},
    {"limits", limits},
    {"slowloris", slowloris},
    {"idle", idle},
    {"pipelining", pipelining},
    {"thousands", thousands},
    {"sleeps", sleeps},
    {"fetch", fetch},
    {"shutdown_graceful", shutdown_graceful},
    {"shutdown_cut", shutdown_cut},
    {"stats", stats_case},
    {"response", response},
    {"weft_client", weft_client},
    {"pipelined_garbage_after_valid_gets_answer_then_400_and_close",
     pipelined_garbage_after_valid_gets_answer_then_400_and_close},
    {"client_disconnects_mid_head_frees_connection",
     client_disconnects_mid_head_frees_connection},
    {"client_disconnects_mid_body_frees_connection",
     client_disconnects_mid_body_frees_connection},
    {"emfile_acceptor_waits_then_serves", emfile_acceptor_waits_then_serves},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
