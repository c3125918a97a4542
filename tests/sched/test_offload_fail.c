/*
 * test_offload_fail.c - the offload pool when its threads cannot be
 * started. RLIMIT_NPROC does not bind root, so this program is linked
 * with -Wl,--wrap=pthread_create (tests/sched/CMakeLists.txt): every
 * pthread_create in it, weft's included (it links weft_sched_static),
 * goes through __wrap_pthread_create below, which fails with EAGAIN
 * while `refuse` is set. The runtime's workers are started before a case
 * sets it; the offload pool is the only thing that starts threads
 * afterwards (sched has no poller).
 *
 * Expectations: with no pool thread at all, weft_offload returns -EAGAIN
 * at once (not a hang, not a crash) and leaks nothing; with some pool
 * threads alive, calls queue and run on those; once threads can be
 * started again the pool grows again.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h"
#include "weft/sched.h"

static uint32_t refuse;  /* atomic: fail every pthread_create */
static uint32_t refused; /* atomic: how many were failed */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
  if (__atomic_load_n(&refuse, __ATOMIC_ACQUIRE)) {
    __atomic_fetch_add(&refused, 1, __ATOMIC_RELAXED);
    return EAGAIN;
  }
  return __real_pthread_create(t, a, fn, arg);
}

static void set_refuse(uint32_t on) { __atomic_store_n(&refuse, on, __ATOMIC_RELEASE); }

static void *add_one(void *arg) { return (void *)((uintptr_t)arg + 1); }

static void *yielder(void *arg) {
  for (int i = 0; i < 10; i++)
    weft_yield();
  return arg;
}

/* Yield until *p reaches n, for at most 60 s (a hang fails the test). */
static void yield_until(uint32_t *p, uint32_t n) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (__atomic_load_n(p, __ATOMIC_ACQUIRE) < n) {
    weft_yield();
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 60) {
      fprintf(stderr, "waited 60 s for %u calls in the pool, %u there\n", n,
              __atomic_load_n(p, __ATOMIC_ACQUIRE));
      CHECK(!"the pool did not run the calls");
    }
  }
}

/* ---- no pool thread can be started: -EAGAIN, then recovery ------------------ */

static void *no_thread_main(void *arg) {
  (void)arg;
  weft_runtime *rt = weft_self()->rt;
  CHECK_EQ(weft__offload_threads(rt), 0);
  set_refuse(1);
  for (int i = 0; i < 100; i++) {
    void *r = (void *)7;
    CHECK_EQ(weft_offload(add_one, (void *)1, &r), -EAGAIN);
    CHECK(r == (void *)7); /* untouched */
  }
  CHECK_EQ(weft__offload_threads(rt), 0);
  CHECK(__atomic_load_n(&refused, __ATOMIC_RELAXED) >= 100);
  /* The caller is not left in a wait: it parks (a join) and wakes. */
  weft_co *child;
  CHECK_EQ(weft_spawn(&child, yielder, NULL), 0);
  CHECK_EQ(weft_join(child, NULL), 0);
  /* A pending cancel is delivered as usual (and cleared); then -EAGAIN
   * again. */
  CHECK_EQ(weft_cancel(weft_self()), 0);
  CHECK_EQ(weft_offload(add_one, (void *)1, NULL), -ECANCELED);
  CHECK_EQ(weft_offload(add_one, (void *)1, NULL), -EAGAIN);
  set_refuse(0);
  /* Threads can be started again: the same calls work. */
  void *r = NULL;
  int rc = weft_offload(add_one, (void *)41, &r);
  CHECK_EQ(rc, 0);
  CHECK_EQ((uintptr_t)r, 42);
  CHECK(weft__offload_threads(rt) >= 1);
  return NULL;
}

static void no_thread_gives_EAGAIN_then_recovers(void) {
  CHECK_EQ(weft_run(NULL, no_thread_main, NULL, NULL), 0);
}

/* ---- some threads exist: calls queue and run on them ------------------------ */

static sem_t gate;
static uint32_t inside;

static void *blocked_call(void *arg) {
  __atomic_fetch_add(&inside, 1, __ATOMIC_ACQ_REL);
  while (sem_wait(&gate) != 0)
    ;
  return (void *)((uintptr_t)arg * 2);
}

static void *offloader(void *arg) {
  void *r = NULL;
  int rc = weft_offload(blocked_call, arg, &r);
  CHECK_EQ(rc, 0);
  CHECK_EQ((uintptr_t)r, (uintptr_t)arg * 2);
  return NULL;
}

enum { FIRST = 2, QUEUED = 20 };

static void *existing_main(void *arg) {
  (void)arg;
  weft_runtime *rt = weft_self()->rt;
  /* FIRST calls block in the pool: FIRST threads, all busy. */
  weft_co *c[FIRST + QUEUED];
  for (uintptr_t i = 0; i < FIRST; i++)
    CHECK_EQ(weft_spawn(&c[i], offloader, (void *)i), 0);
  yield_until(&inside, FIRST);
  CHECK_EQ(weft__offload_threads(rt), FIRST);
  /* No more threads: these queue behind the busy ones. */
  set_refuse(1);
  for (uintptr_t i = FIRST; i < FIRST + QUEUED; i++)
    CHECK_EQ(weft_spawn(&c[i], offloader, (void *)i), 0);
  for (int i = 0; i < 100; i++)
    weft_yield();
  CHECK(__atomic_load_n(&refused, __ATOMIC_RELAXED) >= 1);
  CHECK_EQ(weft__offload_threads(rt), FIRST);
  for (int i = 0; i < FIRST + QUEUED; i++)
    sem_post(&gate);
  CHECK_EQ(weft_gather(c, FIRST + QUEUED, NULL), 0); /* all ran, on FIRST threads */
  CHECK_EQ(__atomic_load_n(&inside, __ATOMIC_ACQUIRE), FIRST + QUEUED);
  CHECK(weft__offload_threads(rt) <= FIRST);
  /* Threads can be started again: the pool grows past FIRST. */
  set_refuse(0);
  __atomic_store_n(&inside, 0, __ATOMIC_RELEASE);
  enum { MORE = FIRST + 2 };
  for (uintptr_t i = 0; i < MORE; i++)
    CHECK_EQ(weft_spawn(&c[i], offloader, (void *)i), 0);
  yield_until(&inside, MORE); /* more calls block at once than FIRST threads */
  CHECK(weft__offload_threads(rt) >= MORE);
  for (int i = 0; i < MORE; i++)
    sem_post(&gate);
  CHECK_EQ(weft_gather(c, MORE, NULL), 0);
  return NULL;
}

static void queued_on_existing_threads_then_grows(void) {
  sem_init(&gate, 0, 0);
  weft_config cfg = {.offload_threads = 16};
  CHECK_EQ(weft_run(&cfg, existing_main, NULL, NULL), 0);
  sem_destroy(&gate);
}

int main(int argc, char **argv) {
  return test_main(argc, argv,
                   (test_case[]){
                       {"no_thread_gives_EAGAIN_then_recovers",
                        no_thread_gives_EAGAIN_then_recovers},
                       {"queued_on_existing_threads_then_grows",
                        queued_on_existing_threads_then_grows},
                       {NULL, NULL}});
}
