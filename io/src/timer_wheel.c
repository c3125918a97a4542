/*
 * timer_wheel.c - the hierarchical timing wheel behind the poller's timers
 * (the shape, the precision and the reasons are in timer_wheel.h).
 */
#include "timer_wheel.h"

#include <stdlib.h>

#define BITS 6u
#define MASK63 63u
#define FAR 0xffffu
#define CHUNK 4096u

static inline unsigned group(uint64_t tick, unsigned level) {
  return (unsigned)(tick >> (level * BITS)) & MASK63;
}

/* ---- nodes -------------------------------------------------------------------- */

static weft__tnode *node_alloc(weft__twheel *w) {
  if (!w->free) {
    weft__tnode **chunks = realloc(w->chunks, (w->nchunks + 1) * sizeof *chunks);
    if (!chunks)
      return NULL;
    w->chunks = chunks;
    weft__tnode *c = calloc(CHUNK, sizeof *c);
    if (!c)
      return NULL;
    w->chunks[w->nchunks++] = c;
    for (size_t i = CHUNK; i-- > 0;) {
      c[i].next = w->free;
      w->free = &c[i];
    }
  }
  weft__tnode *n = w->free;
  w->free = n->next;
  return n;
}

void weft__twheel_node_free(weft__twheel *w, weft__tnode *n) {
  weft__st_rel(&n->seq, n->seq + 1); /* a disarmer reading it may return */
  n->next = w->free;
  w->free = n;
}

/* ---- slots ---------------------------------------------------------------------- */

static void link(weft__twheel *w, weft__tnode *n) {
  uint64_t t = n->deadline_ns >> WEFT__TW_SHIFT;
  if (t < w->cur)
    t = w->cur; /* already due: fires with the current tick */
  uint64_t x = t ^ w->cur;
  unsigned level = x ? (unsigned)(63 - __builtin_clzll(x)) / BITS : 0;
  weft__tnode **head;
  if (level >= WEFT__TW_LEVELS) {
    n->where = FAR;
    head = &w->far;
  } else {
    unsigned idx = group(t, level);
    n->where = (uint16_t)(level * WEFT__TW_SLOTS + idx);
    head = &w->slot[level][idx];
    w->mask[level] |= 1ull << idx;
  }
  n->prev = NULL;
  n->next = *head;
  if (*head)
    (*head)->prev = n;
  *head = n;
}

static void unlink_node(weft__twheel *w, weft__tnode *n) {
  if (n->next)
    n->next->prev = n->prev;
  if (n->prev) {
    n->prev->next = n->next;
    return;
  }
  if (n->where == FAR) {
    w->far = n->next;
    return;
  }
  unsigned level = n->where / WEFT__TW_SLOTS, idx = n->where % WEFT__TW_SLOTS;
  w->slot[level][idx] = n->next;
  if (!n->next)
    w->mask[level] &= ~(1ull << idx);
}

/* cur has just entered a new level-0 window: every level whose group in
 * cur rolled over to a new slot hands that slot's timers down, highest
 * level first. */
static void cascade(weft__twheel *w) {
  unsigned top = 1;
  while (top + 1 < WEFT__TW_LEVELS && group(w->cur, top) == 0)
    top++;
  for (unsigned level = top; level >= 1; level--) {
    unsigned idx = group(w->cur, level);
    weft__tnode *n = w->slot[level][idx];
    w->slot[level][idx] = NULL;
    w->mask[level] &= ~(1ull << idx);
    while (n) {
      weft__tnode *next = n->next;
      link(w, n);
      n = next;
    }
  }
}

/* ---- the interface ------------------------------------------------------------------ */

void weft__twheel_init(weft__twheel *w, uint64_t now_ns) {
  *w = (weft__twheel){.cur = now_ns >> WEFT__TW_SHIFT};
}

weft__tnode *weft__twheel_add(weft__twheel *w, const weft__timer *t) {
  weft__tnode *n = node_alloc(w);
  if (!n)
    return NULL;
  n->deadline_ns = t->deadline_ns;
  n->co = t->co;
  n->gen = t->gen;
  n->result = t->result;
  link(w, n);
  w->count++;
  return n;
}

void weft__twheel_del(weft__twheel *w, weft__tnode *n) {
  unlink_node(w, n);
  w->count--;
}

/* The tick of the next thing to do, UINT64_MAX if none: the first
 * non-empty level-0 tick at or after cur, else the start of the first
 * non-empty slot of the lowest level that has one. All levels below that
 * one are empty, so cur may jump there in one step. */
static uint64_t next_tick(const weft__twheel *w) {
  unsigned idx = (unsigned)w->cur & MASK63;
  uint64_t m = w->mask[0] & (~0ull << idx);
  if (m)
    return (w->cur & ~(uint64_t)MASK63) + (unsigned)__builtin_ctzll(m);
  for (unsigned level = 1; level < WEFT__TW_LEVELS; level++) {
    idx = group(w->cur, level);
    m = idx == MASK63 ? 0 : w->mask[level] & (~0ull << (idx + 1));
    if (m) {
      unsigned shift = (level + 1) * BITS;
      return ((w->cur >> shift) << shift) +
             ((uint64_t)(unsigned)__builtin_ctzll(m) << (level * BITS));
    }
  }
  return UINT64_MAX;
}

size_t weft__twheel_expire(weft__twheel *w, uint64_t now_ns, weft__tnode **out,
                           size_t max) {
  uint64_t target = now_ns >> WEFT__TW_SHIFT; /* expire the ticks below it */
  size_t k = 0;
  while (w->cur < target) {
    unsigned idx = (unsigned)w->cur & MASK63;
    weft__tnode *n;
    while ((n = w->slot[0][idx])) {
      if (k == max)
        return k;
      unlink_node(w, n);
      w->count--;
      out[k++] = n;
    }
    /* Jump to the next thing to do, but not past target. Every slot
     * jumped over is empty; a jump that lands on a window's start enters
     * new slots above, which hand their timers down. */
    uint64_t next = next_tick(w);
    w->cur = next < target ? next : target;
    if ((w->cur & MASK63) == 0)
      cascade(w);
  }
  return k;
}

uint64_t weft__twheel_next(const weft__twheel *w) {
  uint64_t at = next_tick(w);
  if (at == UINT64_MAX)
    return UINT64_MAX;
  if (w->mask[0])
    at++; /* a level-0 answer: its slot fires once its tick has passed */
  return at > UINT64_MAX >> WEFT__TW_SHIFT ? UINT64_MAX : at << WEFT__TW_SHIFT;
}

uint64_t weft__twheel_due(const weft__twheel *w, uint64_t deadline_ns) {
  uint64_t t = deadline_ns >> WEFT__TW_SHIFT;
  if (t < w->cur)
    t = w->cur;
  return t + 1 > UINT64_MAX >> WEFT__TW_SHIFT ? UINT64_MAX : (t + 1) << WEFT__TW_SHIFT;
}

void weft__twheel_free(weft__twheel *w) {
  for (size_t i = 0; i < w->nchunks; i++)
    free(w->chunks[i]);
  free(w->chunks);
  *w = (weft__twheel){0};
}
