/*
 * test_httpd.c - the http tests' fixtures tested on their own: every
 * endpoint of weft-test-httpd through plain blocking sockets and raw
 * HTTP/1.1 (status, headers, Content-Length and chunked bodies, keep-alive
 * and pipelining, RST, malformed requests, 2000 connections at once), the
 * server from inside a weft runtime's client, and the nginx fixture
 * (HTTP/1.1, h2c, TLS with its certificate and ALPN h2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../check.h"
#include "fixture.h"
#include "rawclient.h"
#include "weft/io.h"


static httpd_fixture H;

static void start(void) {
  H.workers = 0; /* WEFT_WORKERS from CTest */
  httpd_start(&H);
}

/* ---- endpoints ------------------------------------------------------------------------ */

static void bytes(void) {
  start();
  client *c = client_open(H.port);
  size_t sizes[] = {0, 1, 26, 65536, 65537, 100000, 3000000};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) { /* one connection */
    char req[128];
    snprintf(req, sizeof req, "GET /bytes/%zu HTTP/1.1\r\nHost: x\r\n\r\n", sizes[i]);
    resp *r = roundtrip(c, req);
    CHECK_EQ(r->status, 200);
    CHECK_EQ(strtoull(hdr(r, "content-length"), NULL, 10), sizes[i]);
    CHECK_EQ(r->len, sizes[i]);
    CHECK(is_pattern(r->body, 0, r->len));
    resp_free(r);
  }
  resp *r = roundtrip(c, "HEAD /bytes/5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 200);
  CHECK(strcmp(hdr(r, "content-length"), "5000") == 0);
  resp_free(r);
  check_text(roundtrip(c, "GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "abc");
  client_close(c);
  httpd_stop(&H);
}

static void delay(void) {
  start();
  uint64_t t0 = fixture_now_ms();
  check_text(get1(H.port, "/delay/300"), 200, "ok");
  CHECK(fixture_now_ms() - t0 >= 300);
  t0 = fixture_now_ms();
  check_text(get1(H.port, "/delay/0"), 200, "ok");
  CHECK(fixture_now_ms() - t0 < 5000);
  httpd_stop(&H);
}

static void status(void) {
  start();
  int codes[] = {200, 201, 202, 301, 400, 401, 403, 404, 418, 429, 500, 502, 503, 599};
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    char path[32], body[32];
    snprintf(path, sizeof path, "/status/%d", codes[i]);
    snprintf(body, sizeof body, "status %d", codes[i]);
    check_text(get1(H.port, path), codes[i], body);
  }
  client *c = client_open(H.port); /* no body, and the connection goes on */
  resp *r = roundtrip(c, "GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 204);
  CHECK(hdr(r, "content-length") == NULL);
  resp_free(r);
  r = roundtrip(c, "GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 304);
  resp_free(r);
  check_text(roundtrip(c, "GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "status 200");
  client_close(c);
  check_text(get1(H.port, "/status/99"), 400, "bad number\n");
  check_text(get1(H.port, "/status/abc"), 400, "bad number\n");
  httpd_stop(&H);
}

static void chunked(void) {
  start();
  client *c = client_open(H.port);
  struct { const char *path; size_t n, chunk; } cases[] = {
      {"/chunked/10000?chunk=1000", 10000, 1000},
      {"/chunked/2500", 2500, 1000},
      {"/chunked/1?chunk=7", 1, 7},
      {"/chunked/0", 0, 1000},
      {"/chunked/250000?chunk=100000", 250000, 100000},
      {"/chunked/100?chunk=1", 100, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", cases[i].path);
    resp *r = roundtrip(c, req);
    CHECK_EQ(r->status, 200);
    CHECK(strcasecmp(hdr(r, "transfer-encoding"), "chunked") == 0);
    CHECK(hdr(r, "content-length") == NULL);
    CHECK_EQ(r->len, cases[i].n);
    CHECK(is_pattern(r->body, 0, r->len));
    size_t want = (cases[i].n + cases[i].chunk - 1) / cases[i].chunk;
    CHECK_EQ(r->nchunks, want);
    for (int k = 0; k < r->nchunks; k++)
      CHECK_EQ(r->chunk[k], k + 1 < r->nchunks ? cases[i].chunk
                                               : cases[i].n - (size_t)k * cases[i].chunk);
    resp_free(r);
  }
  resp *r = roundtrip(c, "HEAD /chunked/5000 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "transfer-encoding"), "chunked") == 0);
  resp_free(r);
  check_text(roundtrip(c, "GET /chunked/2 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "ab");
  client_close(c);
  check_text(get1(H.port, "/chunked/10?chunk=0"), 400, "bad number\n");
  /* HTTP/1.0 has no chunked coding: the close ends the body. */
  c = client_open(H.port);
  r = roundtrip(c, "GET /chunked/3000 HTTP/1.0\r\n\r\n");
  CHECK(hdr(r, "transfer-encoding") == NULL && hdr(r, "content-length") == NULL);
  CHECK_EQ(r->len, 3000);
  CHECK(is_pattern(r->body, 0, r->len));
  resp_free(r);
  client_close(c);
  httpd_stop(&H);
}

static void slow(void) {
  start();
  client *c = client_open(H.port);
  uint64_t t0 = fixture_now_ms();
  send_str(c->fd, "GET /slow/5000?ms=50&piece=1000 HTTP/1.1\r\nHost: x\r\n\r\n");
  resp *r;
  CHECK_EQ(read_head(c, r = calloc(1, sizeof *r)), 0);
  CHECK_EQ(r->status, 200);
  CHECK(strcmp(hdr(r, "content-length"), "5000") == 0);
  uint64_t t_head = fixture_now_ms();
  char body[5000];
  CHECK_EQ(cl_exact(c, body, sizeof body), 0);
  uint64_t t_end = fixture_now_ms();
  CHECK(is_pattern(body, 0, sizeof body));
  CHECK(t_end - t0 >= 200); /* five pieces, four waits of 50 ms */
  CHECK(t_head - t0 < t_end - t0);
  free(r);
  check_text(roundtrip(c, "GET /slow/3?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "abc");
  client_close(c);
  httpd_stop(&H);
}

static void reset(void) {
  start();
  client *c = client_open(H.port);
  send_str(c->fd, "GET /reset HTTP/1.1\r\nHost: x\r\n\r\n");
  resp *r = calloc(1, sizeof *r);
  CHECK_EQ(read_head(c, r), 0);
  CHECK_EQ(r->status, 200);
  CHECK(strcmp(hdr(r, "content-length"), "100000") == 0);
  char body[1000];
  CHECK_EQ(cl_exact(c, body, sizeof body), 0);
  CHECK(is_pattern(body, 0, sizeof body));
  CHECK_EQ(c->len - c->off, 0);
  CHECK_EQ(cl_fill(c), -ECONNRESET);
  free(r);
  client_close(c);
  httpd_stop(&H);
}

static void garbage_and_close_early(void) {
  start();
  client *c = client_open(H.port);
  send_str(c->fd, "GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n");
  while (cl_fill(c) > 0) {
  }
  CHECK_EQ(c->len, 20);
  CHECK(memcmp(c->buf, "THIS IS NOT HTTP\r\n\r\n", 20) == 0);
  client_close(c);
  c = client_open(H.port);
  send_str(c->fd, "GET /close-early HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(cl_fill(c), 0); /* end of stream, nothing before it */
  client_close(c);
  httpd_stop(&H);
}

static void redirects(void) {
  start();
  client *c = client_open(H.port);
  resp *r = roundtrip(c, "GET /redirect/3 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 302);
  CHECK(strcmp(hdr(r, "location"), "/redirect/2") == 0);
  resp_free(r);
  r = roundtrip(c, "GET /redirect/1 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 302);
  CHECK(strcmp(hdr(r, "location"), "/redirect/0") == 0);
  resp_free(r);
  check_text(roundtrip(c, "GET /redirect/0 HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "done");
  r = roundtrip(c, "GET /redirect-to?url=http%3A%2F%2Fh.weft.test%3A81%2Fa%3Fb%3Dc%26d HTTP/1.1\r\n"
                   "Host: x\r\n\r\n");
  CHECK_EQ(r->status, 302);
  CHECK(strcmp(hdr(r, "location"), "http://h.weft.test:81/a?b=c&d") == 0);
  resp_free(r);
  r = roundtrip(c, "GET /redirect-to?status=307&url=/echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 307);
  CHECK(strcmp(hdr(r, "location"), "/echo") == 0);
  resp_free(r);
  r = roundtrip(c, "POST /see-other HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  CHECK_EQ(r->status, 303);
  CHECK(strcmp(hdr(r, "location"), "/method") == 0);
  resp_free(r);
  check_text(roundtrip(c, "GET /method HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "GET");
  check_text(roundtrip(c, "DELETE /method HTTP/1.1\r\nHost: x\r\n\r\n"), 200, "DELETE");
  check_text(roundtrip(c, "POST /method HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
             200, "POST");
  r = roundtrip(c, "HEAD /method HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "content-length"), "4") == 0);
  resp_free(r);
  client_close(c);
  check_text(get1(H.port, "/redirect-to"), 400, "bad redirect-to\n");
  check_text(get1(H.port, "/redirect-to?url=x%0d%0aEvil:1"), 400, "bad redirect-to\n");
  httpd_stop(&H);
}

static void echo(void) {
  start();
  client *c = client_open(H.port);
  resp *r = roundtrip(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world");
  CHECK_EQ(r->status, 200);
  CHECK(strcmp(hdr(r, "x-method"), "POST") == 0);
  CHECK(strcmp(hdr(r, "x-body-length"), "11") == 0);
  check_text(r, 200, "hello world");
  r = roundtrip(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcmp(hdr(r, "x-method"), "GET") == 0);
  CHECK(strcmp(hdr(r, "x-body-length"), "0") == 0);
  check_text(r, 200, "");
  /* A chunked request body, with an extension and a trailer. */
  r = roundtrip(c, "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
  CHECK(strcmp(hdr(r, "x-method"), "PUT") == 0);
  CHECK(strcmp(hdr(r, "x-body-length"), "16") == 0);
  check_text(r, 200, "hello 0123456789");
  /* A big body, written while the server reads. */
  size_t n = 3u << 20;
  char *big = malloc(n), head[128];
  for (size_t i = 0; i < n; i++)
    big[i] = (char)(i * 7 + (i >> 12));
  snprintf(head, sizeof head, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
  send_str(c->fd, head);
  send_all(c->fd, big, n);
  CHECK_EQ(get_resp(c, &r, false), 0);
  CHECK_EQ(r->len, n);
  CHECK(memcmp(r->body, big, n) == 0);
  resp_free(r);
  free(big);
  /* Expect: 100-continue: the 100 comes before the body is sent. */
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
  client_close(c);
  httpd_stop(&H);
}

static void headers(void) {
  start();
  client *c = client_open(H.port);
  resp *r = roundtrip(c, "GET /headers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Custom-Thing:  Value 1 \r\n"
                         "ACCEPT: */*\r\nCookie: k=v\r\n\r\n");
  CHECK(strcmp(hdr(r, "x-test"), "yes") == 0);
  CHECK_EQ(hdr_count(r, "set-cookie"), 2);
  check_text(r, 200, "host: 127.0.0.1\nx-custom-thing: Value 1\naccept: */*\ncookie: k=v\n");
  client_close(c);
  /* Absolute form, as a proxy receives it. */
  check_text(get1(H.port, "http://elsewhere.weft.test:8080/method"), 200, "GET");
  httpd_stop(&H);
}

static void close_and_not_found(void) {
  start();
  client *c = client_open(H.port);
  resp *r = roundtrip(c, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  check_text(r, 200, "closing");
  check_eof(c);
  client_close(c);
  /* Connection: close from the client. */
  c = client_open(H.port);
  r = roundtrip(c, "GET /bytes/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  check_text(r, 200, "ab");
  check_eof(c);
  client_close(c);
  check_text(get1(H.port, "/nope"), 404, "not found\n");
  check_text(get1(H.port, "/"), 404, "not found\n");
  check_text(get1(H.port, "/bytes/abc"), 400, "bad number\n");
  check_text(get1(H.port, "/bytes/-1"), 400, "bad number\n");
  httpd_stop(&H);
}

static void stats(client *c, unsigned long *conns, unsigned long *reqs) {
  resp *r = roundtrip(c, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_EQ(r->status, 200);
  CHECK_EQ(sscanf(r->body, "connections %lu requests %lu", conns, reqs), 2);
  resp_free(r);
}

static void keepalive(void) {
  start();
  client *c = client_open(H.port);
  unsigned long c0, r0, c1, r1;
  stats(c, &c0, &r0);
  stats(c, &c1, &r1);
  CHECK_EQ(c1, c0); /* same connection */
  CHECK_EQ(r1, r0 + 1);
  CHECK(c0 >= 1 && r0 >= 1);
  /* Pipelined: three requests in one write, three answers in order. */
  send_str(c->fd, "GET /bytes/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /method HTTP/1.1\r\nHost: x\r\n\r\n"
                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  resp *r;
  CHECK_EQ(get_resp(c, &r, false), 0);
  check_text(r, 200, "a");
  CHECK_EQ(get_resp(c, &r, false), 0);
  check_text(r, 200, "GET");
  CHECK_EQ(get_resp(c, &r, false), 0);
  check_text(r, 200, "hi");
  stats(c, &c1, &r1);
  CHECK_EQ(c1, c0);
  CHECK_EQ(r1, r0 + 5);
  client_close(c);
  /* HTTP/1.0: closes unless asked to keep alive. */
  c = client_open(H.port);
  r = roundtrip(c, "GET /bytes/1 HTTP/1.0\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
  check_text(r, 200, "a");
  check_eof(c);
  client_close(c);
  c = client_open(H.port);
  r = roundtrip(c, "GET /bytes/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  CHECK(strcasecmp(hdr(r, "connection"), "keep-alive") == 0);
  check_text(r, 200, "a");
  stats(c, &c1, &r1);
  CHECK_EQ(c1, c0 + 2);
  client_close(c);
  httpd_stop(&H);
}

/* Each malformed request on a connection of its own: 400 (or 413, 501)
 * and the connection closed; the server serves on. */
static void malformed(void) {
  start();
  struct { const char *req; int status; } cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400},
      {"GET nothing HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /bytes/1 HTTP/1.1\r\n\r\n", 400}, /* no Host */
      {"GET /bytes/1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    client *c = client_open(H.port);
    resp *r = roundtrip(c, cases[i].req);
    if (r->status != cases[i].status)
      fprintf(stderr, "case %zu: %d for %s\n", i, r->status, cases[i].req);
    CHECK_EQ(r->status, cases[i].status);
    CHECK(strcasecmp(hdr(r, "connection"), "close") == 0);
    resp_free(r);
    check_eof(c);
    client_close(c);
  }
  /* A head over 64 KiB. */
  client *c = client_open(H.port);
  size_t n = 70000;
  char *big = malloc(n + 64);
  int k = snprintf(big, n + 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(big + k, 'x', n);
  memcpy(big + k + n, "\r\n\r\n", 5);
  resp *r = roundtrip(c, big);
  CHECK_EQ(r->status, 400);
  resp_free(r);
  free(big);
  client_close(c);
  check_text(get1(H.port, "/bytes/2"), 200, "ab"); /* still serving */
  httpd_stop(&H);
}

/* 2000 connections open at once, each waiting 1 s in /delay: all
 * answered in about 1 s, so they were served concurrently. */
static void many_connections(void) {
  enum { N = 2000, DELAY_MS = 1000 };
  fixture_raise_nofile();
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < N + 100) {
    printf("skipped: RLIMIT_NOFILE is %llu\n", (unsigned long long)rl.rlim_cur);
    exit(FIXTURE_SKIP);
  }
  H.workers = 4;
  httpd_start(&H);
  client **c = calloc(N, sizeof *c);
  uint64_t t0 = fixture_now_ms();
  for (int i = 0; i < N; i++)
    c[i] = client_open(H.port);
  uint64_t t_conn = fixture_now_ms();
  char req[64];
  snprintf(req, sizeof req, "GET /delay/%d HTTP/1.1\r\nHost: x\r\n\r\n", DELAY_MS);
  for (int i = 0; i < N; i++)
    send_str(c[i]->fd, req);
  for (int i = 0; i < N; i++) {
    resp *r;
    CHECK_EQ(get_resp(c[i], &r, false), 0);
    check_text(r, 200, "ok");
  }
  uint64_t t_end = fixture_now_ms();
  fprintf(stderr, "%d connections: opened in %llu ms, answered %llu ms after\n", N,
          (unsigned long long)(t_conn - t0), (unsigned long long)(t_end - t_conn));
  CHECK(t_end - t_conn >= DELAY_MS);
  CHECK(t_end - t_conn < 60 * DELAY_MS); /* sequentially: 2000 s */
  unsigned long conns, reqs;
  stats(c[0], &conns, &reqs);
  CHECK(conns >= N);
  CHECK(reqs >= N);
  for (int i = 0; i < N; i++)
    client_close(c[i]);
  free(c);
  httpd_stop(&H); /* with connections just closed: shuts down cleanly */
}

/* A server stopped while clients are connected and mid-request: it
 * cancels them and exits 0. */
static void stop_with_clients(void) {
  start();
  client *idle = client_open(H.port);
  client *waiting = client_open(H.port);
  send_str(waiting->fd, "GET /delay/60000 HTTP/1.1\r\nHost: x\r\n\r\n");
  client *partial = client_open(H.port);
  send_str(partial->fd, "GET /bytes/1 HTTP/1.1\r\nHo");
  client *slow_body = client_open(H.port);
  send_str(slow_body->fd, "GET /slow/100000?ms=1000&piece=10 HTTP/1.1\r\nHost: x\r\n\r\n");
  resp *r = get1(H.port, "/stats");
  resp_free(r);
  uint64_t t0 = fixture_now_ms();
  httpd_stop(&H);
  CHECK(fixture_now_ms() - t0 < 10000);
  client_close(idle);
  client_close(waiting);
  client_close(partial);
  client_close(slow_body);
}

/* ---- the fixture around a weft runtime -------------------------------------------- */

static uint64_t weft_ok;

static void *weft_fetch(void *arg) {
  (void)arg;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(H.port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  CHECK_EQ(weft_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  static const char req[] = "GET /bytes/65536 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK_EQ(weft_write(fd, req, sizeof req - 1), sizeof req - 1);
  size_t cap = 1 << 17, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while ((n = weft_read(fd, buf + len, cap - len)) > 0)
    len += (size_t)n;
  CHECK_EQ(n, 0);
  weft_close(fd);
  char *body = memmem(buf, len, "\r\n\r\n", 4);
  CHECK(body && strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
  body += 4;
  CHECK_EQ(len - (size_t)(body - buf), 65536);
  CHECK(is_pattern(body, 0, 65536));
  free(buf);
  __atomic_fetch_add(&weft_ok, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *weft_main(void *arg) {
  (void)arg;
  enum { N = 100 };
  weft_co *co[N];
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&co[i], weft_fetch, NULL), 0);
  CHECK_EQ(weft_gather(co, N, NULL), 0);
  CHECK_EQ(weft_ok, N);
  return NULL;
}

static void from_weft(void) {
  start();
  CHECK_EQ(weft_run(NULL, weft_main, NULL, NULL), 0);
  httpd_stop(&H);
}

/* ---- nginx --------------------------------------------------------------------------------- */

/* popen's whole output. */
static char *run_capture(const char *cmd) {
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  size_t n;
  while ((n = fread(out + len, 1, cap - 1 - len, p)) > 0) {
    len += n;
    if (len + 1 == cap)
      out = realloc(out, cap *= 2);
  }
  out[len] = 0;
  pclose(p);
  return out;
}

static bool have_curl(void) { return access("/usr/bin/curl", X_OK) == 0; }

static void nginx_plain(void) {
  nginx_fixture n;
  nginx_start(&n, false);
  client *c = client_open(n.port);
  resp *r = roundtrip(c, "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->len, NGINX_SMALL_LEN);
  CHECK(is_pattern(r->body, 0, r->len));
  resp_free(r);
  r = roundtrip(c, "GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"); /* keep-alive */
  CHECK_EQ(r->status, 200);
  CHECK_EQ(r->len, NGINX_BIG_LEN);
  for (size_t i = 0; i < r->len; i++)
    CHECK_EQ((unsigned char)r->body[i], nginx_big_byte(i));
  resp_free(r);
  r = roundtrip(c, "GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK_EQ(r->status, 404);
  resp_free(r);
  client_close(c);
  /* h2c: the client preface and an empty SETTINGS frame get SETTINGS. */
  int fd = connect_port(n.h2c_port);
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  send_all(fd, preface, sizeof preface - 1);
  unsigned char frame[9];
  size_t got = 0;
  while (got < sizeof frame) {
    ssize_t k = recv(fd, frame + got, sizeof frame - got, 0);
    CHECK(k > 0);
    got += (size_t)k;
  }
  CHECK_EQ(frame[3], 4); /* type SETTINGS */
  close(fd);
  if (have_curl()) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -s --http2-prior-knowledge -w ' %%{http_version}' %s/small.txt",
             n.h2c_url);
    char *out = run_capture(cmd);
    fprintf(stderr, "curl h2c: %s\n", out);
    CHECK(strlen(out) == NGINX_SMALL_LEN + 2 && is_pattern(out, 0, NGINX_SMALL_LEN));
    CHECK(strcmp(out + NGINX_SMALL_LEN, " 2") == 0);
    free(out);
  }
  char dir[64];
  snprintf(dir, sizeof dir, "%s", n.dir);
  nginx_stop(&n);
  CHECK(access(dir, F_OK) != 0); /* removed */
  CHECK(!fixture_port_accepts(n.port));
}

static void nginx_tls(void) {
  nginx_fixture n;
  nginx_start(&n, true);
  /* Plain HTTP to the TLS port: nginx says so, which shows TLS listens. */
  client *c = client_open(n.port);
  resp *r = roundtrip(c, "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK_EQ(r->status, 400);
  CHECK(strstr(r->body, "HTTPS") != NULL);
  resp_free(r);
  client_close(c);
  char cmd[1024];
  /* HTTP/1.1 over TLS, the certificate verified as a CA file. */
  snprintf(cmd, sizeof cmd,
           "printf 'GET /small.txt HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' |"
           " %s s_client -quiet -connect 127.0.0.1:%u -servername localhost -CAfile %s"
           " -verify_return_error -verify_hostname localhost -alpn http/1.1 2>/dev/null",
           OPENSSL_BIN, n.port, n.ca_path);
  char *out = run_capture(cmd);
  CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
  char *body = strstr(out, "\r\n\r\n");
  CHECK(body && strlen(body + 4) == NGINX_SMALL_LEN && is_pattern(body + 4, 0, NGINX_SMALL_LEN));
  free(out);
  /* ALPN offers h2; the certificate names 127.0.0.1 and *.weft.test too. */
  snprintf(cmd, sizeof cmd,
           "%s s_client -connect 127.0.0.1:%u -servername a.weft.test -CAfile %s"
           " -verify_return_error -verify_ip 127.0.0.1 -alpn h2 </dev/null 2>&1",
           OPENSSL_BIN, n.port, n.ca_path);
  out = run_capture(cmd);
  if (!strstr(out, "ALPN protocol: h2") || !strstr(out, "Verify return code: 0 (ok)"))
    fprintf(stderr, "%s\n", out);
  CHECK(strstr(out, "ALPN protocol: h2") != NULL);
  CHECK(strstr(out, "Verify return code: 0 (ok)") != NULL);
  free(out);
  if (have_curl()) {
    const char *urls[] = {"https://127.0.0.1:%u/small.txt", "https://localhost:%u/small.txt",
                          "https://x.weft.test:%u/small.txt"};
    for (int i = 0; i < 3; i++) {
      char url[128];
      snprintf(url, sizeof url, urls[i], n.port);
      snprintf(cmd, sizeof cmd,
               "curl -sS --cacert %s --resolve x.weft.test:%u:127.0.0.1 --http2"
               " -w ' %%{http_version}' %s", n.ca_path, n.port, url);
      out = run_capture(cmd);
      fprintf(stderr, "curl %s: %s\n", url, out);
      CHECK(strlen(out) == NGINX_SMALL_LEN + 2 && is_pattern(out, 0, NGINX_SMALL_LEN));
      CHECK(strcmp(out + NGINX_SMALL_LEN, " 2") == 0);
      free(out);
    }
  }
  nginx_stop(&n);
}

static const test_case cases[] = {
    {"bytes", bytes},
    {"delay", delay},
    {"status", status},
    {"chunked", chunked},
    {"slow", slow},
    {"reset", reset},
    {"garbage_and_close_early", garbage_and_close_early},
    {"redirects", redirects},
    {"echo", echo},
    {"headers", headers},
    {"close_and_not_found", close_and_not_found},
    {"keepalive", keepalive},
    {"malformed", malformed},
    {"many_connections", many_connections},
    {"stop_with_clients", stop_with_clients},
    {"from_weft", from_weft},
    {"nginx_plain", nginx_plain},
    {"nginx_tls", nginx_tls},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
