/*
 * park.c - the one park/unpark protocol under everything that blocks.
 *
 * Join, the sync primitives, sockets, timers, DNS and HTTP all wait the
 * same way: the waiter registers itself somewhere a waker will find it
 * (a join slot, a wait list under a lock, an fd record), then parks; the
 * waker takes it from there and unparks it. This file makes that safe when
 * the unpark races the park, on any worker or on a foreign thread.
 *
 * States (weft_co.state): RUNNING, PARKING, PARKED, NOTIFIED, RUNNABLE.
 *
 * Park, by coroutine C on worker W:
 *   1. C CASes RUNNING -> PARKING. If the CAS finds NOTIFIED, an unpark
 *      already came (step U1): C consumes it (NOTIFIED -> RUNNING, which
 *      only C may do), releases its lock and returns without switching.
 *   2. C records AFTER_PARK(C, unlock) in W's after-switch slot and switches
 *      to the next runnable context on W (or to W's scheduler stack).
 *      C's registers are now saved; nothing runs on C's stack.
 *   3. The context that W switched to runs the after-switch action: first
 *      unlock(arg) (the waiter's lock may live on C's stack, which is still
 *      frozen because nobody can run C while it is PARKING), then CAS
 *      PARKING -> PARKED. Only now is C visible as parked. If the CAS finds
 *      NOTIFIED, the unpark came during steps 2-3: W queues C at once.
 *      After a successful CAS W never touches C again.
 *
 * Unpark(C, result), by anyone holding C's registration:
 *   U0. Store result in C.wake_result (published by the CAS below).
 *   U1. RUNNING or PARKING -> NOTIFIED: C has not finished parking; step 1
 *       or step 3 will see the permit. Nothing else to do.
 *   U2. PARKED -> RUNNABLE, then queue C: on the waker's own worker (the
 *       LIFO slot, so a message and its receiver stay warm on one core),
 *       else the inject queue; both then apply the wake rule (worker.c).
 *       A foreign thread's stand-in is woken with a futex instead.
 *   Anything else (RUNNABLE, NOTIFIED) is a second unpark of one park: a
 *   bug in the caller, reported and aborted rather than silently running C
 *   twice.
 *
 * The rule every primitive follows: each registration is completed by
 * exactly one unpark, by whoever removes the waiter from where it was
 * registered (the waker, a canceller or a timer: the first to claim it).
 * A permit (NOTIFIED) is therefore always consumed by the park it was meant
 * for, never by a later unrelated one.
 *
 * What breaks otherwise: without PARKING, a waker could see C parked while
 * C is still running on its stack, and a second worker would resume C on
 * top of it. Without NOTIFIED, an unpark between registration and step 3
 * would be lost and C would sleep forever.
 *
 * Waits and cancellation (on top of the above). A wait that may end more
 * than one way (a waker, weft_cancel, later a timer) needs exactly one of
 * them to complete it. The claim is weft_co.wait_token:
 *   W1. the waiter links itself where wakers look, under the primitive's
 *       lock, then weft__wait_begin sets wait_token = OPEN (SHIELDED
 *       inside weft_shield_enter) with seq_cst, and reads cancel_pending:
 *       if a cancel is pending, it claims its own wait (CAS OPEN -> NONE)
 *       and returns -ECANCELED without parking;
 *   W2. it parks (releasing the primitive's lock in step 3);
 *   W3. a waker claims by CAS (OPEN or SHIELDED) -> NONE and only then
 *       unparks; a waiter it cannot claim is skipped. The token carries a
 *       generation, bumped by every wait: a waker that found the waiter
 *       under the primitive's lock claims whatever wait is open (it is
 *       this one), one that learnt of it without a lock (join) claims only
 *       the generation it was told, so a late claim cannot complete a
 *       later wait;
 *   W4. weft_cancel sets cancel_pending (seq_cst), then claims by CAS
 *       OPEN -> NONE and unparks with -ECANCELED. The store-then-read on
 *       both sides (W1, W4) is a Dekker pair, so a cancel is either seen
 *       at W1 or claims the wait.
 *   W5. a waiter woken by a canceller (or a timer) unlinks itself under the
 *       primitive's lock; one woken by a waker was unlinked by it.
 * A cancel that finds no open wait stays pending for the next one (the
 * "next park" rule); delivering it clears it.
 *
 * Foreign threads (weft_join from main(), weft_run's caller) use a
 * thread-local stand-in record: RUNNING -> PARKED directly (there is no
 * stack to leave), then futex-wait while PARKED.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>

#include "internal.h"
#include "probe.h"

static __thread weft_co foreign_rec = {.flags = WEFT__CO_FOREIGN};

weft_co *weft__foreign_self(void) { return &foreign_rec; }

static int consume_permit(weft_co *co, void (*unlock)(void *), void *arg) {
  if (unlock)
    unlock(arg);
  /* Only the parker leaves NOTIFIED; the failed CAS loaded with acquire. */
  weft__st_rlx(&co->state, WEFT__RUNNING);
  return co->wake_result;
}

static int foreign_park(weft__park_reason why, void (*unlock)(void *),
                        void *arg, uint64_t deadline_ns) {
  weft_co *co = &foreign_rec;
  co->park_reason = why;
  WEFT_PROBE2(park, WEFT__PROBE_REG(co->id), (int)why);
  uint32_t s = WEFT__RUNNING;
  if (!weft__cas_ar(&co->state, &s, WEFT__PARKED))
    return consume_permit(co, unlock, arg);
  if (unlock)
    unlock(arg);
  while ((s = weft__ld_acq(&co->state)) == WEFT__PARKED) {
    if (!deadline_ns) {
      weft__futex_wait(&co->state, WEFT__PARKED);
      continue;
    }
    uint64_t now = weft__now_ns();
    /* The deadline passed: claim our own wait; if a waker claimed it
     * first, its unpark is on the way, so keep waiting for it. */
    if (now >= deadline_ns && weft__wait_claim(co)) {
      weft__unpark(co, -ETIMEDOUT);
      continue;
    }
    uint64_t left = now >= deadline_ns ? 1000000 : deadline_ns - now;
    weft__futex_wait_ms(&co->state, WEFT__PARKED, (unsigned)((left + 999999) / 1000000));
  }
  weft__st_rlx(&co->state, WEFT__RUNNING);
  return co->wake_result;
}

int weft__park(weft__park_reason why, void (*unlock)(void *), void *arg) {
  weft__worker *w = weft__current_worker();
  weft_co *co = w ? w->current : NULL;
  if (!co)
    return foreign_park(why, unlock, arg, 0);
  co->park_reason = why;
  weft__stat_inc(&w->st.parks[why]);
  WEFT_PROBE2(park, co->id, (int)why);
  uint32_t s = WEFT__RUNNING; /* step 1 */
  if (!weft__cas_ar(&co->state, &s, WEFT__PARKING))
    return consume_permit(co, unlock, arg);
  w->after = (weft__after){WEFT__AFTER_PARK, co, unlock, arg}; /* step 2 */
  weft__schedule(w, weft__next_local(w, false));
  /* Resumed by a worker that took us from a run queue: state is RUNNING. */
  return co->wake_result;
}

void weft__finish_park(weft__worker *w, const weft__after *a) {
  weft_co *co = a->co;
  if (a->unlock) /* step 3 */
    a->unlock(a->unlock_arg);
  uint32_t s = WEFT__PARKING;
  if (weft__cas_ar(&co->state, &s, WEFT__PARKED))
    return;
  /* NOTIFIED while parking: run it again, behind what is already queued. */
  weft__st_rlx(&co->state, WEFT__RUNNABLE);
  weft__make_runnable(w, co->rt, co, false);
}

static void double_unpark(weft_co *co, uint32_t s) {
  fprintf(stderr,
          "weft: coroutine %llu unparked twice (state %u): a wait was "
          "completed by two wakers\n",
          (unsigned long long)co->id, s);
  abort();
}

/* U0-U2 without the queueing: true if co went PARKED -> RUNNABLE and the
 * caller must queue it (or, for a foreign thread, wake its futex). */
static bool unpark_state(weft_co *co, int result) {
  co->wake_result = result; /* U0 */
  uint32_t s = weft__ld_acq(&co->state);
  for (;;) {
    switch (s) {
    case WEFT__RUNNING:
    case WEFT__PARKING: /* U1 */
      if (weft__cas_ar(&co->state, &s, WEFT__NOTIFIED))
        return false;
      break;
    case WEFT__PARKED: /* U2 */
      if (weft__cas_ar(&co->state, &s, WEFT__RUNNABLE))
        return true;
      break;
    default:
      double_unpark(co, s);
    }
  }
}

void weft__unpark(weft_co *co, int result) {
  weft__worker *w = weft__current_worker();
  WEFT_PROBE3(unpark, co->id, result, w ? WEFT__WAKER_WORKER : weft__thread_role());
  if (!unpark_state(co, result))
    return;
  if (co->flags & WEFT__CO_FOREIGN)
    weft__futex_wake(&co->state, 1);
  else
    weft__make_runnable(w, co->rt, co, true);
}

void weft__unpark_batch(struct weft_runtime *rt, weft_co **cos,
                        const int *results, size_t n) {
  uint32_t queued = 0;
  for (size_t i = 0; i < n; i++) { /* cos[] is reused for those to queue */
    weft_co *co = cos[i];
    WEFT_PROBE3(unpark, co->id, results[i], weft__thread_role());
    if (!unpark_state(co, results[i]))
      continue;
    if (co->flags & WEFT__CO_FOREIGN) {
      weft__futex_wake(&co->state, 1);
      continue;
    }
    cos[queued++] = co;
  }
  if (queued) {
    weft__inject_push(rt, cos, queued);
    weft__wake_one(rt); /* a woken searcher wakes the next (worker.c) */
  }
}

/* ---- waits and cancellation ---------------------------------------------- */

weft_co *weft__self_or_foreign(void) {
  weft__worker *w = weft__current_worker();
  return w && w->current ? w->current : &foreign_rec;
}

int weft__wait_begin(weft_co *co) { /* W1 */
  uint32_t gen = WEFT__WAIT_GEN(weft__ld_rlx(&co->wait_token)) + 1;
  uint32_t tok = gen << 2 | (co->shield ? WEFT__WAIT_SHIELDED : WEFT__WAIT_OPEN);
  weft__st_sc(&co->wait_token, tok);
  if (!co->shield && weft__ld_sc(&co->cancel_pending)) {
    uint32_t e = tok;
    if (weft__cas_sc(&co->wait_token, &e, gen << 2)) {
      weft__st_rlx(&co->cancel_pending, 0);
      return -ECANCELED;
    }
    /* Claimed meanwhile: its unpark is coming, so park to take it. */
  }
  return 0;
}

/* The generation of co's current (or last) wait; only co itself calls
 * this, right after weft__wait_begin. */
uint32_t weft__wait_gen(const weft_co *co) {
  return WEFT__WAIT_GEN(weft__ld_rlx(&co->wait_token));
}

bool weft__wait_claim(weft_co *co) { /* W3 */
  uint32_t t = weft__ld_acq(&co->wait_token);
  while (WEFT__WAIT_STATE(t) != WEFT__WAIT_NONE)
    if (weft__cas_ar(&co->wait_token, &t, t & ~3u))
      return true;
  return false;
}

/* Claim only the wait of generation gen: a claimer that learnt of the wait
 * without holding a lock that keeps it current (join's E2) must not claim
 * a later wait of the same coroutine, or of the next coroutine on the same
 * stack record. */
bool weft__wait_claim_gen(weft_co *co, uint32_t gen) {
  uint32_t t = weft__ld_acq(&co->wait_token);
  while (WEFT__WAIT_GEN(t) == gen && WEFT__WAIT_STATE(t) != WEFT__WAIT_NONE)
    if (weft__cas_ar(&co->wait_token, &t, t & ~3u))
      return true;
  return false;
}

int weft__wait_park(weft_co *co, weft__park_reason why, void (*unlock)(void *),
                    void *arg) { /* W2 */
  int rc = weft__park(why, unlock, arg);
  if (rc == -ECANCELED)
    weft__st_rlx(&co->cancel_pending, 0);
  return rc;
}

/* ---- deadlines: the driver hook ---------------------------------------- */

static const weft__driver_ops *driver;

void weft__set_driver(const weft__driver_ops *ops) {
  __atomic_store_n(&driver, ops, __ATOMIC_RELEASE);
}

const weft__driver_ops *weft__get_driver(void) {
  return __atomic_load_n(&driver, __ATOMIC_ACQUIRE);
}

uint64_t weft__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* W2 with a deadline. A coroutine arms a driver timer that claims the
 * wait at the deadline (a third claimer beside wakers and cancellers); a
 * foreign thread times its futex wait instead. Without a driver (io not
 * linked) a coroutine cannot have deadlines: -ENOTSUP, after retracting
 * the wait. */
int weft__wait_park_until(weft_co *co, weft__park_reason why,
                          void (*unlock)(void *), void *arg,
                          uint64_t deadline_ns) {
  if (!deadline_ns)
    return weft__wait_park(co, why, unlock, arg);
  if (co->flags & WEFT__CO_FOREIGN) {
    int rc = foreign_park(why, unlock, arg, deadline_ns);
    if (rc == -ECANCELED)
      weft__st_rlx(&co->cancel_pending, 0);
    return rc;
  }
  const weft__driver_ops *d = weft__get_driver();
  weft__timer t = {.deadline_ns = deadline_ns, .co = co,
                   .gen = weft__wait_gen(co), .result = -ETIMEDOUT};
  int err = !d ? -ENOTSUP : deadline_ns <= weft__now_ns() ? -ETIMEDOUT
                                                          : d->timer_arm(co->rt, &t);
  if (err) {
    /* No timer: end the wait here. If a waker or canceller claimed it
     * already, its unpark is coming: park to take that instead. */
    if (weft__wait_claim(co)) {
      if (unlock)
        unlock(arg);
      return err;
    }
    return weft__wait_park(co, why, unlock, arg);
  }
  int rc = weft__wait_park(co, why, unlock, arg);
  d->timer_disarm(co->rt, &t);
  return rc;
}

int weft_cancel(weft_co *co) { /* W4 */
  if (!co)
    return -EINVAL;
  weft__st_sc(&co->cancel_pending, 1);
  uint32_t t = weft__ld_sc(&co->wait_token);
  while (WEFT__WAIT_STATE(t) == WEFT__WAIT_OPEN)
    if (weft__cas_sc(&co->wait_token, &t, t & ~3u)) {
      weft__unpark(co, -ECANCELED);
      break;
    }
  return 0;
}

void weft_shield_enter(void) {
  weft_co *co = weft_self();
  if (co)
    co->shield++;
}

void weft_shield_leave(void) {
  weft_co *co = weft_self();
  if (co && co->shield)
    co->shield--;
}
