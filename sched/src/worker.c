/*
 * worker.c - worker threads: the switch, the loop, stealing, sleeping and
 * the wake rule.
 *
 * A worker runs coroutines back to back on one OS thread. Switches go
 * directly from one coroutine to the next when the worker has local work;
 * only when it has none does it switch to its own (the thread's) stack,
 * where find_work steals or sleeps. A switch leaves one "after" action for
 * the context that resumes (weft__after_switch): requeue the coroutine that
 * yielded, finish a park, or retire a finished coroutine. That action has
 * to run after the switch because until then the old coroutine is still
 * running on its stack, and a thief must not resume it there.
 *
 * Searching and sleeping (the wake rule). nsearching counts workers looking
 * for work to steal; at most half of the busy workers may search at once.
 * nidle counts workers on the idle list (asleep or about to be).
 *   Producer (anything that puts a coroutine where another worker can take
 *   it: a ring, the inject queue):
 *     P1. publish the coroutine (ring tail store-release / inject lock);
 *     P2. full fence;
 *     P3. if nsearching != 0: done (a searcher will find it, see S3);
 *     P4. if nidle != 0: CAS nsearching 0 -> 1 (one waker wins), pop an idle
 *         worker and hand it that search slot, futex-wake it;
 *     P5. if P4 found the idle list empty (its worker left it after S3):
 *         give the slot back and apply P2-P4 again. While the slot was
 *         held, other producers' P3 saw nsearching != 0 and relied on a
 *         searcher that does not exist; a worker may have gone idle since.
 *   Worker going to sleep:
 *     S1. put itself on the idle list (nidle++), under the idle lock;
 *     S2. if it was searching: nsearching-- ;
 *     S3. full fence, then look at every ring and the inject queue once
 *         more; if anything is there, take itself off the idle list and
 *         search again instead of sleeping: a worker that was searching
 *         takes a search slot again (leave_idle), because producers that
 *         saw it searching before S2 woke nobody, and the slot's release
 *         when it finds work (the last-searcher rule below) wakes for them;
 *     S4. futex-wait on its wake_seq, read before S1.
 *   A searcher that finds work stops searching; if it was the last one it
 *   applies P2-P4 itself, because producers that saw it searching did not
 *   wake anyone (their work may still be waiting).
 * Why no wakeup is lost: P1-P2-P3/P4 and S1/S2-S3 are a store-buffer
 * (Dekker) pattern with a full fence on both sides, so either the producer
 * sees the sleeper counted (searching or idle) and wakes or relies on it,
 * or the sleeper's S3 sees the published coroutine. Without the fence in
 * P2 (a plain release store before the check) x86 may read nsearching
 * before the store is visible, and a CPU sleeps while work waits.
 * tests/model/wake.pml checks this logic (under sequential consistency);
 * it found the two holes P5 and S3's new search slot close (each left a
 * worker asleep while work waited behind a busy worker).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "internal.h"
#include "probe.h"

/* How long a worker sleeps before it gives back its pooled stacks. */
#define IDLE_TRIM_MS 200u
/* How long a searching worker spins before it sleeps (see search()). */
#define SEARCH_SPIN_NS 50000u

static __thread weft__worker *tls_worker;

#if WEFT_TSAN
uint32_t weft__tsan_fence_word;
#endif

/* Not inlined, and opaque to the optimiser: after a switch the coroutine
 * may be on another thread, and a cached TLS address would be the old
 * thread's. */
__attribute__((noinline)) weft__worker *weft__current_worker(void) {
  weft__worker *w = tls_worker;
  __asm__ __volatile__("" : "+r"(w)::"memory");
  return w;
}

__attribute__((noinline)) void weft__set_current_worker(weft__worker *w) {
  tls_worker = w;
  __asm__ __volatile__("" ::: "memory");
}

void weft__futex_wait(uint32_t *addr, uint32_t expected) {
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

/* Returns -ETIMEDOUT if ms passed with *addr still == expected, else 0. */
int weft__futex_wait_ms(uint32_t *addr, uint32_t expected, unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (weft__ld_acq(addr) == expected) {
    if (syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0) &&
        errno == ETIMEDOUT)
      return weft__ld_acq(addr) == expected ? -ETIMEDOUT : 0;
  }
  return 0;
}

void weft__futex_wake(uint32_t *addr, int n) {
  syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void weft__spin_wait(uint32_t *held) {
  for (unsigned spins = 0;; spins++) {
    while (weft__ld_rlx(held)) {
      if (spins++ < 128)
        weft__cpu_relax();
      else
        sched_yield();
    }
    if (WEFT__XCHG(held, 1, __ATOMIC_ACQUIRE) == 0)
      return;
  }
}

/* ---- switching ---------------------------------------------------------- */

#if WEFT_ASAN
static void *stack_bottom(weft_co *co) {
  return co->map + weft__page_size();
}
#endif

/* Switch from the current context (coroutine `from`, or the scheduler stack
 * when from is NULL) to `to` (NULL: the scheduler stack). Returns when
 * something switches back. */
void weft__switch(weft__worker *w, weft_co *from, weft_co *to) {
  void **save = from ? &from->sp : &w->sched_sp;
  void *target = to ? to->sp : w->sched_sp;
  w->current = to;
  if (to) {
    weft__stat_inc(&w->st.runs);
    WEFT_PROBE2(run, to->id, w->index);
#ifdef WEFT_CHECKS
    uint32_t was = weft__xchg_ar(&to->state, WEFT__RUNNING);
    if (was != WEFT__RUNNABLE) {
      fprintf(stderr, "weft: check failed: coroutine %llu resumed in state %u\n",
              (unsigned long long)to->id, was);
      abort();
    }
#else
    weft__st_rlx(&to->state, WEFT__RUNNING);
#endif
  }
#if WEFT_ASAN
  void **fake = from ? &from->asan_fake_stack : &w->asan_sched_fake;
  if (to)
    __sanitizer_start_switch_fiber(fake, stack_bottom(to),
                                   (size_t)((char *)to - (char *)stack_bottom(to)));
  else
    __sanitizer_start_switch_fiber(fake, w->thread_stack_bottom,
                                   w->thread_stack_size);
#endif
#if WEFT_TSAN
  __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_fiber, 0);
#endif
  weft__ctx_switch(save, target);
  weft__switch_finish(from);
}

/* First thing a context does once it runs again (or for the first time). */
void weft__switch_finish(weft_co *self) {
#if WEFT_ASAN
  weft__worker *w = weft__current_worker();
  const void *bottom;
  size_t size;
  __sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : w->asan_sched_fake,
                                  &bottom, &size);
#else
  (void)self;
#endif
}

void weft__schedule(weft__worker *w, weft_co *to) {
  weft__switch(w, w->current, to);
  weft__after_switch(weft__current_worker());
}

void weft__after_switch(weft__worker *w) {
  weft__after a = w->after;
  w->after.op = WEFT__AFTER_NONE;
  switch (a.op) {
  case WEFT__AFTER_NONE:
    break;
  case WEFT__AFTER_REQUEUE:
    weft__st_rlx(&a.co->state, WEFT__RUNNABLE);
    weft__ring_push(w, a.co);
    weft__wake_one(w->rt);
    break;
  case WEFT__AFTER_SPAWNED:
    weft__st_rlx(&a.co->state, WEFT__RUNNABLE);
    weft__lifo_put(w, a.co, true);
    break;
  case WEFT__AFTER_PARK:
    weft__finish_park(w, &a);
    break;
  case WEFT__AFTER_EXIT:
    weft__co_finish(w, a.co);
    break;
  }
}

/* ---- local work ---------------------------------------------------------- */

/* The next coroutine from w's own queues: every WEFT__INJECT_INTERVAL
 * ticks the inject queue first and every WEFT__HEAD_INTERVAL ticks an
 * untagged ring head (so nothing starves), else the LIFO slot, then a
 * spawn continuation from the ring's tail (depth first), else the ring's
 * head (first come, first served). A yield never takes the tail, so
 * yielders round-robin. See runq.c. */
weft_co *weft__next_local(weft__worker *w, bool fifo) {
  struct weft_runtime *rt = w->rt;
  ++w->tick;
  if (w->tick % WEFT__INJECT_INTERVAL == 0 && weft__ld_rlx(&rt->inject_len)) {
    weft_co *co = weft__inject_pop(rt);
    if (co)
      return co;
  }
  if (w->tick % WEFT__HEAD_INTERVAL == 0) {
    uintptr_t head = weft__ring_peek_head(w);
    if (head && !(head & WEFT__RING_CONT)) {
      weft_co *co = weft__ring_pop_head(w);
      if (co)
        return co;
    }
  }
  weft_co *co = w->lifo;
  if (co) {
    w->lifo = NULL;
    if (w->lifo_runs < WEFT__LIFO_MAX_RUNS) {
      w->lifo_runs++;
      return co;
    }
    /* The cap is there so a ping-pong pair cannot starve the ring; with
     * nothing waiting there, pushing the pair's coroutine out would only
     * let an idle worker steal it and split the pair across cores. */
    if (weft__ring_len(w) == 0 && !weft__ld_rlx(&rt->inject_len)) {
      w->lifo_runs = 1;
      return co;
    }
    weft__ring_push_tagged(w, (uintptr_t)co | (w->lifo_cont ? WEFT__RING_CONT : 0));
    weft__wake_one(rt);
  }
  w->lifo_runs = 0;
  if (!fifo && (weft__ring_peek_tail(w) & WEFT__RING_CONT))
    return weft__ring_pop_tail(w);
  return weft__ring_pop_head(w);
}

/* ---- the wake rule -------------------------------------------------------- */

static weft__worker *idle_pop(struct weft_runtime *rt) {
  weft__worker *v = NULL;
  pthread_mutex_lock(&rt->idle_lock);
  if (rt->idle_len) {
    v = &rt->workers[rt->idle_stack[--rt->idle_len]];
    v->idle = false;
    weft__st_sc(&rt->nidle, rt->idle_len);
  }
  pthread_mutex_unlock(&rt->idle_lock);
  return v;
}

void weft__wake_one(struct weft_runtime *rt) {
  weft__worker *v;
  for (;;) {
    weft__fence_sc(); /* P2 */
    if (weft__ld_rlx(&rt->nsearching) != 0 || weft__ld_rlx(&rt->nidle) == 0)
      return; /* P3 */
    uint32_t zero = 0;
    if (!weft__cas_sc(&rt->nsearching, &zero, 1)) /* P4 */
      return;
    if ((v = idle_pop(rt)))
      break;
    weft__add_sc(&rt->nsearching, (uint32_t)-1); /* P5 */
  }
  weft__add_ar(&v->wake_seq, 1);
  weft__futex_wake(&v->wake_seq, 1);
}

void weft__wake_all(struct weft_runtime *rt) {
  pthread_mutex_lock(&rt->idle_lock);
  for (unsigned i = 0; i < rt->nworkers; i++) {
    weft__add_ar(&rt->workers[i].wake_seq, 1);
    weft__futex_wake(&rt->workers[i].wake_seq, 1);
  }
  pthread_mutex_unlock(&rt->idle_lock);
}

/* ---- finding work --------------------------------------------------------- */

static void stop_searching(weft__worker *w) {
  if (!w->searching)
    return;
  w->searching = false;
  if (weft__add_sc(&w->rt->nsearching, (uint32_t)-1) == 1)
    weft__wake_one(w->rt); /* we were the last searcher */
}

static bool work_anywhere(struct weft_runtime *rt) {
  if (weft__ld_rlx(&rt->inject_len))
    return true;
  for (unsigned i = 0; i < rt->nworkers; i++)
    if (weft__ring_len(&rt->workers[i]))
      return true;
  return false;
}

static uint64_t next_rand(weft__worker *w) {
  uint64_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return w->rng = x;
}

static weft_co *steal(weft__worker *w) {
  struct weft_runtime *rt = w->rt;
  unsigned n = rt->nworkers;
  for (int round = 0; round < 4; round++) {
    unsigned start = (unsigned)(next_rand(w) % n);
    for (unsigned i = 0; i < n; i++) {
      weft__worker *v = &rt->workers[(start + i) % n];
      if (v == w)
        continue;
      weft_co *co = weft__ring_steal(w, v);
      if (co)
        return co;
    }
    weft_co *co = weft__inject_pop_batch(rt, w);
    if (co)
      return co;
  }
  return NULL;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A searching worker keeps looking for SEARCH_SPIN_NS before it sleeps.
 * While it searches, producers skip the futex wake (P3), so work that
 * arrives in quick succession (a foreign thread spawning, a poller batch,
 * fork-join continuations) costs no syscalls on either side. At most half
 * the busy workers search, so the spinning is bounded. */
static weft_co *search(weft__worker *w) {
  uint64_t deadline = 0;
  for (;;) {
    weft_co *co = steal(w);
    if (co || weft__ld_acq(&w->rt->stopping))
      return co;
    uint64_t now = mono_ns();
    if (!deadline)
      deadline = now + SEARCH_SPIN_NS;
    else if (now >= deadline)
      return NULL;
    for (int i = 0; i < 32; i++)
      weft__cpu_relax();
  }
}

/* Take w off the idle list after S3 found work or a wake came. If a waker
 * already popped w, it handed w its search slot; else, if S3 found work
 * and w was searching before S2, w takes a slot again (S3). Called with no
 * lock. */
static void leave_idle(weft__worker *w, bool search_again) {
  struct weft_runtime *rt = w->rt;
  pthread_mutex_lock(&rt->idle_lock);
  if (w->idle) {
    for (unsigned i = 0; i < rt->idle_len; i++) {
      if (rt->idle_stack[i] == w->index) {
        rt->idle_stack[i] = rt->idle_stack[--rt->idle_len];
        break;
      }
    }
    w->idle = false;
    weft__st_sc(&rt->nidle, rt->idle_len);
    if (search_again) {
      w->searching = true;
      weft__add_sc(&rt->nsearching, 1);
    }
  } else {
    w->searching = true;
  }
  pthread_mutex_unlock(&rt->idle_lock);
}

static void go_idle(weft__worker *w) {
  struct weft_runtime *rt = w->rt;
  /* Out of work: a moment to let stacks unused for a while go (stack.c,
   * decay), before this worker is on the idle list, where a waker would
   * wait for the unmapping. */
  weft__stack_decay(rt);
  uint32_t seq = weft__ld_acq(&w->wake_seq);
  pthread_mutex_lock(&rt->idle_lock); /* S1 */
  if (weft__ld_acq(&rt->stopping)) {
    pthread_mutex_unlock(&rt->idle_lock);
    return;
  }
  rt->idle_stack[rt->idle_len++] = w->index;
  w->idle = true;
  weft__st_sc(&rt->nidle, rt->idle_len);
  pthread_mutex_unlock(&rt->idle_lock);

  bool was_searching = w->searching;
  if (was_searching) { /* S2 */
    w->searching = false;
    weft__add_sc(&rt->nsearching, (uint32_t)-1);
  }
  weft__fence_sc(); /* S3 */
  bool found = work_anywhere(rt);
  if (!found && !weft__ld_acq(&rt->stopping)) {
    uint64_t slept = mono_ns();
    weft__stat_inc(&w->st.sleeps);
    WEFT_PROBE1(worker_sleep, w->index);
    /* S4. Pooled stacks are given back only after a quiet spell: idling
     * for microseconds between bursts is the common case, and unmapping
     * then would only make the next burst map them again. */
    if (weft__futex_wait_ms(&w->wake_seq, seq, IDLE_TRIM_MS) == -ETIMEDOUT) {
      weft__stack_trim(rt, w);
      /* Quiet for a while: if every worker sleeps, nothing is runnable
       * and no pool thread will wake anyone, nothing ever will. */
      if (rt->deadlock_check && weft__ld_sc(&rt->nidle) == rt->nworkers &&
          !work_anywhere(rt) && !weft__ld_acq(&rt->offload_busy) &&
          !weft__ld_acq(&rt->driver_pending))
        weft__deadlock(rt);
      while (weft__ld_acq(&w->wake_seq) == seq)
        weft__futex_wait(&w->wake_seq, seq);
    }
    slept = mono_ns() - slept;
    weft__stat_add(&w->st.idle_ns, slept);
    WEFT_PROBE2(worker_wake, w->index, slept);
  }
  leave_idle(w, was_searching && found);
}

/* The next coroutine for w, or NULL when the runtime is stopping. */
static weft_co *find_work(weft__worker *w) {
  struct weft_runtime *rt = w->rt;
  for (;;) {
    if (weft__ld_acq(&rt->stopping))
      return NULL;
    weft_co *co = weft__next_local(w, false);
    if (!co)
      co = weft__inject_pop_batch(rt, w);
    if (!co && rt->nworkers > 1) {
      if (!w->searching) {
        uint32_t busy = rt->nworkers - weft__ld_rlx(&rt->nidle);
        if (2 * weft__ld_rlx(&rt->nsearching) < busy) {
          w->searching = true;
          weft__add_sc(&rt->nsearching, 1);
        }
      }
      if (w->searching)
        co = search(w);
    }
    if (co) {
      stop_searching(w);
      return co;
    }
    go_idle(w);
  }
}

/* ---- the worker thread ---------------------------------------------------- */

void *weft__worker_main(void *arg) {
  weft__worker *w = arg;
  char name[16];
  snprintf(name, sizeof name, "weft-w%u", w->index);
  pthread_setname_np(pthread_self(), name);
  weft__st_rlx(&w->start_ns, mono_ns());
  weft__set_current_worker(w);
  weft__altstack_install(w);
#if WEFT_TSAN
  w->tsan_fiber = __tsan_get_current_fiber();
#endif
#if WEFT_ASAN
  {
    pthread_attr_t a;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    w->thread_stack_bottom = addr;
    w->thread_stack_size = size;
  }
#endif
  for (;;) {
    weft__after_switch(w);
    weft_co *co = find_work(w);
    if (!co)
      break;
    weft__switch(w, NULL, co);
  }
  weft__altstack_remove(w);
  weft__set_current_worker(NULL);
  weft__st_rlx(&w->end_ns, mono_ns());
  return NULL;
}
