/*
 * fuzz_dns_answer.c - what weft_resolve makes of a DNS server's answers
 * (io/src/dns.c: c-ares's parse of the packet, then from_ares, the CNAME
 * chain, build and the delivery to the caller), with the answers taken
 * from the fuzz input.
 *
 * The setup, made once and kept for every input (so an input costs a
 * lookup, not a runtime): a fake DNS server, a thread of this process
 * with a UDP socket and a TCP listener on one port of 127.0.0.1; a weft
 * runtime (one worker) whose WEFT_DNS_SERVERS names it, with
 * WEFT_HOSTS_FILE pointing at no file (every name goes to the server)
 * and RES_OPTIONS=attempts:1 (c-ares reads it: a query the server
 * leaves unanswered is given up after one timeout rather than four).
 *
 * Each input is one lookup: weft_resolve_until, from a coroutine spawned
 * into the runtime, of a name never asked before ("q<8 hex>.fuzz.test",
 * so weft's cache never answers it; a fixed length, so offsets in the
 * answers stay put), with a 300 ms deadline. The server answers every
 * query of it from the input:
 *   byte 0     flags: bit 0 keep the template's ID (c-ares drops an
 *              answer whose ID matches no query); bit 1 keep the
 *              template's question (else the query's is put in after
 *              the 12-byte header, so answers are not dropped for
 *              naming another question); bits 2-3 the family asked
 *              (AF_INET, AF_INET6, AF_UNSPEC, AF_INET6 + AI_V4MAPPED);
 *              bit 4 AI_CANONNAME; bit 5 over TCP, send half the answer
 *              and close; bit 6 AI_ALL; bit 7 the closing answer (below)
 *              is SERVFAIL instead of NXDOMAIN;
 *   bytes 1-2  the length of template A (big-endian);
 *   then       template A, the answer to A queries, and template B, the
 *              answer to AAAA queries (the rest; A again if empty).
 * After the template's answer the server sends a closing answer, a
 * well-formed NXDOMAIN (or SERVFAIL) for the query, so a lookup whose
 * answer c-ares dropped still ends at once instead of at the deadline.
 * An answer with TC set makes c-ares ask again over TCP, where the same
 * template (and the closing answer) is sent with its length prefix; when
 * c-ares will take the TC answer (its ID and question are the query's),
 * the UDP closing answer is left out, so the TCP path is what ends it.
 *
 * What it checks:
 *   D1. The result is 0 with a list, or one of the DNS codes with none
 *       (never -ENOMEM, -EINVAL or a crash).
 *   D2. Each address is of the family asked (IPv6 for V4MAPPED), with
 *       the socket type asked and port 0; and its bytes (the IPv4 ones
 *       for a mapped address) are in an answer the server sent: weft
 *       never makes up or mixes up an address.
 *   D3. Only the first entry may carry ai_canonname, and only with
 *       AI_CANONNAME; it is a name of DNS's length limits.
 * ASan and UBSan watch dns.c's handling of whatever c-ares passes up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

#include <weft/weft.h>

#define MS 1000000ull

enum {
  F_RAW_ID = 1,
  F_RAW_QUESTION = 2,
  F_FAMILY = 12,
  F_CANON = 16,
  F_TCP_CUT = 32,
  F_ALL = 64,
  F_SERVFAIL = 128,
};
enum { MAX_TEMPLATE = 4096, MAX_CONNS = 16, LOOKUP_MS = 300 };

/* ---- the fake server -------------------------------------------------------------- */

/* The current input's answers, read by the server thread under lock. */
static struct {
  pthread_mutex_t lock;
  uint8_t a[MAX_TEMPLATE], b[MAX_TEMPLATE];
  size_t alen, blen;
  unsigned flags;
} cur = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct tconn {
  int fd;
  size_t len;
  uint8_t buf[2048];
} tconn;

static int udp_fd, tcp_fd;
static uint16_t port;
static tconn conns[MAX_CONNS];

/* Where a query's question ends (12 + name + type + class), or 0. */
static size_t question_end(const uint8_t *q, size_t n) {
  if (n < 12)
    return 0;
  size_t off = 12;
  while (off < n && q[off]) {
    if (q[off] > 63)
      return 0;
    off += 1 + (size_t)q[off];
  }
  return off + 5 <= n ? off + 5 : 0;
}

/* The answer to query q (its question ending at qend) into out: the
 * template for its type, with the query's ID and question put in unless
 * the flags say not. */
static size_t make_answer(const uint8_t *q, size_t qend, uint8_t *out) {
  bool aaaa = q[qend - 4] == 0 && q[qend - 3] == 28;
  pthread_mutex_lock(&cur.lock);
  const uint8_t *t = aaaa ? cur.b : cur.a;
  size_t tl = aaaa ? cur.blen : cur.alen, k = 0;
  unsigned flags = cur.flags;
  if (tl >= 2) {
    out[k++] = (flags & F_RAW_ID) ? t[0] : q[0];
    out[k++] = (flags & F_RAW_ID) ? t[1] : q[1];
    size_t head = tl < 12 ? tl : 12;
    memcpy(out + k, t + 2, head - 2);
    k += head - 2;
    if (!(flags & F_RAW_QUESTION) && tl >= 12) {
      memcpy(out + k, q + 12, qend - 12);
      k += qend - 12;
    }
    memcpy(out + k, t + head, tl - head);
    k += tl - head;
  } else {
    memcpy(out, t, tl);
    k = tl;
  }
  pthread_mutex_unlock(&cur.lock);
  return k;
}

/* The closing answer: NXDOMAIN (or SERVFAIL), no records. */
static size_t closing_answer(const uint8_t *q, size_t qend, uint8_t *out) {
  pthread_mutex_lock(&cur.lock);
  unsigned rcode = (cur.flags & F_SERVFAIL) ? 2 : 3;
  pthread_mutex_unlock(&cur.lock);
  static const uint8_t head[12] = {0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(out, head, 12);
  out[0] = q[0];
  out[1] = q[1];
  out[3] |= (uint8_t)rcode;
  memcpy(out + 12, q + 12, qend - 12);
  return qend;
}

/* Will c-ares act on this answer's TC bit (ask again over TCP)? Only if
 * it takes the answer as one to its query: the query's ID and its one
 * question, put in by make_answer. */
static bool tc_taken(const uint8_t *a, size_t n) {
  pthread_mutex_lock(&cur.lock);
  bool patched = !(cur.flags & (F_RAW_ID | F_RAW_QUESTION));
  pthread_mutex_unlock(&cur.lock);
  return patched && n >= 12 && (a[2] & 0x02) && a[4] == 0 && a[5] == 1;
}

static void udp_query(void) {
  uint8_t q[2048], out[MAX_TEMPLATE + 600];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  ssize_t r = recvfrom(udp_fd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
  size_t qend = r > 0 ? question_end(q, (size_t)r) : 0;
  if (!qend)
    return;
  size_t n = make_answer(q, qend, out);
  sendto(udp_fd, out, n, 0, (struct sockaddr *)&from, fl);
  if (tc_taken(out, n))
    return; /* c-ares asks again over TCP; that path ends it */
  n = closing_answer(q, qend, out);
  sendto(udp_fd, out, n, 0, (struct sockaddr *)&from, fl);
}

static void send_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

static void tcp_frame(int fd, const uint8_t *p, size_t n, bool cut) {
  uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
  send_all(fd, len, 2);
  send_all(fd, p, cut ? n / 2 : n);
}

static void tconn_close(tconn *c) {
  close(c->fd);
  c->fd = -1;
  c->len = 0;
}

static void tcp_read(tconn *c) {
  ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
  if (r <= 0) {
    if (r == 0 || (errno != EAGAIN && errno != EINTR))
      tconn_close(c);
    return;
  }
  c->len += (size_t)r;
  while (c->fd >= 0 && c->len >= 2) {
    size_t n = (size_t)c->buf[0] << 8 | c->buf[1];
    if (c->len < 2 + n) {
      if (2 + n > sizeof c->buf)
        tconn_close(c);
      return;
    }
    const uint8_t *q = c->buf + 2;
    size_t qend = question_end(q, n);
    if (qend) {
      static uint8_t out[MAX_TEMPLATE + 600];
      pthread_mutex_lock(&cur.lock);
      bool cut = cur.flags & F_TCP_CUT;
      pthread_mutex_unlock(&cur.lock);
      size_t k = make_answer(q, qend, out);
      tcp_frame(c->fd, out, k, cut);
      if (cut) {
        tconn_close(c);
        return;
      }
      k = closing_answer(q, qend, out);
      tcp_frame(c->fd, out, k, false);
    }
    memmove(c->buf, c->buf + 2 + n, c->len - 2 - n);
    c->len -= 2 + n;
  }
}

static void *serve(void *arg) {
  (void)arg;
  for (;;) {
    struct pollfd pf[2 + MAX_CONNS];
    pf[0] = (struct pollfd){.fd = udp_fd, .events = POLLIN};
    pf[1] = (struct pollfd){.fd = tcp_fd, .events = POLLIN};
    for (int i = 0; i < MAX_CONNS; i++)
      pf[2 + i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
    if (poll(pf, 2 + MAX_CONNS, -1) < 0)
      continue;
    if (pf[0].revents & POLLIN)
      udp_query();
    if (pf[1].revents & POLLIN) {
      int fd = accept(tcp_fd, NULL, NULL);
      if (fd >= 0) {
        int i = 0;
        while (i < MAX_CONNS && conns[i].fd >= 0)
          i++;
        if (i == MAX_CONNS) { /* the oldest makes room */
          tconn_close(&conns[0]);
          i = 0;
        }
        conns[i] = (tconn){.fd = fd};
      }
    }
    for (int i = 0; i < MAX_CONNS; i++)
      if (conns[i].fd >= 0 && pf[2 + i].revents)
        tcp_read(&conns[i]);
  }
  return NULL;
}

/* UDP on 127.0.0.1:0, then TCP on the port it got (if another process
 * holds that TCP port, a new pair). */
static void server_start(void) {
  for (int i = 0; i < MAX_CONNS; i++)
    conns[i].fd = -1;
  for (int attempt = 0;; attempt++) {
    FUZZ_CHECK(attempt < 50);
    udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    FUZZ_CHECK(udp_fd >= 0 && bind(udp_fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    FUZZ_CHECK(getsockname(udp_fd, (struct sockaddr *)&a, &l) == 0);
    tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(tcp_fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(tcp_fd, 64) == 0) {
      port = ntohs(a.sin_port);
      break;
    }
    close(udp_fd);
    close(tcp_fd);
  }
  pthread_t t;
  FUZZ_CHECK(pthread_create(&t, NULL, serve, NULL) == 0);
  pthread_detach(t);
}

/* ---- the lookups -------------------------------------------------------------------- */

static weft_runtime *rt;
static unsigned serial;

typedef struct lookup {
  char name[32];
  struct addrinfo hints;
  struct addrinfo *res;
  int rc;
} lookup;

static void *lookup_main(void *arg) {
  lookup *l = arg;
  l->rc = weft_resolve_until(l->name, NULL, &l->hints, &l->res,
                             weft_now_ns() + LOOKUP_MS * MS);
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  server_start();
  char servers[32];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", port);
  setenv("WEFT_DNS_SERVERS", servers, 1);
  setenv("WEFT_HOSTS_FILE", "/nonexistent/weft-fuzz-hosts", 1);
  setenv("RES_OPTIONS", "attempts:1", 1);
  weft_config cfg = {.workers = 1};
  FUZZ_CHECK(weft_runtime_start(&cfg, &rt) == 0);
  return 0;
}

/* D2: are the n bytes at p in one of the answers sent? */
static bool sent(const void *p, size_t n) {
  return (cur.alen >= n && memmem(cur.a, cur.alen, p, n)) ||
         (cur.blen >= n && memmem(cur.b, cur.blen, p, n));
}

static void check_result(const lookup *l) {
  int rc = l->rc;
  if (getenv("WEFT_FUZZ_VERBOSE")) { /* what each input came to, for writing seeds */
    fprintf(stderr, "%s: %d (%s)", l->name, rc, weft_strerror(rc));
    for (const struct addrinfo *ai = l->res; ai; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN];
      const void *a = ai->ai_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
      fprintf(stderr, " %s", inet_ntop(ai->ai_family, a, ip, sizeof ip) ? ip : "?");
    }
    fprintf(stderr, "%s%s\n", l->res && l->res->ai_canonname ? " canon " : "",
            l->res && l->res->ai_canonname ? l->res->ai_canonname : "");
  }
  if (rc != 0) { /* D1 */
    FUZZ_CHECK(l->res == NULL);
    if (rc != WEFT_EDNS_NOTFOUND && rc != WEFT_EDNS_SERVFAIL && rc != WEFT_EDNS_TIMEOUT &&
        rc != WEFT_EDNS_REFUSED && rc != WEFT_EDNS_BADRESP)
      fprintf(stderr, "weft_resolve: %d (%s)\n", rc, weft_strerror(rc));
    FUZZ_CHECK(rc == WEFT_EDNS_NOTFOUND || rc == WEFT_EDNS_SERVFAIL ||
               rc == WEFT_EDNS_TIMEOUT || rc == WEFT_EDNS_REFUSED || rc == WEFT_EDNS_BADRESP);
    return;
  }
  FUZZ_CHECK(l->res != NULL);
  bool mapped = l->hints.ai_family == AF_INET6 && (l->hints.ai_flags & AI_V4MAPPED);
  for (const struct addrinfo *ai = l->res; ai; ai = ai->ai_next) { /* D2 */
    FUZZ_CHECK(ai->ai_socktype == SOCK_STREAM && ai->ai_addr);
    if (l->hints.ai_family != AF_UNSPEC)
      FUZZ_CHECK(ai->ai_family == l->hints.ai_family);
    if (ai->ai_family == AF_INET) {
      const struct sockaddr_in *s = (const struct sockaddr_in *)ai->ai_addr;
      FUZZ_CHECK(ai->ai_addrlen == sizeof *s && s->sin_family == AF_INET && s->sin_port == 0);
      FUZZ_CHECK(sent(&s->sin_addr, 4));
    } else {
      FUZZ_CHECK(ai->ai_family == AF_INET6);
      const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ai->ai_addr;
      FUZZ_CHECK(ai->ai_addrlen == sizeof *s && s->sin6_family == AF_INET6 && s->sin6_port == 0);
      static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      const uint8_t *b = s->sin6_addr.s6_addr;
      FUZZ_CHECK(sent(b, 16) || (mapped && memcmp(b, v4mapped, 12) == 0 && sent(b + 12, 4)));
    }
    if (ai != l->res) /* D3 */
      FUZZ_CHECK(ai->ai_canonname == NULL);
  }
  if (!(l->hints.ai_flags & AI_CANONNAME))
    FUZZ_CHECK(l->res->ai_canonname == NULL);
  else if (l->res->ai_canonname)
    FUZZ_CHECK(strlen(l->res->ai_canonname) <= 4 * 255);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  size_t alen = (size_t)data[1] << 8 | data[2], rest = size - 3;
  if (alen > rest)
    alen = rest;
  size_t blen = rest - alen;
  if (alen > MAX_TEMPLATE || blen > MAX_TEMPLATE)
    return 0;
  pthread_mutex_lock(&cur.lock);
  cur.flags = data[0];
  memcpy(cur.a, data + 3, alen);
  cur.alen = alen;
  if (blen) {
    memcpy(cur.b, data + 3 + alen, blen);
    cur.blen = blen;
  } else {
    memcpy(cur.b, cur.a, alen);
    cur.blen = alen;
  }
  pthread_mutex_unlock(&cur.lock);

  static const int families[4] = {AF_INET, AF_INET6, AF_UNSPEC, AF_INET6};
  lookup l = {.hints = {.ai_family = families[(data[0] & F_FAMILY) >> 2],
                        .ai_socktype = SOCK_STREAM}};
  if ((data[0] & F_FAMILY) == F_FAMILY)
    l.hints.ai_flags |= AI_V4MAPPED | ((data[0] & F_ALL) ? AI_ALL : 0);
  if (data[0] & F_CANON)
    l.hints.ai_flags |= AI_CANONNAME;
  snprintf(l.name, sizeof l.name, "q%08x.fuzz.test", serial++);
  weft_co *co;
  FUZZ_CHECK(weft_runtime_spawn(rt, &co, lookup_main, &l) == 0);
  FUZZ_CHECK(weft_join(co, NULL) == 0);
  pthread_mutex_lock(&cur.lock); /* the server may still be answering a late query */
  check_result(&l);
  pthread_mutex_unlock(&cur.lock);
  weft_freeaddrinfo(l.res);
  return 0;
}
