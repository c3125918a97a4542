/*
 * test_http.c - weft::http against real servers on loopback: the
 * project's test server (weft-test-httpd: delays, statuses, chunked,
 * large and slow bodies, resets, garbage, redirects, echo), nginx (static
 * files, HTTP/2 over TLS with a certificate the fixture makes, h2c) and
 * dnsmasq for names. Every error kind gets its own code; cancellation and
 * streaming with backpressure; no thread per request. Timing bounds are
 * generous (CI machines are loaded); counts are exact.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../dnsmasq.h"
#include "fixture.h"
#include "weft/http.h"

#define MS 1000000ull

static httpd_fixture srv;
static char base[64]; /* http://127.0.0.1:PORT */

static void start_httpd(void) {
  httpd_start(&srv);
  snprintf(base, sizeof base, "http://127.0.0.1:%u", srv.port);
}

static char *url(const char *path) {
  static _Thread_local char buf[8][512];
  static _Thread_local int i;
  char *u = buf[i++ & 7];
  snprintf(u, 512, "%s%s", base, path);
  return u;
}

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  while (d && readdir(d))
    n++;
  if (d)
    closedir(d);
  return n - 2; /* . and .. */
}

static bool pattern_ok(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (char)('a' + i % 26))
      return false;
  return true;
}

/* Run fn as a weft program and check it returned NULL. */
static void run(void *(*fn)(void *)) {
  void *res = (void *)1;
  CHECK_EQ(weft_run(NULL, fn, NULL, &res), 0);
  CHECK(res == NULL);
}

/* ---- get: status, body, headers ---------------------------------------------------- */

static void *get_main(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get(url("/bytes/100000"), &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, 100000);
  CHECK(pattern_ok(r.body, r.body_len));
  CHECK_EQ(r.body[r.body_len], '\0');
  CHECK_EQ(r.http_version, 11);
  CHECK(strcmp(r.url, url("/bytes/100000")) == 0);
  CHECK(strcmp(weft_http_header_get(&r, "content-length"), "100000") == 0);
  CHECK(strcmp(weft_http_header_get(&r, "CONTENT-LENGTH"), "100000") == 0);
  CHECK(weft_http_header_get(&r, "X-Nope") == NULL);
  weft_http_response_free(&r);
  weft_http_response_free(&r); /* harmless twice */

  CHECK_EQ(weft_http_get(url("/status/503"), &r), 0); /* a status is not an error */
  CHECK_EQ(r.status, 503);
  CHECK(strcmp(r.body, "status 503") == 0);
  weft_http_response_free(&r);

  CHECK_EQ(weft_http_get(url("/headers"), &r), 0);
  CHECK(strcmp(weft_http_header_get(&r, "x-test"), "yes") == 0);
  size_t cookies = 0;
  for (size_t i = 0; i < r.nheaders; i++)
    cookies += strcasecmp(r.headers[i].name, "set-cookie") == 0;
  CHECK_EQ(cookies, 2);
  weft_http_response_free(&r);

  CHECK_EQ(weft_http_get(url("/chunked/300000?chunk=777"), &r), 0);
  CHECK_EQ(r.body_len, 300000);
  CHECK(pattern_ok(r.body, r.body_len));
  weft_http_response_free(&r);

  CHECK_EQ(weft_http_get(url("/bytes/0"), &r), 0);
  CHECK_EQ(r.body_len, 0);
  CHECK(r.body && r.body[0] == '\0');
  weft_http_response_free(&r);
  return NULL;
}

static void get(void) {
  start_httpd();
  run(get_main);
  httpd_stop(&srv);
}

/* ---- requests: methods, bodies, headers ---------------------------------------------- */

typedef struct {
  const char *data;
  size_t len, off, piece;
  int fail_at; /* fail after this many calls; 0: never */
  int calls;
} reader;

static ssize_t read_body(void *arg, void *buf, size_t n) {
  reader *r = arg;
  if (r->fail_at && ++r->calls >= r->fail_at)
    return -1;
  size_t k = r->len - r->off;
  if (k > n)
    k = n;
  if (k > r->piece)
    k = r->piece;
  memcpy(buf, r->data + r->off, k);
  r->off += k;
  if (k)
    weft_yield(); /* the reader is user code on the coroutine: it may park */
  return (ssize_t)k;
}

static void *requests_main(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  const char *hdrs[] = {"X-Custom: hello", "Accept: text/plain", NULL};
  weft_http_request q = {.url = url("/headers"), .headers = hdrs};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK(strstr(r.body, "x-custom: hello\n"));
  CHECK(strstr(r.body, "user-agent: weft/"));
  weft_http_response_free(&r);

  /* A body from memory: POST, and PUT by name. */
  static char big[300000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('A' + i % 23);
  q = (weft_http_request){.url = url("/echo"), .body = big, .body_len = sizeof big};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK(strcmp(weft_http_header_get(&r, "x-method"), "POST") == 0);
  CHECK_EQ(r.body_len, sizeof big);
  CHECK(memcmp(r.body, big, sizeof big) == 0);
  weft_http_response_free(&r);
  q.method = "PUT";
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK(strcmp(weft_http_header_get(&r, "x-method"), "PUT") == 0);
  CHECK_EQ(r.body_len, sizeof big);
  weft_http_response_free(&r);

  /* A body from a reader: sized, then chunked (size unknown). */
  for (int chunked = 0; chunked < 2; chunked++) {
    reader rd = {.data = big, .len = sizeof big, .piece = 7000};
    q = (weft_http_request){.url = url("/echo"), .body_reader = read_body, .body_arg = &rd,
                            .body_size = chunked ? -1 : (int64_t)sizeof big};
    CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, sizeof big);
    CHECK(memcmp(r.body, big, sizeof big) == 0);
    weft_http_response_free(&r);
  }
  /* A reader that fails. */
  reader bad = {.data = big, .len = sizeof big, .piece = 1000, .fail_at = 3};
  q = (weft_http_request){.url = url("/echo"), .body_reader = read_body, .body_arg = &bad,
                          .body_size = -1};
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_BODY);
  CHECK(r.body == NULL);

  /* HEAD: headers, no body. */
  q = (weft_http_request){.url = url("/bytes/5000"), .method = "HEAD"};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, 0);
  weft_http_response_free(&r);
  return NULL;
}

static void requests(void) {
  start_httpd();
  run(requests_main);
  httpd_stop(&srv);
}

/* ---- redirects ------------------------------------------------------------------------ */

static void *redirects_main(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get(url("/redirect/3"), &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "done") == 0);
  CHECK_EQ(r.redirects, 3);
  CHECK(strcmp(r.url, url("/redirect/0")) == 0);
  weft_http_response_free(&r);

  weft_http_request q = {.url = url("/redirect/12")}; /* the default limit is 10 */
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_REDIRECTS);
  q.max_redirects = 20;
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.redirects, 12);
  weft_http_response_free(&r);
  q.max_redirects = -1; /* not followed: the 302 is the response */
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.status, 302);
  CHECK(strcmp(weft_http_header_get(&r, "location"), "/redirect/11") == 0);
  weft_http_response_free(&r);

  /* 303 after a POST: the next hop is a GET. */
  q = (weft_http_request){.url = url("/see-other"), .body = "x", .body_len = 1};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK(strcmp(r.body, "GET") == 0);
  weft_http_response_free(&r);

  /* To another host, named through dnsmasq: resolved by weft as well. */
  char to[256];
  snprintf(to, sizeof to, "/redirect-to?url=http://app.weft.test:%u/bytes/10", srv.port);
  CHECK_EQ(weft_http_get(url(to), &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, 10);
  weft_http_response_free(&r);
  return NULL;
}

static void redirects(void) {
  char *recs[] = {"--host-record=app.weft.test,127.0.0.1"};
  start_dnsmasq_with(recs, 1);
  start_httpd();
  run(redirects_main);
  CHECK(queries_for("app.weft.test") >= 1); /* the name went through dnsmasq */
  httpd_stop(&srv);
  stop_dnsmasq();
}

/* ---- every error its own code -------------------------------------------------------- */

static void *errors_main(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get("http://", &r), WEFT_EHTTP_URL);
  CHECK_EQ(weft_http_get("not a url at all", &r), WEFT_EHTTP_URL);
  CHECK_EQ(weft_http_get("http://%7f.weft.test/", &r), WEFT_EHTTP_URL); /* DEL in the host */
  CHECK_EQ(weft_http_get("http://a%01b.weft.test/", &r), WEFT_EHTTP_URL);
  CHECK_EQ(weft_http_get("http://127.0.0.1:0/", &r), WEFT_EHTTP_URL); /* curl takes port 0 */
  CHECK_EQ(weft_http_get("ftp://127.0.0.1/x", &r), WEFT_EHTTP_SCHEME);
  CHECK_EQ(weft_http_get("gopher://127.0.0.1/x", &r), WEFT_EHTTP_SCHEME);
  CHECK_EQ(weft_http_get("http://nosuch.weft.test/", &r), WEFT_EDNS_NOTFOUND);
  CHECK_EQ(weft_http_get("http://127.0.0.1:1/", &r), WEFT_EHTTP_REFUSED);
  CHECK_EQ(weft_http_get(url("/reset"), &r), WEFT_EHTTP_RESET);
  CHECK_EQ(weft_http_get(url("/close-early"), &r), WEFT_EHTTP_RESET);
  CHECK_EQ(weft_http_get(url("/garbage"), &r), WEFT_EHTTP_PROTOCOL);
  weft_http_request q = {.url = url("/delay/10000"), .timeout_ms = 200};
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_TIMEOUT);
  CHECK(weft_now_ns() - t0 < 8000 * MS);
  q = (weft_http_request){.url = url("/bytes/100000"), .max_body = 1000};
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_TOOBIG);
  q = (weft_http_request){.url = url("/chunked/100000"), .max_body = 99999};
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_TOOBIG);
  q.max_body = 100000; /* exactly the size: fine */
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_do(NULL, NULL, &r), -EINVAL);
  CHECK(r.body == NULL && r.headers == NULL && r.url == NULL);
  /* Every code has its own text. */
  int codes[] = {WEFT_EHTTP_URL, WEFT_EHTTP_SCHEME, WEFT_EHTTP_REFUSED, WEFT_EHTTP_RESET,
                 WEFT_EHTTP_TIMEOUT, WEFT_EHTTP_TOOBIG, WEFT_EHTTP_TLS, WEFT_EHTTP_PROTOCOL,
                 WEFT_EHTTP_REDIRECTS, WEFT_EHTTP_BODY, WEFT_EHTTP_FAILED};
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    CHECK(strncmp(weft_strerror(codes[i]), "HTTP: ", 6) == 0);
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(weft_strerror(codes[i]), weft_strerror(codes[j])) != 0);
  }
  return NULL;
}

static void errors(void) {
  start_dnsmasq_with(NULL, 0);
  start_httpd();
  int fds_before = 0;
  DIR *d = opendir("/proc/self/fd");
  while (d && readdir(d))
    fds_before++;
  closedir(d);
  run(errors_main);
  int fds_after = 0;
  d = opendir("/proc/self/fd");
  while (d && readdir(d))
    fds_after++;
  closedir(d);
  CHECK_EQ(fds_after, fds_before); /* no socket left behind */
  CHECK(weft_http_get(url("/bytes/1"), &(weft_http_response){0}) == WEFT_ENOTCO);
  httpd_stop(&srv);
  stop_dnsmasq();
}

/* ---- 1,000 at once, no thread per request -------------------------------------------- */

static int threads_before, threads_peak;
static uint32_t ok_count;

static void *slow_get(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  if (weft_http_get(url("/delay/500"), &r) == 0 && r.status == 200 && strcmp(r.body, "ok") == 0)
    __atomic_fetch_add(&ok_count, 1, __ATOMIC_RELAXED);
  weft_http_response_free(&r);
  return NULL;
}

static void *many_main(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get(url("/bytes/1"), &r), 0); /* the poller is up */
  weft_http_response_free(&r);
  threads_before = count_threads();
  enum { N = 1000 };
  static weft_co *c[N];
  uint64_t t0 = weft_now_ns();
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], slow_get, NULL), 0);
  while (__atomic_load_n(&ok_count, __ATOMIC_RELAXED) < N && weft_now_ns() - t0 < 60000 * MS) {
    int t = count_threads();
    if (t > threads_peak)
      threads_peak = t;
    weft_sleep_ms(20);
  }
  CHECK_EQ(weft_gather(c, N, NULL), 0);
  double ms = (double)(weft_now_ns() - t0) / 1e6;
  printf("1000 GETs of a 500 ms endpoint: %.0f ms, threads %d before, %d at most during\n", ms,
         threads_before, threads_peak);
  CHECK_EQ(ok_count, N);
  CHECK(ms < 10000); /* about 500 ms; generous for loaded machines and sanitizers */
  CHECK_EQ(threads_peak, threads_before);
  return NULL;
}

static void many(void) {
  start_httpd();
  run(many_main);
  httpd_stop(&srv);
}

/* ---- cancellation mid-transfer -------------------------------------------------------- */

static void *doomed(void *path) {
  weft_http_response r = {0};
  int rc = weft_http_get(url(path), &r);
  weft_http_response_free(&r);
  return (void *)(intptr_t)rc;
}

static void *cancel_main(void *arg) {
  (void)arg;
  const char *paths[] = {"/delay/20000", "/slow/10000000?ms=50", "/redirect/3"};
  for (int k = 0; k < 3; k++) {
    weft_co *c;
    CHECK_EQ(weft_spawn(&c, doomed, (void *)paths[k]), 0);
    weft_sleep_ms(k == 2 ? 1 : 200);
    uint64_t t0 = weft_now_ns();
    CHECK_EQ(weft_cancel(c), 0);
    void *res;
    CHECK_EQ(weft_join(c, &res), 0);
    int rc = (int)(intptr_t)res;
    CHECK(rc == -ECANCELED || (k == 2 && rc == 0));
    CHECK(weft_now_ns() - t0 < 5000 * MS);
  }
  /* The aborted transfers are gone from curl: the server sees their
   * connections close, and new requests go through. */
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get(url("/bytes/10"), &r), 0);
  weft_http_response_free(&r);
  return NULL;
}

static void cancel(void) {
  start_httpd();
  run(cancel_main);
  httpd_stop(&srv);
}

/* ---- streaming with backpressure ------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed memory in a quarantine (256 MiB by default), which
 * would show in resident memory as if the stream buffered: keep it small
 * so that the bound below measures weft, not the sanitizer. */
const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void) {
  return "quarantine_size_mb=4";
}
#endif

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *stream_main(void *arg) {
  (void)arg;
  /* 512 MiB through a stream whose reader is slow at first: memory stays
   * bounded because curl is paused while the reader is behind (buffering
   * it would take 512 MiB). */
  const size_t total = 512u << 20;
  char path[64];
  snprintf(path, sizeof path, "/bytes/%zu", total);
  weft_http_request q = {.url = url(path), .max_body = 1 << 20};
  weft_http_response r = {0};
  CHECK_EQ(weft_http_do(NULL, &q, &r), WEFT_EHTTP_TOOBIG); /* too big to buffer */
  weft_http_stream *s;
  long rss0 = rss_kib();
  CHECK_EQ(weft_http_stream_open(NULL, &q, &r, &s), 0);
  CHECK_EQ(r.status, 200);
  CHECK(r.body == NULL);
  CHECK(strcmp(weft_http_header_get(&r, "content-length"), path + 7) == 0);
  static char buf[65536];
  size_t got = 0;
  long peak = 0;
  bool ok = true;
  for (int i = 0;; i++) {
    if (i < 20)
      weft_sleep_ms(10); /* behind: the window fills and curl pauses */
    ssize_t n = weft_http_stream_read(s, buf, sizeof buf);
    CHECK(n >= 0);
    if (n == 0)
      break;
    for (ssize_t k = 0; k < n && ok; k += 4093)
      ok = buf[k] == (char)('a' + (got + (size_t)k) % 26);
    got += (size_t)n;
    long rss = rss_kib() - rss0;
    if (rss > peak)
      peak = rss;
  }
  CHECK(ok);
  CHECK_EQ(got, total);
  printf("streamed %zu MiB, resident memory grew at most %ld KiB\n", total >> 20, peak);
  CHECK(peak < 64 * 1024);
  weft_http_stream_close(s);
  weft_http_response_free(&r);

  /* Closing a stream mid-body aborts the transfer. */
  CHECK_EQ(weft_http_stream_open(NULL, &q, &r, &s), 0);
  CHECK(weft_http_stream_read(s, buf, sizeof buf) > 0);
  weft_http_stream_close(s);
  weft_http_response_free(&r);
  /* A stream whose server resets mid-body reports it. */
  q.url = url("/reset");
  CHECK_EQ(weft_http_stream_open(NULL, &q, &r, &s), 0);
  ssize_t n;
  while ((n = weft_http_stream_read(s, buf, sizeof buf)) > 0)
    ;
  CHECK_EQ(n, WEFT_EHTTP_RESET);
  weft_http_stream_close(s);
  weft_http_response_free(&r);
  /* Redirects are followed before the stream opens. */
  q.url = url("/redirect/2");
  CHECK_EQ(weft_http_stream_open(NULL, &q, &r, &s), 0);
  CHECK_EQ(r.redirects, 2);
  CHECK_EQ(weft_http_stream_read(s, buf, sizeof buf), 4);
  CHECK(memcmp(buf, "done", 4) == 0);
  CHECK_EQ(weft_http_stream_read(s, buf, sizeof buf), 0);
  weft_http_stream_close(s);
  weft_http_response_free(&r);
  return NULL;
}

static void stream(void) {
  start_httpd();
  run(stream_main);
  httpd_stop(&srv);
}

/* ---- clients: keep-alive, limits -------------------------------------------------------- */

/* Connections the server has accepted, not counting the one this call
 * makes to ask (a later call counts it). */
static int server_connections(void) {
  weft_http_client *c;
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.no_keepalive = true}, &c), 0);
  weft_http_response r = {0};
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = url("/stats")}, &r), 0);
  int conns = -1, reqs = -1;
  CHECK_EQ(sscanf(r.body, "connections %d requests %d", &conns, &reqs), 2);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_client_free(c), 0);
  return conns - 1; /* not counting this one */
}

static void *limited_get(void *c) {
  weft_http_response r = {0};
  int rc = weft_http_do(c, &(weft_http_request){.url = url("/delay/50")}, &r);
  weft_http_response_free(&r);
  return (void *)(intptr_t)rc;
}

static void *clients_main(void *arg) {
  (void)arg;
  /* Keep-alive: ten requests, one connection. */
  int c0 = server_connections();
  weft_http_client *c;
  CHECK_EQ(weft_http_client_new(NULL, &c), 0);
  weft_http_response r = {0};
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = url("/bytes/10")}, &r), 0);
    weft_http_response_free(&r);
  }
  int c1 = server_connections();
  CHECK_EQ(c1 - c0 - 1, 1); /* -1: the first /stats call's own connection */
  CHECK_EQ(weft_http_client_free(c), 0);
  /* No keep-alive: one connection each. */
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.no_keepalive = true}, &c), 0);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = url("/bytes/10")}, &r), 0);
    weft_http_response_free(&r);
  }
  int c2 = server_connections();
  CHECK_EQ(c2 - c1 - 1, 10);
  CHECK_EQ(weft_http_client_free(c), 0);
  /* Per-host limit: 40 concurrent requests over at most 2 connections. */
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.max_conns_per_host = 2}, &c), 0);
  weft_co *cs[40];
  for (int i = 0; i < 40; i++)
    CHECK_EQ(weft_spawn(&cs[i], limited_get, c), 0);
  CHECK_EQ(weft_http_client_free(c), -EBUSY); /* requests in flight */
  void *res[40];
  CHECK_EQ(weft_gather(cs, 40, res), 0);
  for (int i = 0; i < 40; i++)
    CHECK_EQ((int)(intptr_t)res[i], 0);
  int c3 = server_connections();
  CHECK(c3 - c2 - 1 <= 2);
  CHECK_EQ(weft_http_client_free(c), 0);
  /* A total limit: 30 concurrent requests over at most 3 connections. */
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.max_conns = 3}, &c), 0);
  for (int i = 0; i < 30; i++)
    CHECK_EQ(weft_spawn(&cs[i], limited_get, c), 0);
  CHECK_EQ(weft_gather(cs, 30, res), 0);
  for (int i = 0; i < 30; i++)
    CHECK_EQ((int)(intptr_t)res[i], 0);
  int c4 = server_connections();
  CHECK(c4 - c3 - 1 <= 3);
  CHECK_EQ(weft_http_client_free(c), 0);
  /* The user agent and HTTP/1.1-only settings reach the wire. */
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.user_agent = "probe/7",
                                                            .version = WEFT_HTTP_1_1},
                                &c),
           0);
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = url("/headers")}, &r), 0);
  CHECK(strstr(r.body, "user-agent: probe/7\n"));
  CHECK_EQ(r.http_version, 11);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_client_free(c), 0);
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.version = 7}, &c), -EINVAL);
  return NULL;
}

static void clients(void) {
  start_httpd();
  run(clients_main);
  httpd_stop(&srv);
}

/* ---- a client's life across runtimes and threads --------------------------------------- */

static weft_http_client *life_c;
static _Atomic int life_flag;

static void *get_with_life_c(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_do(life_c, &(weft_http_request){.url = url("/bytes/10")}, &r), 0);
  CHECK_EQ(r.status, 200);
  weft_http_response_free(&r);
  return NULL;
}

/* Runtime A: binds life_c, then holds it until life_flag says B tried. */
static void *hold_main(void *arg) {
  (void)arg;
  get_with_life_c(NULL);
  atomic_store(&life_flag, 1);
  while (atomic_load(&life_flag) != 2)
    weft_sleep_ms(1);
  return NULL;
}

static void *run_hold(void *arg) {
  (void)arg;
  run(hold_main);
  return NULL;
}

static void *try_busy_client(void *arg) {
  (void)arg;
  weft_http_response r = {0};
  CHECK_EQ(weft_http_do(life_c, &(weft_http_request){.url = url("/bytes/10")}, &r), -EINVAL);
  return NULL;
}

/* The runtime's last act is to let the freeing thread go: the free and
 * the runtime's stop (which detaches the client) race. */
static void *get_then_release(void *arg) {
  (void)arg;
  get_with_life_c(NULL);
  atomic_store(&life_flag, 1);
  return NULL;
}

static void *free_when_flagged(void *arg) {
  (void)arg;
  while (!atomic_load(&life_flag))
    ;
  CHECK_EQ(weft_http_client_free(life_c), 0);
  return NULL;
}

static void client_life(void) {
  start_httpd();
  /* One client, three runtimes one after another: each stop lets it go. */
  CHECK_EQ(weft_http_client_new(NULL, &life_c), 0);
  for (int i = 0; i < 3; i++)
    run(get_with_life_c);
  /* In use by a running runtime: another runtime gets -EINVAL, and may
   * use it once the first has stopped. */
  atomic_store(&life_flag, 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, run_hold, NULL), 0);
  while (atomic_load(&life_flag) != 1)
    sched_yield();
  run(try_busy_client);
  atomic_store(&life_flag, 2);
  CHECK_EQ(pthread_join(t, NULL), 0);
  run(get_with_life_c);
  CHECK_EQ(weft_http_client_free(life_c), 0);
  /* Freed from a foreign thread while the runtime that used it stops
   * (sanitizers watch: the stop's detach and the free must not cross). */
  for (int i = 0; i < 200; i++) {
    CHECK_EQ(weft_http_client_new(NULL, &life_c), 0);
    atomic_store(&life_flag, 0);
    CHECK_EQ(pthread_create(&t, NULL, free_when_flagged, NULL), 0);
    run(get_then_release);
    CHECK_EQ(pthread_join(t, NULL), 0);
  }
  httpd_stop(&srv);
}

/* ---- nginx: static files, HTTP/2 over TLS, h2c, TLS failures ---------------------------- */

static nginx_fixture ngx, ngx_tls;

static void *nginx_main(void *arg) {
  (void)arg;
  char u[256];
  weft_http_response r = {0};
  snprintf(u, sizeof u, "http://127.0.0.1:%u/big.bin", ngx.port);
  CHECK_EQ(weft_http_get(u, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.body_len, 8u << 20);
  weft_http_response_free(&r);

  /* HTTP/2 over TLS, the certificate verified against the fixture's CA,
   * the name resolved through dnsmasq; many requests multiplexed. */
  weft_http_client *c;
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.ca_file = ngx_tls.ca_path}, &c), 0);
  snprintf(u, sizeof u, "https://localhost:%u/small.txt", ngx_tls.port);
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = u}, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.http_version, 20);
  CHECK_EQ(r.body_len, 100);
  weft_http_response_free(&r);
  snprintf(u, sizeof u, "https://www.weft.test:%u/small.txt", ngx_tls.port);
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = u}, &r), 0);
  CHECK_EQ(r.http_version, 20);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_client_free(c), 0);

  /* Without the CA: verification fails, with its own code; insecure
   * skips it. */
  snprintf(u, sizeof u, "https://localhost:%u/small.txt", ngx_tls.port);
  CHECK_EQ(weft_http_get(u, &r), WEFT_EHTTP_TLS);
  CHECK_EQ(weft_http_client_new(&(weft_http_client_config){.insecure = true}, &c), 0);
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = u}, &r), 0);
  CHECK_EQ(r.status, 200);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_client_free(c), 0);
  /* TLS to a plain-HTTP port: the handshake fails. */
  snprintf(u, sizeof u, "https://127.0.0.1:%u/small.txt", ngx.port);
  CHECK_EQ(weft_http_get(u, &r), WEFT_EHTTP_TLS);

  /* h2c with prior knowledge. */
  CHECK_EQ(weft_http_client_new(
               &(weft_http_client_config){.version = WEFT_HTTP_2_PRIOR_KNOWLEDGE}, &c),
           0);
  snprintf(u, sizeof u, "http://127.0.0.1:%u/small.txt", ngx.h2c_port);
  CHECK_EQ(weft_http_do(c, &(weft_http_request){.url = u}, &r), 0);
  CHECK_EQ(r.http_version, 20);
  CHECK_EQ(r.body_len, 100);
  weft_http_response_free(&r);
  CHECK_EQ(weft_http_client_free(c), 0);
  return NULL;
}

static void nginx(void) {
  char *recs[] = {"--host-record=www.weft.test,127.0.0.1"};
  start_dnsmasq_with(recs, 1);
  nginx_start(&ngx, false);
  nginx_start(&ngx_tls, true);
  run(nginx_main);
  nginx_stop(&ngx_tls);
  nginx_stop(&ngx);
  stop_dnsmasq();
}

int main(int argc, char **argv) {
  return test_main(argc, argv,
                   (test_case[]){{"get", get},
                                 {"requests", requests},
                                 {"redirects", redirects},
                                 {"errors", errors},
                                 {"many", many},
                                 {"cancel", cancel},
                                 {"stream", stream},
                                 {"clients", clients},
                                 {"client_life", client_life},
                                 {"nginx", nginx},
                                 {NULL, NULL}});
}
