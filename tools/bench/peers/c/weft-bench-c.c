/*
 * weft-bench-c - the raw C peer of weft-bench: the benchmarks written as a
 * plain C program would, with no runtime at all, so that weft's I/O is
 * measured against the code it would replace. Built by CMake next to
 * weft-bench (tools/bench/CMakeLists.txt) without linking weft; it shares
 * the load client and the dnsmasq setup with weft-bench (../../bench_proc.h).
 *
 *   weft-bench-c list
 *   weft-bench-c NAME [-w WORKERS] [-n N]
 *
 * Each run prints one JSON line with "impl":"c", like weft-bench and the Go
 * peer, main figure "req_per_s" (higher is better):
 *
 *   echo  a single-thread epoll echo server, the fastest simple design:
 *         non-blocking sockets in one level-triggered epoll set; on
 *         readable, one read() of up to 4 KiB and write() it straight back
 *         (a short write parks the rest and waits for EPOLLOUT). Accepts
 *         with accept4 in the same loop; TCP_NODELAY, as Go and weft-bench
 *         echo set it. Driven by weft-echo-load (tools/bench/echo_load.c)
 *         with n connections (default 64) of 64-byte messages, one in
 *         flight each; "req_per_s" = round trips per second as the load
 *         client measured it, "round_trips", "secs". -w is ignored (one
 *         thread), "workers" reports 1.
 *   dns   glibc getaddrinfo on 64 threads against dnsmasq on loopback
 *         (bench_proc.h: WEFT_BENCH_DNS, or one started here). Each thread
 *         calls res_init() and then points its own _res at the server
 *         (nsaddr_list[0] = 127.0.0.1:PORT, nscount = 1): glibc keeps a
 *         _res the program modified (resolv_context.c does not reload it).
 *         /etc/nsswitch.conf still applies ("files dns": /etc/hosts is
 *         read first, as c-ares does for weft). The threads take indices
 *         from one counter; lookup i asks for n<i>.bench.test, service
 *         "80", hints AF_UNSPEC + SOCK_STREAM (weft-bench dns asks the
 *         same), and every answer must be exactly 127.0.0.9 port 80, which
 *         only dnsmasq gives (so a lookup that missed the server fails).
 *         n lookups (default 100,000) after a warm-up of n/10 with other
 *         names; "req_per_s" = lookups per second. -w is ignored,
 *         "workers" reports the 64 threads.
 *   fetch the limit for libcurl: a raw single-thread libcurl multi-socket
 *         loop, as libcurl's documentation has it, with nothing between
 *         curl and epoll: CURLMOPT_SOCKETFUNCTION puts curl's sockets in
 *         one level-triggered epoll set, CURLMOPT_TIMERFUNCTION records a
 *         deadline that bounds epoll_wait, and every event or expired
 *         deadline goes to curl_multi_socket_action, after which
 *         curl_multi_info_read reaps what finished. 100 easy handles
 *         ($WEFT_BENCH_FETCH_COROUTINES to change, as weft-bench's
 *         coroutines) are set up once (HTTP/1.1, a write callback into the
 *         handle's own buffer) and each is added again as soon as its
 *         transfer is reaped, until n GETs (default 20,000) of the
 *         100-byte file from nginx on loopback (bench_proc.h:
 *         WEFT_BENCH_HTTP, or one started here) are done; the multi keeps
 *         up to 100 connections alive (CURLMOPT_MAXCONNECTS). Every
 *         response is checked as weft-bench fetch checks it: status 200,
 *         exactly the file's 100 bytes. n/10 GETs first, the same way, as
 *         the warm-up (the connections are open when the clock starts).
 *         "req_per_s" = GETs per second. -w is ignored, "workers"
 *         reports 1.
 *   fetch_latency
 *         the same loop with one easy handle: n sequential GETs (default
 *         2,000, after n/10 as a warm-up), each timed from
 *         curl_multi_add_handle to the moment the loop reaps it: "p50_us"
 *         (main figure, lower is better), "p99_us", "mean_us", "max_us".
 *   stress_rps
 *         wrk (Debian's) with -w threads and n connections (default 64)
 *         against the same nginx and file for $WEFT_BENCH_SECS (default 5)
 *         seconds: its Requests/sec as "req_per_s" (weft's side is
 *         weft-stress).
 *   server_rps
 *         nginx (one worker process, bench_proc.h) serving the file under
 *         wrk with one thread and n connections: "req_per_s" (weft's side
 *         is weft's own server under the same wrk command).
 *
 * fetch and fetch_latency are built in when CMake finds libcurl
 * (tools/bench/CMakeLists.txt); without it they are not listed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef WEFT_BENCH_WITH_CURL
#include <curl/curl.h>
#endif

#include "bench_proc.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "weft-bench-c: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- echo ----------------------------------------------------------------------- */

enum { ECHO_BUF = 4096 };

typedef struct econn {
  int fd;
  int off, len; /* unwritten bytes buf[off..len) */
  char buf[ECHO_BUF];
} econn;

static int echo_lfd, echo_stopfd;

static void echo_close(int ep, econn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

/* Write buf[off..len); 0 when all is out, 1 when the rest waits for
 * EPOLLOUT, -1 on error. */
static int echo_flush(econn *c) {
  while (c->off < c->len) {
    ssize_t w = write(c->fd, c->buf + c->off, (size_t)(c->len - c->off));
    if (w > 0)
      c->off += (int)w;
    else if (w < 0 && errno == EINTR)
      continue;
    else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 1;
    else
      return -1;
  }
  return 0;
}

static void *echo_server(void *arg) {
  (void)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &echo_lfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, echo_lfd, &ev))
    die("epoll_ctl");
  ev.data.ptr = &echo_stopfd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, echo_stopfd, &ev))
    die("epoll_ctl");
  struct epoll_event evs[256];
  for (;;) {
    int k = epoll_wait(ep, evs, 256, -1);
    if (k < 0 && errno != EINTR)
      die("epoll_wait");
    for (int e = 0; e < k; e++) {
      void *p = evs[e].data.ptr;
      if (p == &echo_stopfd) {
        close(ep);
        return NULL; /* connections left open: the process exits */
      }
      if (p == &echo_lfd) {
        int fd;
        while ((fd = accept4(echo_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          econn *c = malloc(sizeof *c);
          if (!c)
            die("malloc");
          c->fd = fd;
          c->off = c->len = 0;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev))
            die("epoll_ctl");
        }
        continue;
      }
      econn *c = p;
      if (c->off < c->len) { /* EPOLLOUT: finish the echo, then read again */
        int r = echo_flush(c);
        if (r < 0) {
          echo_close(ep, c);
        } else if (r == 0) {
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
        }
        continue;
      }
      ssize_t n = read(c->fd, c->buf, ECHO_BUF);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        continue;
      if (n <= 0) {
        echo_close(ep, c);
        continue;
      }
      c->off = 0;
      c->len = (int)n;
      int r = echo_flush(c);
      if (r < 0) {
        echo_close(ep, c);
      } else if (r > 0) {
        struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
      } else {
        c->off = c->len = 0;
      }
    }
  }
}

static void bench_echo(unsigned w, long n) {
  (void)w;
  echo_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int one = 1;
  setsockopt(echo_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (echo_lfd < 0 || bind(echo_lfd, (struct sockaddr *)&a, sizeof a) ||
      listen(echo_lfd, 1024) || getsockname(echo_lfd, (struct sockaddr *)&a, &len))
    die("listen");
  echo_stopfd = eventfd(0, EFD_CLOEXEC);
  if (echo_stopfd < 0)
    die("eventfd");
  pthread_t th;
  if (pthread_create(&th, NULL, echo_server, NULL))
    die("pthread_create");
  bp_load l = bp_echo_load(ntohs(a.sin_port), (int)n, BP_ECHO_MSG);
  uint64_t v = 1;
  if (write(echo_stopfd, &v, sizeof v) != sizeof v)
    die("eventfd write");
  pthread_join(th, NULL);
  printf("{\"bench\":\"echo\",\"impl\":\"c\",\"workers\":1,\"conns\":%ld,"
         "\"msg_bytes\":%d,\"load_threads\":%d,\"secs\":%.3f,\"round_trips\":%lld,"
         "\"req_per_s\":%.0f}\n",
         n, BP_ECHO_MSG, l.threads, l.secs, l.round_trips, l.req_per_s);
}

/* ---- dns ------------------------------------------------------------------------ */

enum { DNS_THREADS = 64 };

static struct sockaddr_in dns_server;
static long dns_n, dns_next;
static char dns_prefix;

static void *dns_thread(void *arg) {
  (void)arg;
  if (res_init())
    die("res_init");
  _res.nsaddr_list[0] = dns_server;
  _res.nscount = 1;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  uint32_t want = inet_addr(BP_DNS_ANSWER);
  long i;
  while ((i = __atomic_fetch_add(&dns_next, 1, __ATOMIC_RELAXED)) < dns_n) {
    char name[64];
    snprintf(name, sizeof name, "%c%ld." BP_DNS_DOMAIN, dns_prefix, i);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(name, "80", &hints, &res);
    if (rc) {
      fprintf(stderr, "weft-bench-c: getaddrinfo(%s): %s\n", name, gai_strerror(rc));
      exit(1);
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
      if (ai->ai_family != AF_INET || sin->sin_addr.s_addr != want ||
          ntohs(sin->sin_port) != 80) {
        char text[INET6_ADDRSTRLEN] = "?";
        if (ai->ai_family == AF_INET)
          inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
        fprintf(stderr, "weft-bench-c: %s answered %s (family %d), expected %s:80\n",
                name, text, ai->ai_family, BP_DNS_ANSWER);
        exit(1);
      }
    }
    if (!res) {
      fprintf(stderr, "weft-bench-c: %s: no address\n", name);
      exit(1);
    }
    freeaddrinfo(res);
  }
  return NULL;
}

static double dns_once(long n, char prefix) {
  pthread_t th[DNS_THREADS];
  dns_n = n;
  dns_next = 0;
  dns_prefix = prefix;
  double t0 = now_ms();
  for (int t = 0; t < DNS_THREADS; t++)
    if (pthread_create(&th[t], NULL, dns_thread, NULL))
      die("pthread_create");
  for (int t = 0; t < DNS_THREADS; t++)
    pthread_join(th[t], NULL);
  return now_ms() - t0;
}

static void bench_dns(unsigned w, long n) {
  (void)w;
  char text[64];
  bp_dns_start(&dns_server, text, sizeof text);
  dns_once(n / 10 ? n / 10 : 1, 'w');
  double ms = dns_once(n, 'n');
  printf("{\"bench\":\"dns\",\"impl\":\"c\",\"workers\":%d,\"n\":%ld,"
         "\"server\":\"%s\",\"req_per_s\":%.0f}\n",
         DNS_THREADS, n, text, (double)n / (ms / 1e3));
}

/* ---- fetch, fetch_latency ----------------------------------------------------------- */

#ifdef WEFT_BENCH_WITH_CURL
enum { FETCH_HANDLES = 100 };

typedef struct fetch_h {
  CURL *easy;
  size_t len;     /* body bytes that came (may exceed the file's: then wrong) */
  char body[BP_HTTP_LEN];
  double t0;      /* when it was added, for fetch_latency */
} fetch_h;

static CURLM *fx_multi;
static int fx_ep;
static double fx_deadline = -1; /* curl's timer, absolute ms; -1: none */
static long fx_n, fx_issued, fx_done;
static double *fx_lat_us;       /* fetch_latency: each GET's time, or NULL */
static char fx_url[160];

static int fx_on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  (void)userp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(fx_ep, EPOLL_CTL_DEL, s, NULL); /* curl may have closed it: no check */
    return 0;
  }
  struct epoll_event ev = {
      .events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0),
      .data.fd = s};
  int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(fx_ep, op, s, &ev)) {
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(fx_ep, op, s, &ev))
      die("epoll_ctl");
  }
  if (!socketp)
    curl_multi_assign(fx_multi, s, (void *)1);
  return 0;
}

static int fx_on_timer(CURLM *multi, long ms, void *userp) {
  (void)multi;
  (void)userp;
  fx_deadline = ms < 0 ? -1 : now_ms() + (double)ms;
  return 0;
}

static size_t fx_on_write(char *p, size_t size, size_t n, void *arg) {
  (void)size;
  fetch_h *h = arg;
  if (h->len < BP_HTTP_LEN)
    memcpy(h->body + h->len, p, n < BP_HTTP_LEN - h->len ? n : BP_HTTP_LEN - h->len);
  h->len += n;
  return n;
}

static void fx_add(fetch_h *h) {
  h->len = 0;
  fx_issued++;
  h->t0 = now_ms();
  if (curl_multi_add_handle(fx_multi, h->easy) != CURLM_OK) {
    fprintf(stderr, "weft-bench-c: curl_multi_add_handle failed\n");
    exit(1);
  }
}

/* Check what finished and send each handle again while GETs are left. */
static void fx_reap(void) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(fx_multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    CURL *e = msg->easy_handle;
    CURLcode rc = msg->data.result;
    fetch_h *h;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&h);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(fx_multi, e); /* msg is gone after this */
    if (fx_lat_us)
      fx_lat_us[fx_done] = (now_ms() - h->t0) * 1e3;
    fx_done++;
    if (rc != CURLE_OK) {
      fprintf(stderr, "weft-bench-c: GET %s: %s\n", fx_url, curl_easy_strerror(rc));
      exit(1);
    }
    bool ok = code == 200 && h->len == BP_HTTP_LEN;
    for (size_t i = 0; ok && i < BP_HTTP_LEN; i++)
      ok = h->body[i] == bp_http_byte(i);
    if (!ok) {
      fprintf(stderr, "weft-bench-c: GET %s: status %ld, %zu bytes, not the file\n", fx_url,
              code, h->len);
      exit(1);
    }
    if (fx_issued < fx_n)
      fx_add(h);
  }
}

/* n GETs with up to nh handles in flight; the wall time in ms. */
static double fx_round(fetch_h *hs, int nh, long n) {
  fx_n = n;
  fx_issued = fx_done = 0;
  double t0 = now_ms();
  for (int i = 0; i < nh && fx_issued < n; i++)
    fx_add(&hs[i]);
  struct epoll_event evs[256];
  int running;
  while (fx_done < n) {
    int timeout = -1;
    if (fx_deadline >= 0) {
      double left = fx_deadline - now_ms();
      timeout = left <= 0 ? 0 : (int)left + 1;
    }
    int k = epoll_wait(fx_ep, evs, 256, timeout);
    if (k < 0 && errno != EINTR)
      die("epoll_wait");
    for (int i = 0; i < k; i++) {
      uint32_t ev = evs[i].events;
      int bits = (ev & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                 (ev & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(fx_multi, evs[i].data.fd, bits, &running);
    }
    if (fx_deadline >= 0 && now_ms() >= fx_deadline) {
      fx_deadline = -1;
      curl_multi_socket_action(fx_multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    fx_reap();
  }
  return now_ms() - t0;
}

static fetch_h *fx_setup(int nh) {
  char base[128];
  bp_http_start(base, sizeof base);
  snprintf(fx_url, sizeof fx_url, "%s" BP_HTTP_PATH, base);
  if (curl_global_init(CURL_GLOBAL_DEFAULT))
    die("curl_global_init");
  fx_ep = epoll_create1(EPOLL_CLOEXEC);
  fx_multi = curl_multi_init();
  if (fx_ep < 0 || !fx_multi)
    die("curl_multi_init");
  curl_multi_setopt(fx_multi, CURLMOPT_SOCKETFUNCTION, fx_on_socket);
  curl_multi_setopt(fx_multi, CURLMOPT_TIMERFUNCTION, fx_on_timer);
  curl_multi_setopt(fx_multi, CURLMOPT_MAXCONNECTS, (long)nh);
  fetch_h *hs = calloc((size_t)nh, sizeof *hs);
  for (int i = 0; i < nh; i++) {
    CURL *e = hs[i].easy = curl_easy_init();
    if (!e)
      die("curl_easy_init");
    curl_easy_setopt(e, CURLOPT_URL, fx_url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &hs[i]);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fx_on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &hs[i]);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  }
  return hs;
}

static void fx_teardown(fetch_h *hs, int nh) {
  for (int i = 0; i < nh; i++)
    curl_easy_cleanup(hs[i].easy);
  free(hs);
  curl_multi_cleanup(fx_multi);
  close(fx_ep);
  curl_global_cleanup();
}

static void bench_fetch(unsigned w, long n) {
  (void)w;
  int nh = FETCH_HANDLES;
  const char *env = getenv("WEFT_BENCH_FETCH_COROUTINES");
  if (env && atoi(env) > 0)
    nh = atoi(env);
  fetch_h *hs = fx_setup(nh);
  fx_round(hs, nh, n / 10 ? n / 10 : 1); /* warm-up: opens the connections */
  double ms = fx_round(hs, nh, n);
  fx_teardown(hs, nh);
  printf("{\"bench\":\"fetch\",\"impl\":\"c\",\"workers\":1,\"n\":%ld,"
         "\"handles\":%d,\"req_per_s\":%.0f}\n",
         n, nh, (double)n / (ms / 1e3));
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void bench_fetch_latency(unsigned w, long n) {
  (void)w;
  fetch_h *hs = fx_setup(1);
  fx_round(hs, 1, n / 10 ? n / 10 : 1); /* warm-up */
  fx_lat_us = calloc((size_t)n, sizeof *fx_lat_us);
  fx_round(hs, 1, n);
  fx_teardown(hs, 1);
  double sum = 0;
  for (long i = 0; i < n; i++)
    sum += fx_lat_us[i];
  qsort(fx_lat_us, (size_t)n, sizeof *fx_lat_us, cmp_double);
  size_t p50 = (size_t)((n * 50 + 99) / 100), p99 = (size_t)((n * 99 + 99) / 100);
  printf("{\"bench\":\"fetch_latency\",\"impl\":\"c\",\"workers\":1,\"n\":%ld,"
         "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.2f}\n",
         n, fx_lat_us[p50 ? p50 - 1 : 0], fx_lat_us[p99 ? p99 - 1 : 0], sum / (double)n,
         fx_lat_us[n - 1]);
  free(fx_lat_us);
}
#endif

/* ---- stress_rps, server_rps: wrk, and nginx under wrk ------------------------------- */

static void wrk_nginx(const char *bench, unsigned threads, long n) {
  char base[128], url[192];
  bp_http_start(base, sizeof base);
  snprintf(url, sizeof url, "%s" BP_HTTP_PATH, base);
  double rps = bp_wrk(url, (int)n, (int)threads, bp_secs());
  printf("{\"bench\":\"%s\",\"impl\":\"c\",\"workers\":%u,\"conns\":%ld,"
         "\"req_per_s\":%.0f}\n",
         bench, threads, n, rps);
}

static void bench_stress_rps(unsigned w, long n) { wrk_nginx("stress_rps", w, n); }
static void bench_server_rps(unsigned w, long n) {
  (void)w; /* nginx: one worker process; wrk: one thread, as on weft's side */
  wrk_nginx("server_rps", 1, n);
}

/* ---- driver ----------------------------------------------------------------------- */

static const struct bench {
  const char *name;
  void (*fn)(unsigned workers, long n);
  long default_n;
} benches[] = {
    {"echo", bench_echo, BP_ECHO_CONNS},
    {"dns", bench_dns, 100000},
#ifdef WEFT_BENCH_WITH_CURL
    {"fetch", bench_fetch, 20000},
    {"fetch_latency", bench_fetch_latency, 2000},
#endif
    {"stress_rps", bench_stress_rps, 64},
    {"server_rps", bench_server_rps, 64},
};

static void usage(void) {
  fprintf(stderr, "usage: weft-bench-c list\n"
                  "       weft-bench-c NAME [-w WORKERS] [-n N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  if (strcmp(argv[1], "list") == 0) {
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
      puts(benches[i].name);
    return 0;
  }
  const struct bench *b = NULL;
  for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
    if (strcmp(argv[1], benches[i].name) == 0)
      b = &benches[i];
  if (!b) {
    fprintf(stderr, "weft-bench-c: no benchmark named %s (weft-bench-c list)\n", argv[1]);
    return 2;
  }
  long n = b->default_n;
  unsigned w = 1;
  for (int i = 2; i < argc; i += 2) {
    char *end;
    if (i + 1 >= argc)
      usage();
    long v = strtol(argv[i + 1], &end, 10);
    if (*end || v <= 0)
      usage();
    if (strcmp(argv[i], "-w") == 0)
      w = (unsigned)v;
    else if (strcmp(argv[i], "-n") == 0)
      n = v;
    else
      usage();
  }
  b->fn(w, n);
  fflush(stdout);
  return 0;
}
