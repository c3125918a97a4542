/*
 * test_timer_wheel.c - the poller's timing wheel (io/src/timer_wheel.c)
 * alone, on a simulated clock, against a plain list as the model:
 *   - no timer expires before its deadline;
 *   - once the clock has passed a deadline by a tick, that timer has
 *     expired (nothing is lost in a cascade or a jump);
 *   - next() never points past the earliest pending timer's due time, and
 *     when something is pending it points somewhere (no sleeping forever);
 *   - cancelling works at every level, and freed nodes are reused with a
 *     new sequence number.
 * Deadlines span nanoseconds to years, clock steps span one tick to hours,
 * so every level, every cascade and every jump is exercised.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "timer_wheel.h"

#define TICK (1ull << WEFT__TW_SHIFT)
#define MAXT 20000

typedef struct {
  weft__tnode *n;
  uint64_t deadline;
  bool live;
} model;

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A deadline some distance after now, with distances spread over every
 * level: 2^0 to 2^58 ns, log-uniform. */
static uint64_t random_after(uint64_t now) {
  unsigned bits = (unsigned)(rnd() % 59);
  return now + (rnd() & ((1ull << bits) - 1)) + 1;
}

static model m[MAXT];
static size_t nm;

static void check_invariants(weft__twheel *w, uint64_t now) {
  uint64_t earliest = UINT64_MAX;
  size_t live = 0;
  for (size_t i = 0; i < nm; i++) {
    if (!m[i].live)
      continue;
    live++;
    /* Past its deadline by more than a tick, it must have expired. */
    CHECK(m[i].deadline >= (now & ~(TICK - 1)));
    uint64_t due = weft__twheel_due(w, m[i].deadline);
    if (due < earliest)
      earliest = due;
  }
  CHECK_EQ(w->count, live);
  uint64_t next = weft__twheel_next(w);
  if (live && earliest < (UINT64_MAX >> 2))
    CHECK(next <= earliest);
  if (!live)
    CHECK_EQ(next, UINT64_MAX);
}

static void expire_all(weft__twheel *w, uint64_t now) {
  weft__tnode *out[64];
  size_t k;
  do {
    k = weft__twheel_expire(w, now, out, 64);
    for (size_t j = 0; j < k; j++) {
      size_t i = 0;
      while (i < nm && !(m[i].live && m[i].n == out[j]))
        i++;
      CHECK(i < nm);               /* expired something armed */
      CHECK(m[i].deadline <= now); /* never early */
      m[i].live = false;
      weft__twheel_node_free(w, out[j]);
    }
  } while (k == 64);
}

static void random_walk(void) {
  weft__twheel w;
  uint64_t now = 1000000000ull + (rnd() % 1000000000ull);
  weft__twheel_init(&w, now);
  for (int round = 0; round < 4000; round++) {
    /* Arm a few. */
    for (int j = (int)(rnd() % 8); j > 0 && nm < MAXT; j--) {
      weft__timer t = {.deadline_ns = random_after(now), .result = -1};
      weft__tnode *n = weft__twheel_add(&w, &t);
      CHECK(n);
      m[nm++] = (model){n, t.deadline_ns, true};
    }
    /* Cancel one now and then. */
    if (nm && rnd() % 3 == 0) {
      size_t i = rnd() % nm;
      if (m[i].live) {
        uint32_t seq = m[i].n->seq;
        weft__twheel_del(&w, m[i].n);
        weft__twheel_node_free(&w, m[i].n);
        CHECK(m[i].n->seq != seq);
        m[i].live = false;
      }
    }
    /* Step the clock: sometimes to the wheel's own next event, sometimes
     * by a random amount from a tick to hours. */
    uint64_t next = weft__twheel_next(&w);
    if (rnd() % 2 && next != UINT64_MAX && next > now)
      now = next;
    else
      now += 1 + (rnd() & ((1ull << (rnd() % 44)) - 1));
    expire_all(&w, now);
    check_invariants(&w, now);
    /* Compact the model now and then. */
    if (nm > MAXT - 100) {
      size_t k = 0;
      for (size_t i = 0; i < nm; i++)
        if (m[i].live)
          m[k++] = m[i];
      nm = k;
    }
  }
  /* Run the clock far ahead: everything within reach fires. */
  now += 1ull << 60;
  expire_all(&w, now);
  for (size_t i = 0; i < nm; i++)
    if (m[i].live)
      CHECK(m[i].deadline > now);
  weft__twheel_free(&w);
  nm = 0;
}

/* Many timers on one deadline, and deadlines already past at arm. */
static void same_and_past(void) {
  weft__twheel w;
  uint64_t now = 5000000000ull;
  weft__twheel_init(&w, now);
  for (int i = 0; i < 1000; i++) {
    weft__timer t = {.deadline_ns = now + 1000000000ull};
    weft__tnode *n = weft__twheel_add(&w, &t);
    CHECK(n);
    m[nm++] = (model){n, t.deadline_ns, true};
  }
  expire_all(&w, now + 999999999ull);
  CHECK_EQ(w.count, 1000); /* not one early */
  expire_all(&w, now + 1000000000ull + TICK);
  CHECK_EQ(w.count, 0);
  /* A deadline behind the wheel's clock expires at the next look. */
  now += 2000000000ull;
  expire_all(&w, now);
  weft__timer past = {.deadline_ns = now - 500000000ull};
  weft__tnode *n = weft__twheel_add(&w, &past);
  m[nm++] = (model){n, past.deadline_ns, true};
  CHECK(weft__twheel_next(&w) <= now + TICK);
  expire_all(&w, now + TICK);
  CHECK_EQ(w.count, 0);
  /* Beyond the wheel's reach: never fires, but can be cancelled. */
  weft__timer never = {.deadline_ns = UINT64_MAX};
  n = weft__twheel_add(&w, &never);
  CHECK_EQ(weft__twheel_next(&w), UINT64_MAX);
  expire_all(&w, now + (1ull << 40));
  CHECK_EQ(w.count, 1);
  weft__twheel_del(&w, n);
  weft__twheel_node_free(&w, n);
  CHECK_EQ(w.count, 0);
  weft__twheel_free(&w);
  nm = 0;
}

int main(int argc, char **argv) {
  return test_main(argc, argv,
                   (test_case[]){{"random_walk", random_walk},
                                 {"same_and_past", same_and_past},
                                 {NULL, NULL}});
}
