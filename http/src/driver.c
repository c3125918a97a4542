/*
 * driver.c - libcurl's multi-socket interface on the poller thread.
 *
 * What it owns: every client's curl multi handle (weft__http_multi), as a
 * poller extension (io/src/fd.h, slot WEFT__HTTP_EXT_SLOT): the poller
 * calls poll() once a round and event() for curl's sockets, and nothing
 * else ever calls into a multi handle, so curl sees one thread at a time.
 *
 * Protocol with the poller (io):
 *   - curl's sockets go into the poller's epoll, level-triggered (curl's
 *     socket callback says what it wants, and expects to be told again
 *     while it stays true), with event data WEFT__EXT_DATA(slot, multi id
 *     << 32 | fd). CURL_POLL_REMOVE means "stop watching", not "closed":
 *     the fd is taken out of epoll, errors ignored (curl may have closed
 *     it already, which took it out).
 *   - curl's timer callback only records a deadline (timer_ns); poll()
 *     runs curl's timeout once it has passed and lowers the poller's sleep
 *     to it. Nothing is re-armed per callback: curl calls it with 0 on
 *     every added transfer.
 * Protocol with callers (http_internal.h): ops posted on the multi's
 * queue (OP_ADD, OP_RESUME, OP_RELEASE), run at the start of poll();
 * events and wake-ups back through x->lock, unparked in one batch at the
 * end of each round.
 *
 * Why on the poller thread and not in a driver coroutine: measured, with
 * both built (WEFT_HTTP_DRIVER=coroutine selects the other: the poller
 * only queues curl's socket events and rings a driver coroutine, which
 * runs curl on a worker). tools/bench fetch (20,000 GETs of 100 bytes from
 * nginx, 100 in flight) on a 2-core VM, same session, alternating:
 *     poller thread       18,061 / 19,735 / 26,902 req/s at 2 workers,
 *                         32,210 at 1 worker
 *     driver coroutine     4,961 /  5,559 /  7,424 req/s at 2 workers,
 *                         10,300 at 1 worker
 * and fetch_latency (one GET at a time) p50 148-182 us vs 130-159 us, p99
 * 247-284 us vs 308-1,929 us. The coroutine saves a little at low load
 * (no handoff to the poller for the request itself) but every curl socket
 * event costs an unpark and a trip through a run queue, behind the
 * requesting coroutines, so under load it falls far behind; on the poller
 * an event is handled where it arrives. The switch stays, with tests
 * (http.driver_coroutine.*), so the measurement can be repeated.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "probe.h"

#define MAX_MULTIS 4096u
#define WAKE_BATCH 256u

struct weft__http_driver {
  weft__poller_io *io;
  weft__spinlock lock; /* multis[] and nmultis */
  weft__http_multi *multis[MAX_MULTIS];
  unsigned nmultis; /* high-water mark of used ids */
  /* weft_stats: written by whoever runs curl (one at a time), read by any
   * thread, relaxed. */
  uint64_t st_started, st_done, st_failed, st_inflight, st_conns;
  weft_http_client *dflt; /* the runtime's default client */
  /* Wake-ups gathered during a round (the thread that runs curl). */
  weft_co *wake[WAKE_BATCH];
  int wake_rc[WAKE_BATCH];
  unsigned nwake;
  /* WEFT_HTTP_DRIVER=coroutine, the measured alternative (see the top):
   * the poller only queues curl's socket events and rings; the driver
   * coroutine runs curl. */
  bool in_coroutine;
  uint32_t co_started;   /* atomic */
  weft__spinlock bell_lock; /* rung, waiter, gen, evq */
  bool rung;
  weft_co *waiter;
  uint32_t gen;
  struct weft__http_ev { uint64_t payload; uint32_t events; } *evq, *evs;
  size_t nev, evcap, evs_cap; /* evs: the coroutine's (swapped with evq) */
};

static void ring(weft__http_driver *d);

static void flush_wakes(weft__http_driver *d) {
  if (d->nwake)
    weft__unpark_batch(d->io->rt, d->wake, d->wake_rc, d->nwake);
  d->nwake = 0;
}

/* Set bits in x->events and wake the caller if it waits (poller only). */
static void signal_xfer(weft__http_driver *d, weft__xfer *x, uint32_t bits) {
  weft__spin_lock(&x->lock);
  x->events |= bits;
  weft_co *co = x->waiter;
  bool claimed = co && weft__wait_claim_gen(co, x->gen);
  if (claimed)
    x->waiter = NULL;
  weft__spin_unlock(&x->lock);
  if (!claimed)
    return;
  if (d->nwake == WAKE_BATCH)
    flush_wakes(d);
  d->wake[d->nwake] = co;
  d->wake_rc[d->nwake++] = 0;
}

void weft__http_xfer_link(weft__xfer *x) {
  weft__http_multi *m = x->m;
  weft__spin_lock(&m->qlock);
  x->allprev = NULL;
  x->allnext = m->all;
  if (m->all)
    m->all->allprev = x;
  m->all = x;
  weft__spin_unlock(&m->qlock);
}

static void xfer_free(weft__xfer *x) {
  weft__http_multi *m = x->m;
  weft__spin_lock(&m->qlock);
  if (x->allprev)
    x->allprev->allnext = x->allnext;
  else
    m->all = x->allnext;
  if (x->allnext)
    x->allnext->allprev = x->allprev;
  weft__spin_unlock(&m->qlock);
  if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->resolve);
  curl_slist_free_all(x->headers);
  free(x->body.p);
  free(x->hdr.p);
  free(x->up.p);
  weft__free(x, sizeof *x);
}

/* ---- curl's callbacks (on the poller, inside multi calls) --------------------- */

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  weft__http_multi *m = userp;
  int epfd = m->d->io->epfd;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s, NULL);
    return 0;
  }
  struct epoll_event ev = {
      .events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0),
      .data.u64 = WEFT__EXT_DATA(WEFT__HTTP_EXT_SLOT, (uint64_t)m->id << 32 | (uint32_t)s)};
  int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(epfd, op, s, &ev)) {
    op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epfd, op, s, &ev))
      return -1; /* curl fails the transfer */
  }
  if (!socketp)
    curl_multi_assign(m->multi, s, m);
  return 0;
}

static int on_timer(CURLM *multi, long ms, void *userp) {
  (void)multi;
  weft__http_multi *m = userp;
  m->timer_ns = ms < 0 ? UINT64_MAX : weft__now_ns() + (uint64_t)ms * 1000000u;
  return 0;
}

/* ---- a transfer's callbacks (on the poller) ------------------------------------- */


static bool buf_append(weft__buf *b, const char *p, size_t n) {
  if (b->off && b->off == b->len)
    b->off = b->len = 0;
  if (b->len + n + 1 > b->cap) {
    if (b->off) { /* slide the unread part to the front first */
      memmove(b->p, b->p + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    if (cap != b->cap) {
      char *q = realloc(b->p, cap);
      if (!q)
        return false;
      b->p = q;
      b->cap = cap;
    }
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return true;
}

size_t weft__http_on_write(char *p, size_t size, size_t n, void *arg) {
  (void)size; /* always 1 */
  weft__xfer *x = arg;
  weft__spin_lock(&x->lock);
  if (x->stream && x->body.len - x->body.off >= WEFT__STREAM_WINDOW) {
    x->paused_write = true; /* the reader is behind: curl keeps p for later */
    weft__spin_unlock(&x->lock);
    return CURL_WRITEFUNC_PAUSE;
  }
  if (!x->stream && x->body.len + n > x->max_body) {
    x->too_big = true;
    weft__spin_unlock(&x->lock);
    return 0; /* CURLE_WRITE_ERROR */
  }
  bool ok = buf_append(&x->body, p, n);
  weft__spin_unlock(&x->lock);
  if (!ok)
    return 0;
  if (x->stream)
    signal_xfer(x->m->d, x, X_DATA);
  return n;
}

size_t weft__http_on_header(char *p, size_t size, size_t n, void *arg) {
  (void)size;
  weft__xfer *x = arg;
  bool status_line = n >= 5 && memcmp(p, "HTTP/", 5) == 0;
  bool end = (n == 2 && p[0] == '\r') || (n == 1 && p[0] == '\n');
  weft__spin_lock(&x->lock);
  if (status_line) { /* a new response (after a 1xx): its headers replace */
    x->hdr.len = x->hdr.off = 0;
    x->hdr_done = false;
  }
  bool ok = buf_append(&x->hdr, p, n);
  weft__spin_unlock(&x->lock);
  if (!ok)
    return 0;
  if (end) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) {
      weft__spin_lock(&x->lock);
      x->hdr_done = true;
      weft__spin_unlock(&x->lock);
      signal_xfer(x->m->d, x, X_HEADERS);
    }
  }
  return n;
}

size_t weft__http_on_read(char *p, size_t size, size_t n, void *arg) {
  (void)size;
  weft__xfer *x = arg;
  weft__spin_lock(&x->lock);
  size_t have = x->up.len - x->up.off;
  if (have) {
    size_t k = have < n ? have : n;
    memcpy(p, x->up.p + x->up.off, k);
    x->up.off += k;
    bool empty = x->up.off == x->up.len;
    bool eof = x->up_eof;
    weft__spin_unlock(&x->lock);
    if (empty && !eof)
      signal_xfer(x->m->d, x, X_UPLOAD); /* fetch the next piece meanwhile */
    return k;
  }
  if (x->up_eof) {
    weft__spin_unlock(&x->lock);
    return x->body_failed ? CURL_READFUNC_ABORT : 0;
  }
  x->paused_read = true;
  weft__spin_unlock(&x->lock);
  signal_xfer(x->m->d, x, X_UPLOAD);
  return CURL_READFUNC_PAUSE;
}

/* ---- completions and ops ----------------------------------------------------- */

/* Stats and the http_done probe for a transfer curl has finished (result
 * set) or that its caller abandoned (cancelled: counted as failed). */
static void transfer_ended(weft__http_driver *d, weft__xfer *x) {
  long status = 0;
  char *url = NULL;
  int err = x->result == CURLE_OK ? 0 : weft__http_map_error(x);
  if (err)
    weft__stat_inc(&d->st_failed);
  else
    weft__stat_inc(&d->st_done);
  weft__stat_add(&d->st_inflight, (uint64_t)-1);
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
  WEFT_PROBE2(http_done, url, err ? err : (int)status);
  (void)url;
}

/* Connections, counted as curl opens and closes their sockets (the
 * callbacks stay with a connection after its first transfer ends). */
curl_socket_t weft__http_open_socket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *a) {
  (void)purpose;
  weft__http_driver *d = clientp;
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd >= 0)
    weft__stat_inc(&d->st_conns);
  return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

int weft__http_close_socket(void *clientp, curl_socket_t fd) {
  weft__http_driver *d = clientp;
  weft__stat_add(&d->st_conns, (uint64_t)-1);
  return close(fd);
}

/* Hand finished transfers to their callers. True if one of them ended
 * with curl out of memory (see multi_reset). */
static bool reap(weft__http_multi *m) {
  CURLMsg *msg;
  int left;
  bool oom = false;
  while ((msg = curl_multi_info_read(m->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    weft__xfer *x;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode rc = msg->data.result;
    x->result = rc;
    oom |= rc == CURLE_OUT_OF_MEMORY;
    transfer_ended(m->d, x);
    curl_multi_remove_handle(m->multi, x->easy); /* msg is gone after this */
    x->in_multi = false;
    m->inflight--;
    signal_xfer(m->d, x, X_DONE | X_HEADERS);
  }
  return oom;
}

static CURLM *multi_handle_new(weft__http_multi *m);

/* When curl runs out of memory inside a multi call, the multi handle
 * itself may be left broken, and nothing says which transfer is hurt:
 * with libcurl 7.88, tests/torture saw a transfer that waited forever
 * (past its own timeout), every later transfer on the handle hang, and a
 * division by zero in a hash whose table was never allocated. So: end
 * every transfer in the multi with CURLE_OUT_OF_MEMORY (-ENOMEM to its
 * caller) and replace the handle with a fresh one (the connection cache
 * goes with the old). If the fresh one cannot be made, the old one stays
 * and the next failure tries again. The list of transfers is walked
 * without qlock: callers only insert at its head; only this thread
 * removes. */
static void multi_reset(weft__http_multi *m) {
  weft__spin_lock(&m->qlock);
  weft__xfer *x = m->all;
  weft__spin_unlock(&m->qlock);
  for (; x; x = x->allnext) {
    if (!x->in_multi)
      continue;
    x->result = CURLE_OUT_OF_MEMORY;
    transfer_ended(m->d, x);
    curl_multi_remove_handle(m->multi, x->easy);
    x->in_multi = false;
    m->inflight--;
    signal_xfer(m->d, x, X_DONE | X_HEADERS);
  }
  if (weft__ld_acq(&m->dead))
    return; /* the client is gone and m goes soon: no new handle */
  CURLM *fresh = multi_handle_new(m);
  if (!fresh)
    return;
  curl_multi_cleanup(m->multi); /* may call back (sockets, timer): m is still whole */
  m->multi = fresh;
  m->timer_ns = UINT64_MAX;
  m->running = 0;
}

/* After a multi call: its result and whether a finished transfer ran out
 * of memory decide whether the handle is reset. */
static void multi_check(weft__http_multi *m, CURLMcode mc, bool oom) {
  if (oom || mc == CURLM_OUT_OF_MEMORY || mc == CURLM_INTERNAL_ERROR)
    multi_reset(m); /* CURLM_BAD_SOCKET: an fd curl closed already; harmless */
}

static void run_ops(weft__http_multi *m) {
  weft__spin_lock(&m->qlock);
  weft__xfer *x = m->qhead;
  m->qhead = m->qtail = NULL;
  weft__spin_unlock(&m->qlock);
  while (x) {
    weft__spin_lock(&m->qlock);
    weft__xfer *next = x->qnext;
    uint32_t ops = x->ops;
    x->ops = 0;
    x->queued = false;
    weft__spin_unlock(&m->qlock);
    if (ops & OP_RELEASE) {
      if (x->in_multi) {
        x->result = CURLE_ABORTED_BY_CALLBACK;
        transfer_ended(m->d, x);
        curl_multi_remove_handle(m->multi, x->easy);
        m->inflight--;
      }
      xfer_free(x);
    } else {
      if (ops & OP_ADD) {
        CURLMcode mc = curl_multi_add_handle(m->multi, x->easy);
        if (mc == CURLM_OK) {
          x->in_multi = true;
          m->inflight++;
          weft__stat_inc(&m->d->st_started);
          weft__stat_inc(&m->d->st_inflight);
          char *url = NULL, *method = NULL;
          curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
          curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_METHOD, &method);
          WEFT_PROBE2(http_start, url, method);
          (void)url, (void)method;
        } else {
          x->result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
          signal_xfer(m->d, x, X_DONE | X_HEADERS);
        }
      }
      if ((ops & OP_RESUME) && x->in_multi) {
        weft__spin_lock(&x->lock);
        x->paused_write = x->paused_read = false;
        weft__spin_unlock(&x->lock);
        curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may call back at once */
      }
    }
    x = next;
  }
}

void weft__http_post(weft__xfer *x, uint32_t ops, bool poke) {
  weft__http_multi *m = x->m;
  weft__http_driver *d = m->d; /* after the unlock, x and m may be freed */
  weft__spin_lock(&m->qlock);
  x->ops |= ops;
  if (!x->queued) {
    x->queued = true;
    x->qnext = NULL;
    if (m->qtail)
      m->qtail->qnext = x;
    else
      m->qhead = x;
    m->qtail = x;
  }
  weft__spin_unlock(&m->qlock);
  if (d->in_coroutine)
    ring(d);
  else if (poke)
    weft__io_poke(d->io);
}

/* ---- the poller extension -------------------------------------------------------- */

static void multi_free(weft__http_multi *m) {
  /* Transfers left belong to coroutines that will never run again (the
   * runtime stops): free them with their handles. */
  run_ops(m);
  while (m->all) {
    weft__xfer *x = m->all;
    if (x->in_multi)
      curl_multi_remove_handle(m->multi, x->easy);
    xfer_free(x);
  }
  curl_multi_cleanup(m->multi);
  /* Always, even if m->dead says the client is gone: its free may still
   * be poking this poller under the lock, and the poller's stop must not
   * close the eventfd under it (client.c). */
  weft__http_client_detach(m);
  weft__free(m, sizeof *m);
}

/* One round over every multi: ops, due timeouts, frees; lowers *sleep_ns
 * to the earliest curl timer. */
static void drive_multis(weft__http_driver *d, uint64_t *sleep_ns) {
  weft__spin_lock(&d->lock);
  unsigned n = d->nmultis;
  weft__spin_unlock(&d->lock);
  for (unsigned i = 0; i < n; i++) {
    weft__spin_lock(&d->lock);
    weft__http_multi *m = d->multis[i];
    weft__spin_unlock(&d->lock);
    if (!m)
      continue;
    run_ops(m);
    /* After the ops: adding a transfer sets curl's timer to 0, which is
     * due now, not after a sleep. */
    uint64_t now = weft__now_ns();
    if (m->timer_ns <= now) {
      m->timer_ns = UINT64_MAX;
      CURLMcode mc = curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &m->running);
      multi_check(m, mc, reap(m));
      now = weft__now_ns();
    }
    if (weft__ld_acq(&m->dead) && !m->all) {
      weft__spin_lock(&d->lock);
      d->multis[i] = NULL;
      weft__spin_unlock(&d->lock);
      multi_free(m);
      continue;
    }
    if (m->timer_ns != UINT64_MAX) {
      uint64_t left = m->timer_ns > now ? m->timer_ns - now : 0;
      if (left < *sleep_ns)
        *sleep_ns = left;
    }
  }
  flush_wakes(d);
}

static void drive_event(weft__http_driver *d, uint64_t payload, uint32_t events) {
  unsigned id = (unsigned)(payload >> 32);
  int fd = (int)(uint32_t)payload;
  weft__spin_lock(&d->lock);
  weft__http_multi *m = id < MAX_MULTIS ? d->multis[id] : NULL;
  weft__spin_unlock(&d->lock);
  if (!m)
    return;
  int bits = (events & EPOLLIN ? CURL_CSELECT_IN : 0) |
             (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
             (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
  CURLMcode mc = curl_multi_socket_action(m->multi, fd, bits, &m->running);
  multi_check(m, mc, reap(m));
  if (d->nwake >= WAKE_BATCH / 2)
    flush_wakes(d);
}

/* ---- the measured alternative: curl in a driver coroutine ----------------------- */

static void ring(weft__http_driver *d) {
  weft__spin_lock(&d->bell_lock);
  d->rung = true;
  weft_co *co = d->waiter;
  bool claimed = co && weft__wait_claim_gen(co, d->gen);
  if (claimed)
    d->waiter = NULL;
  weft__spin_unlock(&d->bell_lock);
  if (claimed) {
    int rc = 0;
    weft__unpark_batch(d->io->rt, &co, &rc, 1);
  }
}

static void unlock_bell(void *arg) { weft__spin_unlock((weft__spinlock *)arg); }

static void *driver_co(void *arg) {
  weft__http_driver *d = arg;
  weft_co *self = weft_self();
  uint64_t sleep_ns = UINT64_MAX;
  for (;;) {
    weft__spin_lock(&d->bell_lock);
    while (!d->rung) {
      if (weft__wait_begin(self)) {
        weft__spin_unlock(&d->bell_lock);
        return NULL;
      }
      d->waiter = self;
      d->gen = weft__wait_gen(self);
      uint64_t deadline = sleep_ns == UINT64_MAX ? 0 : weft__now_ns() + sleep_ns;
      int rc = weft__wait_park_until(self, WEFT__PARK_HTTP, unlock_bell, &d->bell_lock,
                                     deadline);
      weft__spin_lock(&d->bell_lock);
      if (rc) {
        d->waiter = NULL;
        if (rc != -ETIMEDOUT) {
          weft__spin_unlock(&d->bell_lock);
          return NULL;
        }
        break;
      }
    }
    d->rung = false;
    /* Take the queued events: swap buffers (both are the driver's, so a
     * runtime that stops with this coroutine parked frees them). */
    struct weft__http_ev *q = d->evq;
    size_t n = d->nev, qcap = d->evcap;
    d->evq = d->evs;
    d->evcap = d->evs_cap;
    d->nev = 0;
    d->evs = q;
    d->evs_cap = qcap;
    weft__spin_unlock(&d->bell_lock);
    for (size_t i = 0; i < n; i++)
      drive_event(d, d->evs[i].payload, d->evs[i].events);
    sleep_ns = UINT64_MAX;
    drive_multis(d, &sleep_ns);
  }
}

/* ---- the poller extension -------------------------------------------------------- */

static void ext_poll(void *ctx, uint64_t *sleep_ns) {
  weft__http_driver *d = ctx;
  if (!d->in_coroutine)
    drive_multis(d, sleep_ns);
}

static void ext_event(void *ctx, uint64_t payload, uint32_t events) {
  weft__http_driver *d = ctx;
  if (!d->in_coroutine) {
    drive_event(d, payload, events);
    return;
  }
  weft__spin_lock(&d->bell_lock);
  if (d->nev == d->evcap) {
    size_t cap = d->evcap ? 2 * d->evcap : 64;
    struct weft__http_ev *q = realloc(d->evq, cap * sizeof *d->evq);
    if (!q) { /* dropped: level-triggered, epoll reports it again */
      weft__spin_unlock(&d->bell_lock);
      ring(d);
      return;
    }
    d->evq = q;
    d->evcap = cap;
  }
  d->evq[d->nev].payload = payload;
  d->evq[d->nev++].events = events;
  weft__spin_unlock(&d->bell_lock);
  ring(d);
}

static void ext_free(void *ctx) {
  weft__http_driver *d = ctx;
  weft_http_client *dflt = d->dflt;
  for (unsigned i = 0; i < d->nmultis; i++)
    if (d->multis[i])
      multi_free(d->multis[i]);
  if (dflt) {
    free(dflt->ca_file);
    free(dflt->user_agent);
    weft__free(dflt, sizeof *dflt);
  }
  free(d->evq);
  free(d->evs);
  weft__free(d, sizeof *d);
}

static void ext_stats(void *ctx, weft_stats *out) {
  weft__http_driver *d = ctx;
  out->http.started = weft__stat_ld(&d->st_started);
  out->http.done = weft__stat_ld(&d->st_done);
  out->http.failed = weft__stat_ld(&d->st_failed);
  out->http.in_flight = weft__stat_ld(&d->st_inflight);
  out->http.connections = weft__stat_ld(&d->st_conns);
}

static const weft__io_ext http_ext = {
    .poll = ext_poll, .event = ext_event, .free = ext_free, .stats = ext_stats};

static CURLcode global_rc;
static void global_init(void) {
#ifdef WEFT_ALLOC_FAIL /* curl's allocations count too (alloc_fail.h) */
  global_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, weft__t_malloc, free, weft__t_realloc,
                                   weft__t_strdup, weft__t_calloc);
#else
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
}

static void *driver_make(weft__poller_io *io, int *err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, global_init);
  if (global_rc != CURLE_OK) {
    *err = -ENOMEM;
    return NULL;
  }
  weft__http_driver *d = weft__calloc(1, sizeof *d);
  if (!d) {
    *err = -ENOMEM;
    return NULL;
  }
  d->io = io;
  const char *mode = getenv("WEFT_HTTP_DRIVER");
  d->in_coroutine = mode && strcmp(mode, "coroutine") == 0;
  return d;
}

weft__http_driver *weft__http_driver_get(int *err) {
  weft__http_driver *d = weft__io_ext_get(WEFT__HTTP_EXT_SLOT, &http_ext, driver_make, err);
  if (d && d->in_coroutine && !weft__ld_acq(&d->co_started)) {
    uint32_t zero = 0;
    if (weft__cas_ar(&d->co_started, &zero, 1)) {
      int rc = weft_spawn(NULL, driver_co, d);
      if (rc) {
        weft__st_rel(&d->co_started, 0);
        *err = rc;
        return NULL;
      }
    }
  }
  return d;
}

/* A curl multi handle set up for m (its client's limits as copied into m,
 * m's callbacks). Runs on the poller in multi_reset, after the transfers
 * were told they ended: their client may be freed by then, so nothing
 * here reads m->client (tests/torture: test_alloc_fail.http found it). */
static CURLM *multi_handle_new(weft__http_multi *m) {
  CURLM *h = curl_multi_init();
  if (!h)
    return NULL;
  curl_multi_setopt(h, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(h, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(h, CURLMOPT_TIMERDATA, m);
  curl_multi_setopt(h, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(h, CURLMOPT_MAX_TOTAL_CONNECTIONS, m->max_conns);
  curl_multi_setopt(h, CURLMOPT_MAX_HOST_CONNECTIONS, m->max_conns_per_host);
  if (m->max_cached_conns) /* else curl's: 4 x the transfers it has seen at once */
    curl_multi_setopt(h, CURLMOPT_MAXCONNECTS, m->max_cached_conns);
  return h;
}

int weft__http_multi_new(weft__http_driver *d, weft_http_client *c,
                         weft__http_multi **out) {
  weft__http_multi *m = weft__calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  m->d = d;
  m->client = c;
  m->max_conns = (long)c->cfg.max_conns;
  m->max_conns_per_host = (long)c->cfg.max_conns_per_host;
  m->max_cached_conns = (long)c->cfg.max_cached_conns;
  m->timer_ns = UINT64_MAX;
  m->multi = multi_handle_new(m);
  if (!m->multi) {
    weft__free(m, sizeof *m);
    return -ENOMEM;
  }
  weft__spin_lock(&d->lock);
  unsigned id = 0;
  while (id < d->nmultis && d->multis[id])
    id++;
  if (id == MAX_MULTIS) {
    weft__spin_unlock(&d->lock);
    curl_multi_cleanup(m->multi);
    weft__free(m, sizeof *m);
    return -EMFILE;
  }
  m->id = id;
  d->multis[id] = m;
  if (id == d->nmultis)
    d->nmultis++;
  weft__spin_unlock(&d->lock);
  *out = m;
  return 0;
}

/* The client is gone: the poller frees its multi once nothing is left in
 * it (ext_poll). */
void weft__http_multi_retire(weft__http_multi *m) {
  weft__poller_io *io = m->d->io; /* m may be freed once dead is seen */
  weft__st_rel(&m->dead, true);
  weft__io_poke(io);
}

struct weft_runtime *weft__http_driver_rt(weft__http_driver *d) { return d->io->rt; }

weft_http_client *weft__http_default_client(weft__http_driver *d) {
  weft_http_client *c = weft__ld_acq(&d->dflt);
  if (c)
    return c;
  weft__spin_lock(&d->lock);
  c = d->dflt;
  weft__spin_unlock(&d->lock);
  if (c)
    return c;
  c = weft__calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->is_default = true;
  c->rt = d->io->rt;
  if (weft__http_multi_new(d, c, &c->m)) {
    weft__free(c, sizeof *c);
    return NULL;
  }
  weft__spin_lock(&d->lock);
  if (d->dflt) { /* another coroutine made one first */
    weft__spin_unlock(&d->lock);
    weft__http_multi_retire(c->m);
    weft__free(c, sizeof *c);
    return d->dflt;
  }
  weft__st_rel(&d->dflt, c);
  weft__spin_unlock(&d->lock);
  return c;
}
