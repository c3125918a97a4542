/*
 * internal.h - the records the scheduler is made of, shared by sched/src.
 *
 * Ownership in one paragraph: a runtime owns its workers, its inject queue,
 * its idle list and its stack registry. A worker owns its run queue (ring +
 * LIFO slot; thieves may take from the ring's head only), its stack pool
 * and its "after switch" slot. A coroutine record lives at the top of its
 * own stack mapping (one allocation per coroutine, and a parked coroutine
 * costs one touched page), so freeing a coroutine is returning its stack.
 *
 * Files: ctx.* (machine switch), stack.c (mappings, guard pages, pools,
 * overflow report), runq.c (ring, inject queue), park.c (the park/unpark
 * protocol), worker.c (worker loop, stealing, sleep and the wake rule),
 * co.c (spawn, exit, join, yield), runtime.c (start/stop, config), error.c.
 */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "weft/sched.h"

#define WEFT__HIDDEN __attribute__((visibility("hidden")))
#define WEFT__CACHELINE 64

/* ---- coroutine states (weft_co.state), see park.c for the protocol ---- */
enum {
  WEFT__RUNNING = 0,  /* on a worker (or a foreign thread, not parked)     */
  WEFT__PARKING = 1,  /* announced a park, still on its own stack          */
  WEFT__PARKED = 2,   /* off its stack; only an unpark makes it runnable    */
  WEFT__NOTIFIED = 3, /* unparked before it finished parking: a permit      */
  WEFT__RUNNABLE = 4, /* in a run queue                                     */
};

/* Why a coroutine is parked (reports, stats and probes): the public
 * WEFT_PARK_* values (weft/sched.h). */
typedef enum weft__park_reason {
  WEFT__PARK_JOIN = WEFT_PARK_JOIN,
  WEFT__PARK_SYNC = WEFT_PARK_SYNC,
  WEFT__PARK_CHANNEL = WEFT_PARK_CHANNEL,
  WEFT__PARK_FD = WEFT_PARK_FD,
  WEFT__PARK_TIMER = WEFT_PARK_TIMER,
  WEFT__PARK_DNS = WEFT_PARK_DNS,
  WEFT__PARK_HTTP = WEFT_PARK_HTTP,
  WEFT__PARK_OFFLOAD = WEFT_PARK_OFFLOAD,
  WEFT__PARK_TEST = WEFT_PARK_OTHER,
} weft__park_reason;

enum {
  WEFT__CO_DETACHED = 1u << 0, /* frees itself at exit */
  WEFT__CO_FOREIGN = 1u << 1,  /* a foreign thread's stand-in: parks on a futex */
  WEFT__CO_LIVE = 1u << 2,     /* spawned and not yet freed (stack registry) */
};

/* weft_co.wait_token = generation << 2 | state (park.c, "Waits"). */
enum {
  WEFT__WAIT_NONE = 0,     /* not waiting, or the wait was claimed */
  WEFT__WAIT_OPEN = 1,     /* waiting; a waker or a canceller may claim it */
  WEFT__WAIT_SHIELDED = 2, /* waiting; only a waker may claim it */
};
#define WEFT__WAIT_STATE(t) ((t) & 3u)
#define WEFT__WAIT_GEN(t) ((t) >> 2)

/* Wake code for a foreign joiner whose runtime stopped: the coroutine it
 * joined is gone, so join must not touch it (reported as -ECANCELED). */
#define WEFT__WAKE_STOPPED (-100000)
/* Wake code for weft_run's caller when every coroutine is asleep. */
#define WEFT__WAKE_DEADLOCK (-100001)

/* A waiter on a primitive's queue: lives on the waiting coroutine's stack
 * (or the foreign thread's), linked under the primitive's lock. */
typedef struct weft__waiter {
  weft_co *co;
  struct weft__waiter *next, *prev;
  bool linked;
  int result;        /* set by the claimer before the unpark */
  void *data;        /* channel: where to copy from / to */
  struct weft__select *sel; /* select: the shared record, else NULL */
  unsigned sel_case;        /* select: this waiter's case index */
} weft__waiter;

/* The queue is the public header's weft__waitq_pub (head and tail as void
 * pointers), so that primitives users embed need no cast. */
typedef weft__waitq_pub weft__waitq;

/* Marks weft_co.joiner once the coroutine has finished. */
#define WEFT__JOIN_DONE ((weft_co *)(uintptr_t)1)
/* Marks weft_co.joiner while E2 claims its joiner's wait (co.c). */
#define WEFT__JOIN_BUSY ((weft_co *)(uintptr_t)2)

struct weft_co {
  void *sp;          /* saved stack pointer while not running */
  uint32_t state;    /* WEFT__RUNNING ... (atomic) */
  int wake_result;   /* what park() returns; written before the unpark CAS */
  uint32_t flags;
  uint32_t park_reason;
  uint32_t wait_token;     /* WEFT__WAIT_*: who may complete the current wait */
  uint32_t cancel_pending; /* weft_cancel came; delivered at a cancellable wait */
  uint32_t shield;         /* weft_shield_enter depth: waits not cancellable */
  uint64_t id;
  void *(*fn)(void *);
  void *arg;
  void *result;       /* fn's return value, published by the joiner CAS */
  weft_co *joiner;    /* NULL, the joining coroutine, WEFT__JOIN_BUSY/DONE */
  uint32_t joiner_gen; /* the joiner's wait generation (co.c, J1) */
  weft_co *next;      /* run queue / pool / inject links */
  struct weft_runtime *rt;
  /* The mapping: [map, map + guard) is the guard, the record sits at the
   * top of [map + guard, map + map_size). */
  char *map;
  size_t map_size;
  weft_co *reg_prev, *reg_next; /* stack registry (all mappings) */
#if WEFT_ASAN
  void *asan_fake_stack;
#endif
#if WEFT_TSAN
  void *tsan_fiber;
#endif
};

/* The pending action that the context switched to performs for the one
 * that switched away (a context cannot requeue or free itself while it is
 * still running on its own stack). */
typedef enum weft__after_op {
  WEFT__AFTER_NONE = 0,
  WEFT__AFTER_REQUEUE, /* yield: put co on the ring's tail */
  WEFT__AFTER_SPAWNED, /* spawn: put the parent in the LIFO slot */
  WEFT__AFTER_PARK,    /* finish co's park (park.c step 3) */
  WEFT__AFTER_EXIT,    /* co has finished: wake its joiner or free it */
} weft__after_op;

typedef struct weft__after {
  weft__after_op op;
  weft_co *co;
  void (*unlock)(void *); /* AFTER_PARK: released once co is off its stack */
  void *unlock_arg;
} weft__after;

#define WEFT__RING_SIZE 256u
#define WEFT__RING_MASK (WEFT__RING_SIZE - 1)
/* Tag on a ring slot: a spawn continuation (runq.c: taken newest first). */
#define WEFT__RING_CONT ((uintptr_t)1)
#define WEFT__LIFO_MAX_RUNS 16u  /* consecutive LIFO-slot runs before the ring */
#define WEFT__INJECT_INTERVAL 61u /* ticks between inject-queue checks */
#ifndef WEFT__HEAD_INTERVAL
#define WEFT__HEAD_INTERVAL 61u /* ticks between ring-head (oldest) picks */
#endif

typedef struct weft__worker {
  /* Thieves touch head and ring; keep the owner's hot fields apart.
   * head = version << 32 | index, changed only by CAS (runq.c). */
  uint64_t head __attribute__((aligned(WEFT__CACHELINE)));
  uint32_t tail; /* written by the owner only */
  uintptr_t ring[WEFT__RING_SIZE]; /* weft_co * | WEFT__RING_CONT */

  /* Owner-only from here on. */
  weft_co *lifo __attribute__((aligned(WEFT__CACHELINE)));
  bool lifo_cont; /* the LIFO coroutine is a spawning parent */
  uint32_t lifo_runs;
  uint32_t tick;
  bool searching; /* counted in rt->nsearching */
  unsigned index;
  uint64_t rng;
  weft_co *current; /* running coroutine, NULL on the scheduler stack */
  void *sched_sp;   /* the worker's own stack while a coroutine runs */
  weft__after after;
  /* stack pool (owner only; pool_len written with weft__stat_*, as
   * weft_stats reads it) */
  weft_co *pool;
  unsigned pool_len;
  /* id allocation: [next_id, end_id) reserved from rt->next_id */
  uint64_t next_id, end_id;
  /* Counters (stats.c): written by this worker only, with relaxed stores
   * (weft__stat_inc), read by weft_stats_get from any thread. */
  weft_worker_stats st;
  uint64_t start_ns, end_ns; /* the thread's life, for busy time */

  /* Written by thieves (relaxed atomic adds): kept off the owner's lines. */
  uint64_t stolen_from __attribute__((aligned(WEFT__CACHELINE)));

  /* sleeping: the futex word a waker bumps; idle says "on the idle list" */
  uint32_t wake_seq __attribute__((aligned(WEFT__CACHELINE)));
  bool idle; /* guarded by rt->idle_lock */

  pthread_t thread;
  struct weft_runtime *rt;
  void *altstack; /* sigaltstack for the overflow report */
  size_t altstack_size;
#if WEFT_ASAN
  void *asan_sched_fake;
  const void *thread_stack_bottom;
  size_t thread_stack_size;
#endif
#if WEFT_TSAN
  void *tsan_fiber; /* the worker thread's own fiber */
#endif
} weft__worker;

struct weft_runtime {
  unsigned nworkers;
  size_t stack_size; /* usable bytes per coroutine stack, page multiple */
  weft__worker *workers;

  /* Wake rule state (worker.c). */
  uint32_t nsearching __attribute__((aligned(WEFT__CACHELINE)));
  uint32_t nidle;
  uint32_t stopping;

  pthread_mutex_t idle_lock __attribute__((aligned(WEFT__CACHELINE)));
  unsigned *idle_stack; /* indices of idle workers */
  unsigned idle_len;

  /* Inject queue: coroutines from foreign threads, the poller, overflow
   * (runq.c). A circular array of pointers, so that pushing and taking a
   * batch copies pointers and never walks cold coroutine records under
   * the lock; a list through co->next only if the array cannot grow. */
  weft__spinlock inject_lock __attribute__((aligned(WEFT__CACHELINE)));
  weft_co **inject_q;   /* inject_cap slots, a power of two (or 0) */
  uint32_t inject_cap;
  uint32_t inject_first; /* index of the oldest in inject_q */
  uint32_t inject_qlen;  /* how many are in inject_q */
  weft_co *inject_over_head, *inject_over_tail; /* out of memory only */
  uint32_t inject_len; /* all of them; atomic, read without the lock as a hint */

  /* Stack registry: every mapping, live or pooled (stack.c). */
  weft__spinlock reg_lock __attribute__((aligned(WEFT__CACHELINE)));
  weft_co *reg_head;
  size_t reg_count; /* written under reg_lock (weft__stat_*), read by weft_stats */
  weft_co *gpool; /* shared pool, for foreign threads and rebalancing */
  unsigned gpool_len;
  unsigned gpool_low;      /* decay (stack.c D1-D3): fewest in this period */
  uint64_t decay_start_ns; /* the period's start; atomic, read unlocked */

  bool deadlock_check; /* weft_run's private runtime (runtime.c) */
  uint32_t deadlocked;
  weft_co *main_co;
  struct weft__offload *offload; /* offload.c */
  void *driver_ctx;              /* io's poller for this runtime */
  uint32_t driver_pending;       /* waits io will complete: timers, fds (atomic) */
  uint32_t offload_busy;         /* jobs queued or running (atomic) */

  uint64_t next_id __attribute__((aligned(WEFT__CACHELINE)));
  uint64_t foreign_spawned; /* spawns from non-worker threads (atomic) */
  uint64_t offload_done;    /* offload calls finished (atomic) */
  uint64_t start_ns;        /* weft_runtime_start's clock reading */
};

/* ---- stats.c ---- */
/* Who is this thread (the unpark probe's waker): workers are known by
 * weft__current_worker; the poller and offload threads say so once. */
WEFT_API void weft__set_thread_role(int waker);
WEFT__HIDDEN int weft__thread_role(void);
/* WEFT_STATS=1: print the runtime's summary (runtime stop, after the
 * workers have stopped and before the poller goes). */
WEFT__HIDDEN void weft__stats_at_stop(struct weft_runtime *rt);

/* ---- worker.c ---- */
WEFT_API weft__worker *weft__current_worker(void);
WEFT__HIDDEN void weft__set_current_worker(weft__worker *w);
WEFT__HIDDEN void *weft__worker_main(void *arg);
WEFT__HIDDEN void weft__wake_one(struct weft_runtime *rt);
WEFT__HIDDEN void weft__wake_all(struct weft_runtime *rt);
WEFT__HIDDEN weft_co *weft__next_local(weft__worker *w, bool fifo);
WEFT__HIDDEN void weft__switch(weft__worker *w, weft_co *from, weft_co *to);
WEFT__HIDDEN void weft__switch_finish(weft_co *self);
WEFT__HIDDEN void weft__after_switch(weft__worker *w);
WEFT__HIDDEN void weft__schedule(weft__worker *w, weft_co *to);

/* ---- runq.c ---- */
WEFT__HIDDEN void weft__ring_push(weft__worker *w, weft_co *co);
WEFT__HIDDEN void weft__ring_push_tagged(weft__worker *w, uintptr_t slot);
WEFT__HIDDEN uintptr_t weft__ring_peek_tail(const weft__worker *w);
WEFT__HIDDEN uintptr_t weft__ring_peek_head(const weft__worker *w);
WEFT__HIDDEN weft_co *weft__ring_pop_head(weft__worker *w);
WEFT__HIDDEN weft_co *weft__ring_pop_tail(weft__worker *w);
WEFT__HIDDEN uint32_t weft__ring_len(const weft__worker *w);
WEFT__HIDDEN weft_co *weft__ring_steal(weft__worker *thief,
                                       weft__worker *victim);
WEFT__HIDDEN void weft__inject_push(struct weft_runtime *rt,
                                    weft_co *const *cos, uint32_t n);
WEFT__HIDDEN weft_co *weft__inject_pop(struct weft_runtime *rt);
WEFT__HIDDEN weft_co *weft__inject_pop_batch(struct weft_runtime *rt,
                                             weft__worker *w);
WEFT__HIDDEN void weft__make_runnable(weft__worker *w, struct weft_runtime *rt,
                                      weft_co *co, bool lifo);
WEFT__HIDDEN void weft__lifo_put(weft__worker *w, weft_co *co, bool cont);

/* ---- park.c ---- */
WEFT__HIDDEN int weft__park(weft__park_reason why, void (*unlock)(void *),
                            void *arg);
WEFT__HIDDEN void weft__unpark(weft_co *co, int result);
WEFT__HIDDEN void weft__finish_park(weft__worker *w, const weft__after *a);
WEFT__HIDDEN weft_co *weft__foreign_self(void);
WEFT_API weft_co *weft__self_or_foreign(void);
WEFT_API int weft__wait_begin(weft_co *co);
WEFT_API bool weft__wait_claim(weft_co *co);
WEFT_API bool weft__wait_claim_gen(weft_co *co, uint32_t gen);
WEFT_API uint32_t weft__wait_gen(const weft_co *co);
WEFT__HIDDEN int weft__wait_park(weft_co *co, weft__park_reason why,
                                 void (*unlock)(void *), void *arg);

/* Waiter queues (FIFO), used under the owning primitive's lock. */
static inline void weft__wq_push(weft__waitq *q, weft__waiter *w) {
  weft__waiter *tail = q->tail;
  w->next = NULL;
  w->prev = tail;
  if (tail)
    tail->next = w;
  else
    q->head = w;
  q->tail = w;
  w->linked = true;
}

static inline void weft__wq_push_front(weft__waitq *q, weft__waiter *w) {
  weft__waiter *head = q->head;
  w->prev = NULL;
  w->next = head;
  if (head)
    head->prev = w;
  else
    q->tail = w;
  q->head = w;
  w->linked = true;
}

static inline void weft__wq_remove(weft__waitq *q, weft__waiter *w) {
  if (!w->linked)
    return;
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->linked = false;
}

/* Pop waiters until one can be claimed (others were cancelled, timed out
 * or, in a select, completed elsewhere: they unlink themselves later, so
 * popping them here is all they need). NULL when none is left. */
static inline weft__waiter *weft__wq_claim(weft__waitq *q) {
  weft__waiter *w;
  while ((w = (weft__waiter *)q->head)) {
    weft__wq_remove(q, w);
    if (weft__wait_claim(w->co))
      return w;
  }
  return NULL;
}

/* ---- stack.c ---- */
WEFT__HIDDEN int weft__stack_alloc(struct weft_runtime *rt, weft__worker *w,
                                   weft_co **out);
WEFT__HIDDEN void weft__stack_free(struct weft_runtime *rt, weft__worker *w,
                                   weft_co *co);
WEFT__HIDDEN void weft__stack_trim(struct weft_runtime *rt, weft__worker *w);
/* Unmap the shared pool's stacks that went unused for a period (stack.c,
 * D2): cheap when the period is not over (a clock read). */
WEFT__HIDDEN void weft__stack_decay(struct weft_runtime *rt);
WEFT__HIDDEN void weft__stack_release_all(struct weft_runtime *rt);
WEFT__HIDDEN int weft__stack_global_init(void);
WEFT__HIDDEN int weft__altstack_install(weft__worker *w);
WEFT__HIDDEN void weft__altstack_remove(weft__worker *w);
WEFT__HIDDEN size_t weft__page_size(void);
WEFT__HIDDEN const char *weft__stack_guard_name(void);

/* ---- co.c ---- */
WEFT__HIDDEN int weft__spawn_in(struct weft_runtime *rt, weft__worker *w,
                                weft_co **out, void *(*fn)(void *), void *arg,
                                bool detached);
WEFT__HIDDEN void weft__co_finish(weft__worker *w, weft_co *co);

WEFT__HIDDEN void weft__deadlock(struct weft_runtime *rt);

/* ---- runtime.c ---- */
/* A WEFT_WORKERS value: 0 with *out in 1..1024, or -EINVAL. */
WEFT__HIDDEN int weft__parse_workers(const char *s, unsigned *out);

/* ---- the driver hook (DESIGN.md: sched needs time, io provides it) ----
 * The functions marked WEFT_API in this header are sched's interface to
 * io and http: exported from the shared library so the other modules can
 * link to them, but private (weft__ names, no public header).
 * A timer lives in the waiting coroutine's frame. The driver (io's poller)
 * keeps armed timers in its own structure; when one expires it claims the
 * wait of generation `gen` (park.c W3) and unparks co with `result`.
 * disarm is synchronous: once it returns the driver no longer touches t. */
typedef struct weft__timer {
  uint64_t deadline_ns; /* CLOCK_MONOTONIC */
  weft_co *co;
  uint32_t gen;
  int result;
  void *drv;        /* the driver's bookkeeping (io: its timer node, */
  uint32_t drv_seq; /* and that node's sequence number at arm) */
} weft__timer;

typedef struct weft__driver_ops {
  int (*timer_arm)(struct weft_runtime *rt, weft__timer *t); /* 0 / -errno */
  void (*timer_disarm)(struct weft_runtime *rt, weft__timer *t);
  void (*runtime_stop)(struct weft_runtime *rt); /* before stacks go */
  /* Fill the poller's, DNS's and (through io's extensions) HTTP's parts of
   * a snapshot; any thread, while the runtime runs. May be NULL. */
  void (*stats)(struct weft_runtime *rt, weft_stats *out);
} weft__driver_ops;

/* Set once by io when it is linked in (a constructor); NULL without io. */
WEFT_API void weft__set_driver(const weft__driver_ops *ops);
WEFT_API const weft__driver_ops *weft__get_driver(void);
WEFT_API uint64_t weft__now_ns(void);
/* weft__wait_park with a deadline (0: none): -ETIMEDOUT when it passes. */
WEFT_API int weft__wait_park_until(weft_co *co, weft__park_reason why,
                                       void (*unlock)(void *), void *arg,
                                       uint64_t deadline_ns);
/* Unpark many at once (the poller's batches): one inject, one wake. The
 * array is reused as scratch (cos[] holds garbage afterwards). */
WEFT_API void weft__unpark_batch(struct weft_runtime *rt, weft_co **cos,
                                 const int *results, size_t n);

/* ---- offload.c ---- */
WEFT__HIDDEN int weft__offload_init(struct weft_runtime *rt, unsigned max);
WEFT__HIDDEN void weft__offload_stop(struct weft_runtime *rt);
WEFT__HIDDEN unsigned weft__offload_threads(struct weft_runtime *rt);
WEFT_API int weft__offload_ex(void *(*fn)(void *), void *arg, void **result,
                              bool *submitted);

/* ---- alloc.c: the library's own records (jemalloc unless disabled) ---- */
WEFT_API void *weft__malloc(size_t n);
WEFT_API void *weft__calloc(size_t n, size_t size);
WEFT_API void weft__free(void *p, size_t n);

/* ---- futex ---- */
WEFT__HIDDEN void weft__futex_wait(uint32_t *addr, uint32_t expected);
WEFT__HIDDEN void weft__futex_wake(uint32_t *addr, int n);
WEFT__HIDDEN int weft__futex_wait_ms(uint32_t *addr, uint32_t expected,
                                     unsigned ms);

#endif
