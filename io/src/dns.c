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
 *   D2. the poller starts queued requests while fewer than MAX_INFLIGHT
 *       are in flight (UDP loss starts near 400 on a default buffer);
 *   D3. the answer callback, on the poller, CASes state WAITING -> DONE;
 *       on success it claims the caller's wait by generation, collects it
 *       for the batch unpark and sets `released`; if the caller already
 *       left (CANCELLED), it frees the request and the answer;
 *   D4. a caller woken by a cancel or its deadline CASes WAITING ->
 *       CANCELLED; if that finds DONE it waits for `released` and frees.
 * Servers: /etc/resolv.conf, unless WEFT_DNS_SERVERS ("127.0.0.1:5353,
 * 10.0.0.1") says otherwise; /etc/hosts is read first (c-ares "fb").
 * Errors are WEFT_EDNS_* codes, one per cause (with one server, c-ares is
 * told to pass SERVFAIL and REFUSED answers through: see channel_init).
 *
 * On the poller, before a request goes on the wire: a small cache (512
 * slots, keyed by the whole question) answers it if a previous answer's
 * TTL has not run out, and an identical question already on the wire
 * takes it along (merged); each request gets its own copy of the
 * addresses. Only the poller thread touches the cache and the lookups.
 */
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "dns.h"
#include "weft/io.h"

#define MAX_INFLIGHT 256
enum { REQ_WAITING = 0, REQ_DONE = 1, REQ_CANCELLED = 2 };

typedef struct dns_req {
  char *host, *service;
  struct ares_addrinfo_hints hints;
  weft_co *co;
  uint32_t gen;
  uint32_t state, released;
  int rc;               /* the answer: 0 or a code ... */
  struct addrinfo *res; /* ... and the caller's own copy of the addresses */
  struct dns_req *next;
} dns_req;

/* One question on the wire, with every request that asked it (merged). */
typedef struct lookup {
  char *key;
  dns_req *reqs;
  struct weft__dns *d;
  struct lookup *next;
} lookup;

#define CACHE_SLOTS 512
typedef struct cache_ent {
  char *key;
  struct addrinfo *res;
  uint64_t expires_ns;
} cache_ent;

struct weft__dns {
  weft__poller_io *io;
  ares_channel channel;
  bool ready; /* channel initialised (on the poller thread) */
  int init_status;
  uint32_t lock; /* the submit queue */
  dns_req *head, *tail;
  unsigned inflight;  /* lookups on the wire (poller only) */
  lookup *lookups;    /* those lookups, for merging (poller only) */
  cache_ent cache[CACHE_SLOTS]; /* answers until their TTL (poller only) */
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

static struct addrinfo *copy_ai(const struct addrinfo *ai, int *err) {
  struct addrinfo *head = NULL, **tail = &head;
  for (; ai; ai = ai->ai_next) {
    struct addrinfo *c = calloc(1, sizeof *c + ai->ai_addrlen);
    if (!c) {
      weft_freeaddrinfo(head);
      *err = -ENOMEM;
      return NULL;
    }
    *c = *ai;
    c->ai_next = NULL;
    c->ai_canonname = NULL;
    c->ai_addr = (struct sockaddr *)(c + 1);
    memcpy(c->ai_addr, ai->ai_addr, ai->ai_addrlen);
    *tail = c;
    tail = &c->ai_next;
  }
  return head;
}

static struct addrinfo *convert(const struct ares_addrinfo *a, int *err,
                                int *min_ttl);

static unsigned key_hash(const char *k) {
  unsigned h = 2166136261u;
  while (*k)
    h = (h ^ (unsigned char)*k++) * 16777619u;
  return h % CACHE_SLOTS;
}

static void cache_put(weft__dns *d, const char *key, const struct addrinfo *res,
                      int ttl_s) {
  if (ttl_s <= 0)
    return;
  int err = 0;
  struct addrinfo *copy = copy_ai(res, &err);
  char *k = strdup(key);
  if (!copy || !k) {
    weft_freeaddrinfo(copy);
    free(k);
    return;
  }
  cache_ent *e = &d->cache[key_hash(key)]; /* a collision evicts */
  free(e->key);
  weft_freeaddrinfo(e->res);
  *e = (cache_ent){k, copy, weft__now_ns() + (uint64_t)ttl_s * 1000000000u};
}

/* A fresh copy of a cached answer, or NULL (miss or expired). */
static struct addrinfo *cache_get(weft__dns *d, const char *key, int *err) {
  cache_ent *e = &d->cache[key_hash(key)];
  if (!e->key || strcmp(e->key, key) != 0 || weft__now_ns() >= e->expires_ns)
    return NULL;
  return copy_ai(e->res, err);
}

/* The answer to a lookup: convert once, cache it, and give every merged
 * request its own copy. */
static void answered(void *arg, int status, int timeouts, struct ares_addrinfo *answer) {
  (void)timeouts;
  lookup *l = arg;
  weft__dns *d = l->d;
  d->inflight--;
  for (lookup **p = &d->lookups; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      break;
    }
  int rc = map_status(status), ttl = 0;
  struct addrinfo *res = rc == 0 ? convert(answer, &rc, &ttl) : NULL;
  if (answer)
    ares_freeaddrinfo(answer);
  if (rc == 0)
    cache_put(d, l->key, res, ttl);
  dns_req *r = l->reqs;
  while (r) {
    dns_req *next = r->next;
    int err = rc;
    struct addrinfo *mine = NULL;
    if (rc == 0) {
      mine = next ? copy_ai(res, &err) : res; /* the last one takes res */
      if (!next)
        res = NULL;
    }
    deliver(d, r, err, mine);
    r = next;
  }
  weft_freeaddrinfo(res);
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
  struct ares_options o = {.flags = flags, .sock_state_cb = sock_state, .sock_state_cb_data = d,
                           .lookups = (char *)"fb"};
  int rc = ares_init_options(&d->channel, &o,
                             (flags ? ARES_OPT_FLAGS : 0) | ARES_OPT_SOCK_STATE_CB |
                                 ARES_OPT_LOOKUPS);
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
static int channel_init(weft__dns *d) {
  int rc = channel_open(d, 0, NULL);
  struct ares_addr_port_node *servers = NULL;
  if (rc == ARES_SUCCESS && ares_get_servers_ports(d->channel, &servers) == ARES_SUCCESS &&
      servers && !servers->next) {
    ares_destroy(d->channel); /* no socket opened yet */
    rc = channel_open(d, ARES_FLAG_NOCHECKRESP, servers);
  }
  ares_free_data(servers);
  d->ready = rc == ARES_SUCCESS;
  d->init_status = rc;
  return rc;
}

/* On the poller: start what is queued (D2), process c-ares's timeouts,
 * and bound the poller's sleep by c-ares's next timeout. */
static char *req_key(const dns_req *r) {
  char *k;
  if (asprintf(&k, "%s|%s|%d|%d|%d|%d", r->host ? r->host : "", r->service ? r->service : "",
               r->hints.ai_family, r->hints.ai_socktype, r->hints.ai_protocol,
               r->hints.ai_flags) < 0)
    return NULL;
  return k;
}

/* On the poller: answer queued requests from the cache, merge them into
 * a lookup already on the wire, or start one while fewer than
 * MAX_INFLIGHT are (D2); run c-ares's timeouts, and lower *sleep_ns to
 * c-ares's next timeout. */
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
    char *key = req_key(r);
    int err = key ? 0 : -ENOMEM;
    struct addrinfo *hit = key ? cache_get(d, key, &err) : NULL;
    if (hit || err) {
      deliver(d, r, err, hit);
      free(key);
      continue;
    }
    lookup *l = d->lookups;
    while (l && strcmp(l->key, key) != 0)
      l = l->next;
    if (l) { /* the same question is on the wire: wait for its answer */
      r->next = l->reqs;
      l->reqs = r;
      free(key);
      continue;
    }
    if (d->inflight >= MAX_INFLIGHT) { /* full: back to the head, later */
      free(key);
      weft__spin_lock_word(&d->lock);
      r->next = d->head;
      d->head = r;
      if (!d->tail)
        d->tail = r;
      weft__spin_unlock_word(&d->lock);
      break;
    }
    if (!d->ready && (d->init_status || channel_init(d) != ARES_SUCCESS)) {
      deliver(d, r, map_status(d->init_status), NULL);
      free(key);
      continue;
    }
    l = weft__calloc(1, sizeof *l);
    if (!l) {
      deliver(d, r, -ENOMEM, NULL);
      free(key);
      continue;
    }
    *l = (lookup){.key = key, .reqs = r, .d = d, .next = d->lookups};
    d->lookups = l;
    d->inflight++;
    ares_getaddrinfo(d->channel, r->host, r->service, &r->hints, answered, l);
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
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    free(d->cache[i].key);
    weft_freeaddrinfo(d->cache[i].res);
  }
  weft__free(d, sizeof *d);
}

/* ---- the caller ------------------------------------------------------------------ */

static struct addrinfo *convert(const struct ares_addrinfo *a, int *err,
                                int *min_ttl) {
  struct addrinfo *head = NULL, **tail = &head;
  *min_ttl = 0;
  for (const struct ares_addrinfo_node *n = a ? a->nodes : NULL; n; n = n->ai_next) {
    if (n == a->nodes || n->ai_ttl < *min_ttl)
      *min_ttl = n->ai_ttl;
    struct addrinfo *ai = calloc(1, sizeof *ai + n->ai_addrlen);
    if (!ai) {
      weft_freeaddrinfo(head);
      *err = -ENOMEM;
      return NULL;
    }
    ai->ai_flags = n->ai_flags;
    ai->ai_family = n->ai_family;
    ai->ai_socktype = n->ai_socktype;
    ai->ai_protocol = n->ai_protocol;
    ai->ai_addrlen = n->ai_addrlen;
    ai->ai_addr = (struct sockaddr *)(ai + 1);
    memcpy(ai->ai_addr, n->ai_addr, n->ai_addrlen);
    *tail = ai;
    tail = &ai->ai_next;
  }
  if (!head)
    *err = WEFT_EDNS_NOTFOUND;
  return head;
}

void weft_freeaddrinfo(struct addrinfo *ai) {
  while (ai) {
    struct addrinfo *next = ai->ai_next;
    free(ai); /* address and record are one allocation */
    ai = next;
  }
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
    int rc = getaddrinfo(host, service, hints, res);
    return rc == 0 ? 0 : rc == EAI_NONAME ? WEFT_EDNS_NOTFOUND
                       : rc == EAI_AGAIN ? WEFT_EDNS_TIMEOUT
                       : rc == EAI_MEMORY ? -ENOMEM
                                          : WEFT_EDNS_SERVFAIL;
  }
  weft__dns *d = weft__dns_of(io->rt);
  dns_req *r = weft__calloc(1, sizeof *r);
  if (!r || !d)
    return -ENOMEM;
  r->host = host ? strdup(host) : NULL;
  r->service = service ? strdup(service) : NULL;
  if (hints) {
    r->hints.ai_flags = hints->ai_flags;
    r->hints.ai_family = hints->ai_family;
    r->hints.ai_socktype = hints->ai_socktype;
    r->hints.ai_protocol = hints->ai_protocol;
  }
  weft_co *self = weft__self_or_foreign();
  r->co = self;
  int rc = weft__wait_begin(self); /* D1 */
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
