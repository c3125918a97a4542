/*
 * co.c - a coroutine's life: spawn, run, exit, join; and yield.
 *
 * Spawn is "work first": the child runs at once on the spawning worker and
 * the parent waits in the worker's LIFO slot, so it resumes as soon as the
 * child finishes or parks. A parent already in the slot moves to the ring,
 * where idle workers may steal it. Why: a spawn loop touches one hot stack
 * instead of piling up thousands of fresh ones; a spawn costs two switches
 * and, in a loop, no wakeup; and fork-join code (fib, skynet) runs depth
 * first, with the oldest (largest) continuations on the ring for thieves,
 * as in Cilk, which keeps the number of live coroutines near depth x fan-out.
 *
 * Exit and join, with joiner = NULL | the joining coroutine | JOIN_DONE:
 *   E1. the finishing coroutine stores its result and switches away,
 *       leaving AFTER_EXIT for the next context; its stack is not resumed
 *       until a new coroutine gets it from a pool (co_entry's loop);
 *   E2. that context (off the dead stack) exchanges joiner with JOIN_BUSY;
 *       if it found a joiner, it claims the wait of the generation that
 *       joiner stored in joiner_gen (J1); then it stores JOIN_DONE
 *       (release, which publishes the result) and, if it claimed, unparks
 *       the joiner. A detached coroutine's stack is freed instead.
 *       While BUSY a joiner that finds it (J1's CAS, a cancelled joiner
 *       taking its registration back) waits for DONE: until then E2 still
 *       reads the record. Reading joiner_gen after DONE paired the joiner
 *       with a generation a later joiner had stored, or from a record
 *       freed and reused, and claimed an unrelated wait of a reused
 *       record: a coroutine woken with 0 by the wrong E2 freed a joinee
 *       that was still running (found by sync.cancel_join_race under the
 *       chaos-tsan preset: a TSan race in retire, "resumed in state 0").
 *   J1. join opens its wait (wait_token, park.c W1) and only then CASes
 *       joiner NULL -> self, so E2 can claim the wait the moment it sees
 *       the joiner; if the CAS finds DONE, join retracts the wait and reads
 *       the result at once; otherwise it parks until E2 (or a cancel)
 *       claims and unparks it. Opening the wait after the CAS lost wakeups:
 *       E2 found the joiner with no open wait, skipped the unpark, and the
 *       joiner slept forever (found by sync.cancel_race under TSan).
 *   J2. join reads the result and frees the stack. Nobody else touches the
 *       record after E2's DONE, so this is safe on any thread.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "ctx.h"
#include "internal.h"
#include "probe.h"

#define ID_BATCH 1024

static uint64_t take_id(struct weft_runtime *rt, weft__worker *w) {
  if (!w)
    return weft__add_rlx(&rt->next_id, 1);
  if (w->next_id == w->end_id) {
    w->next_id = weft__add_rlx(&rt->next_id, ID_BATCH);
    w->end_id = w->next_id + ID_BATCH;
  }
  return w->next_id++;
}

/* The code at the bottom of every stack. It never ends: when a coroutine
 * finishes, its stack waits here (E1), and when a pool hands the stack to
 * a new coroutine, the switch to it resumes here and the loop runs the new
 * fn. So a pooled stack needs no fresh first frame, and every stack's
 * frames stay balanced across the coroutines it serves (ThreadSanitizer
 * keeps a shadow call stack per stack, and unmatched frames from a dying
 * coroutine overflowed it after ~100,000 reuses). */
static __attribute__((noreturn)) void co_entry(void *p) {
  weft_co *co = p;
  weft__switch_finish(co);
  for (;;) {
    weft__after_switch(weft__current_worker());
    co->result = co->fn(co->arg);
    weft__worker *w = weft__current_worker(); /* E1 */
    weft__stat_inc(&w->st.exited);
    WEFT_PROBE2(exit, co->id, w->index);
    w->after = (weft__after){WEFT__AFTER_EXIT, co, NULL, NULL};
    weft__switch(w, co, weft__next_local(w, false));
  }
}

int weft__spawn_in(struct weft_runtime *rt, weft__worker *w, weft_co **out,
                   void *(*fn)(void *), void *arg, bool detached) {
  if (!fn)
    return -EINVAL;
  weft_co *co;
  int rc = weft__stack_alloc(rt, w, &co);
  if (rc)
    return rc;
  co->fn = fn;
  co->arg = arg;
  co->result = NULL;
  co->joiner = NULL;
  co->next = NULL;
  co->wake_result = 0;
  /* Keep the wait generation running across the stack record's owners. */
  weft__st_rlx(&co->wait_token, weft__ld_rlx(&co->wait_token) & ~3u);
  co->cancel_pending = 0;
  co->shield = 0;
  co->flags = WEFT__CO_LIVE | (detached ? WEFT__CO_DETACHED : 0);
  co->state = WEFT__RUNNABLE;
  co->id = take_id(rt, w);
  if (w)
    weft__stat_inc(&w->st.spawned);
  else
    weft__stat_add_shared(&rt->foreign_spawned, 1);
  WEFT_PROBE3(spawn, co->id, w && w->current ? w->current->id : 0,
              w ? (int)w->index : -1);
  if (!co->sp) /* a fresh mapping; a pooled one waits in co_entry's loop */
    co->sp = weft__ctx_make(co, co_entry, co);
  *out = co;
  return 0;
}

int weft_spawn(weft_co **out, void *(*fn)(void *), void *arg) {
  weft__worker *w = weft__current_worker();
  weft_co *self = w ? w->current : NULL;
  if (!self)
    return WEFT_ENOTCO;
  weft_co *co;
  int rc = weft__spawn_in(w->rt, w, &co, fn, arg, out == NULL);
  if (rc)
    return rc;
  if (out)
    *out = co;
  /* Work first: run the child now; we wait in the LIFO slot (after the
   * switch), pushing the previous occupant to the ring. */
  w->after = (weft__after){WEFT__AFTER_SPAWNED, self, NULL, NULL};
  weft__schedule(w, co);
  return 0;
}

void weft__co_finish(weft__worker *w, weft_co *co) { /* E2 */
  if (co->flags & WEFT__CO_DETACHED) {
    weft__stack_free(co->rt, w, co);
    return;
  }
  weft_co *j = weft__xchg_ar(&co->joiner, WEFT__JOIN_BUSY);
  /* Claim only the wait j published (a cancelled joiner may have moved
   * on to other waits, or ended). */
  bool claimed = j && weft__wait_claim_gen(j, weft__ld_rlx(&co->joiner_gen));
  weft__st_rel(&co->joiner, WEFT__JOIN_DONE); /* the record may go now */
  if (claimed)
    weft__unpark(j, 0);
}

/* joiner once E2 is done with the record (see E2): not BUSY. */
static weft_co *join_settled(weft_co *co) {
  weft_co *j;
  for (unsigned spins = 0; (j = weft__ld_acq(&co->joiner)) == WEFT__JOIN_BUSY; spins++) {
    if (spins < 128)
      weft__cpu_relax();
    else
      sched_yield(); /* E2's worker was preempted */
  }
  return j;
}

int weft_join(weft_co *co, void **result) { return weft_join_until(co, result, 0); }

int weft_join_until(weft_co *co, void **result, uint64_t deadline_ns) {
  if (!co)
    return -EINVAL;
  weft_co *self = weft__self_or_foreign();
  if (co == self)
    return -EDEADLK;
  if (co->flags & WEFT__CO_DETACHED)
    return -EINVAL;
  /* J1. The wait token is set before the registration is published:
   * E2 claims it as soon as it sees us in joiner. */
  int rc = weft__wait_begin(self);
  if (rc)
    return rc;
  weft__st_rlx(&co->joiner_gen, weft__wait_gen(self)); /* released by the CAS */
  weft_co *expected = NULL;
  if (weft__cas_ar(&co->joiner, &expected, self)) {
    rc = weft__wait_park_until(self, WEFT__PARK_JOIN, NULL, NULL, deadline_ns);
    if (rc == WEFT__WAKE_STOPPED) /* the runtime stopped; co went with it */
      return -ECANCELED;
    if (rc == WEFT__WAKE_DEADLOCK) /* weft_run's caller: co never finishes */
      return WEFT_EDEADLOCK;
    if (rc) {
      /* Cancelled or timed out: take our registration back, so the handle can be
       * joined again. If co finished meanwhile, joiner is DONE and a later
       * join reads the result at once. */
      expected = self;
      if (!weft__cas_ar(&co->joiner, &expected, NULL))
        join_settled(co); /* E2 may still read joiner_gen: not ours to reuse yet */
      return rc;
    }
  } else {
    if (expected == WEFT__JOIN_BUSY)
      expected = join_settled(co);
    /* Not registered: retract the wait. If a cancel claimed it meanwhile,
     * take its unpark and report it (the handle stays joinable). */
    if (!weft__wait_claim(self))
      return weft__wait_park(self, WEFT__PARK_JOIN, NULL, NULL);
    if (expected != WEFT__JOIN_DONE)
      return -EINVAL; /* someone else is joining it: join each handle once */
  }
  if (result) /* J2 */
    *result = co->result;
  weft__stack_free(co->rt, weft__current_worker(), co);
  return 0;
}

int weft_gather(weft_co **cos, size_t n, void **results) {
  int rc = 0;
  bool shielded = false;
  for (size_t i = 0; i < n; i++) {
    int r = weft_join(cos[i], results ? &results[i] : NULL);
    if (r == -ECANCELED && !shielded) {
      /* Cancelled while gathering: cancel the children too, and still
       * join every one of them, so no handle is left behind. */
      rc = r;
      for (size_t j = i; j < n; j++)
        weft_cancel(cos[j]);
      weft_shield_enter();
      shielded = true;
      r = weft_join(cos[i], results ? &results[i] : NULL);
    }
    if (r && !rc)
      rc = r;
  }
  if (shielded)
    weft_shield_leave();
  return rc;
}

void weft_yield(void) {
  weft__worker *w = weft__current_worker();
  weft_co *self = w ? w->current : NULL;
  if (!self)
    return;
  if (weft__ld_rlx(&w->rt->stopping)) {
    /* The runtime is stopping: leave for good (runtime.c, stop step 1). */
    weft__schedule(w, NULL);
    return;
  }
  weft_co *next = weft__next_local(w, true);
  if (!next)
    next = weft__inject_pop(w->rt);
  if (!next)
    return;
  weft__stat_inc(&w->st.yields);
  WEFT_PROBE2(yield, self->id, w->index);
  w->after = (weft__after){WEFT__AFTER_REQUEUE, self, NULL, NULL};
  weft__schedule(w, next);
}

weft_co *weft_self(void) {
  weft__worker *w = weft__current_worker();
  return w ? w->current : NULL;
}

uint64_t weft_co_id(const weft_co *co) { return co ? co->id : 0; }

unsigned weft_workers(void) {
  weft__worker *w = weft__current_worker();
  return w ? w->rt->nworkers : 0;
}
