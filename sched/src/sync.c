/*
 * sync.c - wait group, mutex, condition variable, semaphore.
 *
 * Every primitive is a short spinlock (the `lock_` word) over its state and
 * a FIFO of waiters that live on the waiting coroutines' stacks. Waiting
 * follows park.c's wait protocol: link under the lock (W1), wait_begin,
 * park releasing the lock after the switch (W2); a waker pops and claims
 * (W3) and sets the waiter's result before the unpark; a cancelled waiter
 * unlinks itself (W5). Unparks happen after the spinlock is released where
 * the waiter can be collected first, so no wake-up syscall runs under it.
 *
 * Mutex state word: LOCKED, WAITERS (the queue is not empty: unlock must
 * take the slow path) and HANDOFF (a waiter has waited more than 1 ms:
 * unlock passes ownership to the queue's head instead of releasing it).
 * The fast paths are one CAS each (0 -> LOCKED, LOCKED -> 0); with any
 * other bit set, both sides go through the spinlock, under which only the
 * holder changes the flags.
 *
 * Why bounded barging, not strict hand-off: with hand-off every contended
 * unlock costs a switch to the next owner (a lock convoy); letting the
 * running coroutine retake the lock keeps it on-core. The 1 ms bound (the
 * same as Go's starvation mode) makes the worst wait finite.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

#define M_LOCKED 1u
#define M_WAITERS 2u
#define M_HANDOFF 4u
#define HANDOFF_AFTER_NS 1000000u

enum { WAKE_RETRY = 1, WAKE_HANDED = 2 };

static void spin_unlock_cb(void *l) { weft__spin_unlock_word(l); }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Link w on q and park until claimed (or the deadline, 0 for none); lock
 * is held on entry and released by the park. On -ECANCELED / -ETIMEDOUT
 * the waiter has unlinked itself again. */
static int wait_on(uint32_t *lock, weft__waitq *q, weft__waiter *w,
                   bool front, uint64_t deadline_ns) {
  if (front)
    weft__wq_push_front(q, w);
  else
    weft__wq_push(q, w);
  int rc = weft__wait_begin(w->co);
  if (rc) {
    weft__wq_remove(q, w);
    weft__spin_unlock_word(lock);
    return rc;
  }
  rc = weft__wait_park_until(w->co, WEFT__PARK_SYNC, spin_unlock_cb, lock,
                             deadline_ns);
  if (rc) { /* W5: claimed by a canceller or the deadline, not a waker */
    weft__spin_lock_word(lock);
    weft__wq_remove(q, w);
    weft__spin_unlock_word(lock);
  }
  return rc;
}

/* Claim every waiter of q into a private list (linked by next). */
static weft__waiter *claim_all(weft__waitq *q) {
  weft__waiter *list = NULL, *w;
  while ((w = weft__wq_claim(q))) {
    w->next = list;
    list = w;
  }
  return list;
}

/* Wake a claimed list: one batch into the inject queue (and one wake-up)
 * rather than one LIFO displacement per waiter, so that a broadcast to
 * thousands spreads over the workers at once. */
static void unpark_list(weft__waiter *list, int result) {
  enum { CHUNK = 256 };
  weft_co *cos[CHUNK];
  int res[CHUNK];
  while (list) {
    size_t n = 0;
    struct weft_runtime *rt = list->co->rt;
    while (list && n < CHUNK && list->co->rt == rt &&
           !(list->co->flags & WEFT__CO_FOREIGN)) {
      weft__waiter *next = list->next; /* read before the waiter may return */
      cos[n] = list->co;
      res[n++] = result;
      list = next;
    }
    if (n == 0) { /* a foreign thread: on its own */
      weft__waiter *next = list->next;
      weft__unpark(list->co, result);
      list = next;
      continue;
    }
    weft__unpark_batch(rt, cos, res, n);
  }
}

/* ---- wait group ----------------------------------------------------------- */

int weft_waitgroup_add(weft_waitgroup *wg, int64_t delta) {
  if (!wg)
    return -EINVAL;
  weft__spin_lock_word(&wg->lock_);
  int64_t n = wg->count_ + delta;
  if (n < 0) {
    weft__spin_unlock_word(&wg->lock_);
    return -EINVAL;
  }
  wg->count_ = n;
  weft__waiter *list = n == 0 ? claim_all(&wg->waiters_) : NULL;
  weft__spin_unlock_word(&wg->lock_);
  unpark_list(list, 0);
  return 0;
}

int weft_waitgroup_done(weft_waitgroup *wg) { return weft_waitgroup_add(wg, -1); }

int weft_waitgroup_wait(weft_waitgroup *wg) { return weft_waitgroup_wait_until(wg, 0); }

int weft_waitgroup_wait_until(weft_waitgroup *wg, uint64_t deadline_ns) {
  if (!wg)
    return -EINVAL;
  weft__spin_lock_word(&wg->lock_);
  if (wg->count_ == 0) {
    weft__spin_unlock_word(&wg->lock_);
    return 0;
  }
  weft__waiter w = {.co = weft__self_or_foreign()};
  return wait_on(&wg->lock_, &wg->waiters_, &w, false, deadline_ns);
}

/* ---- mutex ---------------------------------------------------------------- */

/* Under the spinlock: set or clear bits (the fast paths may CAS at the
 * same time only while no flag is set, so this loop is short). */
static void mstate_update(weft_mutex *m, uint32_t set, uint32_t clear) {
  uint32_t s = weft__ld_rlx(&m->state_);
  while (!weft__cas_ar(&m->state_, &s, (s | set) & ~clear))
    ;
}

static int mutex_lock_slow(weft_mutex *m, uint64_t deadline_ns) {
  weft__waiter w = {.co = weft__self_or_foreign()};
  uint64_t start = 0;
  bool retried = false;
  for (;;) {
    weft__spin_lock_word(&m->lock_);
    uint32_t s = weft__ld_rlx(&m->state_);
    for (;;) {
      if (!(s & (M_LOCKED | M_HANDOFF))) { /* free, and barging allowed */
        if (weft__cas_ar(&m->state_, &s, s | M_LOCKED)) {
          weft__spin_unlock_word(&m->lock_);
          return 0;
        }
        continue;
      }
      if (weft__cas_ar(&m->state_, &s, s | M_WAITERS))
        break;
    }
    uint64_t t = now_ns();
    if (!start)
      start = t;
    else if (t - start > HANDOFF_AFTER_NS)
      mstate_update(m, M_HANDOFF, 0);
    /* A waiter woken to retry that lost the race goes back to the front. */
    int rc = wait_on(&m->lock_, &m->waiters_, &w, retried, deadline_ns);
    if (rc) {
      weft__spin_lock_word(&m->lock_);
      if (!m->waiters_.head)
        mstate_update(m, 0, M_WAITERS | M_HANDOFF);
      weft__spin_unlock_word(&m->lock_);
      return rc;
    }
    if (w.result == WAKE_HANDED)
      return 0;
    retried = true;
  }
}

int weft_mutex_lock(weft_mutex *m) { return weft_mutex_lock_until(m, 0); }

int weft_mutex_lock_until(weft_mutex *m, uint64_t deadline_ns) {
  if (!m)
    return -EINVAL;
  uint32_t e = 0;
  if (weft__cas_ar(&m->state_, &e, M_LOCKED))
    return 0;
  return mutex_lock_slow(m, deadline_ns);
}

int weft_mutex_trylock(weft_mutex *m) {
  if (!m)
    return -EINVAL;
  uint32_t s = weft__ld_rlx(&m->state_);
  while (!(s & (M_LOCKED | M_HANDOFF)))
    if (weft__cas_ar(&m->state_, &s, s | M_LOCKED))
      return 0;
  return -EBUSY;
}

void weft_mutex_unlock(weft_mutex *m) {
  uint32_t e = M_LOCKED;
  if (weft__cas_ar(&m->state_, &e, 0))
    return;
  weft__spin_lock_word(&m->lock_);
  weft__waitq *q = &m->waiters_;
  uint32_t s = weft__ld_rlx(&m->state_);
  weft__waiter *w = weft__wq_claim(q);
  uint32_t clear = q->head ? 0 : (M_WAITERS | M_HANDOFF);
  if (w && (s & M_HANDOFF)) {
    w->result = WAKE_HANDED; /* stays LOCKED: ownership passes to w */
    mstate_update(m, 0, clear);
  } else {
    if (w)
      w->result = WAKE_RETRY;
    mstate_update(m, 0, clear | M_LOCKED);
  }
  weft__spin_unlock_word(&m->lock_);
  if (w)
    weft__unpark(w->co, 0);
}

/* ---- condition variable --------------------------------------------------- */

int weft_cond_wait(weft_cond *c, weft_mutex *m) { return weft_cond_wait_until(c, m, 0); }

int weft_cond_wait_until(weft_cond *c, weft_mutex *m, uint64_t deadline_ns) {
  if (!c || !m)
    return -EINVAL;
  weft__waiter w = {.co = weft__self_or_foreign()};
  weft__spin_lock_word(&c->lock_);
  weft__wq_push(&c->waiters_, &w);
  int rc = weft__wait_begin(w.co);
  if (rc) {
    weft__wq_remove(&c->waiters_, &w);
    weft__spin_unlock_word(&c->lock_);
    return rc;
  }
  weft__spin_unlock_word(&c->lock_);
  /* Linked before the mutex is released: a signal from here on finds us,
   * and a wake before the park below leaves a permit (park.c, U1). */
  weft_mutex_unlock(m);
  rc = weft__wait_park_until(w.co, WEFT__PARK_SYNC, NULL, NULL, deadline_ns);
  if (rc) {
    weft__spin_lock_word(&c->lock_);
    weft__wq_remove(&c->waiters_, &w);
    weft__spin_unlock_word(&c->lock_);
  }
  weft_shield_enter(); /* the mutex is re-acquired whatever happened */
  weft_mutex_lock(m);
  weft_shield_leave();
  return rc;
}

void weft_cond_signal(weft_cond *c) {
  weft__spin_lock_word(&c->lock_);
  weft__waiter *w = weft__wq_claim(&c->waiters_);
  weft__spin_unlock_word(&c->lock_);
  if (w)
    weft__unpark(w->co, 0);
}

void weft_cond_broadcast(weft_cond *c) {
  weft__spin_lock_word(&c->lock_);
  weft__waiter *list = claim_all(&c->waiters_);
  weft__spin_unlock_word(&c->lock_);
  unpark_list(list, 0);
}

/* ---- semaphore ------------------------------------------------------------ */

int weft_sem_acquire(weft_sem *s) { return weft_sem_acquire_until(s, 0); }

int weft_sem_acquire_until(weft_sem *s, uint64_t deadline_ns) {
  if (!s)
    return -EINVAL;
  weft__spin_lock_word(&s->lock_);
  if (s->count_ > 0) {
    s->count_--;
    weft__spin_unlock_word(&s->lock_);
    return 0;
  }
  weft__waiter w = {.co = weft__self_or_foreign()};
  /* A claim by weft_sem_release hands us its permit. */
  return wait_on(&s->lock_, &s->waiters_, &w, false, deadline_ns);
}

int weft_sem_tryacquire(weft_sem *s) {
  if (!s)
    return -EINVAL;
  weft__spin_lock_word(&s->lock_);
  int rc = s->count_ > 0 ? (s->count_--, 0) : -EAGAIN;
  weft__spin_unlock_word(&s->lock_);
  return rc;
}

void weft_sem_release(weft_sem *s) {
  weft__spin_lock_word(&s->lock_);
  weft__waiter *w = weft__wq_claim(&s->waiters_);
  if (!w)
    s->count_++;
  weft__spin_unlock_word(&s->lock_);
  if (w)
    weft__unpark(w->co, 0);
}
