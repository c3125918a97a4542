/*
 * rawclient.h - a small blocking HTTP/1.1 client on plain sockets, for
 * tests that must see exactly what a server sends (status line, every
 * header, chunk sizes, 100 Continue, the end of the stream or a reset):
 * test_httpd.c and test_server.c. Header-only; include it once.
 */
#ifndef WEFT_TESTS_HTTP_RAWCLIENT_H
#define WEFT_TESTS_HTTP_RAWCLIENT_H

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
#include <sys/socket.h>
#include <unistd.h>

#include "../check.h"


static inline int connect_port_rc(uint16_t port, int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    int e = errno;
    close(fd);
    return -e;
  }
  struct timeval tv = {30, 0}; /* a hang fails the test, not CTest's timeout */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *fd_out = fd;
  return 0;
}

static inline int connect_port(uint16_t port) {
  int fd = -1;
  int rc = connect_port_rc(port, &fd);
  if (rc)
    fprintf(stderr, "connect: %s\n", strerror(-rc));
  CHECK_EQ(rc, 0);
  return fd;
}
static inline void send_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    CHECK(w > 0);
    p += w;
    n -= (size_t)w;
  }
}

static inline void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

typedef struct client {
  int fd;
  size_t off, len;
  char buf[16384];
} client;

static inline client *client_open(uint16_t port) {
  client *c = calloc(1, sizeof *c);
  CHECK(c != NULL);
  c->fd = connect_port(port);
  return c;
}

static inline void client_close(client *c) {
  close(c->fd);
  free(c);
}

/* More input: >0, 0 at end of stream, -errno. */
static inline ssize_t cl_fill(client *c) {
  if (c->off == c->len)
    c->off = c->len = 0;
  if (c->len == sizeof c->buf) {
    memmove(c->buf, c->buf + c->off, c->len - c->off);
    c->len -= c->off;
    c->off = 0;
  }
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  if (n < 0)
    return -errno;
  c->len += (size_t)n;
  return n;
}

/* A CRLF-terminated line, without its CRLF. */
static inline int cl_line(client *c, char *out, size_t cap) {
  for (;;) {
    char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
    if (nl) {
      size_t n = (size_t)(nl - (c->buf + c->off));
      CHECK(n >= 1 && nl[-1] == '\r' && n - 1 < cap);
      memcpy(out, c->buf + c->off, n - 1);
      out[n - 1] = 0;
      c->off += n + 1;
      return 0;
    }
    ssize_t r = cl_fill(c);
    if (r <= 0)
      return r ? (int)r : -EPIPE;
  }
}

static inline int cl_exact(client *c, char *dst, size_t n) {
  while (n) {
    if (c->off == c->len) {
      ssize_t r = cl_fill(c);
      if (r <= 0)
        return r ? (int)r : -EPIPE;
    }
    size_t k = c->len - c->off < n ? c->len - c->off : n;
    memcpy(dst, c->buf + c->off, k);
    c->off += k;
    dst += k;
    n -= k;
  }
  return 0;
}

enum { MAX_H = 64, MAX_CHUNKS = 4096 };

typedef struct resp {
  int status;
  int nh;
  char name[MAX_H][64];
  char value[MAX_H][512];
  char *body;
  size_t len;
  int nchunks; /* a chunked body: its chunks' sizes */
  size_t chunk[MAX_CHUNKS];
  bool interim; /* a 100 Continue came first */
} resp;

static inline const char *hdr(const resp *r, const char *name) {
  for (int i = 0; i < r->nh; i++)
    if (strcasecmp(r->name[i], name) == 0)
      return r->value[i];
  return NULL;
}

static inline int hdr_count(const resp *r, const char *name) {
  int n = 0;
  for (int i = 0; i < r->nh; i++)
    n += strcasecmp(r->name[i], name) == 0;
  return n;
}

static inline void resp_free(resp *r) {
  free(r->body);
  free(r);
}

static inline int read_head(client *c, resp *r) {
  char line[1024];
  int rc = cl_line(c, line, sizeof line);
  if (rc)
    return rc;
  CHECK(strncmp(line, "HTTP/1.1 ", 9) == 0);
  r->status = atoi(line + 9);
  r->nh = 0;
  for (;;) {
    CHECK_EQ(cl_line(c, line, sizeof line), 0);
    if (!line[0])
      return 0;
    char *colon = strchr(line, ':');
    CHECK(colon != NULL && r->nh < MAX_H);
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ')
      v++;
    snprintf(r->name[r->nh], sizeof r->name[0], "%.63s", line);
    snprintf(r->value[r->nh], sizeof r->value[0], "%.511s", v);
    r->nh++;
  }
}

/* One response (after any 100 Continue): the body by Content-Length,
 * chunks, or to the end of the stream; none for HEAD, 204, 304. 0 or
 * -errno (-EPIPE: the stream ended early). */
static inline int get_resp(client *c, resp **out, bool head_request) {
  resp *r = calloc(1, sizeof *r);
  CHECK(r != NULL);
  *out = r;
  int rc;
  while ((rc = read_head(c, r)) == 0 && r->status == 100)
    r->interim = true;
  if (rc)
    return rc;
  const char *cl = hdr(r, "content-length"), *te = hdr(r, "transfer-encoding");
  if (head_request || r->status == 204 || r->status == 304) {
    r->body = calloc(1, 1);
    return 0;
  }
  if (te) {
    CHECK(strcasecmp(te, "chunked") == 0 && cl == NULL);
    size_t cap = 1024;
    r->body = malloc(cap);
    for (;;) {
      char line[128];
      CHECK_EQ(cl_line(c, line, sizeof line), 0);
      char *end;
      size_t size = strtoul(line, &end, 16);
      CHECK(end != line && *end == 0);
      if (size == 0)
        break;
      CHECK(r->nchunks < MAX_CHUNKS);
      r->chunk[r->nchunks++] = size;
      while (r->len + size + 1 > cap)
        cap *= 2;
      r->body = realloc(r->body, cap);
      CHECK_EQ(cl_exact(c, r->body + r->len, size), 0);
      r->len += size;
      CHECK_EQ(cl_line(c, line, sizeof line), 0);
      CHECK_EQ(line[0], 0);
    }
    char line[128];
    CHECK_EQ(cl_line(c, line, sizeof line), 0); /* no trailers */
    CHECK_EQ(line[0], 0);
    r->body[r->len] = 0;
    return 0;
  }
  if (cl) {
    r->len = strtoull(cl, NULL, 10);
    r->body = malloc(r->len + 1);
    r->body[r->len] = 0;
    return cl_exact(c, r->body, r->len);
  }
  size_t cap = 1024; /* delimited by the close */
  r->body = malloc(cap);
  for (;;) {
    size_t have = c->len - c->off;
    while (r->len + have + 1 > cap)
      cap *= 2;
    r->body = realloc(r->body, cap);
    memcpy(r->body + r->len, c->buf + c->off, have);
    r->len += have;
    c->off = c->len;
    ssize_t n = cl_fill(c);
    if (n == 0)
      break;
    if (n < 0)
      return (int)n;
  }
  r->body[r->len] = 0;
  return 0;
}

/* Send a request on c and read its response (which must arrive). */
static inline resp *roundtrip(client *c, const char *request) {
  send_str(c->fd, request);
  resp *r;
  CHECK_EQ(get_resp(c, &r, strncmp(request, "HEAD ", 5) == 0), 0);
  return r;
}

/* GET path on a connection of its own. */
static inline resp *get1(uint16_t port, const char *path) {
  client *c = client_open(port);
  char req[512];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  resp *r = roundtrip(c, req);
  client_close(c);
  return r;
}

/* The peer closed: the next read is end of stream. */
static inline void check_eof(client *c) {
  CHECK_EQ(c->len - c->off, 0);
  CHECK_EQ(cl_fill(c), 0);
}

static inline bool is_pattern(const char *body, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (body[i] != (char)('a' + (from + i) % 26))
      return false;
  return true;
}

static inline void check_text(resp *r, int status, const char *body) {
  if (r->status != status || strcmp(r->body, body) != 0)
    fprintf(stderr, "got %d \"%s\", want %d \"%s\"\n", r->status, r->body, status, body);
  CHECK_EQ(r->status, status);
  CHECK(strcmp(r->body, body) == 0);
  resp_free(r);
}

/* The server closed: the next read is the end of the stream, or a reset
 * when it closed with our bytes unread. */
static inline void check_end(client *c) {
  CHECK_EQ(c->len - c->off, 0);
  ssize_t n = cl_fill(c);
  if (n != 0 && n != -ECONNRESET)
    fprintf(stderr, "expected the end of the stream, got %zd\n", n);
  CHECK(n == 0 || n == -ECONNRESET);
}

static inline bool closed_or_reset(client *c) {
  ssize_t n = cl_fill(c);
  return n == 0 || n == -ECONNRESET;
}

#endif
