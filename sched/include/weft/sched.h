/*
 * weft/sched.h - coroutines (green threads) run M:N over worker threads.
 *
 * Errors: every call that can fail returns 0 (or a count) on success and a
 * negative code on failure: -errno where an errno fits, WEFT_E* codes below
 * -1000 where none does. weft_strerror() names every code. weft calls never
 * leave a meaning in errno.
 *
 * Scheduling points: weft_spawn, weft_yield, weft_join and every call that
 * can park. A coroutine may resume on a different worker thread after any
 * of them, so thread-local state (including errno) read before a scheduling
 * point must be read again after it.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Codes for failures no errno describes. All are below -1000. */
enum {
  WEFT_EBASE = -1000,
  WEFT_ENOTCO = -1002,  /* called outside a coroutine where one is required */
  WEFT_ECLOSED = -1003, /* the channel is closed */
  WEFT_EDEADLOCK = -1004, /* every coroutine is asleep and nothing can wake them */
  /* DNS (weft_resolve, weft/io.h) */
  WEFT_EDNS_NOTFOUND = -1101, /* no such name, or no address of that family */
  WEFT_EDNS_SERVFAIL = -1102, /* the server failed */
  WEFT_EDNS_TIMEOUT = -1103,  /* no answer in time */
  WEFT_EDNS_REFUSED = -1104,  /* the server refused, or could not be reached */
  WEFT_EDNS_BADRESP = -1105,  /* a malformed answer (or name) */
  /* HTTP (weft/http.h) */
  WEFT_EHTTP_URL = -1201,       /* a malformed URL */
  WEFT_EHTTP_SCHEME = -1202,    /* a scheme other than http or https */
  WEFT_EHTTP_REFUSED = -1203,   /* the connection was refused or unreachable */
  WEFT_EHTTP_RESET = -1204,     /* the connection broke before the response ended */
  WEFT_EHTTP_TIMEOUT = -1205,   /* the connect or total timeout ran out */
  WEFT_EHTTP_TOOBIG = -1206,    /* the body is larger than max_body */
  WEFT_EHTTP_TLS = -1207,       /* TLS failed: handshake or certificate */
  WEFT_EHTTP_PROTOCOL = -1208,  /* the server's answer is not valid HTTP */
  WEFT_EHTTP_REDIRECTS = -1209, /* more redirects than allowed */
  WEFT_EHTTP_BODY = -1210,      /* the request body's reader failed */
  WEFT_EHTTP_FAILED = -1211,    /* another transfer failure */
};

typedef struct weft_co weft_co;           /* a coroutine handle */
typedef struct weft_runtime weft_runtime; /* workers, queues, pools */

typedef struct weft_config {
  /* Worker threads. 0: the WEFT_WORKERS environment variable if set, else
   * the number of CPUs in the process's affinity mask. */
  unsigned workers;
  /* Virtual size of each coroutine stack in bytes, rounded up to pages.
   * 0: 256 KiB. Pages are committed only when touched. */
  size_t stack_size;
  /* Most threads in the offload pool (weft_offload). 0: 64. */
  unsigned offload_threads;
} weft_config;

/* Start a runtime, run fn(arg) as its first coroutine, and return when that
 * coroutine returns, storing its return value in *result (if result is not
 * NULL). Then stop the runtime: coroutines still alive are cancelled and
 * freed (see weft_runtime_stop). Returns 0, or a negative code if the
 * runtime could not start (bad configuration, no memory, no threads). */
WEFT_API int weft_run(const weft_config *cfg, void *(*fn)(void *), void *arg,
                      void **result);

/* Create a coroutine running fn(arg) in the calling coroutine's runtime.
 * With co non-NULL the coroutine is joinable and *co receives its handle,
 * which must be joined exactly once; with co NULL it is detached and frees
 * itself when fn returns.
 *
 * The new coroutine runs at once on this worker and the caller waits in
 * the worker's LIFO slot, resuming as soon as the child finishes or parks
 * ("work first": a spawn loop keeps one hot stack; an older waiting parent
 * moves to the ring, where idle workers steal it, which is how fork-join
 * code spreads over the cores).
 *
 * Returns 0; -ENOMEM when no stack can be had; -EAGAIN when the process
 * reached vm.max_map_count (only with the mprotect guard fallback, and a
 * one-time message on stderr says so); -EINVAL for a NULL fn; WEFT_ENOTCO
 * outside a coroutine (use weft_runtime_spawn from foreign threads). */
WEFT_API int weft_spawn(weft_co **co, void *(*fn)(void *), void *arg);

/* Wait until co finishes, store its return value in *result (if not NULL)
 * and release the handle. Callable from a coroutine (which parks) or from a
 * foreign thread (which blocks). Returns 0, or -EINVAL for NULL, -EDEADLK
 * for joining oneself, -ECANCELED if the runtime was stopped first (the
 * handle is then gone with it). */
WEFT_API int weft_join(weft_co *co, void **result);

/* Deadlines. Every blocking call has an _until twin that also returns
 * -ETIMEDOUT once the CLOCK_MONOTONIC instant deadline_ns (weft_now_ns()
 * in weft/io.h, plus a timeout) has passed, with nothing done, as a
 * cancel would; 0 means no deadline. A coroutine needs weft::io linked for
 * deadlines (its poller keeps the time); without it they return -ENOTSUP.
 * A foreign thread's deadline needs nothing. */
WEFT_API int weft_join_until(weft_co *co, void **result, uint64_t deadline_ns);

/* Let other runnable coroutines run; the caller goes to the back of its
 * worker's queue. Returns at once if nothing else is runnable. A no-op
 * outside a coroutine. */
WEFT_API void weft_yield(void);

/* The calling coroutine, or NULL on a thread that is not running one. */
WEFT_API weft_co *weft_self(void);

/* A coroutine's id: unique within its runtime, 1 for weft_run's first
 * coroutine, in creation order per worker. 0 for NULL. */
WEFT_API uint64_t weft_co_id(const weft_co *co);

/* Number of worker threads of the calling coroutine's runtime (0 outside
 * one). */
WEFT_API unsigned weft_workers(void);

/* The name of a code returned by any weft call (a static string). */
WEFT_API const char *weft_strerror(int code);

/* Join every coroutine in cos[0..n), storing results[i] (results may be
 * NULL): asyncio.gather for weft. Returns 0, or the first error of a join.
 * If the caller is cancelled while gathering, the children are cancelled
 * too, all are still joined (no handle is left behind), and the call
 * returns -ECANCELED. */
WEFT_API int weft_gather(weft_co **cos, size_t n, void **results);

/* ---- Cancellation ---------------------------------------------------------
 *
 * weft_cancel(co) makes co's current wait, or its next one, return
 * -ECANCELED: join, every primitive below, and (later) I/O, timers, DNS
 * and HTTP. One cancel is delivered once. Cancelling a coroutine that has
 * finished but is not yet joined is harmless; co must be a live handle (not
 * one already joined). Between weft_shield_enter and weft_shield_leave
 * (nestable) the calling coroutine's waits are not cancellable; a cancel
 * that arrives meanwhile is delivered at the first wait after the shield.
 * Cleanup that must not be interrupted (releasing a resource, finishing a
 * protocol exchange) belongs in a shield. */
WEFT_API int weft_cancel(weft_co *co);
WEFT_API void weft_shield_enter(void);
WEFT_API void weft_shield_leave(void);

/* ---- Synchronisation ------------------------------------------------------
 *
 * All of them park the calling coroutine (a foreign thread blocks) and
 * never block a worker thread; waits return -ECANCELED when cancelled.
 * Initialise with the *_INIT macro or memset to zero; the fields are
 * private. None needs destroying unless it says so. */

typedef struct weft__waitq_pub {
  void *head, *tail;
} weft__waitq_pub;

/* Wait group: add before starting work, done when one piece ends, wait
 * until the count is zero. add with a count that would go negative
 * returns -EINVAL and changes nothing. */
typedef struct weft_waitgroup {
  uint32_t lock_;
  int64_t count_;
  weft__waitq_pub waiters_;
} weft_waitgroup;
#define WEFT_WAITGROUP_INIT {0, 0, {0, 0}}
WEFT_API int weft_waitgroup_add(weft_waitgroup *wg, int64_t delta);
WEFT_API int weft_waitgroup_done(weft_waitgroup *wg);
WEFT_API int weft_waitgroup_wait(weft_waitgroup *wg);
WEFT_API int weft_waitgroup_wait_until(weft_waitgroup *wg, uint64_t deadline_ns);

/* Mutex. Fairness: bounded barging. An unlock wakes the first waiter but
 * lets a running coroutine take the lock meanwhile (no switch per lock
 * under contention); a waiter that has waited more than 1 ms turns on
 * hand-off, where unlock passes ownership straight to the queue's head
 * until the queue is empty, so no waiter starves. Not recursive; unlock
 * by the owner only. */
typedef struct weft_mutex {
  uint32_t state_;
  uint32_t lock_;
  weft__waitq_pub waiters_;
} weft_mutex;
#define WEFT_MUTEX_INIT {0, 0, {0, 0}}
WEFT_API int weft_mutex_lock(weft_mutex *m);
WEFT_API int weft_mutex_lock_until(weft_mutex *m, uint64_t deadline_ns);
WEFT_API int weft_mutex_trylock(weft_mutex *m); /* 0 or -EBUSY */
WEFT_API void weft_mutex_unlock(weft_mutex *m);

/* Condition variable, FIFO. weft_cond_wait releases m, waits, and
 * re-acquires m before returning, even when it returns -ECANCELED.
 * Spurious wake-ups do not happen, but wait in a loop on your predicate
 * anyway: another coroutine may run between the signal and the return. */
typedef struct weft_cond {
  uint32_t lock_;
  weft__waitq_pub waiters_;
} weft_cond;
#define WEFT_COND_INIT {0, {0, 0}}
WEFT_API int weft_cond_wait(weft_cond *c, weft_mutex *m);
WEFT_API int weft_cond_wait_until(weft_cond *c, weft_mutex *m, uint64_t deadline_ns);
WEFT_API void weft_cond_signal(weft_cond *c);
WEFT_API void weft_cond_broadcast(weft_cond *c);

/* Counting semaphore with hand-off: a release goes to the longest waiter
 * first (FIFO), so no waiter starves. */
typedef struct weft_sem {
  uint32_t lock_;
  uint64_t count_;
  weft__waitq_pub waiters_;
} weft_sem;
#define WEFT_SEM_INIT(n) {0, (n), {0, 0}}
WEFT_API int weft_sem_acquire(weft_sem *s);
WEFT_API int weft_sem_acquire_until(weft_sem *s, uint64_t deadline_ns);
WEFT_API int weft_sem_tryacquire(weft_sem *s); /* 0 or -EAGAIN */
WEFT_API void weft_sem_release(weft_sem *s);

/* ---- Blocking calls -------------------------------------------------------
 *
 * weft_offload runs fn(arg) on the runtime's offload pool (threads named
 * weft-blk-N, started when needed up to weft_config.offload_threads, gone
 * after 2 s idle; they never run coroutines) and parks the caller until it
 * returns, storing fn's value in *result. This is the way to call
 * blocking code (file I/O, a blocking library) without stopping a worker.
 * On a foreign thread it simply calls fn. Returns 0, -ENOMEM, -EAGAIN (no
 * pool thread could be started), or -ECANCELED: the caller stopped
 * waiting, but fn cannot be interrupted and runs to its end on the pool,
 * so arg must stay valid until fn returns (pass heap data fn frees). */
WEFT_API int weft_offload(void *(*fn)(void *), void *arg, void **result);

/* ---- Channels ---------------------------------------------------------------
 *
 * A bounded channel of fixed-size elements (copied in and out), with Go's
 * semantics: capacity 0 is a rendezvous; any number of senders and
 * receivers on any workers or foreign threads; after weft_chan_close,
 * receivers drain what is buffered and then get WEFT_ECLOSED, and senders
 * get WEFT_ECLOSED (never a crash). A receive that pairs with a parked
 * sender (and the reverse) hands the element over directly and runs the
 * woken side next on the same worker. */
typedef struct weft_chan weft_chan;
/* 0, -EINVAL (elem_size 0 or over 1 MiB), -ENOMEM. */
WEFT_API int weft_chan_create(weft_chan **ch, size_t elem_size, size_t capacity);
/* Frees the channel; -EBUSY (and nothing freed) while anyone waits on it. */
WEFT_API int weft_chan_destroy(weft_chan *ch);
/* 0, WEFT_ECLOSED, -ECANCELED (nothing sent / received). */
WEFT_API int weft_chan_send(weft_chan *ch, const void *elem);
WEFT_API int weft_chan_recv(weft_chan *ch, void *elem);
WEFT_API int weft_chan_send_until(weft_chan *ch, const void *elem, uint64_t deadline_ns);
WEFT_API int weft_chan_recv_until(weft_chan *ch, void *elem, uint64_t deadline_ns);
/* The same without waiting: -EAGAIN where they would wait. */
WEFT_API int weft_chan_try_send(weft_chan *ch, const void *elem);
WEFT_API int weft_chan_try_recv(weft_chan *ch, void *elem);
/* 0, or WEFT_ECLOSED if it was closed already. */
WEFT_API int weft_chan_close(weft_chan *ch);
WEFT_API size_t weft_chan_len(weft_chan *ch); /* elements buffered now */

/* Select: wait until one of n cases can proceed, do it, and return its
 * index, with cases[i].result = 0 or WEFT_ECLOSED. A send case sends
 * *elem, a receive case receives into elem. Ready cases are taken in a
 * random order. With WEFT_SELECT_NONBLOCK it returns -EAGAIN instead of
 * waiting (Go's default case). -ECANCELED when cancelled (no case done). */
enum { WEFT_SELECT_SEND = 1, WEFT_SELECT_RECV = 2 };
enum { WEFT_SELECT_NONBLOCK = 1 };
typedef struct weft_select_case {
  weft_chan *ch;
  int op;     /* WEFT_SELECT_SEND or WEFT_SELECT_RECV */
  void *elem; /* what to send / where to receive */
  int result; /* out: 0 or WEFT_ECLOSED for the case that fired */
} weft_select_case;
WEFT_API int weft_select(weft_select_case *cases, size_t n, int flags);
WEFT_API int weft_select_until(weft_select_case *cases, size_t n, int flags,
                               uint64_t deadline_ns);

/* ---- Embedding: for programs that own their threads ----------------------
 *
 * weft_runtime_start starts the workers and returns at once. Any thread may
 * then spawn into the runtime with weft_runtime_spawn and wait for a
 * coroutine with weft_join. weft_runtime_stop stops it: workers finish the
 * slice they are running (a coroutine that never reaches a scheduling point
 * delays the stop), coroutines still alive are never resumed again, foreign
 * threads blocked in weft_join on them return -ECANCELED, and every stack
 * and record is freed. A stopped coroutine's own cleanup code does not run:
 * to shut down in order, have coroutines return and join them first. */
WEFT_API int weft_runtime_start(const weft_config *cfg, weft_runtime **rt);
WEFT_API int weft_runtime_spawn(weft_runtime *rt, weft_co **co,
                                void *(*fn)(void *), void *arg);
/* Returns 0, -EINVAL for NULL, -EDEADLK when called from one of rt's own
 * coroutines. */
WEFT_API int weft_runtime_stop(weft_runtime *rt);

/* ---- Runtime statistics ---------------------------------------------------
 *
 * weft_stats_get takes a snapshot of a runtime's counters: per worker, the
 * poller, the offload pool, DNS and HTTP. Counters only grow (except the
 * "now" figures: in flight, depth, live); each is read on its own, so a
 * snapshot taken while the runtime runs is a moment's view of each counter,
 * not one instant of all of them. Cheap enough to call every second: it
 * reads a few cache lines per worker and allocates one array.
 *
 * WEFT_STATS=1 in the environment prints weft_stats_print's summary to
 * stderr when a runtime stops. */

/* Why a coroutine parked: index of weft_worker_stats.parks. */
enum {
  WEFT_PARK_JOIN = 0, /* weft_join / weft_gather */
  WEFT_PARK_SYNC,     /* mutex, condition variable, semaphore, wait group */
  WEFT_PARK_CHANNEL,  /* channel send, receive, select */
  WEFT_PARK_FD,       /* socket or pipe readiness (io) */
  WEFT_PARK_TIMER,    /* weft_sleep_ms and other pure timer waits (io) */
  WEFT_PARK_DNS,      /* weft_resolve (io) */
  WEFT_PARK_HTTP,     /* an HTTP transfer (http) */
  WEFT_PARK_OFFLOAD,  /* weft_offload, file calls */
  WEFT_PARK_OTHER,    /* anything else (tests) */
  WEFT_PARK_REASONS
};
/* "join", "sync", "channel", "fd", "timer", "dns", "http", "offload",
 * "other"; "?" out of range. */
WEFT_API const char *weft_park_reason_name(unsigned reason);

typedef struct weft_worker_stats {
  uint64_t runs;        /* slices: times a coroutine was switched in */
  uint64_t spawned;     /* coroutines spawned by code on this worker */
  uint64_t exited;      /* coroutines that finished on this worker */
  uint64_t yields;      /* weft_yield calls that switched */
  uint64_t steals;      /* successful steals by this worker */
  uint64_t stolen;      /* coroutines this worker took from others' rings */
  uint64_t stolen_from; /* coroutines others took from this worker's ring */
  uint64_t parks[WEFT_PARK_REASONS]; /* parks begun on this worker */
  uint64_t sleeps;      /* times the worker slept on its futex */
  uint64_t idle_ns;     /* time asleep */
  uint64_t busy_ns;     /* time awake since the worker started */
  uint32_t ring_high_water; /* most coroutines its ring ever held (256 max) */
} weft_worker_stats;

typedef struct weft_stats {
  uint64_t uptime_ns;         /* since the runtime started */
  unsigned nworkers;
  weft_worker_stats *worker;  /* nworkers entries (weft_stats_free frees) */
  weft_worker_stats total;    /* the sum over workers (high water: the max) */
  uint64_t live;              /* coroutines spawned and not yet finished */
  uint64_t foreign_spawned;   /* spawned from threads that are not workers */
  struct {
    uint64_t wakes;        /* times the poller thread returned from epoll */
    uint64_t events;       /* readiness events it handled */
    uint64_t timers_fired; /* timers that expired */
    uint64_t timers_armed; /* timers armed now */
  } poller;                /* all 0 until io's poller starts */
  struct {
    unsigned threads;  /* pool threads now */
    uint64_t depth;    /* calls queued or running now */
    uint64_t done;     /* calls finished */
  } offload;
  struct {
    uint64_t mapped; /* stack mappings now: live coroutines' and pooled */
    uint64_t pooled; /* of them, free stacks kept for reuse (a worker
                        going idle gives all but a few back) */
  } stacks;
  struct {
    uint64_t lookups;    /* lookups answered by the poller (literals are
                            answered in the caller and not counted) */
    uint64_t cache_hits; /* of them, from the hosts file or the cache */
    uint64_t queries;    /* lookups sent to a DNS server */
    uint64_t failures;   /* lookups that ended in an error */
    uint64_t in_flight;  /* lookups waiting for a server now */
  } dns;
  struct {
    uint64_t started;     /* transfers handed to the driver */
    uint64_t done;        /* transfers finished with a response */
    uint64_t failed;      /* transfers finished with an error */
    uint64_t in_flight;   /* transfers running now */
    uint64_t connections; /* connections open now (HTTP clients' pools) */
  } http;
} weft_stats;

/* Snapshot rt's counters into *out (rt NULL: the calling coroutine's
 * runtime). 0, -EINVAL (rt NULL outside a coroutine, or out NULL),
 * -ENOMEM. Free with weft_stats_free. */
WEFT_API int weft_stats_get(weft_runtime *rt, weft_stats *out);
/* Free what weft_stats_get allocated; harmless on a zeroed snapshot. */
WEFT_API void weft_stats_free(weft_stats *s);
/* A readable multi-line summary of *s (what WEFT_STATS=1 prints). */
WEFT_API void weft_stats_print(const weft_stats *s, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
