/*
 * socket.c - socket calls for coroutines: try the syscall first, and park
 * (fd.c) only when it says EAGAIN. Every fd weft creates or accepts is
 * non-blocking and close-on-exec; writes use MSG_NOSIGNAL, so a peer that
 * went away is -EPIPE, never SIGPIPE. On a foreign thread the same calls
 * wait in poll(2) instead of parking.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd.h"
#include "weft/io.h"

enum { RD = 0, WR = 1 };

typedef ssize_t (*io_op)(int fd, void *ctx);

/* Run op until it does not say EAGAIN, waiting for fd in dir between
 * attempts (fd.c F1-F2), until deadline_ns (0: none). The read counter is
 * noted before the first attempt, so one EAGAIN is enough to park. want >
 * 0 marks a read of want bytes on which fd.c's F4 applies. */
static ssize_t io_loop_want(int fd, int dir, uint64_t deadline_ns, io_op op, void *ctx,
                            size_t want) {
  int err = 0;
  weft__poller_io *io = weft__io_current(&err);
  if (!io && err != WEFT_ENOTCO)
    return err;
  uint32_t seen = io ? weft__fd_ready_count(io, fd, dir) : 0;
  bool skip = io && want && weft__fd_drained(io, fd, seen); /* F4 */
  for (;;) {
    ssize_t r;
    if (skip) {
      skip = false;
      r = -1;
      errno = EAGAIN;
    } else {
      r = op(fd, ctx);
    }
    if (r >= 0) {
      if (io && r > 0 && (size_t)r < want)
        weft__fd_note_drained(io, fd, seen);
      return r;
    }
    int e = errno;
    if (e == EINTR)
      continue;
    if (e != EAGAIN && e != EWOULDBLOCK && e != EINPROGRESS)
      return -e;
    if (!io) { /* a foreign thread: poll(2) */
      int ms = -1;
      if (deadline_ns) {
        uint64_t now = weft_now_ns();
        if (now >= deadline_ns)
          return -ETIMEDOUT;
        ms = (int)((deadline_ns - now + 999999) / 1000000);
      }
      struct pollfd p = {.fd = fd, .events = dir == RD ? POLLIN : POLLOUT};
      if (poll(&p, 1, ms) == 0)
        return -ETIMEDOUT;
      continue;
    }
    int rc = weft__fd_wait(io, fd, dir, seen, deadline_ns);
    if (rc)
      return rc;
    seen = weft__fd_ready_count(io, fd, dir);
  }
}

static ssize_t io_loop(int fd, int dir, uint64_t deadline_ns, io_op op, void *ctx) {
  return io_loop_want(fd, dir, deadline_ns, op, ctx, 0);
}

/* ---- creating ------------------------------------------------------------------ */

int weft_socket(int domain, int type, int protocol) {
  int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  return fd < 0 ? -errno : fd;
}

int weft_listen(const struct sockaddr *addr, socklen_t len, int backlog,
                int flags) {
  if (!addr)
    return -EINVAL;
  int fd = weft_socket(addr->sa_family, SOCK_STREAM, 0);
  if (fd < 0)
    return fd;
  int one = 1;
  if (addr->sa_family != AF_UNIX)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if ((flags & WEFT_LISTEN_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one))
    goto fail;
  if (bind(fd, addr, len) || listen(fd, backlog > 0 ? backlog : 511))
    goto fail;
  return fd;
fail:;
  int e = errno;
  close(fd);
  return -e;
}

/* ---- accept / connect ------------------------------------------------------------ */

struct accept_ctx {
  struct sockaddr *addr;
  socklen_t *len;
};

static ssize_t do_accept(int fd, void *p) {
  struct accept_ctx *c = p;
  return accept4(fd, c->addr, c->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len,
                      uint64_t deadline_ns) {
  struct accept_ctx c = {addr, len};
  /* EMFILE/ENFILE come back as errors; the listener stays usable. */
  return (int)io_loop(fd, RD, deadline_ns, do_accept, &c);
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len) {
  return weft_accept_until(fd, addr, len, 0);
}

struct connect_ctx {
  const struct sockaddr *addr;
  socklen_t len;
  bool started;
};

static ssize_t do_connect(int fd, void *p) {
  struct connect_ctx *c = p;
  if (!c->started) {
    c->started = true;
    return connect(fd, c->addr, c->len);
  }
  /* In progress: writable means done; SO_ERROR says how. */
  struct pollfd pf = {.fd = fd, .events = POLLOUT};
  if (poll(&pf, 1, 0) == 0) {
    errno = EINPROGRESS;
    return -1;
  }
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l))
    return -1;
  if (err) {
    errno = err;
    return -1;
  }
  return 0;
}

int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       uint64_t deadline_ns) {
  struct connect_ctx c = {addr, len, false};
  return (int)io_loop(fd, WR, deadline_ns, do_connect, &c);
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  return weft_connect_until(fd, addr, len, 0);
}

/* ---- read / write ---------------------------------------------------------------- */

struct buf_ctx {
  void *buf;
  size_t n;
  int flags;
  const struct iovec *iov;
  int iovcnt;
};

static ssize_t do_read(int fd, void *p) {
  struct buf_ctx *c = p;
  return read(fd, c->buf, c->n);
}

static ssize_t do_write(int fd, void *p) {
  struct buf_ctx *c = p;
  ssize_t r = send(fd, c->buf, c->n, MSG_NOSIGNAL);
  if (r < 0 && errno == ENOTSOCK)
    r = write(fd, c->buf, c->n);
  return r;
}

static ssize_t do_readv(int fd, void *p) {
  struct buf_ctx *c = p;
  return readv(fd, c->iov, c->iovcnt);
}

static ssize_t do_writev(int fd, void *p) {
  struct buf_ctx *c = p;
  struct msghdr m = {.msg_iov = (struct iovec *)c->iov, .msg_iovlen = (size_t)c->iovcnt};
  ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL);
  if (r < 0 && errno == ENOTSOCK)
    r = writev(fd, c->iov, c->iovcnt);
  return r;
}

ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline_ns) {
  struct buf_ctx c = {.buf = buf, .n = n};
  return io_loop_want(fd, RD, deadline_ns, do_read, &c, n);
}

ssize_t weft_read(int fd, void *buf, size_t n) { return weft_read_until(fd, buf, n, 0); }

ssize_t weft_read_full_until(int fd, void *buf, size_t n, uint64_t deadline_ns) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = weft_read_until(fd, (char *)buf + done, n - done, deadline_ns);
    if (r < 0)
      return r;
    if (r == 0) /* EOF before n bytes */
      return done ? (ssize_t)done : 0;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

ssize_t weft_read_full(int fd, void *buf, size_t n) {
  return weft_read_full_until(fd, buf, n, 0);
}

ssize_t weft_write_some_until(int fd, const void *buf, size_t n, uint64_t deadline_ns) {
  struct buf_ctx c = {.buf = (void *)buf, .n = n};
  return io_loop(fd, WR, deadline_ns, do_write, &c);
}

ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline_ns) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = weft_write_some_until(fd, (const char *)buf + done, n - done, deadline_ns);
    if (r < 0)
      return done ? (ssize_t)done : r;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

ssize_t weft_write(int fd, const void *buf, size_t n) { return weft_write_until(fd, buf, n, 0); }

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt) {
  struct buf_ctx c = {.iov = iov, .iovcnt = iovcnt};
  return io_loop(fd, RD, 0, do_readv, &c);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt) {
  struct buf_ctx c = {.iov = iov, .iovcnt = iovcnt};
  return io_loop(fd, WR, 0, do_writev, &c);
}

/* ---- datagrams -------------------------------------------------------------------- */

struct dgram_ctx {
  void *buf;
  size_t n;
  struct sockaddr *from;
  socklen_t *fromlen;
  const struct sockaddr *to;
  socklen_t tolen;
};

static ssize_t do_recvfrom(int fd, void *p) {
  struct dgram_ctx *c = p;
  return recvfrom(fd, c->buf, c->n, 0, c->from, c->fromlen);
}

static ssize_t do_sendto(int fd, void *p) {
  struct dgram_ctx *c = p;
  return sendto(fd, c->buf, c->n, MSG_NOSIGNAL, c->to, c->tolen);
}

ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, struct sockaddr *from,
                            socklen_t *fromlen, uint64_t deadline_ns) {
  struct dgram_ctx c = {.buf = buf, .n = n, .from = from, .fromlen = fromlen};
  return io_loop(fd, RD, deadline_ns, do_recvfrom, &c);
}

ssize_t weft_recvfrom(int fd, void *buf, size_t n, struct sockaddr *from,
                      socklen_t *fromlen) {
  return weft_recvfrom_until(fd, buf, n, from, fromlen, 0);
}

ssize_t weft_sendto(int fd, const void *buf, size_t n, const struct sockaddr *to,
                    socklen_t tolen) {
  struct dgram_ctx c = {.buf = (void *)buf, .n = n, .to = to, .tolen = tolen};
  return io_loop(fd, WR, 0, do_sendto, &c);
}

/* ---- shutdown / close --------------------------------------------------------------- */

int weft_shutdown(int fd, int how) { return shutdown(fd, how) ? -errno : 0; }

int weft_close(int fd) {
  if (fd < 0)
    return -EBADF;
  int err = 0;
  weft__poller_io *io = weft__io_current(&err);
  return weft__fd_close(io, fd);
}
