/*
 * poller.c - the poller thread: one per runtime, started on first use,
 * named weft-poller. It owns an epoll instance, an eventfd to be woken,
 * and the runtime's timers (a hierarchical timing wheel, timer_wheel.c). It
 * never runs user code: it turns expired timers (and, as sockets land,
 * ready fds) into unparks, in batches, and leaves waking idle workers to
 * sched's wake rule (weft__unpark_batch: one inject, one wake; a woken
 * searcher wakes the next).
 *
 * It is sched's driver (sched/src/internal.h, weft__driver_ops): io
 * installs it when linked, and sched's deadlines arm timers through it.
 *
 * Timer life. The weft__timer is in the waiting coroutine's frame; the
 * poller keeps a node of its own for it in the wheel (timer_wheel.h says
 * why); the timer's .drv / .drv_seq name the node and its sequence number
 * at arm, which changes when the node is freed. Node states: ARMED, FIRING.
 *   T1. arm: under the lock, add a node to the wheel (ARMED); if it will
 *       expire before the poller next looks, lower the poller's wake-up
 *       and write the eventfd once (no re-arming per timer);
 *   T2. the poller, under the lock, takes every expired node (FIRING);
 *       then, unlocked, reads co / gen / result from each and claims the
 *       wait of that generation (park.c W3); then, under the lock once
 *       more, frees the batch's nodes (each free bumps seq, release);
 *       finally it unparks what it claimed. It touches a coroutine after
 *       freeing its node only if it claimed the wait, and then that
 *       coroutine cannot run until this unpark.
 *   T3. disarm (the wait ended, by the timer or otherwise): a node whose
 *       seq moved on was fired and freed: nothing to do, and no lock (a
 *       woken sleeper's usual path: T2 frees before it unparks). Else
 *       under the lock an ARMED node leaves the wheel and is freed; a
 *       FIRING one is waited for until its seq moves (a few instructions),
 *       so that once disarm returns the poller no longer touches the
 *       coroutine. (A node's seq is 32 bits: a disarmer would have to stall
 *       while its own node is freed and reused 2^32 times to be fooled.)
 * rt->driver_pending counts armed timers, so weft_run's deadlock check
 * does not report coroutines that a timer will wake.
 *
 * The poller sleeps in epoll_pwait2 with a nanosecond timeout (epoll_wait
 * rounds to milliseconds, which alone would cost up to 1 ms of lateness).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "dns.h"
#include "fd.h"
#include "probe.h"
#include "timer_wheel.h"
#include "weft/io.h"

enum { T_ARMED = 1, T_FIRING };
#define BATCH 256
#define NEVER UINT64_MAX
#define EVENTFD_TAG UINT64_MAX /* epoll data of the eventfd; fds carry fd|seq */

typedef struct poller {
  weft__poller_io io; /* rt, epfd, fd table: what fd.c and socket.c use */
  weft__dns *dns;     /* dns.c, touched only by this thread once started */
  struct weft_runtime *rt;
  int epfd, evfd;
  pthread_t thread;
  weft__spinlock lock; /* wheel, sleep_until, stopping */
  weft__twheel wheel;
  uint64_t sleep_until; /* when the poller will look at timers next */
  bool stopping;
  uint32_t poke_pending; /* atomic: an eventfd write the poller has not read */
  /* weft_stats: written by the poller thread only, read relaxed */
  uint64_t st_wakes, st_events, st_fired;
  struct {
    const weft__io_ext *ops;
    void *ctx; /* published (release) after ops; read by the poller */
  } ext[WEFT__EXT_SLOTS];
} poller;

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

/* Wake the poller. Pokes between two of its rounds share one eventfd
 * write: poke_pending is set by the first and cleared by the poller once
 * it has read the eventfd, before it looks at timers and queues again.
 * Both are exchanges on one word, so a poke that finds it set comes before
 * the poller's clearing exchange, which then acquires what the poke
 * posted: that round sees its work. */
static void poke(poller *p) {
  if (weft__xchg_ar(&p->poke_pending, 1))
    return;
  uint64_t one = 1;
  ssize_t r = write(p->evfd, &one, sizeof one);
  (void)r; /* a full counter (EAGAIN) wakes the poller just the same */
}

/* ---- the thread ------------------------------------------------------------- */

static void fire(poller *p, weft__tnode **fired, size_t n) { /* T2 */
  weft_co *cos[BATCH];
  int res[BATCH];
  size_t k = 0;
  for (size_t i = 0; i + 4 < n; i++) /* the records are cold: ask early */
    __builtin_prefetch(fired[i]->co, 1);
  for (size_t i = 0; i < n; i++) {
    weft__tnode *t = fired[i];
    if (weft__wait_claim_gen(t->co, t->gen)) {
      cos[k] = t->co;
      res[k++] = t->result;
    }
  }
  weft__spin_lock(&p->lock);
  for (size_t i = 0; i < n; i++)
    weft__twheel_node_free(&p->wheel, fired[i]);
  weft__spin_unlock(&p->lock);
  weft__stat_add(&p->st_fired, n);
  if (k)
    weft__unpark_batch(p->rt, cos, res, k);
  /* Only now: until the unparks are queued, these timers are all that
   * will wake their coroutines, and a worker checking for deadlock must
   * still count them. */
  weft__add_ar(&p->rt->driver_pending, (uint32_t)-(int32_t)n);
}

static void *poller_main(void *arg) {
  poller *p = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_setname_np(pthread_self(), "weft-poller");
  weft__set_thread_role(WEFT__WAKER_POLLER);
  struct epoll_event evs[64];
  weft__tnode *fired[BATCH];
  for (;;) {
    weft__spin_lock(&p->lock);
    if (p->stopping) {
      weft__spin_unlock(&p->lock);
      break;
    }
    uint64_t now = weft__now_ns();
    size_t n = weft__twheel_expire(&p->wheel, now, fired, BATCH);
    for (size_t i = 0; i < n; i++)
      weft__st_rlx(&fired[i]->state, T_FIRING);
    uint64_t next = weft__twheel_next(&p->wheel);
    p->sleep_until = n == BATCH ? 0 : next;
    weft__spin_unlock(&p->lock);
    if (n)
      fire(p, fired, n);
    if (n == BATCH)
      continue; /* more may be due: no sleep */
    uint64_t now2 = weft__now_ns();
    uint64_t left = next == NEVER ? NEVER : next > now2 ? next - now2 : 0;
    weft__dns_poll(p->dns, &left);
    for (unsigned i = 0; i < WEFT__EXT_SLOTS; i++) {
      void *ctx = weft__ld_acq(&p->ext[i].ctx);
      if (ctx)
        p->ext[i].ops->poll(ctx, &left);
    }
    struct timespec ts, *tsp = NULL;
    if (left != NEVER) {
      ts.tv_sec = (time_t)(left / 1000000000u);
      ts.tv_nsec = (long)(left % 1000000000u);
      tsp = &ts;
    }
    int got = epoll_pwait2(p->epfd, evs, 64, tsp, NULL);
    weft__stat_inc(&p->st_wakes);
    if (got > 0)
      weft__stat_add(&p->st_events, (uint64_t)got);
    WEFT_PROBE2(poller_wake, got, n);
    for (int i = 0; i < got; i++) {
      if (evs[i].data.u64 == EVENTFD_TAG) {
        uint64_t v;
        ssize_t r = read(p->evfd, &v, sizeof v);
        (void)r;
        weft__xchg_ar(&p->poke_pending, 0); /* acquires what the pokes posted */
      } else if (evs[i].data.u64 & WEFT__DNS_TAG) {
        weft__dns_event(p->dns, evs[i].data.u64, evs[i].events);
      } else if (evs[i].data.u64 & WEFT__EXT_TAG) {
        unsigned slot = (unsigned)(evs[i].data.u64 >> 58) & (WEFT__EXT_SLOTS - 1);
        void *ctx = weft__ld_acq(&p->ext[slot].ctx);
        if (ctx)
          p->ext[slot].ops->event(ctx, evs[i].data.u64 & WEFT__EXT_PAYLOAD, evs[i].events);
      } else {
        weft__fd_event(&p->io, evs[i].data.u64, evs[i].events);
      }
    }
  }
  return NULL;
}

/* ---- start (on first use) and stop --------------------------------------------- */

static poller *poller_get(struct weft_runtime *rt, int *err) {
  poller *p = weft__ld_acq((poller **)&rt->driver_ctx);
  if (p)
    return p;
  pthread_mutex_lock(&start_lock);
  p = weft__ld_acq((poller **)&rt->driver_ctx);
  if (p) {
    pthread_mutex_unlock(&start_lock);
    return p;
  }
  p = weft__calloc(1, sizeof *p);
  if (!p) {
    *err = -ENOMEM;
    goto fail;
  }
  p->rt = rt;
  p->sleep_until = NEVER;
  weft__twheel_init(&p->wheel, weft__now_ns());
  /* Each failure's own code: errno after a later call that succeeded, or
   * after an allocation, could be anything (0 made a timer "armed" that
   * no poller would ever fire: found by tests/torture). */
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  int e = p->epfd < 0 ? -errno : 0;
  p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!e && p->evfd < 0)
    e = -errno;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EVENTFD_TAG};
  p->io.tab = weft__fdtab_new();
  if (!e && !p->io.tab)
    e = -ENOMEM;
  if (!e && epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev))
    e = -errno;
  if (e) {
    *err = e;
    goto fail_fds;
  }
  p->io.rt = rt;
  p->io.epfd = p->epfd;
  p->dns = weft__dns_new(&p->io);
  if (!p->dns) { /* fail the start, so that the next call tries again */
    *err = -ENOMEM;
    goto fail_fds;
  }
  int rc = pthread_create(&p->thread, NULL, poller_main, p);
  if (rc == 0) /* named here too: a look (perf, /proc) before it runs */
    pthread_setname_np(p->thread, "weft-poller");
  if (rc) {
    fprintf(stderr, "weft: cannot start the poller thread: %s\n", strerror(rc));
    *err = -rc;
    goto fail_fds;
  }
  weft__st_rel((poller **)&rt->driver_ctx, p);
  pthread_mutex_unlock(&start_lock);
  return p;
fail_fds:
  weft__dns_free(p->dns);
  weft__fdtab_free(p->io.tab);
  if (p->epfd >= 0)
    close(p->epfd);
  if (p->evfd >= 0)
    close(p->evfd);
  weft__free(p, sizeof *p);
fail:
  pthread_mutex_unlock(&start_lock);
  return NULL;
}

static void poller_stop(struct weft_runtime *rt) {
  poller *p = rt->driver_ctx;
  if (!p)
    return;
  weft__spin_lock(&p->lock);
  p->stopping = true;
  weft__spin_unlock(&p->lock);
  poke(p);
  pthread_join(p->thread, NULL);
  /* Timers still armed belong to coroutines the runtime will never
   * resume: drop them with their stacks. */
  weft__twheel_free(&p->wheel);
  for (unsigned i = 0; i < WEFT__EXT_SLOTS; i++)
    if (p->ext[i].ctx)
      p->ext[i].ops->free(p->ext[i].ctx);
  weft__dns_free(p->dns);
  weft__fdtab_free(p->io.tab);
  close(p->epfd);
  close(p->evfd);
  weft__free(p, sizeof *p);
  rt->driver_ctx = NULL;
}

/* ---- timers: sched's driver --------------------------------------------------- */

static int timer_arm(struct weft_runtime *rt, weft__timer *t) { /* T1 */
  int err = 0;
  poller *p = poller_get(rt, &err);
  if (!p)
    return err;
  weft__spin_lock(&p->lock);
  weft__tnode *n = weft__twheel_add(&p->wheel, t);
  if (!n) {
    weft__spin_unlock(&p->lock);
    return -ENOMEM;
  }
  weft__st_rlx(&n->state, T_ARMED);
  t->drv = n;
  t->drv_seq = n->seq;
  weft__add_ar(&rt->driver_pending, 1);
  uint64_t due = weft__twheel_due(&p->wheel, t->deadline_ns);
  bool wake = due < p->sleep_until;
  if (wake)
    p->sleep_until = due;
  weft__spin_unlock(&p->lock);
  if (wake)
    poke(p);
  return 0;
}

static void timer_disarm(struct weft_runtime *rt, weft__timer *t) { /* T3 */
  weft__tnode *n = t->drv;
  if (weft__ld_acq(&n->seq) != t->drv_seq)
    return; /* fired and freed */
  poller *p = rt->driver_ctx;
  weft__spin_lock(&p->lock);
  if (weft__ld_rlx(&n->seq) == t->drv_seq && weft__ld_rlx(&n->state) == T_ARMED) {
    weft__twheel_del(&p->wheel, n);
    weft__twheel_node_free(&p->wheel, n);
    weft__spin_unlock(&p->lock);
    weft__add_ar(&rt->driver_pending, (uint32_t)-1);
    return;
  }
  weft__spin_unlock(&p->lock);
  while (weft__ld_acq(&n->seq) == t->drv_seq) /* FIRING: T2 frees it soon */
    weft__cpu_relax();
}

weft__dns *weft__dns_of(struct weft_runtime *rt) {
  poller *p = rt->driver_ctx;
  return p ? p->dns : NULL;
}

void weft__io_poke(weft__poller_io *io) { poke((poller *)io); }

weft__poller_io *weft__io_current(int *err) {
  weft__worker *w = weft__current_worker();
  if (!w || !w->current) {
    *err = WEFT_ENOTCO;
    return NULL;
  }
  poller *p = poller_get(w->rt, err);
  return p ? &p->io : NULL;
}

void *weft__io_ext_get(unsigned slot, const weft__io_ext *ops,
                       void *(*make)(weft__poller_io *io, int *err), int *err) {
  weft__poller_io *io = weft__io_current(err);
  if (!io)
    return NULL;
  poller *p = (poller *)io;
  void *ctx = weft__ld_acq(&p->ext[slot].ctx);
  if (ctx)
    return ctx;
  pthread_mutex_lock(&start_lock);
  ctx = p->ext[slot].ctx;
  if (!ctx) {
    ctx = make(io, err);
    if (ctx) {
      p->ext[slot].ops = ops;
      weft__st_rel(&p->ext[slot].ctx, ctx);
      poke(p); /* its first poll */
    }
  }
  pthread_mutex_unlock(&start_lock);
  return ctx;
}

static void poller_stats(struct weft_runtime *rt, weft_stats *out) {
  poller *p = weft__ld_acq((poller **)&rt->driver_ctx);
  if (!p)
    return;
  out->poller.wakes = weft__stat_ld(&p->st_wakes);
  out->poller.events = weft__stat_ld(&p->st_events);
  out->poller.timers_fired = weft__stat_ld(&p->st_fired);
  weft__spin_lock(&p->lock);
  out->poller.timers_armed = p->wheel.count;
  weft__spin_unlock(&p->lock);
  weft__dns_stats(p->dns, out);
  for (unsigned i = 0; i < WEFT__EXT_SLOTS; i++) {
    void *ctx = weft__ld_acq(&p->ext[i].ctx);
    if (ctx && p->ext[i].ops->stats)
      p->ext[i].ops->stats(ctx, out);
  }
}

static const weft__driver_ops io_driver = {
    .timer_arm = timer_arm,
    .timer_disarm = timer_disarm,
    .runtime_stop = poller_stop,
    .stats = poller_stats,
};

/* Installed when io is linked (shared library) and on first use of any io
 * call (a static archive links this file only when something needs it). */
__attribute__((constructor)) void weft__io_install(void) {
  if (weft__get_driver() != &io_driver)
    weft__set_driver(&io_driver);
}
