/*
 * runq.c - the run queues: each worker's ring and LIFO slot, and the
 * runtime's inject queue.
 *
 * Ring (256 slots, one per worker): a work-stealing deque.
 *   - tail is written only by the owner. head packs (version << 32 |
 *     index) and changes only by CAS; every taker validates what it read
 *     by winning that CAS. Slots are read and written with relaxed atomics:
 *     a thief may read a slot that the owner reuses meanwhile, and then its
 *     CAS fails, so the value it read is never used.
 *   - Thieves take from the head: half the ring (rounded up) in one CAS,
 *     the oldest coroutines, which in fork-join code are the largest
 *     pieces of work. The owner's overflow also takes from the head.
 *   - The owner takes spawn continuations (slots tagged WEFT__RING_CONT:
 *     parents pushed out of the LIFO slot by a newer spawn) from the tail,
 *     newest first: fork-join code then runs depth first, as in Cilk, and
 *     the number of live coroutines stays near depth x fan-out (fib(30) on
 *     one worker: 30 stacks) instead of growing breadth first (13,000
 *     stacks measured when the head was taken every 61 ticks). Everything
 *     else (woken, yielded, injected coroutines) is taken from the head,
 *     first come first served, and every WEFT__HEAD_INTERVAL ticks an
 *     untagged head is taken even before continuations, so a fork-join
 *     computation cannot starve a woken connection.
 *   - Popping the tail races with a thief that read the old tail and has
 *     not yet CASed head; its range could include the slot being popped.
 *     So the owner (T1) lowers tail, then (T2) bumps head's version by CAS:
 *     a thief that read the old head now fails its CAS and reads again,
 *     and one that reads the new head also sees the lowered tail (the CAS
 *     releases it). If T2 fails, a thief won: the owner restores tail and
 *     tries again. A head without a version would let the thief's stale
 *     CAS succeed, and two workers would run one coroutine.
 *   - Overflow: when the ring is full, the owner moves half of it (the
 *     oldest 128) plus the new coroutine to the inject queue in one locked
 *     batch, so a spawn storm costs one lock per 129 coroutines.
 * LIFO slot: owner-only, never stolen. A spawning parent and a coroutine
 *   unparked by a worker wait there, so they run next on the same core (a
 *   receiver right after its sender, a parent right after its child). At
 *   most WEFT__LIFO_MAX_RUNS consecutive LIFO runs, then the slot's
 *   coroutine goes to the ring so a ping-pong pair cannot starve the ring.
 * Inject queue: a locked FIFO for coroutines from outside any worker
 *   (foreign threads, the poller) and for ring overflow. Workers look at it
 *   every WEFT__INJECT_INTERVAL ticks even when busy, so it cannot starve,
 *   and whenever their own ring is empty.
 */
#include "internal.h"
#include "probe.h"

#define SLOT_CO(v) ((weft_co *)((v) & ~WEFT__RING_CONT))
#define HEAD_INDEX(hw) ((uint32_t)(hw))
#define HEAD_MAKE(ver, idx) (((uint64_t)(ver) << 32) | (uint32_t)(idx))
#define HEAD_VER(hw) ((uint32_t)((hw) >> 32))

uint32_t weft__ring_len(const weft__worker *w) {
  uint64_t hw = weft__ld_acq(&w->head);
  uint32_t t = weft__ld_acq(&w->tail);
  return t - HEAD_INDEX(hw);
}

/* Move the oldest half of a full ring plus co to the inject queue. Returns
 * false if a thief moved head meanwhile (there is room again). */
static bool ring_overflow(weft__worker *w, uint64_t hw, uint32_t t,
                          weft_co *co) {
  uint32_t h = HEAD_INDEX(hw);
  uint32_t n = (t - h) / 2;
  weft_co *batch[WEFT__RING_SIZE / 2 + 1];
  for (uint32_t i = 0; i < n; i++)
    batch[i] = SLOT_CO(weft__ld_rlx(&w->ring[(h + i) & WEFT__RING_MASK]));
  if (!weft__cas_ar(&w->head, &hw, HEAD_MAKE(HEAD_VER(hw), h + n)))
    return false;
  batch[n] = co;
  weft__inject_push(w->rt, batch, n + 1);
  return true;
}

void weft__ring_push_tagged(weft__worker *w, uintptr_t slot) {
  for (;;) {
    uint64_t hw = weft__ld_acq(&w->head);
    uint32_t t = w->tail;
    if (t - HEAD_INDEX(hw) < WEFT__RING_SIZE) {
      weft__st_rlx(&w->ring[t & WEFT__RING_MASK], slot);
      weft__st_rel(&w->tail, t + 1);
      weft__stat_max(&w->st.ring_high_water, t + 1 - HEAD_INDEX(hw));
      return;
    }
    if (ring_overflow(w, hw, t, SLOT_CO(slot)))
      return;
  }
}

void weft__ring_push(weft__worker *w, weft_co *co) {
  weft__ring_push_tagged(w, (uintptr_t)co);
}

/* The owner's look at either end (0 when empty): a hint, since a thief may
 * take the slot before the owner pops it. */
uintptr_t weft__ring_peek_tail(const weft__worker *w) {
  uint32_t t = w->tail;
  if (t == HEAD_INDEX(weft__ld_acq(&w->head)))
    return 0;
  return weft__ld_rlx(&w->ring[(t - 1) & WEFT__RING_MASK]);
}

uintptr_t weft__ring_peek_head(const weft__worker *w) {
  uint32_t h = HEAD_INDEX(weft__ld_acq(&w->head));
  if (h == w->tail)
    return 0;
  return weft__ld_rlx(&w->ring[h & WEFT__RING_MASK]);
}

weft_co *weft__ring_pop_head(weft__worker *w) {
  uint64_t hw = weft__ld_acq(&w->head);
  for (;;) {
    uint32_t h = HEAD_INDEX(hw);
    if (h == w->tail)
      return NULL;
    weft_co *co = SLOT_CO(weft__ld_rlx(&w->ring[h & WEFT__RING_MASK]));
    if (weft__cas_ar(&w->head, &hw, HEAD_MAKE(HEAD_VER(hw), h + 1)))
      return co;
  }
}

weft_co *weft__ring_pop_tail(weft__worker *w) {
  for (;;) {
    uint64_t hw = weft__ld_acq(&w->head);
    uint32_t t = w->tail;
    if (t == HEAD_INDEX(hw))
      return NULL;
    weft_co *co = SLOT_CO(weft__ld_rlx(&w->ring[(t - 1) & WEFT__RING_MASK]));
    weft__st_rlx(&w->tail, t - 1); /* T1 */
    if (weft__cas_ar(&w->head, &hw, HEAD_MAKE(HEAD_VER(hw) + 1, HEAD_INDEX(hw))))
      return co; /* T2 */
    weft__st_rlx(&w->tail, t); /* a thief moved head: look again */
  }
}

weft_co *weft__ring_steal(weft__worker *thief, weft__worker *victim) {
  uintptr_t batch[WEFT__RING_SIZE / 2];
  uint32_t n;
  for (;;) {
    uint64_t hw = weft__ld_acq(&victim->head);
    uint32_t h = HEAD_INDEX(hw);
    uint32_t t = weft__ld_acq(&victim->tail);
    n = t - h;
    n -= n / 2;
    if (n == 0)
      return NULL;
    if (n > WEFT__RING_SIZE / 2)
      continue; /* read h and t at different moments; read again */
    for (uint32_t i = 0; i < n; i++)
      batch[i] = weft__ld_rlx(&victim->ring[(h + i) & WEFT__RING_MASK]);
    if (weft__cas_ar(&victim->head, &hw, HEAD_MAKE(HEAD_VER(hw), h + n)))
      break;
  }
  /* The thief's ring is empty (it only steals then), so this cannot
   * overflow; the rest become stealable from the thief in turn. */
  for (uint32_t i = 1; i < n; i++)
    weft__ring_push_tagged(thief, batch[i]);
  weft__stat_inc(&thief->st.steals);
  weft__stat_add(&thief->st.stolen, n);
  weft__stat_add_shared(&victim->stolen_from, n);
  WEFT_PROBE3(steal, thief->index, victim->index, n);
  return SLOT_CO(batch[0]);
}

/* Double the array to hold at least need (under the lock; rare: the
 * array keeps its size). False if memory is short. */
static bool inject_grow(struct weft_runtime *rt, uint32_t need) {
  uint32_t cap = rt->inject_cap ? rt->inject_cap : 256;
  while (cap < need) {
    if (cap > UINT32_MAX / 2)
      return false;
    cap *= 2;
  }
  weft_co **q = weft__malloc(cap * sizeof *q);
  if (!q)
    return false;
  uint32_t mask = rt->inject_cap - 1;
  for (uint32_t i = 0; i < rt->inject_qlen; i++)
    q[i] = rt->inject_q[(rt->inject_first + i) & mask];
  if (rt->inject_q)
    weft__free(rt->inject_q, rt->inject_cap * sizeof *q);
  rt->inject_q = q;
  rt->inject_cap = cap;
  rt->inject_first = 0;
  return true;
}

void weft__inject_push(struct weft_runtime *rt, weft_co *const *cos,
                       uint32_t n) {
  weft__spin_lock(&rt->inject_lock);
  uint32_t i = 0;
  if (!rt->inject_over_head &&
      (rt->inject_qlen + n <= rt->inject_cap ||
       inject_grow(rt, rt->inject_qlen + n))) {
    uint32_t mask = rt->inject_cap - 1;
    for (; i < n; i++)
      rt->inject_q[(rt->inject_first + rt->inject_qlen + i) & mask] = cos[i];
    rt->inject_qlen += n;
  }
  for (; i < n; i++) { /* out of memory: the list keeps them, in order */
    cos[i]->next = NULL;
    if (rt->inject_over_tail)
      rt->inject_over_tail->next = cos[i];
    else
      rt->inject_over_head = cos[i];
    rt->inject_over_tail = cos[i];
  }
  weft__st_rlx(&rt->inject_len, rt->inject_len + n);
  weft__spin_unlock(&rt->inject_lock);
}

/* Take the oldest one, for the caller to run; up to max - 1 more go to
 * w's ring (the caller made room). The array drains before the list. */
static weft_co *inject_take(struct weft_runtime *rt, uint32_t max,
                            weft__worker *w) {
  if (weft__ld_rlx(&rt->inject_len) == 0)
    return NULL;
  weft__spin_lock(&rt->inject_lock);
  weft_co *first = NULL;
  uint32_t n = 0;
  if (rt->inject_qlen) {
    uint32_t mask = rt->inject_cap - 1;
    n = rt->inject_qlen < max ? rt->inject_qlen : max;
    first = rt->inject_q[rt->inject_first];
    for (uint32_t i = 1; i < n; i++)
      weft__ring_push(w, rt->inject_q[(rt->inject_first + i) & mask]);
    rt->inject_first = (rt->inject_first + n) & mask;
    rt->inject_qlen -= n;
  } else if (rt->inject_over_head) {
    first = rt->inject_over_head;
    weft_co *co = first;
    for (n = 1; n < max && co->next; n++) {
      co = co->next;
      weft__ring_push(w, co);
    }
    rt->inject_over_head = co->next;
    if (!rt->inject_over_head)
      rt->inject_over_tail = NULL;
  }
  weft__st_rlx(&rt->inject_len, rt->inject_len - n);
  weft__spin_unlock(&rt->inject_lock);
  return first;
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

/* Put co in w's LIFO slot; a previous occupant moves to the ring (tagged
 * if it was a spawn continuation) where others may steal it. */
void weft__lifo_put(weft__worker *w, weft_co *co, bool cont) {
  weft_co *old = w->lifo;
  bool old_cont = w->lifo_cont;
  w->lifo = co;
  w->lifo_cont = cont;
  if (!old)
    return; /* the slot is not stealable: nobody else needs waking */
  weft__ring_push_tagged(w, (uintptr_t)old | (old_cont ? WEFT__RING_CONT : 0));
  weft__wake_one(w->rt);
}

void weft__make_runnable(weft__worker *w, struct weft_runtime *rt, weft_co *co,
                         bool lifo) {
  if (w && w->rt == rt) {
    if (lifo) {
      weft__lifo_put(w, co, false);
      return;
    }
    weft__ring_push(w, co);
  } else {
    weft__inject_push(rt, &co, 1);
  }
  weft__wake_one(rt);
}
