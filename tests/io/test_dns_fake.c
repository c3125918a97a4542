/*
 * test_dns_fake.c - weft_resolve against a fake DNS server of our own: a
 * thread in the test process with a UDP socket on 127.0.0.1 and a TCP
 * socket on the same port. It parses each query's ID and question and
 * answers as the question's first label says ("servfail.fake.test" gets
 * RCODE 2, "ok-7.fake.test" gets 127.2.0.7, ...), so one server serves
 * every behaviour and many lookups at once each get their own.
 *
 * The runtime reads WEFT_DNS_SERVERS when its poller starts its c-ares
 * channel (the first lookup of each weft_run), so every case sets it
 * before weft_run. Each lookup is asked for AF_INET only: one A query on
 * the wire per lookup, so the server sees exactly what we count.
 *
 * What c-ares 1.18 does with each kind of answer, as asserted here:
 *  - SERVFAIL, NOTIMP and REFUSED are not answers to c-ares unless the
 *    channel has ARES_FLAG_NOCHECKRESP: it moves on to the next server,
 *    and with only one, resends to it `tries` (4) times and then ends the
 *    query with its initial error status, ARES_ECONNREFUSED, so SERVFAIL
 *    read "refused". dns.c now sets NOCHECKRESP when there is one server
 *    (servfail, refused); with several, failover stays (failover).
 *  - TC=1 over UDP makes it ask again over TCP (2-byte length prefix);
 *    a TCP server that refuses or hangs up ends the lookup with
 *    ARES_ECONNREFUSED (WEFT_EDNS_REFUSED) after its tries, promptly.
 *  - An answer whose ID matches no query, or whose question is not the
 *    query's, is dropped before anything else is read; so is a packet
 *    shorter than a header or whose question cannot be parsed. The
 *    lookup then waits for a good answer (or the caller's deadline).
 *  - An answer held back ("delay-N", N ms) but within c-ares's resend
 *    timeout is waited for; one past the caller's deadline ends the
 *    lookup at the deadline, and arrives harmlessly later (it is cached).
 *    No answer at all ("drop") and no deadline: c-ares's own timeout ends
 *    the lookup after its tries, WEFT_EDNS_TIMEOUT; a query dropped once
 *    ("droponce-N") is resent and answered.
 *  - Out of descriptors when c-ares needs its socket: -EMFILE at once;
 *    lookups work again when descriptors return.
 *  - A matching answer whose records run past the end (bad rdlength,
 *    cut mid-record, ANCOUNT larger than what is there) or whose name is
 *    a compression-pointer loop is ARES_EBADRESP / ARES_EBADNAME:
 *    WEFT_EDNS_BADRESP. An A record whose rdlength is not 4 but stays in
 *    the packet is skipped, so such an answer has no address:
 *    WEFT_EDNS_NOTFOUND.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "weft/io.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* ---- the fake server ------------------------------------------------------------- */

enum { TCP_SERVE, TCP_HANGUP, TCP_REFUSE };
enum { MAX_CONNS = 32, CONN_BUF = 4096 };

typedef struct conn {
  int fd;
  size_t len;
  uint8_t buf[CONN_BUF];
} conn;

/* A UDP answer held back ("delay-N"), sent when due. */
typedef struct pending {
  uint64_t due_ms;
  struct sockaddr_in to;
  socklen_t tolen;
  uint16_t n;
  uint8_t b[512];
} pending;

enum { MAX_PENDING = 64, MAX_SEEN = 64 };

typedef struct fake {
  int udp, tcp, wake[2];
  uint16_t port;
  int tcp_mode;
  bool backup; /* the second server of `failover` */
  pthread_t thread;
  conn conns[MAX_CONNS];
  pending pend[MAX_PENDING]; /* n == 0: a free slot (server thread only) */
  char seen[MAX_SEEN][64];   /* "droponce-N" labels already dropped once */
  unsigned dropped;          /* queries not answered on purpose (atomic) */
  /* counts, read by the test after the lookups (atomics: another thread) */
  unsigned udp_queries, tcp_queries, tcp_accepts;
} fake;

static fake srv, srv2;

static void bump(unsigned *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELEASE); }

/* A query's question: its ID, the first label, the dotted name and where
 * the question ends (it is copied into the answer as it came). */
typedef struct question {
  uint16_t id, qtype;
  char label[64], name[256];
  size_t end;
} question;

static bool parse_query(const uint8_t *q, size_t n, question *out) {
  if (n < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
    return false; /* not a query with one question */
  out->id = (uint16_t)(q[0] << 8 | q[1]);
  size_t off = 12, nl = 0;
  out->label[0] = out->name[0] = 0;
  while (off < n && q[off]) {
    size_t l = q[off];
    if (l > 63 || off + 1 + l > n || nl + l + 2 > sizeof out->name)
      return false;
    if (!out->label[0]) {
      memcpy(out->label, q + off + 1, l);
      out->label[l] = 0;
    }
    if (nl)
      out->name[nl++] = '.';
    memcpy(out->name + nl, q + off + 1, l);
    nl += l;
    out->name[nl] = 0;
    off += 1 + l;
  }
  if (off + 5 > n)
    return false;
  out->qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
  out->end = off + 5;
  return true;
}

/* The number after the first label's '-' ("ok-17" -> 17). */
static unsigned label_num(const question *qu) {
  const char *dash = strchr(qu->label, '-');
  return dash ? (unsigned)strtoul(dash + 1, NULL, 10) : 0;
}

static bool is(const question *qu, const char *prefix) {
  return strncmp(qu->label, prefix, strlen(prefix)) == 0;
}

/* An answer packet under construction. */
typedef struct pkt {
  uint8_t b[1024];
  size_t n;
} pkt;

static void put8(pkt *p, unsigned v) { p->b[p->n++] = (uint8_t)v; }
static void put16(pkt *p, unsigned v) {
  put8(p, v >> 8);
  put8(p, v & 0xff);
}
static void put32(pkt *p, uint32_t v) {
  put16(p, v >> 16);
  put16(p, v & 0xffff);
}

/* Header (QR, RD, RA, rcode, tc) and the query's question, verbatim. */
static void begin(pkt *p, const uint8_t *q, const question *qu, uint16_t id, unsigned rcode,
                  bool tc, unsigned ancount) {
  p->n = 0;
  put16(p, id);
  put8(p, 0x80 | (tc ? 0x02 : 0) | (q[2] & 0x01)); /* QR, TC, RD */
  put8(p, 0x80 | rcode);                           /* RA, RCODE */
  put16(p, 1);
  put16(p, ancount);
  put16(p, 0);
  put16(p, 0);
  memcpy(p->b + p->n, q + 12, qu->end - 12);
  p->n += qu->end - 12;
}

/* An A record for the question's name (a pointer to offset 12). */
static void put_a(pkt *p, uint32_t addr, uint32_t ttl) {
  put16(p, 0xc00c);
  put16(p, 1); /* A */
  put16(p, 1); /* IN */
  put32(p, ttl);
  put16(p, 4);
  put32(p, addr);
}

#define ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* The address a good answer to "<kind>-N" carries. */
static uint32_t ok_addr(unsigned top, unsigned n) { return ADDR(127, top, n >> 8, n & 255); }

typedef struct udp_ctx {
  int fd;
  struct sockaddr_in from;
  socklen_t fromlen;
} udp_ctx;

typedef void (*send_fn)(void *ctx, const pkt *p);

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* True the first time label is asked (server thread only). */
static bool drop_once(fake *f, const char *label) {
  for (int i = 0; i < MAX_SEEN; i++) {
    if (strcmp(f->seen[i], label) == 0)
      return false;
    if (!f->seen[i][0]) {
      snprintf(f->seen[i], sizeof f->seen[i], "%s", label);
      return true;
    }
  }
  CHECK(!"too many droponce names");
  return false;
}

/* Answer query q as its first label says; send each packet with send.
 * The backup server answers every name ("allfail" aside) with 127.9.x.y. */
static void udp_send(void *ctx, const pkt *p);

static void respond(fake *f, const uint8_t *q, size_t n, bool tcp, send_fn send,
                    void *ctx) {
  question qu;
  if (!parse_query(q, n, &qu))
    return;
  pkt p;
  if (qu.qtype != 1) { /* not A: no data (we only ask for A) */
    begin(&p, q, &qu, qu.id, 0, false, 0);
  } else if (is(&qu, "allfail")) {
    begin(&p, q, &qu, qu.id, 2, false, 0);
  } else if (f->backup) {
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ok_addr(9, label_num(&qu)), 30);
  } else if (is(&qu, "ok-")) {
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ok_addr(2, label_num(&qu)), 30);
  } else if (is(&qu, "droponce-")) { /* the first query dropped, a resend answered */
    if (drop_once(f, qu.label)) {
      bump(&f->dropped);
      return;
    }
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ok_addr(5, label_num(&qu)), 30);
  } else if (is(&qu, "drop")) { /* never answered */
    bump(&f->dropped);
    return;
  } else if (is(&qu, "delay-")) { /* answered after N ms (UDP) */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ok_addr(4, label_num(&qu) % 1000), 30);
    if (send == udp_send) {
      const udp_ctx *u = ctx;
      for (int i = 0; i < MAX_PENDING; i++)
        if (!f->pend[i].n) {
          /* + 1: mono_ms truncates, and the answer must not be early */
          f->pend[i] = (pending){.due_ms = mono_ms() + label_num(&qu) + 1, .to = u->from,
                                 .tolen = u->fromlen, .n = (uint16_t)p.n};
          memcpy(f->pend[i].b, p.b, p.n);
          return;
        }
      CHECK(!"too many delayed answers");
    }
  } else if (is(&qu, "servfail")) {
    begin(&p, q, &qu, qu.id, 2, false, 0);
  } else if (is(&qu, "nx")) {
    begin(&p, q, &qu, qu.id, 3, false, 0);
  } else if (is(&qu, "refused")) {
    begin(&p, q, &qu, qu.id, 5, false, 0);
  } else if (is(&qu, "notimp")) {
    begin(&p, q, &qu, qu.id, 4, false, 0);
  } else if (is(&qu, "tc")) { /* UDP: truncated, no records; TCP: the answer */
    begin(&p, q, &qu, qu.id, 0, !tcp, tcp ? 1 : 0);
    if (tcp)
      put_a(&p, ADDR(127, 0, 0, 77), 0);
  } else if (is(&qu, "wrongid-")) {
    /* First an answer to another ID, then one to this ID but another
     * question (the first label changed), each with a decoy address;
     * then the right one. */
    begin(&p, q, &qu, (uint16_t)(qu.id ^ 0x5a5a), 0, false, 1);
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    send(ctx, &p);
    begin(&p, q, &qu, qu.id, 0, false, 1);
    p.b[13] = 'x'; /* "xrongid-N...": another name ('W' would match) */
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    send(ctx, &p);
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ok_addr(3, label_num(&qu)), 30);
  } else if (is(&qu, "badlen")) { /* rdlength 200, 4 bytes there */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    p.b[p.n - 6] = 0;
    p.b[p.n - 5] = 200;
  } else if (is(&qu, "rdlen3")) { /* rdlength 3 for an A record, in bounds */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    p.b[p.n - 5] = 3;
    p.n--;
  } else if (is(&qu, "loop1")) { /* the record's name points at itself */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    size_t at = p.n;
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    p.b[at] = (uint8_t)(0xc0 | at >> 8);
    p.b[at + 1] = (uint8_t)(at & 0xff);
  } else if (is(&qu, "loop2")) { /* label "a", then a pointer back to it */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    size_t at = p.n;
    put8(&p, 1);
    put8(&p, 'a');
    put16(&p, 0xc000 | (unsigned)at);
    put16(&p, 1);
    put16(&p, 1);
    put32(&p, 30);
    put16(&p, 4);
    put32(&p, ADDR(127, 0, 0, 66));
  } else if (is(&qu, "cut")) { /* one good record, the second cut short */
    begin(&p, q, &qu, qu.id, 0, false, 2);
    put_a(&p, ADDR(127, 0, 0, 66), 30);
    put_a(&p, ADDR(127, 0, 0, 67), 30);
    p.n -= 8; /* mid-TTL */
  } else if (is(&qu, "ancount")) { /* claims 5 records, has none */
    begin(&p, q, &qu, qu.id, 0, false, 5);
  } else if (is(&qu, "short")) { /* not even a header */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    p.n = 8;
  } else if (is(&qu, "badq")) { /* the question's name runs off the end */
    begin(&p, q, &qu, qu.id, 0, false, 1);
    p.n = 12;
    put8(&p, 40);
    put8(&p, 'x');
  } else {
    begin(&p, q, &qu, qu.id, 3, false, 0);
  }
  send(ctx, &p);
}

static void udp_send(void *ctx, const pkt *p) {
  udp_ctx *u = ctx;
  sendto(u->fd, p->b, p->n, 0, (struct sockaddr *)&u->from, u->fromlen);
}

static void tcp_send(void *ctx, const pkt *p) {
  int fd = *(int *)ctx;
  uint8_t b[2 + sizeof p->b];
  b[0] = (uint8_t)(p->n >> 8);
  b[1] = (uint8_t)p->n;
  memcpy(b + 2, p->b, p->n);
  size_t off = 0;
  while (off < p->n + 2) { /* loopback, small: a blocking-ish loop is fine */
    ssize_t w = send(fd, b + off, p->n + 2 - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    off += (size_t)w;
  }
}

static void conn_close(conn *c) {
  close(c->fd);
  c->fd = -1;
  c->len = 0;
}

/* Whole length-prefixed queries in c's buffer: answer them. */
static void conn_read(fake *f, conn *c) {
  ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  if (r <= 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)r;
  for (;;) {
    if (c->len < 2)
      return;
    size_t n = (size_t)c->buf[0] << 8 | c->buf[1];
    if (c->len < 2 + n) {
      if (2 + n > sizeof c->buf)
        conn_close(c);
      return;
    }
    bump(&f->tcp_queries);
    respond(f, c->buf + 2, n, true, tcp_send, &c->fd);
    memmove(c->buf, c->buf + 2 + n, c->len - 2 - n);
    c->len -= 2 + n;
  }
}

static void *serve(void *arg) {
  fake *f = arg;
  for (;;) {
    struct pollfd pf[3 + MAX_CONNS];
    int np = 0;
    pf[np++] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
    pf[np++] = (struct pollfd){.fd = f->udp, .events = POLLIN};
    pf[np++] = (struct pollfd){.fd = f->tcp_mode == TCP_REFUSE ? -1 : f->tcp, .events = POLLIN};
    for (int i = 0; i < MAX_CONNS; i++)
      pf[np++] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
    int timeout = -1; /* until the next delayed answer is due */
    uint64_t now = mono_ms();
    for (int i = 0; i < MAX_PENDING; i++)
      if (f->pend[i].n) {
        int in = f->pend[i].due_ms > now ? (int)(f->pend[i].due_ms - now) : 0;
        timeout = timeout < 0 || in < timeout ? in : timeout;
      }
    int ready = poll(pf, (nfds_t)np, timeout);
    now = mono_ms();
    for (int i = 0; i < MAX_PENDING; i++)
      if (f->pend[i].n && f->pend[i].due_ms <= now) {
        sendto(f->udp, f->pend[i].b, f->pend[i].n, 0, (struct sockaddr *)&f->pend[i].to,
               f->pend[i].tolen);
        f->pend[i].n = 0;
      }
    if (ready <= 0)
      continue;
    if (pf[0].revents)
      break;
    if (pf[1].revents & POLLIN) {
      uint8_t q[2048];
      udp_ctx u = {.fd = f->udp, .fromlen = sizeof u.from};
      ssize_t r = recvfrom(f->udp, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&u.from,
                           &u.fromlen);
      if (r > 0) {
        bump(&f->udp_queries);
        respond(f, q, (size_t)r, false, udp_send, &u);
      }
    }
    if (pf[2].revents & POLLIN) {
      int fd = accept(f->tcp, NULL, NULL);
      if (fd >= 0) {
        bump(&f->tcp_accepts);
        int i = 0;
        while (i < MAX_CONNS && f->conns[i].fd >= 0)
          i++;
        if (f->tcp_mode == TCP_HANGUP || i == MAX_CONNS)
          close(fd);
        else
          f->conns[i] = (conn){.fd = fd};
      }
    }
    for (int i = 0; i < MAX_CONNS; i++)
      if (pf[3 + i].revents)
        conn_read(f, &f->conns[i]);
  }
  return NULL;
}

/* UDP on 127.0.0.1:0, then TCP on the port it got (another process may
 * hold that TCP port: then try a new one). TCP_REFUSE binds the TCP port
 * without listening: connections to it are refused, and nobody else can
 * take it meanwhile. */
static void fake_start(fake *f, int tcp_mode, bool backup) {
  *f = (fake){.tcp_mode = tcp_mode, .backup = backup};
  for (int i = 0; i < MAX_CONNS; i++)
    f->conns[i].fd = -1;
  for (int attempt = 0;; attempt++) {
    CHECK(attempt < 50);
    f->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(f->udp, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    CHECK_EQ(getsockname(f->udp, (struct sockaddr *)&a, &l), 0);
    int big = 1 << 20; /* many lookups at once: do not drop queries */
    setsockopt(f->udp, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    f->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(f->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(f->tcp, (struct sockaddr *)&a, sizeof a) == 0 &&
        (tcp_mode == TCP_REFUSE || listen(f->tcp, 64) == 0)) {
      f->port = ntohs(a.sin_port);
      break;
    }
    close(f->udp);
    close(f->tcp);
  }
  CHECK_EQ(pipe2(f->wake, O_CLOEXEC), 0);
  CHECK_EQ(pthread_create(&f->thread, NULL, serve, f), 0);
}

static void fake_stop(fake *f) {
  CHECK_EQ(write(f->wake[1], "x", 1), 1);
  CHECK_EQ(pthread_join(f->thread, NULL), 0);
  for (int i = 0; i < MAX_CONNS; i++)
    if (f->conns[i].fd >= 0)
      conn_close(&f->conns[i]);
  close(f->wake[0]);
  close(f->wake[1]);
  close(f->udp);
  close(f->tcp);
  fprintf(stderr, "fake server %u: %u UDP queries, %u TCP connections, %u TCP queries\n",
          f->port, f->udp_queries, f->tcp_accepts, f->tcp_queries);
}

/* ---- the lookups ------------------------------------------------------------------- */

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own fd */
}

static uint32_t first_v4(const struct addrinfo *ai) {
  for (; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET)
      return ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
  return 0;
}

/* Resolve name (A only) by deadline; *addr gets the first address. */
static int resolve_v4(const char *name, uint32_t *addr, uint64_t deadline_ns) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = weft_resolve_until(name, NULL, &hints, &res, deadline_ns);
  *addr = first_v4(res);
  if (rc == 0) {
    CHECK(res != NULL);
    CHECK(res->ai_next == NULL); /* one record, one socktype: one entry */
  } else {
    CHECK(res == NULL);
  }
  weft_freeaddrinfo(res);
  return rc;
}

/* Run body as the first coroutine against a fresh fake server, checking
 * that the runtime gives back every fd it took. The count is taken with
 * the server stopped: its end of a TCP connection closes when it sees
 * c-ares's end close, which may be after weft_run returned. */
static void run_case(int tcp_mode, void *(*body)(void *)) {
  int before = count_fds();
  fake_start(&srv, tcp_mode, false);
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", srv.port);
  setenv("WEFT_DNS_SERVERS", servers, 1);
  CHECK_EQ(weft_run(NULL, body, NULL, NULL), 0);
  fake_stop(&srv);
  int after = count_fds();
  fprintf(stderr, "fds before %d, after %d\n", before, after);
  CHECK_EQ(after, before);
}

/* A lookup that must end with `want` well before a generous deadline. */
static void expect_prompt(const char *name, int want) {
  uint64_t t0 = weft_now_ns();
  uint32_t addr;
  int rc = resolve_v4(name, &addr, t0 + 60 * SEC);
  uint64_t ms = (weft_now_ns() - t0) / MS;
  fprintf(stderr, "%s: %d (%s) after %llu ms\n", name, rc, weft_strerror(rc),
          (unsigned long long)ms);
  CHECK_EQ(rc, want);
  CHECK(ms < 30000); /* an answer, not the deadline */
}

/* ---- cases: RCODEs ------------------------------------------------------------------ */

static void check_strerror(int code, const char *word) {
  const char *s = weft_strerror(code);
  CHECK(s && strstr(s, "DNS") && strstr(s, word));
}

static void *servfail_main(void *arg) {
  (void)arg;
  expect_prompt("servfail.fake.test", WEFT_EDNS_SERVFAIL);
  /* NOTIMP: the server cannot do this question; a failure of the server */
  expect_prompt("notimp.fake.test", WEFT_EDNS_SERVFAIL);
  return NULL;
}

static void servfail(void) {
  run_case(TCP_SERVE, servfail_main);
  check_strerror(WEFT_EDNS_SERVFAIL, "server fail");
  CHECK(strcmp(weft_strerror(WEFT_EDNS_SERVFAIL), weft_strerror(WEFT_EDNS_REFUSED)) != 0);
  CHECK(strcmp(weft_strerror(WEFT_EDNS_SERVFAIL), weft_strerror(WEFT_EDNS_NOTFOUND)) != 0);
  /* one query per lookup: the answer ends it (c-ares's default would
   * resend to the only server `tries` times, then say ECONNREFUSED) */
  CHECK_EQ(srv.udp_queries, 2);
}

static void *refused_main(void *arg) {
  (void)arg;
  expect_prompt("refused.fake.test", WEFT_EDNS_REFUSED);
  return NULL;
}

static void refused(void) {
  run_case(TCP_SERVE, refused_main);
  check_strerror(WEFT_EDNS_REFUSED, "refused");
  CHECK_EQ(srv.udp_queries, 1);
}

static void *nxdomain_main(void *arg) {
  (void)arg;
  expect_prompt("nx.fake.test", WEFT_EDNS_NOTFOUND);
  return NULL;
}

static void nxdomain(void) {
  run_case(TCP_SERVE, nxdomain_main);
  check_strerror(WEFT_EDNS_NOTFOUND, "not found");
  /* c-ares may also try the name with resolv.conf's search domains (each
   * NXDOMAIN too): at least one query, nothing over TCP */
  CHECK(srv.udp_queries >= 1);
  CHECK_EQ(srv.tcp_queries, 0);
}

/* ---- cases: truncation and TCP ----------------------------------------------------- */

static void *truncated_main(void *arg) {
  (void)arg;
  uint32_t addr = 0;
  CHECK_EQ(resolve_v4("tc.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ADDR(127, 0, 0, 77)); /* only the TCP answer has an address */
  return NULL;
}

static void truncated(void) {
  run_case(TCP_SERVE, truncated_main);
  CHECK_EQ(srv.udp_queries, 1);
  CHECK_EQ(srv.tcp_accepts, 1);
  CHECK_EQ(srv.tcp_queries, 1);
}

/* TC over UDP, and TCP refused (bound, not listening) or hung up on
 * (accepted and closed): c-ares tries TCP `tries` times, then gives up
 * with ECONNREFUSED. It must be an error soon, not the deadline. */
static void *truncated_tcp_fails_main(void *arg) {
  (void)arg;
  expect_prompt("tc.fake.test", WEFT_EDNS_REFUSED);
  return NULL;
}

static void truncated_tcp_refused(void) {
  run_case(TCP_REFUSE, truncated_tcp_fails_main);
  CHECK_EQ(srv.udp_queries, 1);
  CHECK_EQ(srv.tcp_accepts, 0);
}

static void truncated_tcp_hangup(void) {
  run_case(TCP_HANGUP, truncated_tcp_fails_main);
  CHECK_EQ(srv.udp_queries, 1);
  CHECK(srv.tcp_accepts >= 1);
  CHECK_EQ(srv.tcp_queries, 0);
}

/* ---- cases: malformed answers ----------------------------------------------------- */

typedef struct malformed_case {
  const char *name;
  int want;
  bool at_deadline; /* dropped unread: the lookup ends at its deadline */
} malformed_case;

static const malformed_case malformed_cases[] = {
    {"badlen.fake.test", WEFT_EDNS_BADRESP, false},
    {"cut.fake.test", WEFT_EDNS_BADRESP, false},
    {"ancount.fake.test", WEFT_EDNS_BADRESP, false},
    {"loop1.fake.test", WEFT_EDNS_BADRESP, false},
    {"loop2.fake.test", WEFT_EDNS_BADRESP, false},
    {"rdlen3.fake.test", WEFT_EDNS_NOTFOUND, false},
    {"short.fake.test", WEFT_EDNS_TIMEOUT, true},
    {"badq.fake.test", WEFT_EDNS_TIMEOUT, true},
};
enum { NMALFORMED = sizeof malformed_cases / sizeof malformed_cases[0] };

static void *malformed_one(void *arg) {
  const malformed_case *m = arg;
  uint64_t t0 = weft_now_ns();
  /* Dropped answers: the deadline is under c-ares's own timeout (5 s
   * from the send, which is after t0), so it is the deadline that ends
   * the lookup. The others are answers: far from a generous deadline. */
  uint64_t deadline = t0 + (m->at_deadline ? 2 : 60) * SEC;
  uint32_t addr;
  int rc = resolve_v4(m->name, &addr, deadline);
  uint64_t end = weft_now_ns();
  fprintf(stderr, "%s: %d (%s) after %llu ms\n", m->name, rc, weft_strerror(rc),
          (unsigned long long)(end - t0) / MS);
  CHECK_EQ(rc, m->want);
  if (m->at_deadline)
    CHECK(end >= deadline);
  else
    CHECK(end - t0 < 30 * SEC);
  return NULL;
}

static void *malformed_main(void *arg) {
  (void)arg;
  weft_co *c[NMALFORMED];
  for (int i = 0; i < NMALFORMED; i++)
    CHECK_EQ(weft_spawn(&c[i], malformed_one, (void *)&malformed_cases[i]), 0);
  CHECK_EQ(weft_gather(c, NMALFORMED, NULL), 0);
  return NULL;
}

static void malformed(void) {
  run_case(TCP_SERVE, malformed_main);
  CHECK_EQ(srv.tcp_queries, 0);
}

/* ---- cases: wrong IDs, and many lookups at once ------------------------------ */

/* 200 lookups at once in mixed_many; 64 in wrong_id, where each query
 * gets three answers at once: more than a default socket buffer holds on
 * a busy machine, and a lost answer costs a c-ares timeout (5 s). */
enum { MANY = 200, WRONG_ID_N = 64 };
static unsigned ok_count;

static void *wrong_id_one(void *arg) {
  unsigned i = (unsigned)(uintptr_t)arg;
  char name[64];
  snprintf(name, sizeof name, "wrongid-%u.fake.test", i);
  uint32_t addr = 0;
  CHECK_EQ(resolve_v4(name, &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(3, i)); /* not the decoys' 127.0.0.66 */
  __atomic_fetch_add(&ok_count, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *wrong_id_main(void *arg) {
  (void)arg;
  weft_co *c[WRONG_ID_N];
  for (unsigned i = 0; i < WRONG_ID_N; i++)
    CHECK_EQ(weft_spawn(&c[i], wrong_id_one, (void *)(uintptr_t)i), 0);
  CHECK_EQ(weft_gather(c, WRONG_ID_N, NULL), 0);
  CHECK_EQ(ok_count, WRONG_ID_N);
  return NULL;
}

static void wrong_id(void) {
  run_case(TCP_SERVE, wrong_id_main);
  /* at least one query each (more if an answer was lost and c-ares
   * resent: fine, the decoys never end a lookup) */
  CHECK(srv.udp_queries >= WRONG_ID_N);
}

/* 200 lookups at once, each of its own kind: good answers (some only over
 * TCP), wrong IDs first, and every error the server can give. */
static void *mixed_one(void *arg) {
  unsigned i = (unsigned)(uintptr_t)arg;
  static const char *const kinds[] = {"ok", "wrongid", "tc", "nx", "servfail", "refused",
                                      "badlen", "rdlen3"};
  enum { NKINDS = sizeof kinds / sizeof kinds[0] };
  unsigned k = i % NKINDS;
  char name[64];
  snprintf(name, sizeof name, "%s-%u.fake.test", kinds[k], i);
  uint32_t addr = 0;
  int rc = resolve_v4(name, &addr, weft_now_ns() + 60 * SEC);
  switch (k) {
  case 0:
    CHECK_EQ(rc, 0);
    CHECK_EQ(addr, ok_addr(2, i));
    break;
  case 1:
    CHECK_EQ(rc, 0);
    CHECK_EQ(addr, ok_addr(3, i));
    break;
  case 2:
    CHECK_EQ(rc, 0);
    CHECK_EQ(addr, ADDR(127, 0, 0, 77));
    break;
  case 3:
  case 7:
    CHECK_EQ(rc, WEFT_EDNS_NOTFOUND);
    break;
  case 4:
    CHECK_EQ(rc, WEFT_EDNS_SERVFAIL);
    break;
  case 5:
    CHECK_EQ(rc, WEFT_EDNS_REFUSED);
    break;
  case 6:
    CHECK_EQ(rc, WEFT_EDNS_BADRESP);
    break;
  }
  __atomic_fetch_add(&ok_count, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *mixed_main(void *arg) {
  (void)arg;
  weft_co **c = calloc(MANY, sizeof *c);
  for (unsigned i = 0; i < MANY; i++)
    CHECK_EQ(weft_spawn(&c[i], mixed_one, (void *)(uintptr_t)i), 0);
  CHECK_EQ(weft_gather(c, MANY, NULL), 0);
  free(c);
  CHECK_EQ(ok_count, MANY);
  return NULL;
}

static void mixed_many(void) {
  run_case(TCP_SERVE, mixed_main);
  CHECK(srv.tcp_queries >= MANY / 8); /* every tc-N went over TCP */
}

/* ---- case: two servers -------------------------------------------------------- */

/* With two servers c-ares keeps its failover (dns.c passes SERVFAIL and
 * REFUSED through only for a single server): the first server's SERVFAIL
 * or REFUSED sends the lookup to the second, whose answer (127.9.x.y)
 * wins; NXDOMAIN is an answer and ends it. When every server fails,
 * c-ares 1.18 reports ECONNREFUSED, whatever they said: REFUSED. */
static void *failover_main(void *arg) {
  (void)arg;
  uint32_t addr = 0;
  CHECK_EQ(resolve_v4("ok-7.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(2, 7));
  CHECK_EQ(resolve_v4("servfail-5.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(9, 5));
  CHECK_EQ(resolve_v4("refused-6.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(9, 6));
  expect_prompt("nx-8.fake.test", WEFT_EDNS_NOTFOUND);
  expect_prompt("allfail.fake.test", WEFT_EDNS_REFUSED);
  return NULL;
}

static void failover(void) {
  int before = count_fds();
  fake_start(&srv, TCP_SERVE, false);
  fake_start(&srv2, TCP_SERVE, true);
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%u,127.0.0.1:%u", srv.port, srv2.port);
  setenv("WEFT_DNS_SERVERS", servers, 1);
  CHECK_EQ(weft_run(NULL, failover_main, NULL, NULL), 0);
  fake_stop(&srv);
  fake_stop(&srv2);
  CHECK_EQ(count_fds(), before);
  /* the second server saw the two failed-over lookups, and "allfail" */
  CHECK(srv2.udp_queries >= 3);
}

/* ---- cases: slow and silent servers -------------------------------------------- */

/* Answers held back ("delay-N": N ms), each well under c-ares's 5 s
 * resend timeout: every lookup waits for its answer and gets it, no
 * sooner than the delay. */
static const unsigned delays[] = {100, 300, 1000, 1500};
enum { NDELAYS = sizeof delays / sizeof delays[0] };

static void *delayed_one(void *arg) {
  unsigned ms = (unsigned)(uintptr_t)arg;
  char name[64];
  snprintf(name, sizeof name, "delay-%u.fake.test", ms);
  uint32_t addr = 0;
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(resolve_v4(name, &addr, t0 + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(4, ms % 1000));
  CHECK(weft_now_ns() - t0 >= (uint64_t)ms * MS);
  return NULL;
}

static void *delayed_main(void *arg) {
  (void)arg;
  weft_co *c[NDELAYS];
  for (int i = 0; i < NDELAYS; i++)
    CHECK_EQ(weft_spawn(&c[i], delayed_one, (void *)(uintptr_t)delays[i]), 0);
  CHECK_EQ(weft_gather(c, NDELAYS, NULL), 0);
  return NULL;
}

static void delayed_answer_succeeds(void) {
  run_case(TCP_SERVE, delayed_main);
  CHECK(srv.udp_queries >= NDELAYS);
  CHECK_EQ(srv.dropped, 0);
}

/* An answer later than the caller's deadline: WEFT_EDNS_TIMEOUT at the
 * deadline; the answer that arrives after the caller left is harmless
 * (LSan and the fd count check it), and the name then resolves. */
static void *late_main(void *arg) {
  (void)arg;
  uint32_t addr = 0;
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(resolve_v4("delay-1500.fake.test", &addr, t0 + 300 * MS), WEFT_EDNS_TIMEOUT);
  CHECK(weft_now_ns() - t0 >= 300 * MS);
  weft_sleep_ms(1600); /* the late answer comes in meanwhile */
  CHECK_EQ(resolve_v4("delay-1500.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(4, 500));
  return NULL;
}

static void late_answer_after_deadline_is_harmless(void) { run_case(TCP_SERVE, late_main); }

/* A server that never answers, and no caller deadline: c-ares's own
 * timeout ends the lookup with WEFT_EDNS_TIMEOUT after its tries
 * (RES_OPTIONS makes them 3, 500 ms apart at first, instead of 4 from
 * 5 s: 75 s). A query dropped once is resent and the resend answered. */
static void *dropped_main(void *arg) {
  (void)arg;
  uint32_t addr = 0;
  uint64_t t0 = weft_now_ns();
  int rc = resolve_v4("drop.fake.test", &addr, 0);
  fprintf(stderr, "drop: %d (%s) after %llu ms\n", rc, weft_strerror(rc),
          (unsigned long long)(weft_now_ns() - t0) / MS);
  CHECK_EQ(rc, WEFT_EDNS_TIMEOUT);
  CHECK(weft_now_ns() - t0 >= 500 * MS);
  CHECK_EQ(resolve_v4("droponce-7.fake.test", &addr, 0), 0);
  CHECK_EQ(addr, ok_addr(5, 7));
  return NULL;
}

static void dropped_query_times_out_by_cares_timeout(void) {
  setenv("RES_OPTIONS", "retrans:500 retry:3", 1);
  run_case(TCP_SERVE, dropped_main);
  unsetenv("RES_OPTIONS");
  /* drop: c-ares's 3 tries, each dropped; droponce: the first dropped,
   * then answered */
  CHECK_EQ(srv.dropped, 3 + 1);
  CHECK(srv.udp_queries >= 3 + 2);
}

/* ---- case: out of descriptors ------------------------------------------------- */

/* The process out of descriptors when c-ares needs its first socket: the
 * lookup fails at once with a clear code (not the deadline), nothing is
 * left half-made, and with descriptors back the next lookup works. */
static int emfile_rc;

static void *emfile_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_sleep_ns(1), 0); /* the poller is up */
  struct rlimit old, low;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  int lowest = 0;
  while (fcntl(lowest, F_GETFD) != -1)
    lowest++;
  low = (struct rlimit){(rlim_t)lowest, old.rlim_max};
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  uint32_t addr = 0;
  uint64_t t0 = weft_now_ns();
  emfile_rc = resolve_v4("ok-1.fake.test", &addr, t0 + 60 * SEC);
  uint64_t ms = (weft_now_ns() - t0) / MS;
  int again = resolve_v4("ok-2.fake.test", &addr, weft_now_ns() + 60 * SEC);
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  fprintf(stderr, "out of descriptors: %d (%s) after %llu ms, then %d\n", emfile_rc,
          weft_strerror(emfile_rc), (unsigned long long)ms, again);
  CHECK(emfile_rc < 0 && emfile_rc != WEFT_EDNS_TIMEOUT);
  CHECK(ms < 30000);
  CHECK(again < 0 && again != WEFT_EDNS_TIMEOUT);
  /* Descriptors are back: lookups work. */
  CHECK_EQ(resolve_v4("ok-3.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(2, 3));
  CHECK_EQ(resolve_v4("ok-1.fake.test", &addr, weft_now_ns() + 60 * SEC), 0);
  CHECK_EQ(addr, ok_addr(2, 1));
  return NULL;
}

static void emfile_lookup_fails_then_recovers(void) { run_case(TCP_SERVE, emfile_main); }

static const test_case cases[] = {
    {"servfail", servfail},
    {"refused", refused},
    {"nxdomain", nxdomain},
    {"truncated", truncated},
    {"truncated_tcp_refused", truncated_tcp_refused},
    {"truncated_tcp_hangup", truncated_tcp_hangup},
    {"malformed", malformed},
    {"wrong_id", wrong_id},
    {"mixed_many", mixed_many},
    {"failover", failover},
    {"delayed_answer_succeeds", delayed_answer_succeeds},
    {"late_answer_after_deadline_is_harmless", late_answer_after_deadline_is_harmless},
    {"dropped_query_times_out_by_cares_timeout", dropped_query_times_out_by_cares_timeout},
    {"emfile_lookup_fails_then_recovers", emfile_lookup_fails_then_recovers},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
