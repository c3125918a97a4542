/*
 * test_faults.c - weft's HTTP client against faulty servers: each case
 * names the fault and the code the client must return for it.
 *
 * The faulty server is a coroutine of the test's own runtime on a
 * loopback port (weft's sockets), serving one connection at a time with
 * the case's fault; curl runs on the poller thread, so the two never wait
 * for each other. Every case also checks that no descriptor is left
 * behind (the process's count after weft_run equals the count before)
 * and, where the client gives up on a server that is still there (a
 * stall), that the server sees the client's end close: the connection is
 * not kept in curl's cache.
 *
 * Faults that weft-test-httpd already serves, and their tests in
 * test_http.c (not repeated here): a reset mid-body (/reset ->
 * WEFT_EHTTP_RESET, in `errors` and, streamed, in `stream`), a close
 * before any response (/close-early -> _RESET), a garbage status line
 * (/garbage -> _PROTOCOL), a stall before the head with a total timeout
 * (/delay with timeout_ms -> _TIMEOUT, in `errors`, which also counts
 * fds), a body over max_body (-> _TOOBIG) and TLS spoken to a plain
 * HTTP port (nginx -> _TLS, in `nginx`). Added here: a reset in the
 * middle of the head, a stall in the middle of the body, oversized heads
 * (one huge line; many lines), and servers that fail the TLS handshake
 * (close at once, close after the ClientHello, reset, or answer garbage).
 *
 * A case exits 0, or 1 on a failed CHECK.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../check.h"
#include "weft/http.h"
#include "weft/io.h"

#define MS 1000000ull
#define SEC 1000000000ull

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  CHECK(d != NULL);
  struct dirent *e;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own */
}

/* ---- the faulty server ----------------------------------------------------------- */

typedef enum fault {
  RESET_MID_HEAD,   /* half a status line and headers, then an RST */
  STALL_MID_BODY,   /* the head and 1000 of 100000 bytes, then silence */
  HUGE_HEADER_LINE, /* one header line of 256 KiB */
  HUGE_HEAD,        /* 1000 header lines of 1 KiB: a 1 MiB head */
  TLS_CLOSE_AT_ONCE,     /* accept and close before reading anything */
  TLS_CLOSE_AFTER_HELLO, /* read the ClientHello, then close */
  TLS_RESET_AFTER_HELLO, /* read the ClientHello, then an RST */
  TLS_GARBAGE,           /* read the ClientHello, answer in plain HTTP */
  GOOD,                  /* a valid response: the client works after a fault */
} fault;

typedef struct server {
  int f; /* fault (atomic: the case switches it to GOOD afterwards) */
  int lfd;
  uint16_t port;
  weft_co *co;
  /* results, read after joining co */
  unsigned conns;
  bool saw_close;    /* STALL_MID_BODY: the client closed its end */
  uint64_t close_ms; /* ... this long after the stall began */
} server;

/* Read until the end of a request head (or, for TLS, any bytes) or the
 * end of the stream; true if something came. */
static bool read_request(int fd, bool tls) {
  char buf[4096];
  size_t have = 0;
  uint64_t deadline = weft_now_ns() + 60 * SEC;
  for (;;) {
    ssize_t n = weft_read_until(fd, buf + have, sizeof buf - 1 - have, deadline);
    if (n <= 0)
      return false;
    have += (size_t)n;
    buf[have] = 0;
    if (tls || strstr(buf, "\r\n\r\n") || have == sizeof buf - 1)
      return true;
  }
}

/* Read and drop whatever the client sends until it closes, for at most
 * 60 s; true if it closed (end of stream or reset). */
static bool until_closed(int fd) {
  char buf[4096];
  uint64_t deadline = weft_now_ns() + 60 * SEC;
  ssize_t n;
  while ((n = weft_read_until(fd, buf, sizeof buf, deadline)) > 0)
    ;
  return n == 0 || n == -ECONNRESET;
}

static void abortive_close(int fd) {
  struct linger lg = {1, 0};
  CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  weft_close(fd);
}

/* A head of many lines, or of one long one, and a short body. */
static char *huge_head(bool one_line, size_t *len) {
  size_t cap = 2u << 20, n = 0;
  char *s = malloc(cap);
  CHECK(s != NULL);
  n += (size_t)snprintf(s + n, cap - n, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
  if (one_line) {
    n += (size_t)snprintf(s + n, cap - n, "X-Big: ");
    memset(s + n, 'b', 256 * 1024);
    n += 256 * 1024;
    n += (size_t)snprintf(s + n, cap - n, "\r\n");
  } else {
    for (int i = 0; i < 1000; i++) {
      n += (size_t)snprintf(s + n, cap - n, "X-H%d: ", i);
      memset(s + n, 'h', 1000);
      n += 1000;
      n += (size_t)snprintf(s + n, cap - n, "\r\n");
    }
  }
  n += (size_t)snprintf(s + n, cap - n, "\r\nok");
  *len = n;
  return s;
}

static void serve_one(server *s, int fd) {
  static const char body_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n"
                                  "Content-Type: application/octet-stream\r\n\r\n";
  char body[1000];
  memset(body, 'x', sizeof body);
  switch ((fault)__atomic_load_n(&s->f, __ATOMIC_ACQUIRE)) {
  case RESET_MID_HEAD:
    if (read_request(fd, false)) {
      static const char half[] = "HTTP/1.1 200 OK\r\nContent-Le";
      weft_write(fd, half, sizeof half - 1);
      weft_sleep_ms(50); /* let the client read it first: the RST comes after */
    }
    abortive_close(fd);
    return;
  case STALL_MID_BODY:
    if (read_request(fd, false) &&
        weft_write(fd, body_head, sizeof body_head - 1) == sizeof body_head - 1 &&
        weft_write(fd, body, sizeof body) == sizeof body) {
      uint64_t t0 = weft_now_ns();
      s->saw_close = until_closed(fd);
      s->close_ms = (weft_now_ns() - t0) / MS;
    }
    weft_close(fd);
    return;
  case HUGE_HEADER_LINE:
  case HUGE_HEAD:
    if (read_request(fd, false)) {
      size_t len;
      char *head = huge_head(s->f == HUGE_HEADER_LINE, &len);
      weft_write(fd, head, len); /* the client may hang up midway: fine */
      free(head);
      until_closed(fd);
    }
    weft_close(fd);
    return;
  case TLS_CLOSE_AT_ONCE:
    weft_close(fd);
    return;
  case TLS_CLOSE_AFTER_HELLO:
    read_request(fd, true);
    weft_close(fd);
    return;
  case TLS_RESET_AFTER_HELLO:
    read_request(fd, true);
    abortive_close(fd);
    return;
  case TLS_GARBAGE:
    if (read_request(fd, true)) {
      static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      weft_write(fd, junk, sizeof junk - 1);
      until_closed(fd);
    }
    weft_close(fd);
    return;
  case GOOD:
    if (read_request(fd, false)) {
      static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nok";
      weft_write(fd, ok, sizeof ok - 1);
      until_closed(fd);
    }
    weft_close(fd);
    return;
  }
}

static void *server_main(void *arg) {
  server *s = arg;
  for (;;) {
    int fd = weft_accept(s->lfd, NULL, NULL);
    if (fd < 0)
      return (void *)(intptr_t)fd; /* -EBADF: the case closed the listener */
    s->conns++;
    serve_one(s, fd);
  }
}

static void server_start(server *s, fault f) {
  *s = (server){.f = f};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  s->lfd = weft_listen((struct sockaddr *)&a, sizeof a, 64, 0);
  CHECK(s->lfd >= 0);
  socklen_t l = sizeof a;
  CHECK_EQ(getsockname(s->lfd, (struct sockaddr *)&a, &l), 0);
  s->port = ntohs(a.sin_port);
  CHECK_EQ(weft_spawn(&s->co, server_main, s), 0);
}

static void server_stop(server *s) {
  CHECK_EQ(weft_close(s->lfd), 0); /* wakes the accept with -EBADF */
  void *r;
  CHECK_EQ(weft_join(s->co, &r), 0);
  CHECK_EQ((intptr_t)r, -EBADF);
}

/* ---- one case: a request to a faulty server -------------------------------------- */

typedef struct fcase {
  fault f;
  bool tls;
  uint64_t timeout_ms; /* the request's total timeout; 0: none */
  int want, also;      /* the code expected (also: an accepted alternative, or 0) */
  server s;
  int rc;
  uint64_t ms;
} fcase;

static void *case_main(void *arg) {
  fcase *c = arg;
  server_start(&c->s, c->f);
  char url[96];
  snprintf(url, sizeof url, "%s://127.0.0.1:%u/x", c->tls ? "https" : "http", c->s.port);
  weft_http_response r = {0};
  weft_http_request q = {.url = url, .timeout_ms = c->timeout_ms};
  uint64_t t0 = weft_now_ns();
  c->rc = weft_http_do(NULL, &q, &r);
  c->ms = (weft_now_ns() - t0) / MS;
  CHECK(r.body == NULL && r.headers == NULL); /* nothing half-made on failure */
  weft_http_response_free(&r);
  /* The runtime and the client go on: the same server, now answering
   * properly, is fetched from with success. */
  __atomic_store_n(&c->s.f, GOOD, __ATOMIC_RELEASE);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/x", c->s.port);
  q = (weft_http_request){.url = url};
  CHECK_EQ(weft_http_do(NULL, &q, &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "ok") == 0);
  weft_http_response_free(&r);
  server_stop(&c->s);
  return NULL;
}

static void run_fault(fcase *c) {
  int before = count_fds();
  weft_config cfg = {0};
  CHECK_EQ(weft_run(&cfg, case_main, c, NULL), 0);
  int after = count_fds();
  fprintf(stderr, "%s fault %d: %d (%s) after %llu ms; %u connection(s); fds %d -> %d\n",
          c->tls ? "https" : "http", (int)c->f, c->rc, weft_strerror(c->rc),
          (unsigned long long)c->ms, c->s.conns, before, after);
  CHECK(c->rc == c->want || (c->also && c->rc == c->also));
  CHECK(c->s.conns >= 2); /* it reached the faulty server, then the good one */
  CHECK_EQ(after, before); /* every socket closed, on both sides */
}

/* ---- cases ------------------------------------------------------------------------ */

static void server_resets_mid_head_gives_WEFT_EHTTP_RESET(void) {
  fcase c = {.f = RESET_MID_HEAD, .want = WEFT_EHTTP_RESET};
  run_fault(&c);
}

/* The total timeout fires mid-body; the client closes the connection
 * (the server sees its end close: not left open in curl's cache). */
static void server_stalls_mid_body_gives_WEFT_EHTTP_TIMEOUT_and_closes(void) {
  fcase c = {.f = STALL_MID_BODY, .timeout_ms = 500, .want = WEFT_EHTTP_TIMEOUT};
  run_fault(&c);
  CHECK(c.ms >= 500);   /* the timeout, not something else, ended it */
  CHECK(c.s.saw_close); /* and the socket was closed, not kept */
  fprintf(stderr, "the server saw the close %llu ms into the stall\n",
          (unsigned long long)c.s.close_ms);
}

/* curl refuses a header line over CURL_MAX_HTTP_HEADER (100 KiB) and a
 * head over 300 KiB in all: the answer is not acceptable HTTP. */
static void server_huge_header_line_gives_WEFT_EHTTP_PROTOCOL(void) {
  fcase c = {.f = HUGE_HEADER_LINE, .want = WEFT_EHTTP_PROTOCOL};
  run_fault(&c);
}

static void server_huge_head_gives_WEFT_EHTTP_PROTOCOL(void) {
  fcase c = {.f = HUGE_HEAD, .want = WEFT_EHTTP_PROTOCOL};
  run_fault(&c);
}

/* https:// to a server that fails the handshake. A close at once may
 * reach the client as a reset of its ClientHello's connection. */
static void tls_server_closes_at_once_gives_WEFT_EHTTP_TLS(void) {
  fcase c = {.f = TLS_CLOSE_AT_ONCE, .tls = true, .want = WEFT_EHTTP_TLS};
  run_fault(&c);
}

static void tls_server_closes_after_hello_gives_WEFT_EHTTP_TLS(void) {
  fcase c = {.f = TLS_CLOSE_AFTER_HELLO, .tls = true, .want = WEFT_EHTTP_TLS};
  run_fault(&c);
}

static void tls_server_resets_after_hello_gives_WEFT_EHTTP_TLS(void) {
  fcase c = {.f = TLS_RESET_AFTER_HELLO, .tls = true, .want = WEFT_EHTTP_TLS};
  run_fault(&c);
}

static void tls_server_answers_garbage_gives_WEFT_EHTTP_TLS(void) {
  fcase c = {.f = TLS_GARBAGE, .tls = true, .want = WEFT_EHTTP_TLS};
  run_fault(&c);
}

int main(int argc, char **argv) {
  return test_main(
      argc, argv,
      (test_case[]){
          {"server_resets_mid_head_gives_WEFT_EHTTP_RESET",
           server_resets_mid_head_gives_WEFT_EHTTP_RESET},
          {"server_stalls_mid_body_gives_WEFT_EHTTP_TIMEOUT_and_closes",
           server_stalls_mid_body_gives_WEFT_EHTTP_TIMEOUT_and_closes},
          {"server_huge_header_line_gives_WEFT_EHTTP_PROTOCOL",
           server_huge_header_line_gives_WEFT_EHTTP_PROTOCOL},
          {"server_huge_head_gives_WEFT_EHTTP_PROTOCOL", server_huge_head_gives_WEFT_EHTTP_PROTOCOL},
          {"tls_server_closes_at_once_gives_WEFT_EHTTP_TLS",
           tls_server_closes_at_once_gives_WEFT_EHTTP_TLS},
          {"tls_server_closes_after_hello_gives_WEFT_EHTTP_TLS",
           tls_server_closes_after_hello_gives_WEFT_EHTTP_TLS},
          {"tls_server_resets_after_hello_gives_WEFT_EHTTP_TLS",
           tls_server_resets_after_hello_gives_WEFT_EHTTP_TLS},
          {"tls_server_answers_garbage_gives_WEFT_EHTTP_TLS",
           tls_server_answers_garbage_gives_WEFT_EHTTP_TLS},
          {NULL, NULL}});
}
