/*
 * dns.c - weft_resolve through c-ares, driven by the poller thread.
 *
 * c-ares 1.18's channel is not thread-safe, so only the poller thread
 * touches it (DESIGN.md): coroutines queue requests and park; the poller
 * starts them, keeps c-ares's sockets in its epoll (level-triggered, as
 * the socket-state callback asks) and its timeout in its wait, and hands
 * each answer back with an unpark. A lookup starts no thread.
 *
 * Request life (the offload pool's O1-O4, with the poller as the pool):
 *   D1. the caller opens its wait, queues the request, pokes the poller,
 *       parks (with its deadline, if any);
 *   D2. the poller answers it from /etc/hosts or the cache, merges it into
 *       the same question on the wire, or starts it while the queries in
 *       flight stay within MAX_QUERIES (below);
 *   D3. the answer callback, on the poller, CASes state WAITING -> DONE;
 *       on success it claims the caller's wait by generation, collects it
 *       for the batch unpark and sets `released`; if the caller already
 *       left (CANCELLED), it frees the request and the answer;
 *   D4. a caller woken by a cancel or its deadline CASes WAITING ->
 *       CANCELLED; if that finds DONE it waits for `released` and frees.
 * Servers: /etc/resolv.conf, unless WEFT_DNS_SERVERS ("127.0.0.1:5353,
 * 10.0.0.1") says otherwise. Errors are WEFT_EDNS_* codes, one per cause
 * (with one server, c-ares is told to pass SERVFAIL and REFUSED answers
 * through: see channel_init).
 *
 * What weft does itself, and what it leaves to c-ares. c-ares 1.18 is
 * asked for one thing only: the A and/or AAAA records of a name, from
 * the servers (lookups "b", no service, ARES_AI_NOSORT). The rest is here,
 * because c-ares's way costs more than the DNS round trip on loopback, or
 * differs from getaddrinfo (the dns benchmark, 2 CPUs, 512 coroutines: 6.7k
 * lookups/s with c-ares doing it all, 61-68k now; glibc on 64 threads
 * 28-33k):
 *  - The service, in the caller: digits are the port ("" is 0, as in
 *    glibc); a name is looked up (getservbyname_r, "udp" for SOCK_DGRAM,
 *    else "tcp", then "udp" for socktype 0) on the poller, as c-ares did;
 *    c-ares's own lookup of even "80" went through NSS on every call.
 *  - No host (bind or connect to this machine) and address literals
 *    (inet_pton's forms) are answered in the caller, with no poller trip.
 *  - /etc/hosts ($WEFT_HOSTS_FILE instead, for tests) is parsed once into
 *    a table of names (case-insensitive) and their addresses, in file
 *    order, and answered from on the poller before the cache or c-ares;
 *    c-ares ("fb") re-read the whole file for every lookup. The table is
 *    re-read when the file's mtime, size or inode changes, which the
 *    poller checks (stat) at most once a second: an edit shows within a
 *    second. A name the file does not have for the family asked goes to
 *    the servers, as with c-ares and glibc, except "localhost", which is
 *    never asked of a server (RFC 6761 6.3, as c-ares does): without a
 *    line for the family it is 127.0.0.1 and/or ::1.
 *  - Order. c-ares 1.18 sorts answers (RFC 6724) at the cost of a socket,
 *    a connect, a getsockname and a close per address, even for one
 *    address; weft does not sort. An AF_UNSPEC answer lists the IPv4
 *    addresses, then the IPv6 ones, each family in the order the server
 *    (or the hosts file) gave: IPv4 first works on the most hosts, and
 *    ask AF_INET6 (or sort) to prefer IPv6.
 *  - hints->ai_flags are getaddrinfo's AI_* flags, whose bits differ from
 *    c-ares's ARES_AI_* (AI_V4MAPPED is ARES_AI_NUMERICSERV's bit), so
 *    each is translated by what it means: AI_PASSIVE (no host: 0.0.0.0
 *    and :: instead of the loopback), AI_NUMERICHOST (no lookup:
 *    WEFT_EDNS_NOTFOUND unless a literal), AI_NUMERICSERV (-EINVAL unless
 *    digits), AI_CANONNAME (ai_canonname on the first entry: the end of
 *    the server's CNAME chain, the hosts line's first name, or the
 *    literal; -EINVAL without a host), AI_V4MAPPED and AI_ALL (with
 *    AF_INET6 only, as in glibc: both records are asked, and IPv4 answers
 *    come as ::ffff:a.b.c.d when there is no IPv6 one, or after them with
 *    AI_ALL), AI_ADDRCONFIG (accepted and ignored: c-ares 1.18 has no
 *    such check, and both families are asked). Any other bit is -EINVAL,
 *    as is a family other than AF_UNSPEC, AF_INET and AF_INET6.
 *
 * On the poller, before a request goes on the wire: a small cache (512
 * slots, keyed by the name and the family asked of c-ares) answers it if
 * a previous answer's TTL (the least of its records') has not run out,
 * and an identical question already on the wire takes it along (merged).
 * Both hold the addresses alone: each request gets its own list, with
 * its port, socktype, protocol and flags. Only the poller thread touches
 * the cache, the hosts table and the lookups.
 *
 * MAX_QUERIES: at most 128 queries (an AF_UNSPEC lookup is 2: A and AAAA)
 * are on the wire at once; more wait in the queue. Past that a server's
 * UDP receive buffer overflows, and each query lost costs c-ares's retry
 * timeout (5 s). Measured with the dns benchmark (512 coroutines, 30k
 * lookups, dnsmasq with the default 208 KiB buffer): 128 queries on the
 * wire, no drop and ~49k lookups/s; 256, ~120 queries dropped and 5.5k/s;
 * 512, ~680 and 2k/s. The drops were at dnsmasq's socket; c-ares's own gets
 * 1 MiB (RCVBUF; the kernel caps it at net.core.rmem_max), room for the
 * answers to every query in flight many times over should the poller be
 * late (with the default, it dropped a few at 256).
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "probe.h"
#include "weft/io.h"

#define MAX_QUERIES 128
#define RCVBUF (1 << 20)
#define HOSTS_CHECK_NS 1000000000ull
#define KNOWN_FLAGS                                                                                \
  (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL |          \
   AI_ADDRCONFIG)
enum { REQ_WAITING = 0, REQ_DONE = 1, REQ_CANCELLED = 2 };

/* One address of an answer, before it is shaped for a caller. */
typedef struct addr {
  int family;              /* AF_INET or AF_INET6 */
  unsigned char bytes[16]; /* 4 or 16 of them */
} addr;

/* What a caller asked for, besides the host. */
typedef struct want {
  int family, socktype, protocol, flags; /* flags: AI_* as the caller gave them */
  uint16_t port;
} want;

typedef struct dns_req {
  char *host;
  char *service; /* a service name still to look up (poller), or NULL */
  want want;
  weft_co *co;
  uint32_t gen;
  uint32_t state, released;
  int rc;               /* the answer: 0 or a code ... */
  struct addrinfo *res; /* ... and the caller's own list of addresses */
  struct dns_req *next;
} dns_req;

/* One question on the wire, with every request that asked it (merged). */
typedef struct lookup {
  char *key;
  dns_req *reqs;
  struct weft__dns *d;
  unsigned queries; /* on the wire for it: 2 for AF_UNSPEC, else 1 */
  struct lookup *next;
} lookup;

#define CACHE_SLOTS 512
typedef struct cache_ent {
  char *key;
  addr *addrs;
  size_t n;
  char *canon;
  uint64_t expires_ns;
} cache_ent;

/* /etc/hosts, parsed: an open-addressed table of names. The strings
 * point into buf, the file's text cut up in place. */
typedef struct hosts_name {
  const char *name;  /* as written; matched case-insensitively */
  const char *canon; /* the first name of the first line naming it */
  addr *addrs;       /* every address given for it, in file order */
  size_t n, cap;
} hosts_name;

typedef struct weft__hosts {
  char *path; /* $WEFT_HOSTS_FILE or /etc/hosts, once read */
  char *buf;
  hosts_name *slots;
  size_t mask; /* slots - 1; slots is NULL when the file is empty */
  bool loaded, present;
  bool nomem;          /* the last load ran out of memory: retried next time */
  struct stat st;      /* the file's, when last read */
  uint64_t checked_ns; /* when st was last compared */
} hosts;

struct weft__dns {
  weft__poller_io *io;
  ares_channel channel;
  bool ready; /* channel initialised (on the poller thread) */
  int init_status;
  uint32_t lock; /* the submit queue */
  dns_req *head, *tail;
  unsigned inflight; /* queries on the wire (poller only) */
  /* weft_stats: written by the poller only, read by any thread (relaxed) */
  uint64_t st_lookups, st_hits, st_queries, st_failures, st_inflight;
  lookup *lookups;   /* their lookups, for merging (poller only) */
  cache_ent cache[CACHE_SLOTS]; /* answers until their TTL (poller only) */
  hosts hosts;                  /* (poller only) */
  /* the batch of callers to wake after a round of ares_process_fd */
  weft_co *wake[64];
  int wake_res[64];
  size_t nwake;
};

static int map_status(int s) {
  switch (s) {
  case ARES_SUCCESS:
    return 0;
  case ARES_ENOTFOUND:
  case ARES_ENODATA:
  case ARES_ENONAME:
    return WEFT_EDNS_NOTFOUND;
  case ARES_ESERVFAIL:
  case ARES_ENOTIMP: /* the server cannot answer this kind of question */
    return WEFT_EDNS_SERVFAIL;
  case ARES_ETIMEOUT:
    return WEFT_EDNS_TIMEOUT;
  case ARES_ECONNREFUSED:
  case ARES_EREFUSED:
    return WEFT_EDNS_REFUSED;
  case ARES_EBADRESP:
  case ARES_EFORMERR:
  case ARES_EBADNAME:
    return WEFT_EDNS_BADRESP;
  case ARES_ENOMEM:
    return -ENOMEM;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return -ECANCELED;
  case ARES_EBADFAMILY:
  case ARES_EBADFLAGS:
  case ARES_ESERVICE:
    return -EINVAL;
  default:
    return WEFT_EDNS_BADRESP;
  }
}

/* ---- addrinfo lists: one allocation per entry (record, address, name) ------------ */

static struct addrinfo *node_new(size_t addrlen, const char *canon) {
  size_t clen = canon ? strlen(canon) + 1 : 0;
  struct addrinfo *ai = calloc(1, sizeof *ai + addrlen + clen);
  if (!ai)
    return NULL;
  ai->ai_addrlen = (socklen_t)addrlen;
  ai->ai_addr = (struct sockaddr *)(ai + 1);
  if (canon) {
    ai->ai_canonname = (char *)(ai + 1) + addrlen;
    memcpy(ai->ai_canonname, canon, clen);
  }
  return ai;
}

/* Append the addresses of `family` in a[0..n) to *tail, shaped as w asks;
 * `mapped`: IPv4 ones as IPv4-mapped IPv6. The first entry made takes
 * *canon (then NULL). */
static int emit(const want *w, const addr *a, size_t n, int family, bool mapped,
                struct addrinfo ***tail, const char **canon) {
  for (size_t i = 0; i < n; i++) {
    if (a[i].family != family)
      continue;
    bool v6 = family == AF_INET6 || mapped;
    struct addrinfo *ai =
        node_new(v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), *canon);
    if (!ai)
      return -ENOMEM;
    *canon = NULL;
    ai->ai_flags = w->flags;
    ai->ai_family = v6 ? AF_INET6 : AF_INET;
    ai->ai_socktype = w->socktype;
    ai->ai_protocol = w->protocol;
    if (v6) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;
      s->sin6_family = AF_INET6;
      s->sin6_port = htons(w->port);
      if (mapped) {
        s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&s->sin6_addr.s6_addr[12], a[i].bytes, 4);
      } else {
        memcpy(&s->sin6_addr, a[i].bytes, 16);
      }
    } else {
      struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;
      s->sin_family = AF_INET;
      s->sin_port = htons(w->port);
      memcpy(&s->sin_addr, a[i].bytes, 4);
    }
    **tail = ai;
    *tail = &ai->ai_next;
  }
  return 0;
}

/* The caller's list from an answer's addresses (see "Order" and the
 * flags above): 0 with *out set, WEFT_EDNS_NOTFOUND if none is of the
 * family asked, or -ENOMEM. */
static int build(const want *w, const addr *a, size_t n, const char *canon,
                 struct addrinfo **out) {
  struct addrinfo *head = NULL, **tail = &head;
  const char *cn = (w->flags & AI_CANONNAME) ? canon : NULL;
  int rc = 0;
  if (w->family == AF_INET6 && (w->flags & AI_V4MAPPED)) {
    size_t n6 = 0;
    for (size_t i = 0; i < n; i++)
      n6 += a[i].family == AF_INET6;
    rc = emit(w, a, n, AF_INET6, false, &tail, &cn);
    if (!rc && (n6 == 0 || (w->flags & AI_ALL)))
      rc = emit(w, a, n, AF_INET, true, &tail, &cn);
  } else {
    if (w->family != AF_INET6)
      rc = emit(w, a, n, AF_INET, false, &tail, &cn);
    if (!rc && w->family != AF_INET)
      rc = emit(w, a, n, AF_INET6, false, &tail, &cn);
  }
  if (!rc && !head)
    rc = WEFT_EDNS_NOTFOUND;
  if (rc) {
    weft_freeaddrinfo(head);
    head = NULL;
  }
  *out = head;
  return rc;
}

/* No host (the loopback, or with AI_PASSIVE the wildcard), an address
 * literal, or AI_NUMERICHOST with neither: answered without a lookup.
 * False if host is a name to look up. */
static bool local_answer(const want *w, const char *host, struct addrinfo **res, int *rc) {
  addr a[2] = {{AF_INET, {0}}, {AF_INET6, {0}}};
  size_t n = 1;
  const char *canon = host;
  if (!host) {
    if (!(w->flags & AI_PASSIVE)) {
      memcpy(a[0].bytes, (unsigned char[]){127, 0, 0, 1}, 4);
      a[1].bytes[15] = 1;
    }
    n = 2;
  } else if (inet_pton(AF_INET, host, a[0].bytes) != 1) {
    if (inet_pton(AF_INET6, host, a[0].bytes) == 1) {
      a[0].family = AF_INET6;
    } else if (!*host || (w->flags & AI_NUMERICHOST)) {
      *res = NULL;
      *rc = WEFT_EDNS_NOTFOUND;
      return true;
    } else {
      return false; /* a name */
    }
  }
  *rc = build(w, a, n, canon, res);
  return true;
}

/* The port of a service: digits (up to 65535), "" or NULL (0). *named
 * is set for anything else, a name to look up with service_lookup
 * (-EINVAL with AI_NUMERICSERV). */
static int service_port(const char *s, int flags, uint16_t *port, bool *named) {
  *port = 0;
  *named = false;
  if (!s || !*s)
    return 0;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (end != s && *end == 0) {
    if (errno || v > 65535)
      return -EINVAL;
    *port = (uint16_t)v;
    return 0;
  }
  if (flags & AI_NUMERICSERV)
    return -EINVAL;
  *named = true;
  return 0;
}

/* A service name through NSS (/etc/services), on the poller. */
static int service_lookup(const char *s, int socktype, uint16_t *port) {
  struct servent se, *sp = NULL;
  char buf[2048];
  const char *proto = socktype == SOCK_DGRAM ? "udp" : "tcp";
  if (getservbyname_r(s, proto, &se, buf, sizeof buf, &sp) != 0)
    sp = NULL;
  if (!sp && socktype == 0 && getservbyname_r(s, "udp", &se, buf, sizeof buf, &sp) != 0)
    sp = NULL;
  if (!sp)
    return -EINVAL;
  *port = ntohs((uint16_t)sp->s_port);
  return 0;
}

static void req_free(dns_req *r) {
  weft_freeaddrinfo(r->res);
  free(r->host);
  free(r->service);
  weft__free(r, sizeof *r);
}

static void flush_wakes(weft__dns *d) {
  if (d->nwake)
    weft__unpark_batch(d->io->rt, d->wake, d->wake_res, d->nwake);
  d->nwake = 0;
}

/* D3 for one request: hand it rc and res (which it then owns). */
static void deliver(weft__dns *d, dns_req *r, int rc, struct addrinfo *res) {
  weft__stat_inc(&d->st_lookups);
  if (rc)
    weft__stat_inc(&d->st_failures);
  r->rc = rc;
  r->res = res;
  uint32_t s = REQ_WAITING;
  if (weft__cas_ar(&r->state, &s, REQ_DONE)) {
    weft_co *co = r->co;
    if (weft__wait_claim_gen(co, r->gen)) {
      if (d->nwake == 64)
        flush_wakes(d);
      d->wake[d->nwake] = co;
      d->wake_res[d->nwake++] = 0;
    }
    weft__st_rel(&r->released, 1);
  } else { /* the caller left: nobody else will free it */
    req_free(r);
  }
}

/* ---- /etc/hosts ----------------------------------------------------------------- */

static size_t name_hash(const char *k) {
  size_t h = 2166136261u; /* FNV-1a, case-folded */
  for (; *k; k++) {
    unsigned char c = (unsigned char)*k;
    h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32u : c)) * 16777619u;
  }
  return h;
}

static void hosts_clear(hosts *h) {
  for (size_t i = 0; h->slots && i <= h->mask; i++)
    free(h->slots[i].addrs);
  free(h->slots);
  free(h->buf);
  h->slots = NULL;
  h->buf = NULL;
  h->mask = 0;
}

static hosts_name *hosts_find(const hosts *h, const char *name) {
  if (!h->slots)
    return NULL;
  for (size_t i = name_hash(name) & h->mask;; i = (i + 1) & h->mask) {
    hosts_name *e = &h->slots[i];
    if (!e->name || strcasecmp(e->name, name) == 0)
      return e->name ? e : NULL;
  }
}

static const char WS[] = " \t\r\f\v";

/* The file's text (NUL-terminated, ours) into the table. A line is an
 * address and its names; '#' starts a comment; a line whose address
 * inet_pton does not take is skipped. */
/* False if memory ran out (the table is then partial). */
static bool hosts_parse(hosts *h, char *text) {
  bool complete = true;
  size_t names = 0; /* first pass: an upper bound on the names */
  for (char *p = text; *p;) {
    p += strspn(p, WS);
    size_t t = strcspn(p, " \t\r\f\v\n");
    names += t > 0;
    p += t;
    if (*p == '\n')
      p++;
  }
  size_t slots = 16;
  while (slots < 2 * names)
    slots *= 2;
  h->slots = calloc(slots, sizeof *h->slots);
  if (!h->slots)
    return false;
  h->mask = slots - 1;
  h->buf = text;
  for (char *line = text, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = 0;
    line[strcspn(line, "#")] = 0;
    char *save, *tok = strtok_r(line, WS, &save);
    addr a = {AF_INET, {0}};
    if (!tok)
      continue;
    if (inet_pton(AF_INET, tok, a.bytes) != 1) {
      if (inet_pton(AF_INET6, tok, a.bytes) != 1)
        continue;
      a.family = AF_INET6;
    }
    const char *canon = NULL;
    while ((tok = strtok_r(NULL, WS, &save))) {
      if (!canon)
        canon = tok;
      size_t i = name_hash(tok) & h->mask;
      while (h->slots[i].name && strcasecmp(h->slots[i].name, tok) != 0)
        i = (i + 1) & h->mask;
      hosts_name *e = &h->slots[i];
      if (!e->name)
        *e = (hosts_name){.name = tok, .canon = canon};
      if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 2;
        addr *m = realloc(e->addrs, cap * sizeof *m);
        if (!m) {
          complete = false;
          continue;
        }
        e->addrs = m;
        e->cap = cap;
      }
      e->addrs[e->n++] = a;
    }
  }
  return complete;
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Read the file again if it changed; look at most once a second. */
static void hosts_refresh(hosts *h) {
  uint64_t now = weft__now_ns();
  if (h->loaded && now - h->checked_ns < HOSTS_CHECK_NS)
    return;
  h->checked_ns = now;
  h->nomem = false;
  if (!h->path) {
    const char *env = getenv("WEFT_HOSTS_FILE");
    h->path = strdup(env && *env ? env : "/etc/hosts");
    if (!h->path) {
      h->nomem = true;
      return;
    }
  }
  struct stat st;
  bool present = stat(h->path, &st) == 0;
  if (h->loaded && present == h->present && (!present || same_file(&st, &h->st)))
    return;
  hosts_clear(h);
  h->loaded = true;
  h->present = present;
  if (!present)
    return; /* no file: every name goes to the servers */
  h->st = st; /* before reading: a change after this stat is seen next time */
  int fd = open(h->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  size_t cap = (size_t)st.st_size + 1, len = 0;
  char *text = malloc(cap);
  for (ssize_t r; text; len += (size_t)r) {
    if (len + 1 == cap) { /* it grew since the stat */
      char *m = realloc(text, cap *= 2);
      if (!m) {
        free(text);
        text = NULL;
        break;
      }
      text = m;
    }
    r = read(fd, text + len, cap - 1 - len);
    if (r < 0 && errno == EINTR)
      r = 0;
    else if (r <= 0)
      break;
  }
  close(fd);
  if (text) {
    text[len] = 0;
    bool complete = hosts_parse(h, text);
    if (!h->slots)
      free(text);
    if (complete)
      return;
    hosts_clear(h);
  }
  /* Out of memory: answer this lookup so, not from half a table, and read
   * the file again at the next lookup. */
  h->nomem = true;
  h->loaded = false;
}

/* From the hosts table, or "localhost" (RFC 6761 6.3, as c-ares does: never
 * asked of a server). False if the servers are to be asked. */
static bool hosts_answer(weft__dns *d, const dns_req *r, struct addrinfo **res, int *rc) {
  hosts_refresh(&d->hosts);
  if (d->hosts.nomem) {
    *rc = -ENOMEM;
    return true;
  }
  const hosts_name *e = hosts_find(&d->hosts, r->host);
  if (e && (*rc = build(&r->want, e->addrs, e->n, e->canon, res)) != WEFT_EDNS_NOTFOUND)
    return true;
  if (strcasecmp(r->host, "localhost") != 0)
    return false;
  static const addr lo[2] = {{AF_INET, {127, 0, 0, 1}},
                             {AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};
  *rc = build(&r->want, lo, 2, "localhost", res);
  return true;
}

/* The parser on its own, for tests/fuzz: a table from text (which it
 * then owns), and answers from it as hosts_answer gives them. */
weft__hosts *weft__hosts_load(char *text) {
  weft__hosts *h = calloc(1, sizeof *h);
  if (!h) {
    free(text);
    return NULL;
  }
  hosts_parse(h, text);
  if (!h->slots)
    free(text);
  return h;
}

int weft__hosts_lookup(const weft__hosts *h, const char *host, const struct addrinfo *hints,
                       struct addrinfo **res) {
  want w = {.family = AF_UNSPEC};
  if (hints)
    w = (want){hints->ai_family, hints->ai_socktype, hints->ai_protocol, hints->ai_flags, 0};
  *res = NULL;
  const hosts_name *e = hosts_find(h, host);
  return e ? build(&w, e->addrs, e->n, e->canon, res) : WEFT_EDNS_NOTFOUND;
}

void weft__hosts_free(weft__hosts *h) {
  if (h)
    hosts_clear(h);
  free(h);
}

/* ---- the cache of answers ------------------------------------------------------------ */

static unsigned key_hash(const char *k) { return (unsigned)(name_hash(k) % CACHE_SLOTS); }

static void cache_free(cache_ent *e) {
  free(e->key);
  free(e->addrs);
  free(e->canon);
  *e = (cache_ent){0};
}

/* Keep an answer (its addrs and canon, which the cache then owns) for
 * ttl_s seconds; frees them if not kept. */
static void cache_put(weft__dns *d, const char *key, addr *addrs, size_t n, char *canon,
                      int ttl_s) {
  char *k = ttl_s > 0 ? strdup(key) : NULL;
  if (!k) {
    free(addrs);
    free(canon);
    return;
  }
  cache_ent *e = &d->cache[key_hash(key)]; /* a collision evicts */
  cache_free(e);
  *e = (cache_ent){k, addrs, n, canon, weft__now_ns() + (uint64_t)ttl_s * 1000000000u};
}

static const cache_ent *cache_get(weft__dns *d, const char *key) {
  const cache_ent *e = &d->cache[key_hash(key)];
  if (!e->key || strcmp(e->key, key) != 0 || weft__now_ns() >= e->expires_ns)
    return NULL;
  return e;
}

/* ---- c-ares ------------------------------------------------------------------------ */

/* What the servers are asked: AF_INET6 with AI_V4MAPPED needs the A
 * records too. */
static int ask_family(const want *w) {
  return w->family == AF_INET6 && (w->flags & AI_V4MAPPED) ? AF_UNSPEC : w->family;
}

/* c-ares's answer as addresses, the least TTL, and the canonical name:
 * the end of the CNAME chain from the name asked. */
static int from_ares(const struct ares_addrinfo *ai, addr **out, size_t *nout, char **canon,
                     int *min_ttl) {
  size_t n = 0;
  for (const struct ares_addrinfo_node *p = ai->nodes; p; p = p->ai_next)
    n++;
  addr *a = n ? malloc(n * sizeof *a) : NULL;
  if (n && !a)
    return -ENOMEM;
  n = 0;
  *min_ttl = 0;
  for (const struct ares_addrinfo_node *p = ai->nodes; p; p = p->ai_next) {
    if (p->ai_family == AF_INET && p->ai_addrlen >= sizeof(struct sockaddr_in)) {
      a[n].family = AF_INET;
      memcpy(a[n].bytes, &((const struct sockaddr_in *)p->ai_addr)->sin_addr, 4);
    } else if (p->ai_family == AF_INET6 && p->ai_addrlen >= sizeof(struct sockaddr_in6)) {
      a[n].family = AF_INET6;
      memcpy(a[n].bytes, &((const struct sockaddr_in6 *)p->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    if (n == 0 || p->ai_ttl < *min_ttl)
      *min_ttl = p->ai_ttl;
    n++;
  }
  if (n == 0) {
    free(a);
    return WEFT_EDNS_NOTFOUND;
  }
  const char *name = ai->name;
  for (int hops = 0; name && hops < 16; hops++) { /* a loop ends here */
    const struct ares_addrinfo_cname *c = ai->cnames;
    while (c && !(c->alias && c->name && strcasecmp(c->alias, name) == 0))
      c = c->next;
    if (!c)
      break;
    if (c->ttl < *min_ttl)
      *min_ttl = c->ttl;
    name = c->name;
  }
  *canon = name ? strdup(name) : NULL; /* without it, no ai_canonname */
  *out = a;
  *nout = n;
  return 0;
}

/* The answer to a lookup: every merged request gets its own list, and
 * the addresses go to the cache. */
static void answered(void *arg, int status, int timeouts, struct ares_addrinfo *answer) {
  (void)timeouts;
  lookup *l = arg;
  weft__dns *d = l->d;
  d->inflight -= l->queries;
  weft__stat_set(&d->st_inflight, d->inflight);
  for (lookup **p = &d->lookups; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      break;
    }
  int rc = map_status(status), ttl = 0;
  addr *addrs = NULL;
  size_t n = 0;
  char *canon = NULL;
  if (rc == 0)
    rc = answer ? from_ares(answer, &addrs, &n, &canon, &ttl) : WEFT_EDNS_NOTFOUND;
  if (answer)
    ares_freeaddrinfo(answer);
  WEFT_PROBE2(dns_done, strchr(l->key, '|') + 1, rc);
  dns_req *r = l->reqs;
  while (r) {
    dns_req *next = r->next;
    struct addrinfo *res = NULL;
    int err = rc ? rc : build(&r->want, addrs, n, canon, &res);
    deliver(d, r, err, res);
    r = next;
  }
  if (rc == 0)
    cache_put(d, l->key, addrs, n, canon, ttl);
  free(l->key);
  weft__free(l, sizeof *l);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  weft__dns *d = data;
  struct epoll_event ev = {.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0),
                           .data.u64 = WEFT__DNS_TAG | (uint64_t)(uint32_t)fd};
  if (!readable && !writable) {
    epoll_ctl(d->io->epfd, EPOLL_CTL_DEL, fd, NULL);
    return;
  }
  if (epoll_ctl(d->io->epfd, EPOLL_CTL_MOD, fd, &ev) && errno == ENOENT)
    epoll_ctl(d->io->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int channel_open(weft__dns *d, int flags, struct ares_addr_port_node *servers) {
  struct ares_options o = {.flags = flags,
                           .sock_state_cb = sock_state,
                           .sock_state_cb_data = d,
                           .lookups = (char *)"b", /* the servers; hosts is ours */
                           .socket_receive_buffer_size = RCVBUF};
  int rc = ares_init_options(&d->channel, &o,
                             (flags ? ARES_OPT_FLAGS : 0) | ARES_OPT_SOCK_STATE_CB |
                                 ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF);
  if (rc != ARES_SUCCESS)
    return rc;
  const char *env = getenv("WEFT_DNS_SERVERS");
  if (servers)
    rc = ares_set_servers_ports(d->channel, servers);
  else if (env && *env && (rc = ares_set_servers_ports_csv(d->channel, env)) != ARES_SUCCESS)
    fprintf(stderr, "weft: WEFT_DNS_SERVERS=\"%s\": %s\n", env, ares_strerror(rc));
  if (rc != ARES_SUCCESS)
    ares_destroy(d->channel);
  return rc;
}

/* c-ares 1.18 takes a SERVFAIL or REFUSED answer as a sign of a broken
 * server: it moves on to the next one, and when none is left (each tried
 * `tries` times) ends the lookup with ECONNREFUSED, whatever the servers
 * said. With a single server there is nowhere to move on to, so its
 * channel passes those answers through (NOCHECKRESP) and the code names
 * the cause; with several, failover wins, and a lookup every server
 * failed reads WEFT_EDNS_REFUSED. */
#ifdef WEFT_ALLOC_FAIL /* c-ares's allocations count too (alloc_fail.h) */
#include <pthread.h>
static void ares_alloc_hooks(void) {
  ares_library_init_mem(ARES_LIB_INIT_ALL, weft__t_malloc, free, weft__t_realloc);
}
#endif

static int channel_init(weft__dns *d) {
#ifdef WEFT_ALLOC_FAIL
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, ares_alloc_hooks);
#endif
  int rc = channel_open(d, 0, NULL);
  struct ares_addr_port_node *servers = NULL;
  if (rc == ARES_SUCCESS && ares_get_servers_ports(d->channel, &servers) == ARES_SUCCESS &&
      servers && !servers->next) {
    ares_destroy(d->channel); /* no socket opened yet */
    rc = channel_open(d, ARES_FLAG_NOCHECKRESP, servers);
  }
  ares_free_data(servers);
  d->ready = rc == ARES_SUCCESS;
  /* A configuration error stays (every lookup reports it); running out
   * of memory does not: the next lookup tries again. */
  d->init_status = rc == ARES_ENOMEM ? ARES_SUCCESS : rc;
  return rc;
}

/* The cache's and merging's key: the question the servers are asked. */
static char *lookup_key(const dns_req *r) {
  char *k;
  if (asprintf(&k, "%d|%s", ask_family(&r->want), r->host) < 0)
    return NULL;
  return k;
}

/* Put r back at the head of the queue (D2, full). */
static void requeue(weft__dns *d, dns_req *r) {
  weft__spin_lock_word(&d->lock);
  r->next = d->head;
  d->head = r;
  if (!d->tail)
    d->tail = r;
  weft__spin_unlock_word(&d->lock);
}

/* D2 for one request, taken off the queue. False if the wire is full
 * (r is queued again). */
static bool start(weft__dns *d, dns_req *r) {
  struct addrinfo *res = NULL;
  int rc = 0;
  if (r->service) { /* a service name: its port first */
    rc = service_lookup(r->service, r->want.socktype, &r->want.port);
    free(r->service);
    r->service = NULL;
    if (rc || local_answer(&r->want, r->host, &res, &rc)) {
      deliver(d, r, rc, res);
      return true;
    }
  }
  if (hosts_answer(d, r, &res, &rc)) {
    weft__stat_inc(&d->st_hits);
    deliver(d, r, rc, res);
    return true;
  }
  char *key = lookup_key(r);
  if (!key) {
    deliver(d, r, -ENOMEM, NULL);
    return true;
  }
  const cache_ent *e = cache_get(d, key);
  if (e) {
    weft__stat_inc(&d->st_hits);
    rc = build(&r->want, e->addrs, e->n, e->canon, &res);
    deliver(d, r, rc, res);
    free(key);
    return true;
  }
  lookup *l = d->lookups;
  while (l && strcmp(l->key, key) != 0)
    l = l->next;
  if (l) { /* the same question is on the wire: wait for its answer */
    r->next = l->reqs;
    l->reqs = r;
    free(key);
    return true;
  }
  int family = ask_family(&r->want);
  unsigned queries = family == AF_UNSPEC ? 2 : 1;
  if (d->inflight + queries > MAX_QUERIES) {
    free(key);
    requeue(d, r);
    return false;
  }
  int init = d->ready ? ARES_SUCCESS : d->init_status ? d->init_status : channel_init(d);
  if (init != ARES_SUCCESS) {
    deliver(d, r, map_status(init), NULL);
    free(key);
    return true;
  }
  l = weft__calloc(1, sizeof *l);
  if (!l) {
    deliver(d, r, -ENOMEM, NULL);
    free(key);
    return true;
  }
  *l = (lookup){.key = key, .reqs = r, .d = d, .queries = queries, .next = d->lookups};
  d->lookups = l;
  d->inflight += queries;
  weft__stat_set(&d->st_inflight, d->inflight);
  weft__stat_inc(&d->st_queries);
  WEFT_PROBE1(dns_start, r->host);
  /* No service (the port is ours), no sorting (see "Order"); answered
   * may run before this returns. */
  struct ares_addrinfo_hints h = {.ai_flags = ARES_AI_NOSORT | ARES_AI_CANONNAME,
                                  .ai_family = family};
  ares_getaddrinfo(d->channel, r->host, NULL, &h, answered, l);
  return true;
}

/* On the poller: D2 for what is queued; run c-ares's timeouts, and lower
 * *sleep_ns to c-ares's next timeout. */
void weft__dns_poll(weft__dns *d, uint64_t *sleep_ns) {
  if (!d)
    return;
  for (;;) {
    weft__spin_lock_word(&d->lock);
    dns_req *r = d->head;
    if (r) {
      d->head = r->next;
      if (!d->head)
        d->tail = NULL;
    }
    weft__spin_unlock_word(&d->lock);
    if (!r)
      break;
    r->next = NULL;
    if (!start(d, r))
      break;
  }
  if (d->ready) {
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    struct timeval tv, *t = ares_timeout(d->channel, NULL, &tv);
    if (t) {
      uint64_t ns = (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_usec * 1000u;
      if (ns < *sleep_ns)
        *sleep_ns = ns;
    }
  }
  flush_wakes(d);
}

void weft__dns_stats(weft__dns *d, weft_stats *out) {
  if (!d)
    return;
  out->dns.lookups = weft__stat_ld(&d->st_lookups);
  out->dns.cache_hits = weft__stat_ld(&d->st_hits);
  out->dns.queries = weft__stat_ld(&d->st_queries);
  out->dns.failures = weft__stat_ld(&d->st_failures);
  out->dns.in_flight = weft__stat_ld(&d->st_inflight);
}

void weft__dns_event(weft__dns *d, uint64_t data, uint32_t events) {
  if (!d || !d->ready)
    return;
  ares_socket_t fd = (ares_socket_t)(uint32_t)data;
  ares_process_fd(d->channel, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                  (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
  flush_wakes(d);
}

weft__dns *weft__dns_new(weft__poller_io *io) {
  weft__dns *d = weft__calloc(1, sizeof *d);
  if (d)
    d->io = io;
  return d;
}

/* At runtime stop, on the stopping thread after the poller exited. */
void weft__dns_free(weft__dns *d) {
  if (!d)
    return;
  if (d->ready)
    ares_destroy(d->channel); /* answers every lookup with EDESTRUCTION */
  flush_wakes(d);
  dns_req *r = d->head;
  while (r) {
    dns_req *next = r->next;
    req_free(r);
    r = next;
  }
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    cache_free(&d->cache[i]);
  hosts_clear(&d->hosts);
  free(d->hosts.path);
  weft__free(d, sizeof *d);
}

/* ---- the caller ------------------------------------------------------------------ */

void weft_freeaddrinfo(struct addrinfo *ai) {
  while (ai) {
    struct addrinfo *next = ai->ai_next;
    free(ai); /* record, address and name are one allocation */
    ai = next;
  }
}

/* On a foreign thread: the C library's getaddrinfo, its list copied into
 * weft's layout (weft_freeaddrinfo frees either). */
static int libc_resolve(const char *host, const char *service, const struct addrinfo *hints,
                        struct addrinfo **res) {
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(host, service, hints, &ai);
  switch (rc) {
  case 0:
    break;
  case EAI_NONAME:
  case EAI_NODATA:
  case EAI_ADDRFAMILY:
    return WEFT_EDNS_NOTFOUND;
  case EAI_AGAIN:
    return WEFT_EDNS_TIMEOUT;
  case EAI_MEMORY:
    return -ENOMEM;
  case EAI_BADFLAGS:
  case EAI_FAMILY:
  case EAI_SOCKTYPE:
  case EAI_SERVICE:
    return -EINVAL;
  default:
    return WEFT_EDNS_SERVFAIL;
  }
  struct addrinfo *head = NULL, **tail = &head;
  for (const struct addrinfo *p = ai; p; p = p->ai_next) {
    struct addrinfo *c = node_new(p->ai_addrlen, p->ai_canonname);
    if (!c) {
      weft_freeaddrinfo(head);
      freeaddrinfo(ai);
      return -ENOMEM;
    }
    c->ai_flags = p->ai_flags;
    c->ai_family = p->ai_family;
    c->ai_socktype = p->ai_socktype;
    c->ai_protocol = p->ai_protocol;
    memcpy(c->ai_addr, p->ai_addr, p->ai_addrlen);
    *tail = c;
    tail = &c->ai_next;
  }
  freeaddrinfo(ai);
  *res = head;
  return 0;
}

int weft_resolve_until(const char *host, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res,
                       uint64_t deadline_ns) {
  if (!res || (!host && !service))
    return -EINVAL;
  *res = NULL;
  int err = 0;
  weft__poller_io *io = weft__io_current(&err);
  if (!io) { /* a foreign thread may block: the C library's resolver */
    if (err != WEFT_ENOTCO)
      return err;
    return libc_resolve(host, service, hints, res);
  }
  want w = {.family = AF_UNSPEC};
  if (hints)
    w = (want){hints->ai_family, hints->ai_socktype, hints->ai_protocol, hints->ai_flags, 0};
  if ((w.flags & ~KNOWN_FLAGS) || (!host && (w.flags & AI_CANONNAME)) ||
      (w.family != AF_UNSPEC && w.family != AF_INET && w.family != AF_INET6))
    return -EINVAL;
  bool named;
  int rc = service_port(service, w.flags, &w.port, &named);
  if (rc)
    return rc;
  if (!named && local_answer(&w, host, res, &rc))
    return rc;
  weft__dns *d = weft__dns_of(io->rt);
  dns_req *r = weft__calloc(1, sizeof *r);
  if (!r || !d) {
    if (r)
      weft__free(r, sizeof *r);
    return -ENOMEM;
  }
  r->want = w;
  r->host = host ? strdup(host) : NULL;
  r->service = named ? strdup(service) : NULL;
  if ((host && !r->host) || (named && !r->service)) {
    req_free(r);
    return -ENOMEM;
  }
  weft_co *self = weft__self_or_foreign();
  r->co = self;
  rc = weft__wait_begin(self); /* D1 */
  if (rc) {
    req_free(r);
    return rc;
  }
  r->gen = weft__wait_gen(self);
  weft__spin_lock_word(&d->lock);
  if (d->tail)
    d->tail->next = r;
  else
    d->head = r;
  d->tail = r;
  weft__spin_unlock_word(&d->lock);
  weft__add_ar(&io->rt->driver_pending, 1);
  weft__io_poke(io);
  rc = weft__wait_park_until(self, WEFT__PARK_DNS, NULL, NULL, deadline_ns);
  weft__add_ar(&io->rt->driver_pending, (uint32_t)-1);
  if (rc) { /* D4 */
    uint32_t s = REQ_WAITING;
    if (weft__cas_ar(&r->state, &s, REQ_CANCELLED))
      return rc == -ETIMEDOUT ? WEFT_EDNS_TIMEOUT : rc; /* the poller frees it */
  }
  while (!weft__ld_acq(&r->released))
    weft__cpu_relax();
  if (rc == 0) {
    rc = r->rc;
    *res = r->res;
    r->res = NULL;
  } else if (rc == -ETIMEDOUT) {
    rc = WEFT_EDNS_TIMEOUT;
  }
  req_free(r);
  return rc;
}

int weft_resolve(const char *host, const char *service,
                 const struct addrinfo *hints, struct addrinfo **res) {
  return weft_resolve_until(host, service, hints, res, 0);
}
