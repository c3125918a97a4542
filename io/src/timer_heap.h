/*
 * timer_heap.h - a binary min-heap of timers by deadline (timer_heap.c).
 *
 * The poller's timer structure: arming and disarming are O(log n) with
 * each timer remembering its slot (weft__timer.slot), so cancelling a
 * deadline that did not fire (the common case: the wait ended first) is
 * as cheap as arming it. Not thread-safe: the poller's lock guards it.
 */
#ifndef WEFT_IO_TIMER_HEAP_H
#define WEFT_IO_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

/* Each entry keeps its timer's deadline beside the pointer: comparisons
 * then stay in the heap's own array instead of visiting the timers, which
 * live on as many coroutine stacks as there are timers. */
typedef struct weft__hent {
  uint64_t deadline_ns;
  weft__timer *t;
} weft__hent;

typedef struct weft__theap {
  weft__hent *v;
  size_t len, cap;
} weft__theap;

int weft__theap_push(weft__theap *h, weft__timer *t); /* 0 or -ENOMEM */
void weft__theap_remove(weft__theap *h, weft__timer *t);
weft__timer *weft__theap_min(const weft__theap *h); /* NULL when empty */
uint64_t weft__theap_min_deadline(const weft__theap *h); /* UINT64_MAX: empty */
weft__timer *weft__theap_pop(weft__theap *h);
void weft__theap_free(weft__theap *h);

#endif
