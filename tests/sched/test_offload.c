/*
 * test_offload.c - the offload pool: results, named pool threads that run
 * no coroutine, workers left free while calls block, the bound on threads,
 * shrinking when idle, cancellation (also racing completion), foreign
 * callers, and a runtime stopped with calls in flight.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h"
#include "weft/sched.h"

static void *add_one(void *arg) { return (void *)((uintptr_t)arg + 1); }

static void *where_am_i(void *arg) {
  (void)arg;
  char name[16] = "";
  pthread_getname_np(pthread_self(), name, sizeof name);
  CHECK(strncmp(name, "weft-blk-", 9) == 0);
  CHECK(weft_self() == NULL); /* pool threads never run coroutines */
  return NULL;
}

static void *basics_main(void *arg) {
  (void)arg;
  void *r = NULL;
  CHECK_EQ(weft_offload(add_one, (void *)41, &r), 0);
  CHECK_EQ((uintptr_t)r, 42);
  CHECK_EQ(weft_offload(where_am_i, NULL, NULL), 0);
  CHECK_EQ(weft_offload(NULL, NULL, NULL), -EINVAL);
  return NULL;
}

static void basics(void) { CHECK_EQ(weft_run(NULL, basics_main, NULL, NULL), 0); }

/* Calls that block on a gate only a coroutine opens: if a blocked call
 * held a worker, the opener could never run and the test would hang. */
static sem_t gate;
static int inside, max_inside;

static void *blocked_call(void *arg) {
  (void)arg;
  int now = __atomic_add_fetch(&inside, 1, __ATOMIC_ACQ_REL);
  int m = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
  while (now > m && !__atomic_compare_exchange_n(&max_inside, &m, now, 0,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
  while (sem_wait(&gate) != 0)
    ;
  __atomic_sub_fetch(&inside, 1, __ATOMIC_ACQ_REL);
  return (void *)7;
}

static void *offloader(void *arg) {
  (void)arg;
  void *r;
  int rc = weft_offload(blocked_call, NULL, &r);
  CHECK(rc != 0 || (uintptr_t)r == 7);
  return (void *)(intptr_t)rc;
}

static void *opener(void *arg) {
  uintptr_t n = (uintptr_t)arg;
  /* Wait until calls are blocked in the pool, yielding (not blocking). */
  while (__atomic_load_n(&inside, __ATOMIC_ACQUIRE) == 0)
    weft_yield();
  for (uintptr_t i = 0; i < n; i++)
    sem_post(&gate);
  return NULL;
}

static void *free_workers_main(void *arg) {
  unsigned limit = (unsigned)(uintptr_t)arg;
  enum { N = 16 };
  weft_co *c[N], *o;
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], offloader, NULL), 0);
  CHECK_EQ(weft_spawn(&o, opener, (void *)(uintptr_t)N), 0);
  for (int i = 0; i < N; i++) {
    void *rc;
    CHECK_EQ(weft_join(c[i], &rc), 0);
    CHECK_EQ((intptr_t)rc, 0);
  }
  CHECK_EQ(weft_join(o, NULL), 0);
  CHECK(max_inside >= 1 && (unsigned)max_inside <= limit);
  return NULL;
}

static void workers_stay_free(void) {
  sem_init(&gate, 0, 0);
  weft_config cfg = {.offload_threads = 64};
  CHECK_EQ(weft_run(&cfg, free_workers_main, (void *)64, NULL), 0);
}

static void pool_is_bounded(void) {
  sem_init(&gate, 0, 0);
  weft_config cfg = {.offload_threads = 2};
  CHECK_EQ(weft_run(&cfg, free_workers_main, (void *)2, NULL), 0);
  CHECK(max_inside <= 2);
}

/* After the calls, the pool shrinks back to no thread. */
static void *burst(void *arg) {
  (void)arg;
  weft_co *c[8];
  for (int i = 0; i < 8; i++)
    CHECK_EQ(weft_spawn(&c[i], add_one, NULL), 0);
  CHECK_EQ(weft_gather(c, 8, NULL), 0);
  void *r;
  CHECK_EQ(weft_offload(add_one, (void *)1, &r), 0);
  return NULL;
}

static void shrinks_when_idle(void) {
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  weft_co *c;
  CHECK_EQ(weft_runtime_spawn(rt, &c, burst, NULL), 0);
  CHECK_EQ(weft_join(c, NULL), 0);
  CHECK(weft__offload_threads(rt) >= 1);
  /* Threads leave after 2 s without work; allow a loaded machine 20 s. */
  for (int i = 0; i < 400 && weft__offload_threads(rt) > 0; i++)
    usleep(50000);
  CHECK_EQ(weft__offload_threads(rt), 0);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

/* ---- cancellation ---------------------------------------------------------------- */

static uint64_t finished_calls;

static void *cancel_main(void *arg) {
  (void)arg;
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, offloader, NULL), 0); /* blocked on `gate` */
  weft_yield();
  CHECK_EQ(weft_cancel(c), 0);
  void *rc;
  CHECK_EQ(weft_join(c, &rc), 0); /* returns while the call still blocks */
  CHECK_EQ((intptr_t)rc, -ECANCELED);
  sem_post(&gate); /* let the abandoned call finish; the pool frees it */
  return NULL;
}

static void cancel_blocked(void) {
  sem_init(&gate, 0, 0);
  CHECK_EQ(weft_run(NULL, cancel_main, NULL, NULL), 0);
}

static void *quick_call(void *arg) {
  (void)arg;
  __atomic_fetch_add(&finished_calls, 1, __ATOMIC_RELEASE);
  return (void *)3;
}

static void *quick_offloader(void *arg) {
  (void)arg;
  void *r = NULL;
  int rc = weft_offload(quick_call, NULL, &r);
  if (rc == 0)
    CHECK_EQ((uintptr_t)r, 3);
  return (void *)(intptr_t)rc;
}

static void *cancel_race_main(void *arg) {
  (void)arg;
  uint64_t ok = 0, cancelled = 0;
  int rounds = SCALE(3000);
  for (int i = 0; i < rounds; i++) {
    weft_co *c;
    CHECK_EQ(weft_spawn(&c, quick_offloader, NULL), 0);
    if (i % 3)
      weft_yield();
    weft_cancel(c);
    void *rc;
    CHECK_EQ(weft_join(c, &rc), 0);
    if ((intptr_t)rc == 0)
      ok++;
    else {
      CHECK_EQ((intptr_t)rc, -ECANCELED);
      cancelled++;
    }
  }
  /* Every call runs to its end, cancelled or not. */
  while (__atomic_load_n(&finished_calls, __ATOMIC_ACQUIRE) < (uint64_t)rounds)
    weft_yield();
  CHECK_EQ(ok + cancelled, rounds);
  fprintf(stderr, "completed %llu, cancelled %llu\n", (unsigned long long)ok,
          (unsigned long long)cancelled);
  return NULL;
}

static void cancel_races_completion(void) {
  CHECK_EQ(weft_run(NULL, cancel_race_main, NULL, NULL), 0);
}

/* ---- foreign callers and stopping ------------------------------------------------ */

static void foreign_caller(void) {
  void *r;
  CHECK_EQ(weft_offload(add_one, (void *)1, &r), 0); /* no runtime: inline */
  CHECK_EQ((uintptr_t)r, 2);
}

static uint32_t stop_returned;

/* Open the gate for one call every 20 ms until stop returns: if stop is
 * slow to begin (joining 8 workers under TSan can take longer than 20 ms),
 * the pool thread may finish the running call and take a queued one
 * before it sees the stop; one opening would leave that one blocked and
 * stop waiting for it forever. */
static void *open_gate_later(void *arg) {
  (void)arg;
  do {
    usleep(20000);
    sem_post(&gate);
  } while (!__atomic_load_n(&stop_returned, __ATOMIC_ACQUIRE));
  return NULL;
}

static void stop_with_calls_in_flight(void) {
  sem_init(&gate, 0, 0);
  weft_runtime *rt;
  weft_config cfg = {.offload_threads = 1};
  CHECK_EQ(weft_runtime_start(&cfg, &rt), 0);
  for (int i = 0; i < 4; i++) /* one runs (blocked), three queue */
    CHECK_EQ(weft_runtime_spawn(rt, NULL, offloader, NULL), 0);
  while (__atomic_load_n(&inside, __ATOMIC_ACQUIRE) == 0)
    usleep(1000);
  /* Release the running call from another thread while stop waits. */
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, open_gate_later, NULL), 0);
  CHECK_EQ(weft_runtime_stop(rt), 0);
  __atomic_store_n(&stop_returned, 1, __ATOMIC_RELEASE);
  pthread_join(t, NULL);
}

static const test_case cases[] = {
    {"basics", basics},
    {"workers_stay_free", workers_stay_free},
    {"pool_is_bounded", pool_is_bounded},
    {"shrinks_when_idle", shrinks_when_idle},
    {"cancel_blocked", cancel_blocked},
    {"cancel_races_completion", cancel_races_completion},
    {"foreign_caller", foreign_caller},
    {"stop_with_calls_in_flight", stop_with_calls_in_flight},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
