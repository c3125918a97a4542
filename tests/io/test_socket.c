/*
 * test_socket.c - sockets over loopback: echo with many concurrent
 * clients, tiny buffers (partial reads and writes), close while another
 * coroutine is parked on the fd, fd reuse after close, deadlines,
 * cancellation, peer resets, UDP and Unix-domain sockets.
 */
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

#include "../check.h"
#include "weft/io.h"

#define MS 1000000ull

static int listen_loopback(uint16_t *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = weft_listen((struct sockaddr *)&a, sizeof a, 1024, 0);
  CHECK(fd >= 0);
  socklen_t l = sizeof a;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &l), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static int connect_loopback(uint16_t port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  CHECK_EQ(weft_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* ---- echo with many clients ------------------------------------------------------ */

static uint32_t echo_live; /* server connections not yet closed */

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  ssize_t n;
  while ((n = weft_read(fd, buf, sizeof buf)) > 0)
    if (weft_write(fd, buf, (size_t)n) != n)
      break;
  weft_close(fd);
  __atomic_fetch_sub(&echo_live, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *echo_server(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = weft_accept(lfd, NULL, NULL);
    if (fd < 0)
      return (void *)(intptr_t)fd; /* -EBADF when the test closes it */
    __atomic_fetch_add(&echo_live, 1, __ATOMIC_RELAXED);
    CHECK_EQ(weft_spawn(NULL, echo_conn, (void *)(intptr_t)fd), 0);
  }
}

static uint16_t echo_port;
static uint64_t echoed;

static void *echo_client(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  int fd = connect_loopback(echo_port);
  char out[64], in[64];
  for (int i = 0; i < 50; i++) {
    for (size_t k = 0; k < sizeof out; k++)
      out[k] = (char)(id + (uintptr_t)i + k);
    CHECK_EQ(weft_write(fd, out, sizeof out), sizeof out);
    CHECK_EQ(weft_read_full(fd, in, sizeof in), sizeof in);
    CHECK(memcmp(in, out, sizeof in) == 0);
    __atomic_fetch_add(&echoed, 1, __ATOMIC_RELAXED);
  }
  CHECK_EQ(weft_close(fd), 0);
  return NULL;
}

static void *echo_main(void *arg) {
  (void)arg;
  int lfd = listen_loopback(&echo_port);
  weft_co *srv;
  CHECK_EQ(weft_spawn(&srv, echo_server, (void *)(intptr_t)lfd), 0);
  enum { N = 200 };
  weft_co *c[N];
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], echo_client, (void *)i), 0);
  CHECK_EQ(weft_gather(c, N, NULL), 0);
  CHECK_EQ(echoed, N * 50);
  CHECK_EQ(weft_close(lfd), 0); /* wakes the server's accept with -EBADF */
  void *r;
  CHECK_EQ(weft_join(srv, &r), 0);
  CHECK_EQ((intptr_t)r, -EBADF);
  return NULL;
}

static void echo_many(void) { CHECK_EQ(weft_run(NULL, echo_main, NULL, NULL), 0); }

/* ---- tiny buffers: partial reads and writes ------------------------------------- */

static void *tiny_reader(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint64_t sum = 0, got = 0;
  unsigned char buf[7];
  ssize_t n;
  while ((n = weft_read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++)
      sum += buf[i];
    got += (uint64_t)n;
  }
  CHECK_EQ(n, 0);
  weft_close(fd);
  uint64_t *out = malloc(2 * sizeof *out);
  out[0] = sum;
  out[1] = got;
  return out;
}

static void *tiny_main(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int small = 1024;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  weft_co *r;
  CHECK_EQ(weft_spawn(&r, tiny_reader, (void *)(intptr_t)sv[1]), 0);
  size_t total = 1 << 20;
  unsigned char *data = malloc(total);
  uint64_t sum = 0;
  for (size_t i = 0; i < total; i++) {
    data[i] = (unsigned char)(i * 31 + 7);
    sum += data[i];
  }
  CHECK_EQ(weft_write(sv[0], data, total), (ssize_t)total); /* many partial sends */
  CHECK_EQ(weft_close(sv[0]), 0);
  void *res;
  CHECK_EQ(weft_join(r, &res), 0);
  uint64_t *out = res;
  CHECK_EQ(out[1], total);
  CHECK_EQ(out[0], sum);
  free(out);
  free(data);
  return NULL;
}

static void tiny_buffers(void) { CHECK_EQ(weft_run(NULL, tiny_main, NULL, NULL), 0); }

/* ---- close while parked, fd reuse, deadlines, cancellation --------------------- */

static void *parked_reader(void *arg) {
  char c;
  return (void *)(intptr_t)weft_read((int)(intptr_t)arg, &c, 1);
}

static void *close_main(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  weft_co *r;
  CHECK_EQ(weft_spawn(&r, parked_reader, (void *)(intptr_t)sv[0]), 0);
  weft_yield();
  int old = sv[0];
  CHECK_EQ(weft_close(sv[0]), 0);
  void *res;
  CHECK_EQ(weft_join(r, &res), 0);
  CHECK_EQ((intptr_t)res, -EBADF);
  /* The number comes back for a new socket, which works normally: no
   * stale event or waiter reaches it. */
  int sv2[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv2), 0);
  CHECK(sv2[0] == old || sv2[1] == old);
  CHECK_EQ(weft_spawn(&r, parked_reader, (void *)(intptr_t)sv2[0]), 0);
  weft_yield();
  CHECK_EQ(weft_write(sv2[1], "x", 1), 1);
  CHECK_EQ(weft_join(r, &res), 0);
  CHECK_EQ((intptr_t)res, 1);
  /* Deadline and cancellation on a silent socket. */
  char c;
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_read_until(sv2[0], &c, 1, t0 + 20 * MS), -ETIMEDOUT);
  CHECK(weft_now_ns() - t0 >= 20 * MS);
  CHECK_EQ(weft_spawn(&r, parked_reader, (void *)(intptr_t)sv2[0]), 0);
  weft_yield();
  CHECK_EQ(weft_cancel(r), 0);
  CHECK_EQ(weft_join(r, &res), 0);
  CHECK_EQ((intptr_t)res, -ECANCELED);
  CHECK_EQ(weft_close(sv2[0]), 0);
  CHECK_EQ(weft_close(sv2[1]), 0);
  CHECK_EQ(weft_close(old), -EBADF); /* closed twice: an error, not a crash */
  CHECK_EQ(weft_close(-1), -EBADF);
  return NULL;
}

static void close_and_deadlines(void) { CHECK_EQ(weft_run(NULL, close_main, NULL, NULL), 0); }

/* ---- peer reset ---------------------------------------------------------------------- */

static void *reset_main(void *arg) {
  (void)arg;
  uint16_t port;
  int lfd = listen_loopback(&port);
  int cfd = connect_loopback(port);
  int sfd = weft_accept(lfd, NULL, NULL);
  CHECK(sfd >= 0);
  struct linger lg = {1, 0}; /* close with RST */
  CHECK_EQ(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  CHECK_EQ(weft_close(cfd), 0);
  char buf[16];
  ssize_t n = weft_read(sfd, buf, sizeof buf);
  CHECK(n == -ECONNRESET || n == 0);
  /* Writing to a reset peer: -EPIPE or -ECONNRESET, never SIGPIPE. */
  ssize_t w = 0;
  for (int i = 0; i < 100 && w >= 0; i++)
    w = weft_write(sfd, buf, sizeof buf);
  CHECK(w == -EPIPE || w == -ECONNRESET);
  weft_close(sfd);
  weft_close(lfd);
  return NULL;
}

static void peer_reset(void) { CHECK_EQ(weft_run(NULL, reset_main, NULL, NULL), 0); }

/* ---- UDP and Unix-domain ------------------------------------------------------------- */

static void *udp_main(void *arg) {
  (void)arg;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int s = weft_socket(AF_INET, SOCK_DGRAM, 0), c = weft_socket(AF_INET, SOCK_DGRAM, 0);
  CHECK(s >= 0 && c >= 0);
  CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &l), 0);
  CHECK_EQ(weft_sendto(c, "ping", 4, (struct sockaddr *)&a, sizeof a), 4);
  char buf[8];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  CHECK_EQ(weft_recvfrom(s, buf, sizeof buf, (struct sockaddr *)&from, &fl), 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
  CHECK_EQ(weft_recvfrom_until(s, buf, sizeof buf, NULL, NULL, weft_now_ns() + 10 * MS),
           -ETIMEDOUT);
  weft_close(s);
  weft_close(c);
  return NULL;
}

static void udp(void) { CHECK_EQ(weft_run(NULL, udp_main, NULL, NULL), 0); }

static void *unix_main(void *arg) {
  (void)arg;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "/tmp/weft-test-%d.sock", (int)getpid());
  unlink(a.sun_path);
  int lfd = weft_listen((struct sockaddr *)&a, sizeof a, 16, 0);
  CHECK(lfd >= 0);
  weft_co *srv;
  CHECK_EQ(weft_spawn(&srv, echo_server, (void *)(intptr_t)lfd), 0);
  int fd = weft_socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(weft_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct iovec iov[2] = {{"hello ", 6}, {"world", 5}};
  CHECK_EQ(weft_writev(fd, iov, 2), 11);
  char buf[11];
  CHECK_EQ(weft_read_full(fd, buf, sizeof buf), 11);
  CHECK(memcmp(buf, "hello world", 11) == 0);
  weft_close(fd);
  weft_close(lfd);
  CHECK_EQ(weft_join(srv, NULL), 0);
  unlink(a.sun_path);
  return NULL;
}

static void unix_socket(void) { CHECK_EQ(weft_run(NULL, unix_main, NULL, NULL), 0); }

/* ---- SO_REUSEPORT listeners, readv, shutdown ---------------------------------------- */

static void *accept_one(void *arg) {
  int lfd = (int)(intptr_t)arg;
  int fd = weft_accept(lfd, NULL, NULL);
  CHECK(fd >= 0);
  return (void *)(intptr_t)fd;
}

static void *reuseport_main(void *arg) {
  (void)arg;
  /* Two listeners on one port with WEFT_LISTEN_REUSEPORT; a third
   * without it is refused. */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int l1 = weft_listen((struct sockaddr *)&a, sizeof a, 64, WEFT_LISTEN_REUSEPORT);
  CHECK(l1 >= 0);
  socklen_t len = sizeof a;
  CHECK_EQ(getsockname(l1, (struct sockaddr *)&a, &len), 0);
  int l2 = weft_listen((struct sockaddr *)&a, sizeof a, 64, WEFT_LISTEN_REUSEPORT);
  CHECK(l2 >= 0);
  CHECK_EQ(weft_listen((struct sockaddr *)&a, sizeof a, 64, 0), -EADDRINUSE);

  /* readv fills its buffers in order; shutdown(SHUT_WR) ends the peer's
   * reads while the other direction still works. */
  int lfd = l1;
  weft_close(l2); /* connections then all reach l1 */
  weft_co *acc;
  CHECK_EQ(weft_spawn(&acc, accept_one, (void *)(intptr_t)lfd), 0);
  int c = connect_loopback(ntohs(a.sin_port));
  void *res;
  CHECK_EQ(weft_join(acc, &res), 0);
  int s = (int)(intptr_t)res;
  CHECK_EQ(weft_write(c, "abcdefghij", 10), 10);
  char x[4], y[6];
  struct iovec iov[2] = {{x, sizeof x}, {y, sizeof y}};
  CHECK_EQ(weft_readv(s, iov, 2), 10); /* one 10-byte write on loopback arrives whole */
  CHECK(memcmp(x, "abcd", 4) == 0 && memcmp(y, "efghij", 6) == 0);
  CHECK_EQ(weft_shutdown(c, SHUT_WR), 0);
  char buf[8];
  CHECK_EQ(weft_read(s, buf, sizeof buf), 0); /* the end of c's writing */
  CHECK_EQ(weft_write(s, "back", 4), 4);     /* s -> c still open */
  CHECK_EQ(weft_read_full(c, buf, 4), 4);
  CHECK(memcmp(buf, "back", 4) == 0);
  CHECK_EQ(weft_shutdown(-1, SHUT_RDWR), -EBADF);
  weft_close(c);
  weft_close(s);
  weft_close(lfd);
  return NULL;
}

static void reuseport_readv_shutdown(void) {
  CHECK_EQ(weft_run(NULL, reuseport_main, NULL, NULL), 0);
}

/* ---- EMFILE: every call that makes a descriptor fails clearly, nothing
 * leaks, and the calls work again when descriptors return --------------- */

static int open_fds(void) {
  int n = 0;
  for (int fd = 0; fd < 4096; fd++)
    n += fcntl(fd, F_GETFD) != -1;
  return n;
}

/* Out of descriptors now: each call that would make one says -EMFILE at
 * once (no wait, even with a deadline far away). */
static void expect_emfile(int lfd) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_un u = {.sun_family = AF_UNIX};
  snprintf(u.sun_path, sizeof u.sun_path, "/tmp/weft-emfile-%d.sock", (int)getpid());
  CHECK_EQ(weft_socket(AF_INET, SOCK_STREAM, 0), -EMFILE);
  CHECK_EQ(weft_socket(AF_INET6, SOCK_DGRAM, 0), -EMFILE);
  CHECK_EQ(weft_socket(AF_UNIX, SOCK_STREAM, 0), -EMFILE);
  CHECK_EQ(weft_listen((struct sockaddr *)&a, sizeof a, 16, 0), -EMFILE);
  CHECK_EQ(weft_listen((struct sockaddr *)&u, sizeof u, 16, 0), -EMFILE);
  CHECK_EQ(weft_accept(lfd, NULL, NULL), -EMFILE); /* an error, not a hang */
  CHECK_EQ(weft_accept_until(lfd, NULL, NULL, weft_now_ns() + 3600 * 1000 * MS), -EMFILE);
  CHECK_EQ(access(u.sun_path, F_OK), -1); /* nothing made on the way */
}

static void *emfile_main(void *arg) {
  (void)arg;
  int fds_at_start = open_fds();
  CHECK_EQ(weft_sleep_ns(1), 0); /* start the poller while fds remain */
  uint16_t port;
  int lfd = listen_loopback(&port);
  int fds[64], n = 0;
  /* Connect until the process is out of descriptors: each connection
   * waits in the listener's backlog, unaccepted. */
  for (;;) {
    int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -EMFILE)
      break;
    CHECK(fd >= 0 && n < 64);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(weft_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    fds[n++] = fd;
  }
  CHECK(n >= 2);
  expect_emfile(lfd);
  int full = open_fds();
  CHECK_EQ(weft_close(fds[--n]), 0);              /* free one descriptor */
  int s1 = weft_accept(lfd, NULL, NULL);          /* the listener works again */
  CHECK(s1 >= 0);
  CHECK_EQ(weft_write(fds[0], "y", 1), 1);
  /* Out again (s1 took the freed one); then the limit is raised instead
   * of descriptors closed: every call works again, the listener accepts
   * the rest of its backlog. */
  expect_emfile(lfd);
  CHECK_EQ(open_fds(), full); /* the failed calls left nothing open */
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur += 64;
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  int more[8], nmore = 0;
  more[nmore++] = weft_socket(AF_INET6, SOCK_DGRAM, 0);
  more[nmore++] = weft_socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  more[nmore++] = weft_listen((struct sockaddr *)&any, sizeof any, 16, 0);
  for (int i = 0; i < n - 1; i++) { /* fds[0]'s peer is s1 */
    int s = weft_accept_until(lfd, NULL, NULL, weft_now_ns() + 60000 * MS);
    CHECK(s >= 0);
    weft_close(s);
  }
  for (int i = 0; i < nmore; i++) {
    CHECK(more[i] >= 0);
    weft_close(more[i]);
  }
  char c;
  CHECK_EQ(weft_read(s1, &c, 1), 1);
  CHECK_EQ(c, 'y');
  weft_close(s1);
  while (n)
    weft_close(fds[--n]);
  weft_close(lfd);
  /* Nothing leaked: what is open now is what was, plus the poller's own. */
  int poller_fds = 2; /* its epoll instance and eventfd */
  CHECK_EQ(open_fds(), fds_at_start + poller_fds);
  return NULL;
}

static void emfile_body(void *arg) {
  (void)arg;
  /* New descriptors take the lowest free numbers, and the limit bounds
   * the numbers: leave room above the lowest free one for the runtime's
   * own descriptors and a handful of sockets. */
  int lowest = 0;
  while (fcntl(lowest, F_GETFD) != -1)
    lowest++;
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = (rlim_t)lowest + 24; /* the hard limit stays: raised again later */
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  weft_config cfg = {.workers = 2};
  _exit(weft_run(&cfg, emfile_main, NULL, NULL) == 0 ? 0 : 3);
}

static void emfile(void) {
  char buf[4096];
  int status = test_run_child(emfile_body, NULL, buf, sizeof buf);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* The runtime started with no descriptor free: the poller (an epoll
 * instance and an eventfd, made on first use) cannot start, so a sleep
 * and a socket say -EMFILE; raise the limit and both work, the poller
 * starting then. */
static void *emfile_start_main(void *arg) {
  int *sv = arg; /* a socketpair made before the limit, nothing to read */
  CHECK_EQ(weft_sleep_ms(1), -EMFILE);
  CHECK_EQ(weft_socket(AF_INET, SOCK_STREAM, 0), -EMFILE);
  char c;
  CHECK_EQ(weft_read_until(sv[0], &c, 1, weft_now_ns() + 1000 * MS), -EMFILE);
  CHECK_EQ(weft_sleep_ms(1), -EMFILE); /* still: nothing half-started */
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur += 64;
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  CHECK_EQ(weft_sleep_ms(1), 0);
  uint16_t port;
  int lfd = listen_loopback(&port);
  int cfd = connect_loopback(port);
  int sfd = weft_accept(lfd, NULL, NULL);
  CHECK(sfd >= 0);
  CHECK_EQ(weft_write(cfd, "z", 1), 1);
  CHECK_EQ(weft_read(sfd, &c, 1), 1);
  CHECK_EQ(weft_read_until(sv[0], &c, 1, weft_now_ns() + 10 * MS), -ETIMEDOUT);
  weft_close(sfd);
  weft_close(cfd);
  weft_close(lfd);
  weft_close(sv[0]);
  weft_close(sv[1]);
  return NULL;
}

static void emfile_start_body(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int lowest = 0;
  while (fcntl(lowest, F_GETFD) != -1)
    lowest++;
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = (rlim_t)lowest; /* not one free */
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  weft_config cfg = {.workers = 2};
  _exit(weft_run(&cfg, emfile_start_main, sv, NULL) == 0 ? 0 : 3);
}

static void emfile_poller_start(void) {
  char buf[4096];
  int status = test_run_child(emfile_start_body, NULL, buf, sizeof buf);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ---- short reads (fd.c F4): never a wait on what is already there ----------------- */

static void *short_reads_main(void *arg) {
  (void)arg;
  char buf[64];
  /* Data and the end of stream in one edge: after the short read, the
   * next read returns 0 at once. (The first read registers the fd.) */
  for (int round = 0; round < 200; round++) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(weft_read_until(sv[1], buf, sizeof buf, weft_now_ns() + 1000000), -ETIMEDOUT);
    CHECK_EQ(weft_write(sv[0], "abc", 3), 3);
    CHECK_EQ(weft_close(sv[0]), 0);
    weft_sleep_ms(round % 2); /* the edge seen before or after the read */
    CHECK_EQ(weft_read(sv[1], buf, sizeof buf), 3);
    CHECK_EQ(weft_read_until(sv[1], buf, sizeof buf, weft_now_ns() + 5000000000ull), 0);
    CHECK_EQ(weft_close(sv[1]), 0);
  }
  /* Datagrams: a short read takes one; the next one is read, not waited
   * for. */
  int dv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, dv), 0);
  CHECK_EQ(weft_read_until(dv[1], buf, sizeof buf, weft_now_ns() + 1000000), -ETIMEDOUT);
  CHECK_EQ(weft_write(dv[0], "one", 3), 3);
  CHECK_EQ(weft_write(dv[0], "two", 3), 3);
  weft_sleep_ms(1);
  CHECK_EQ(weft_read(dv[1], buf, sizeof buf), 3);
  CHECK_EQ(weft_read_until(dv[1], buf, sizeof buf, weft_now_ns() + 5000000000ull), 3);
  CHECK(memcmp(buf, "two", 3) == 0);
  weft_close(dv[0]);
  weft_close(dv[1]);
  return NULL;
}

static void short_reads(void) { CHECK_EQ(weft_run(NULL, short_reads_main, NULL, NULL), 0); }

/* ---- churn (stress): connections opened, used, cut and cancelled at once ---------- */

static uint64_t churn_bytes;
static uint32_t churn_cancelled, churn_done;

typedef struct {
  uint16_t port;
  unsigned seed;
} churn_arg;

/* One client: write a random amount in random pieces, read it all back,
 * checking it; one in four hangs up halfway (the server must cope). */
static void *churn_client(void *p) {
  churn_arg *a = p;
  unsigned seed = a->seed;
  int fd = connect_loopback(a->port);
  size_t len = 1 + (size_t)rand_r(&seed) % 20000;
  bool cut = rand_r(&seed) % 4 == 0;
  unsigned char *out = malloc(len), *in = malloc(len);
  for (size_t i = 0; i < len; i++)
    out[i] = (unsigned char)rand_r(&seed);
  size_t sent = 0, got = 0;
  int rc = 0;
  while (got < len && rc == 0) {
    if (sent < len) {
      size_t k = 1 + (size_t)rand_r(&seed) % 3000;
      if (k > len - sent)
        k = len - sent;
      ssize_t w = weft_write(fd, out + sent, k);
      if (w < 0)
        rc = (int)w;
      else
        sent += (size_t)w;
    }
    if (cut && got > len / 2)
      break;
    ssize_t r = weft_read(fd, in + got, len - got > 512 ? 512 : len - got);
    if (r < 0)
      rc = (int)r;
    else if (r == 0)
      rc = -EPIPE;
    else
      got += (size_t)r;
  }
  if (rc == -ECANCELED)
    __atomic_fetch_add(&churn_cancelled, 1, __ATOMIC_RELAXED);
  else {
    CHECK_EQ(rc, 0);
    CHECK(memcmp(in, out, got) == 0);
    __atomic_fetch_add(&churn_bytes, got, __ATOMIC_RELAXED);
    __atomic_fetch_add(&churn_done, 1, __ATOMIC_RELAXED);
  }
  weft_close(fd);
  free(in);
  free(out);
  return NULL;
}

static void *churn_main(void *arg) {
  (void)arg;
  uint16_t port;
  int lfd = listen_loopback(&port);
  weft_co *server;
  CHECK_EQ(weft_spawn(&server, echo_server, (void *)(intptr_t)lfd), 0);
  enum { PER_ROUND = 200 };
  static churn_arg args[PER_ROUND];
  static weft_co *cs[PER_ROUND];
  int rounds = SCALE(1000) < 4 ? 4 : SCALE(1000) > 30 ? 30 : SCALE(1000);
  unsigned total = 0;
  for (int round = 0; round < rounds; round++) {
    for (int i = 0; i < PER_ROUND; i++) {
      args[i] = (churn_arg){port, (unsigned)(round * PER_ROUND + i + 1)};
      CHECK_EQ(weft_spawn(&cs[i], churn_client, &args[i]), 0);
    }
    weft_yield();
    for (int i = 0; i < PER_ROUND; i += 7) /* cancel some, wherever they are */
      weft_cancel(cs[i]);
    CHECK_EQ(weft_gather(cs, PER_ROUND, NULL), 0);
    total += PER_ROUND;
  }
  CHECK_EQ(churn_done + churn_cancelled, total);
  CHECK(churn_done > total / 2);
  /* Every client closed its end: every server connection sees the end
   * and closes too (a runtime that stops frees coroutines, not fds). */
  for (int i = 0; i < 6000 && __atomic_load_n(&echo_live, __ATOMIC_RELAXED); i++)
    weft_sleep_ms(10);
  CHECK_EQ(__atomic_load_n(&echo_live, __ATOMIC_RELAXED), 0);
  weft_close(lfd);
  void *res;
  CHECK_EQ(weft_join(server, &res), 0);
  CHECK_EQ((int)(intptr_t)res, -EBADF);
  return NULL;
}

static void churn(void) {
  int before = 0, after = 0;
  for (int fd = 0; fd < 4096; fd++)
    before += fcntl(fd, F_GETFD) != -1;
  CHECK_EQ(weft_run(NULL, churn_main, NULL, NULL), 0);
  for (int fd = 0; fd < 4096; fd++)
    after += fcntl(fd, F_GETFD) != -1;
  CHECK_EQ(after, before); /* every socket closed */
}

static const test_case cases[] = {
    {"churn", churn},
    {"reuseport_readv_shutdown", reuseport_readv_shutdown},
    {"short_reads", short_reads},
    {"echo_many", echo_many},
    {"tiny_buffers", tiny_buffers},
    {"close_and_deadlines", close_and_deadlines},
    {"peer_reset", peer_reset},
    {"udp", udp},
    {"unix_socket", unix_socket},
    {"emfile", emfile},
    {"emfile_poller_start", emfile_poller_start},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
