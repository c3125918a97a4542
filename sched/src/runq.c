/*
 * runq.c - the run queues: each worker's ring and LIFO slot, and the
 * runtime's inject queue.
 *
 * Ring (256 slots, one per worker):
 *   - tail is written only by the owner (store-release after filling the
 *     slot); head is advanced by CAS, by the owner (pop, overflow) and by
 *     thieves (steal), so every taker validates what it read by winning
 *     that CAS. Slots are read and written with relaxed atomics: a thief
 *     may read a slot that the owner is about to reuse, and its CAS then
 *     fails, so the value it read is never used.
 *   - The owner pops from the head too (FIFO): a yielded coroutine goes
 *     behind everything already runnable.
 *   - Overflow: when the ring is full, the owner moves half of it (the
 *     oldest 128) plus the new coroutine to the inject queue in one locked
 *     batch, so a spawn storm costs one lock per 129 coroutines.
 *   - Steal: a thief with an empty ring takes half (rounded up) of a
 *     victim's ring in one CAS, runs one and keeps the rest.
 * LIFO slot: owner-only, never stolen. An unpark done by a worker puts the
 *   woken coroutine there, so it runs next on the same core (a receiver
 *   runs right after its sender, with the message still in cache). At most
 *   WEFT__LIFO_MAX_RUNS consecutive LIFO runs, then the slot's coroutine
 *   goes to the ring so a ping-pong pair cannot starve the ring.
 * Inject queue: a locked FIFO for coroutines from outside any worker
 *   (foreign threads, the poller) and for ring overflow. Workers look at it
 *   every WEFT__INJECT_INTERVAL ticks even when busy, so it cannot starve,
 *   and whenever their own ring is empty.
 */
#include "internal.h"

uint32_t weft__ring_len(const weft__worker *w) {
  uint32_t h = weft__ld_acq(&w->head);
  uint32_t t = weft__ld_acq(&w->tail);
  return t - h;
}

/* Move the oldest half of a full ring plus co to the inject queue. Returns
 * false if a thief moved head meanwhile (there is room again). */
static bool ring_overflow(weft__worker *w, uint32_t h, uint32_t t,
                          weft_co *co) {
  uint32_t n = (t - h) / 2;
  weft_co *batch[WEFT__RING_SIZE / 2];
  for (uint32_t i = 0; i < n; i++)
    batch[i] = weft__ld_rlx(&w->ring[(h + i) & WEFT__RING_MASK]);
  if (!weft__cas_rel(&w->head, &h, h + n))
    return false;
  for (uint32_t i = 0; i + 1 < n; i++)
    batch[i]->next = batch[i + 1];
  batch[n - 1]->next = co;
  co->next = NULL;
  weft__inject_push(w->rt, batch[0], co, n + 1);
  return true;
}

void weft__ring_push(weft__worker *w, weft_co *co) {
  for (;;) {
    uint32_t h = weft__ld_acq(&w->head);
    uint32_t t = w->tail;
    if (t - h < WEFT__RING_SIZE) {
      weft__st_rlx(&w->ring[t & WEFT__RING_MASK], co);
      weft__st_rel(&w->tail, t + 1);
      return;
    }
    if (ring_overflow(w, h, t, co))
      return;
  }
}

weft_co *weft__ring_pop(weft__worker *w) {
  uint32_t h = weft__ld_acq(&w->head);
  for (;;) {
    if (h == w->tail)
      return NULL;
    weft_co *co = weft__ld_rlx(&w->ring[h & WEFT__RING_MASK]);
    if (weft__cas_rel(&w->head, &h, h + 1))
      return co;
  }
}

weft_co *weft__ring_steal(weft__worker *thief, weft__worker *victim) {
  weft_co *batch[WEFT__RING_SIZE / 2];
  uint32_t n;
  for (;;) {
    uint32_t h = weft__ld_acq(&victim->head);
    uint32_t t = weft__ld_acq(&victim->tail);
    n = t - h;
    n -= n / 2;
    if (n == 0)
      return NULL;
    if (n > WEFT__RING_SIZE / 2)
      continue; /* read h and t at different moments; read again */
    for (uint32_t i = 0; i < n; i++)
      batch[i] = weft__ld_rlx(&victim->ring[(h + i) & WEFT__RING_MASK]);
    if (weft__cas_rel(&victim->head, &h, h + n))
      break;
  }
  /* The thief's ring is empty (it only steals then), so this cannot
   * overflow; the rest become stealable from the thief in turn. */
  for (uint32_t i = 1; i < n; i++)
    weft__ring_push(thief, batch[i]);
  return batch[0];
}

void weft__inject_push(struct weft_runtime *rt, weft_co *first, weft_co *last,
                       uint32_t n) {
  last->next = NULL;
  pthread_mutex_lock(&rt->inject_lock);
  if (rt->inject_tail)
    rt->inject_tail->next = first;
  else
    rt->inject_head = first;
  rt->inject_tail = last;
  weft__st_rlx(&rt->inject_len, rt->inject_len + n);
  pthread_mutex_unlock(&rt->inject_lock);
}

static weft_co *inject_take(struct weft_runtime *rt, uint32_t max,
                            weft__worker *w) {
  if (weft__ld_rlx(&rt->inject_len) == 0)
    return NULL;
  pthread_mutex_lock(&rt->inject_lock);
  uint32_t len = rt->inject_len;
  uint32_t n = len < max ? len : max;
  weft_co *first = rt->inject_head, *co = first;
  for (uint32_t i = 1; i < n; i++) {
    co = co->next;
    weft__ring_push(w, co);
  }
  if (n) {
    rt->inject_head = co->next;
    if (!rt->inject_head)
      rt->inject_tail = NULL;
    weft__st_rlx(&rt->inject_len, len - n);
  }
  pthread_mutex_unlock(&rt->inject_lock);
  return n ? first : NULL;
}

weft_co *weft__inject_pop(struct weft_runtime *rt) {
  return inject_take(rt, 1, NULL);
}

weft_co *weft__inject_pop_batch(struct weft_runtime *rt, weft__worker *w) {
  /* A fair share, at most half a ring: the rest stays for other workers. */
  uint32_t len = weft__ld_rlx(&rt->inject_len);
  uint32_t n = len / rt->nworkers + 1;
  uint32_t used = weft__ring_len(w);
  uint32_t room = used < WEFT__RING_SIZE / 2 ? WEFT__RING_SIZE / 2 - used : 0;
  if (n > room)
    n = room ? room : 1;
  return inject_take(rt, n, w);
}

void weft__make_runnable(weft__worker *w, struct weft_runtime *rt, weft_co *co,
                         bool lifo) {
  if (w && w->rt == rt) {
    if (lifo) {
      weft_co *old = w->lifo;
      w->lifo = co;
      if (!old)
        return; /* not stealable: nobody else needs waking */
      co = old;
    }
    weft__ring_push(w, co);
  } else {
    weft__inject_push(rt, co, co, 1);
  }
  weft__wake_one(rt);
}
