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
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ---- driver ----------------------------------------------------------------------- */

static const struct bench {
  const char *name;
  void (*fn)(unsigned workers, long n);
  long default_n;
} benches[] = {
    {"echo", bench_echo, BP_ECHO_CONNS},
    {"dns", bench_dns, 100000},
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
