/*
 * timer_wheel.h - the poller's timer structure (timer_wheel.c): a
 * hierarchical timing wheel over timer nodes that the wheel owns.
 *
 * Shape. Time is counted in ticks of 2^13 ns (8.192 us). Level k has 64
 * slots of 64^k ticks each; 8 levels reach 2^61 ns (73 years) past the
 * wheel's current tick `cur`. A timer whose tick is t sits at the level of
 * the highest 6-bit group in which t and cur differ, in the slot named by
 * t's bits of that group; so at level k every timer shares cur's groups
 * above k, and its group-k index is above cur's. When cur enters a new
 * level-k slot, that slot's timers are placed again (they land lower): a
 * timer moves at most once per level, and a 1 s sleep is placed three
 * times in all. Each level keeps a 64-bit mask of its non-empty slots, so
 * finding the next expiry is a count-trailing-zeros per level.
 *
 * Precision. A level-0 slot fires when the clock has passed its end, so a
 * timer never fires early and fires at most one tick (8.2 us) after its
 * deadline plus the poller's own delay. Deadlines beyond the wheel's reach
 * wait on a list that never fires (cancelling them works as usual).
 *
 * Why a wheel and not a binary heap (what the poller had first): with
 * 100,000 sleepers a heap pop sifts 17 levels, cache-missing at each, and
 * the poller spent most of the wake-up of the sleep_gather benchmark
 * popping; the wheel arms, cancels and expires a timer in O(1), and
 * expiring walks one slot's list. Why nodes owned by the wheel and not the
 * weft__timer in the waiting coroutine's frame: links and bookkeeping
 * written into 100,000 different stacks are 100,000 cold pages; nodes sit
 * in a few dense chunks, and the waiting frame is never touched.
 *
 * A node carries what firing needs (co, gen, result) copied at arm, and a
 * sequence number that changes each time it is freed, so that a disarmer
 * can tell, without the lock, that its node has fired and been freed
 * (poller.c's protocol). Chunks never move and are freed only with the
 * wheel, so a node's address stays readable. Not thread-safe otherwise:
 * the poller's lock guards the rest.
 */
#ifndef WEFT_IO_TIMER_WHEEL_H
#define WEFT_IO_TIMER_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define WEFT__TW_SHIFT 13 /* a tick is 2^13 ns */
#define WEFT__TW_LEVELS 8
#define WEFT__TW_SLOTS 64

typedef struct weft__tnode {
  uint64_t deadline_ns;
  struct weft__tnode *next, *prev; /* slot list; free list through next */
  weft_co *co;
  uint32_t gen;
  int result;
  uint32_t seq;   /* atomic: bumped when freed */
  uint16_t state; /* poller.c's T_*; atomic */
  uint16_t where; /* level * 64 + slot, or WEFT__TW_FAR */
} weft__tnode;

typedef struct weft__twheel {
  uint64_t cur; /* every timer with a tick below cur has been expired */
  uint64_t mask[WEFT__TW_LEVELS];
  weft__tnode *slot[WEFT__TW_LEVELS][WEFT__TW_SLOTS];
  weft__tnode *far; /* beyond reach */
  size_t count;     /* armed nodes */
  weft__tnode **chunks;
  size_t nchunks;
  weft__tnode *free;
} weft__twheel;

void weft__twheel_init(weft__twheel *w, uint64_t now_ns);
/* A node for t (deadline, co, gen, result copied), armed; NULL when out of
 * memory. */
weft__tnode *weft__twheel_add(weft__twheel *w, const weft__timer *t);
void weft__twheel_del(weft__twheel *w, weft__tnode *n); /* still allocated */
/* Unlink up to max nodes whose deadline has passed at now_ns into out[]
 * (they stay allocated); returns how many. Fewer than max: none is left. */
size_t weft__twheel_expire(weft__twheel *w, uint64_t now_ns, weft__tnode **out,
                           size_t max);
/* When expire next has work (a node's slot ends, or a slot of a higher
 * level must be placed again); UINT64_MAX when nothing will. */
uint64_t weft__twheel_next(const weft__twheel *w);
/* When a timer with this deadline will be expired. */
uint64_t weft__twheel_due(const weft__twheel *w, uint64_t deadline_ns);
void weft__twheel_node_free(weft__twheel *w, weft__tnode *n);
void weft__twheel_free(weft__twheel *w); /* the wheel and every node */

#endif
