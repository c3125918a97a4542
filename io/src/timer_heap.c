/*
 * timer_heap.c - the binary min-heap behind the poller's timers (see
 * timer_heap.h). Ties between equal deadlines are broken by nothing in
 * particular: timers with the same deadline fire in one batch anyway.
 */
#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

static void set(weft__theap *h, size_t i, weft__hent e) {
  h->v[i] = e;
  e.t->slot = i;
}

static void sift_up(weft__theap *h, size_t i) {
  weft__hent e = h->v[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (h->v[parent].deadline_ns <= e.deadline_ns)
      break;
    set(h, i, h->v[parent]);
    i = parent;
  }
  set(h, i, e);
}

static void sift_down(weft__theap *h, size_t i) {
  weft__hent e = h->v[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->len)
      break;
    if (c + 1 < h->len && h->v[c + 1].deadline_ns < h->v[c].deadline_ns)
      c++;
    if (e.deadline_ns <= h->v[c].deadline_ns)
      break;
    set(h, i, h->v[c]);
    i = c;
  }
  set(h, i, e);
}

int weft__theap_push(weft__theap *h, weft__timer *t) {
  if (h->len == h->cap) {
    size_t cap = h->cap ? 2 * h->cap : 256;
    weft__hent *v = realloc(h->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    h->v = v;
    h->cap = cap;
  }
  h->v[h->len] = (weft__hent){t->deadline_ns, t};
  t->slot = h->len++;
  sift_up(h, h->len - 1);
  return 0;
}

void weft__theap_remove(weft__theap *h, weft__timer *t) {
  size_t i = t->slot;
  weft__hent last = h->v[--h->len];
  if (i == h->len)
    return;
  set(h, i, last);
  if (i > 0 && h->v[(i - 1) / 2].deadline_ns > last.deadline_ns)
    sift_up(h, i);
  else
    sift_down(h, i);
}

weft__timer *weft__theap_min(const weft__theap *h) {
  return h->len ? h->v[0].t : NULL;
}

uint64_t weft__theap_min_deadline(const weft__theap *h) {
  return h->len ? h->v[0].deadline_ns : UINT64_MAX;
}

weft__timer *weft__theap_pop(weft__theap *h) {
  if (!h->len)
    return NULL;
  weft__timer *t = h->v[0].t;
  weft__theap_remove(h, t);
  return t;
}

void weft__theap_free(weft__theap *h) {
  free(h->v);
  h->v = NULL;
  h->len = h->cap = 0;
}
