/*
 * test_stress.c - the scheduler under load: millions of spawns, yields,
 * park/unpark storms between workers and a million live coroutines.
 * Every case counts what it did and checks the count: nothing lost, nothing
 * run twice. Registered at 1, 2, 4 and 8 workers; sizes shrink 20x under
 * sanitizers (check.h SCALE).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h" /* weft__park / weft__unpark: the protocol itself */
#include "weft/sched.h"

/* A one-shot event on the park protocol: slot is NULL, SET or the waiter.
 * Exactly one setter per wait, so exactly one unpark per park. */
#define EV_SET ((weft_co *)(uintptr_t)1)
typedef struct event {
  weft_co *slot;
} event;

static void ev_wait(event *e) {
  weft_co *self = weft_self();
  weft_co *expected = NULL;
  if (__atomic_compare_exchange_n(&e->slot, &expected, self, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE))
    CHECK_EQ(weft__park(WEFT__PARK_TEST, NULL, NULL), 0);
  CHECK(__atomic_load_n(&e->slot, __ATOMIC_ACQUIRE) == EV_SET);
  __atomic_store_n(&e->slot, NULL, __ATOMIC_RELAXED);
}

static void ev_set(event *e) {
  weft_co *old = __atomic_exchange_n(&e->slot, EV_SET, __ATOMIC_ACQ_REL);
  CHECK(old != EV_SET); /* set twice without a wait between: a test bug */
  if (old)
    weft__unpark(old, 0);
}

/* ---- 10 million spawns, none lost ------------------------------------------- */

static uint64_t ran;
static uint64_t spawn_each;

static void *bump(void *arg) {
  (void)arg;
  __atomic_fetch_add(&ran, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *spawner(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < spawn_each; i++)
    CHECK_EQ(weft_spawn(NULL, bump, NULL), 0);
  return NULL;
}

static void *spawn_main(void *arg) {
  (void)arg;
  enum { SPAWNERS = 8 };
  weft_co *c[SPAWNERS];
  for (int i = 0; i < SPAWNERS; i++)
    CHECK_EQ(weft_spawn(&c[i], spawner, NULL), 0);
  for (int i = 0; i < SPAWNERS; i++)
    CHECK_EQ(weft_join(c[i], NULL), 0);
  /* Detached coroutines that were spawned have all run once the spawners
   * are done? Not necessarily (a spawn returns when the child parks or
   * ends, and bump never parks, so here: yes). Count to be sure. */
  while (__atomic_load_n(&ran, __ATOMIC_RELAXED) < SPAWNERS * spawn_each)
    weft_yield();
  CHECK_EQ(__atomic_load_n(&ran, __ATOMIC_RELAXED), SPAWNERS * spawn_each);
  return NULL;
}

static void spawn_10m(void) {
  spawn_each = SCALE(10000000) / 8;
  CHECK_EQ(weft_run(NULL, spawn_main, NULL, NULL), 0);
  CHECK_EQ(ran, 8 * spawn_each);
}

/* ---- a million yields across all workers ------------------------------------ */

static uint64_t yields;

static void *yielder(void *arg) {
  uintptr_t n = (uintptr_t)arg;
  for (uintptr_t i = 0; i < n; i++) {
    weft_yield();
    __atomic_fetch_add(&yields, 1, __ATOMIC_RELAXED);
  }
  return (void *)n;
}

static void *yield_main(void *arg) {
  (void)arg;
  enum { N = 100 };
  uintptr_t each = SCALE(1000000) / N;
  weft_co *c[N];
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], yielder, (void *)each), 0);
  for (int i = 0; i < N; i++) {
    void *r;
    CHECK_EQ(weft_join(c[i], &r), 0);
    CHECK_EQ((uintptr_t)r, each);
  }
  CHECK_EQ(yields, N * each);
  return NULL;
}

static void yield_1m(void) { CHECK_EQ(weft_run(NULL, yield_main, NULL, NULL), 0); }

/* ---- park/unpark storms ----------------------------------------------------- */

typedef struct pair {
  event ping, pong;
  uint64_t rounds;
  uint64_t seen_a, seen_b; /* each side's count of the other's wakes */
  uint64_t turn;           /* who may run: even = a, odd = b */
} pair;

static void *side_a(void *arg) {
  pair *p = arg;
  for (uint64_t i = 0; i < p->rounds; i++) {
    CHECK_EQ(__atomic_load_n(&p->turn, __ATOMIC_ACQUIRE), 2 * i);
    __atomic_store_n(&p->turn, 2 * i + 1, __ATOMIC_RELEASE);
    ev_set(&p->ping);
    ev_wait(&p->pong);
    p->seen_a++;
  }
  return NULL;
}

static void *side_b(void *arg) {
  pair *p = arg;
  for (uint64_t i = 0; i < p->rounds; i++) {
    ev_wait(&p->ping);
    p->seen_b++;
    CHECK_EQ(__atomic_load_n(&p->turn, __ATOMIC_ACQUIRE), 2 * i + 1);
    __atomic_store_n(&p->turn, 2 * i + 2, __ATOMIC_RELEASE);
    ev_set(&p->pong);
  }
  return NULL;
}

static void *storm_main(void *arg) {
  (void)arg;
  enum { PAIRS = 16 };
  static pair pairs[PAIRS];
  weft_co *c[2 * PAIRS];
  uint64_t rounds = SCALE(40000);
  for (int i = 0; i < PAIRS; i++) {
    pairs[i] = (pair){.rounds = rounds};
    CHECK_EQ(weft_spawn(&c[2 * i], side_b, &pairs[i]), 0);
    CHECK_EQ(weft_spawn(&c[2 * i + 1], side_a, &pairs[i]), 0);
  }
  for (int i = 0; i < 2 * PAIRS; i++)
    CHECK_EQ(weft_join(c[i], NULL), 0);
  for (int i = 0; i < PAIRS; i++) {
    CHECK_EQ(pairs[i].seen_a, rounds);
    CHECK_EQ(pairs[i].seen_b, rounds);
  }
  return NULL;
}

static void park_storm(void) { CHECK_EQ(weft_run(NULL, storm_main, NULL, NULL), 0); }

/* Unparks from a foreign thread (the inject queue path) racing parks. */
enum { REMOTE_N = 64 };
static event remote_ev[REMOTE_N];
static event remote_ack[REMOTE_N];
static uint64_t remote_rounds;

static void *remote_waiter(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  for (uint64_t r = 0; r < remote_rounds; r++) {
    ev_wait(&remote_ev[i]);
    ev_set(&remote_ack[i]);
  }
  return NULL;
}

static void *remote_waker(void *arg) {
  (void)arg;
  /* A foreign thread: ev_wait parks it on a futex (park.c). */
  for (uint64_t r = 0; r < remote_rounds; r++) {
    for (int i = 0; i < REMOTE_N; i++)
      ev_set(&remote_ev[i]);
    for (int i = 0; i < REMOTE_N; i++) {
      weft_co *self = weft__foreign_self();
      weft_co *expected = NULL;
      if (__atomic_compare_exchange_n(&remote_ack[i].slot, &expected, self, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        CHECK_EQ(weft__park(WEFT__PARK_TEST, NULL, NULL), 0);
      __atomic_store_n(&remote_ack[i].slot, NULL, __ATOMIC_RELAXED);
    }
  }
  return NULL;
}

static void foreign_unpark_storm(void) {
  weft_runtime *rt;
  remote_rounds = SCALE(2000);
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  weft_co *c[REMOTE_N];
  for (uintptr_t i = 0; i < REMOTE_N; i++)
    CHECK_EQ(weft_runtime_spawn(rt, &c[i], remote_waiter, (void *)i), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, remote_waker, NULL), 0);
  pthread_join(t, NULL);
  for (int i = 0; i < REMOTE_N; i++)
    CHECK_EQ(weft_join(c[i], NULL), 0);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

/* ---- a million coroutines alive at once ------------------------------------- */

static weft_co **alive;
static uint64_t parked_count, woke_count;

static void *parker(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  alive[i] = weft_self();
  __atomic_fetch_add(&parked_count, 1, __ATOMIC_RELEASE);
  CHECK_EQ(weft__park(WEFT__PARK_TEST, NULL, NULL), 7);
  __atomic_fetch_add(&woke_count, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *million_main(void *arg) {
  uint64_t n = (uintptr_t)arg;
  alive = calloc(n, sizeof *alive);
  CHECK(alive != NULL);
  for (uint64_t i = 0; i < n; i++)
    CHECK_EQ(weft_spawn(NULL, parker, (void *)(uintptr_t)i), 0);
  while (__atomic_load_n(&parked_count, __ATOMIC_ACQUIRE) < n)
    weft_yield();
  CHECK_EQ(__atomic_load_n(&woke_count, __ATOMIC_RELAXED), 0);
  for (uint64_t i = 0; i < n; i++)
    weft__unpark(alive[i], 7);
  while (__atomic_load_n(&woke_count, __ATOMIC_RELAXED) < n)
    weft_yield();
  CHECK_EQ(__atomic_load_n(&woke_count, __ATOMIC_RELAXED), n);
  free(alive);
  return NULL;
}

static void million_alive(void) {
  CHECK_EQ(weft_run(NULL, million_main, (void *)(uintptr_t)SCALE_LIVE(1000000), NULL), 0);
}

/* ---- a spinning coroutine never keeps a runnable one waiting --------------- */

/* A spins (never yields) until B has run, so B must run on another worker:
 * whatever path B takes to a queue, the wake rule (worker.c P1-P5, S1-S4;
 * tests/model/wake.pml) must leave a worker awake to take it. A lost
 * wakeup hangs here (until the test's timeout): the spinning worker never
 * looks at its queues, and the others sleep. The foreign thread spawns
 * both into the inject queue, back to back, so each pair races the
 * workers going idle after the last pair. Needs two workers. */
static void *spin_until_set(void *arg) {
  while (!__atomic_load_n((uint32_t *)arg, __ATOMIC_ACQUIRE))
    weft__cpu_relax();
  return NULL;
}

static void *set_flag(void *arg) {
  __atomic_store_n((uint32_t *)arg, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void spinner_pairs(void) {
  const char *env = getenv("WEFT_WORKERS");
  if (env ? atoi(env) < 2 : sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    printf("skipped: a spinning coroutine needs a second worker\n");
    exit(77);
  }
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  for (int i = 0; i < SCALE(20000); i++) {
    uint32_t flag = 0;
    weft_co *a, *b;
    CHECK_EQ(weft_runtime_spawn(rt, &a, spin_until_set, &flag), 0);
    CHECK_EQ(weft_runtime_spawn(rt, &b, set_flag, &flag), 0);
    CHECK_EQ(weft_join(a, NULL), 0);
    CHECK_EQ(weft_join(b, NULL), 0);
  }
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

static const test_case cases[] = {
    {"spawn_10m", spawn_10m},
    {"yield_1m", yield_1m},
    {"park_storm", park_storm},
    {"foreign_unpark_storm", foreign_unpark_storm},
    {"million_alive", million_alive},
    {"spinner_pairs", spinner_pairs},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
