/*
 * weft-echo-load - the load client shared by every echo server benchmark
 * (weft-bench echo, the raw epoll server in peers/c, the Go server in
 * peers/go), so that all of them are driven by the very same code.
 *
 *   weft-echo-load -p PORT [-a ADDR] [-c CONNS] [-m BYTES] [-d SECS]
 *                  [-W WARM_SECS] [-t THREADS]
 *
 * Plain C, no weft: it opens CONNS TCP connections (default 64) to
 * ADDR:PORT (default 127.0.0.1), TCP_NODELAY, and keeps exactly one
 * BYTES-byte message (default 64) outstanding on each (ping-pong): write
 * the message, read until BYTES bytes came back, compare every byte with
 * what was sent, send the next one. Each message differs (it encodes the
 * connection and a sequence number), so a stale or misrouted echo is a
 * mismatch. The sockets are non-blocking, in one level-triggered epoll set
 * per thread; THREADS (default 1) threads split the connections between
 * them.
 *
 * It runs WARM_SECS (default 0.5) of warm-up, then counts the round trips
 * completed during the next SECS (default 3) and prints one JSON line:
 *
 *   {"tool":"weft-echo-load","conns":64,"msg_bytes":64,"threads":1,
 *    "secs":3.000,"round_trips":1234567,"req_per_s":411522}
 *
 * req_per_s = round trips / measured seconds (per thread, each thread's own
 * window, summed). Any error (connect, a closed connection, a mismatch)
 * prints a message on stderr and exits 1; bad usage exits 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in opt_addr = {.sin_family = AF_INET};
static int opt_conns = 64, opt_msg = 64, opt_threads = 1;
static double opt_secs = 3, opt_warm = 0.5;

typedef struct conn {
  int fd, id;
  uint32_t seq;
  int wrote, got; /* bytes of the current message written, read back */
  unsigned char *out, *in;
} conn;

typedef struct worker {
  pthread_t th;
  conn *conns;
  int n;
  double warm_end, end;    /* shared deadlines (seconds, CLOCK_MONOTONIC) */
  long long round_trips;   /* completed inside this thread's window */
  double window;           /* the window's length as this thread saw it */
} worker;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, int id) {
  if (id >= 0)
    fprintf(stderr, "weft-echo-load: connection %d: %s\n", id, what);
  else
    fprintf(stderr, "weft-echo-load: %s\n", what);
  exit(1);
}

static void fill(conn *c) {
  uint32_t s = c->seq, k0 = (uint32_t)c->id * 2654435761u;
  for (int k = 0; k < opt_msg; k++)
    c->out[k] = (unsigned char)((k0 >> (k & 15)) ^ (s * 131u) ^ (s >> 8) ^ (uint32_t)k);
  c->wrote = c->got = 0;
}

/* Write what is left of the current message; 1 when all of it is out. */
static int push(int ep, conn *c) {
  while (c->wrote < opt_msg) {
    ssize_t r = write(c->fd, c->out + c->wrote, (size_t)(opt_msg - c->wrote));
    if (r > 0) {
      c->wrote += (int)r;
      continue;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
      if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
        fail("epoll_ctl", c->id);
      return 0;
    }
    fail(r < 0 ? strerror(errno) : "write returned 0", c->id);
  }
  return 1;
}

static void *run(void *arg) {
  worker *w = arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    fail("epoll_create1", -1);
  for (int i = 0; i < w->n; i++) {
    conn *c = &w->conns[i];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
      fail("epoll_ctl", c->id);
    fill(c);
    push(ep, c);
  }
  struct epoll_event evs[256];
  int measuring = 0;
  long long count = 0, c0 = 0;
  double t0 = 0, t = 0;
  for (;;) {
    int k = epoll_wait(ep, evs, 256, 100);
    if (k < 0 && errno != EINTR)
      fail("epoll_wait", -1);
    for (int e = 0; e < k; e++) {
      conn *c = evs[e].data.ptr;
      if (evs[e].events & EPOLLOUT) {
        if (!push(ep, c))
          continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
          fail("epoll_ctl", c->id);
      }
      if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        continue;
      ssize_t r = read(c->fd, c->in + c->got, (size_t)(opt_msg - c->got));
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        continue;
      if (r < 0)
        fail(strerror(errno), c->id);
      if (r == 0)
        fail("the server closed the connection", c->id);
      if (c->wrote < opt_msg)
        fail("echo ahead of the message", c->id);
      c->got += (int)r;
      if (c->got < opt_msg)
        continue;
      if (memcmp(c->in, c->out, (size_t)opt_msg) != 0)
        fail("echoed bytes differ from those sent", c->id);
      count++;
      c->seq++;
      fill(c);
      push(ep, c);
    }
    t = now_s();
    if (!measuring && t >= w->warm_end) {
      measuring = 1;
      c0 = count;
      t0 = t;
    }
    if (t >= w->end)
      break;
  }
  w->round_trips = count - c0;
  w->window = t - t0;
  close(ep);
  return NULL;
}

static void usage(void) {
  fprintf(stderr, "usage: weft-echo-load -p PORT [-a ADDR] [-c CONNS] [-m BYTES] "
                  "[-d SECS] [-W WARM_SECS] [-t THREADS]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int port = 0;
  opt_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] != '-' || !argv[i][1] || argv[i][2] || i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    char *end;
    switch (argv[i - 1][1]) {
    case 'p':
      port = (int)strtol(v, &end, 10);
      if (*end || port < 1 || port > 65535)
        usage();
      break;
    case 'a':
      if (inet_pton(AF_INET, v, &opt_addr.sin_addr) != 1)
        usage();
      break;
    case 'c':
      opt_conns = (int)strtol(v, &end, 10);
      if (*end || opt_conns < 1)
        usage();
      break;
    case 'm':
      opt_msg = (int)strtol(v, &end, 10);
      if (*end || opt_msg < 1)
        usage();
      break;
    case 't':
      opt_threads = (int)strtol(v, &end, 10);
      if (*end || opt_threads < 1)
        usage();
      break;
    case 'd':
      opt_secs = strtod(v, &end);
      if (*end || !(opt_secs > 0))
        usage();
      break;
    case 'W':
      opt_warm = strtod(v, &end);
      if (*end || !(opt_warm >= 0))
        usage();
      break;
    default:
      usage();
    }
  }
  if (!port)
    usage();
  if (opt_threads > opt_conns)
    opt_threads = opt_conns;
  opt_addr.sin_port = htons((uint16_t)port);

  conn *conns = calloc((size_t)opt_conns, sizeof *conns);
  unsigned char *bufs = malloc((size_t)opt_conns * 2 * (size_t)opt_msg);
  if (!conns || !bufs)
    fail("out of memory", -1);
  for (int i = 0; i < opt_conns; i++) {
    conn *c = &conns[i];
    c->id = i;
    c->out = bufs + (size_t)i * 2 * (size_t)opt_msg;
    c->in = c->out + opt_msg;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
      fail(strerror(errno), i);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&opt_addr, sizeof opt_addr))
      fail(strerror(errno), i);
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK))
      fail("making the socket non-blocking", i);
  }

  worker *ws = calloc((size_t)opt_threads, sizeof *ws);
  double start = now_s();
  for (int t = 0, first = 0; t < opt_threads; t++) {
    int n = opt_conns / opt_threads + (t < opt_conns % opt_threads);
    ws[t] = (worker){.conns = conns + first, .n = n, .warm_end = start + opt_warm,
                     .end = start + opt_warm + opt_secs};
    first += n;
  }
  for (int t = 1; t < opt_threads; t++)
    if (pthread_create(&ws[t].th, NULL, run, &ws[t]))
      fail("pthread_create", -1);
  run(&ws[0]);
  long long total = ws[0].round_trips;
  double rate = ws[0].window > 0 ? (double)ws[0].round_trips / ws[0].window : 0;
  double window = ws[0].window;
  for (int t = 1; t < opt_threads; t++) {
    pthread_join(ws[t].th, NULL);
    total += ws[t].round_trips;
    rate += ws[t].window > 0 ? (double)ws[t].round_trips / ws[t].window : 0;
  }
  for (int i = 0; i < opt_conns; i++)
    close(conns[i].fd);
  if (total == 0)
    fail("no round trip completed", -1);
  printf("{\"tool\":\"weft-echo-load\",\"conns\":%d,\"msg_bytes\":%d,\"threads\":%d,"
         "\"secs\":%.3f,\"round_trips\":%lld,\"req_per_s\":%.0f}\n",
         opt_conns, opt_msg, opt_threads, window, total, rate);
  return 0;
}
