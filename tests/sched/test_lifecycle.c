/*
 * test_lifecycle.c - spawn, join, detach, trees, foreign threads, stop.
 * Every case runs under WEFT_WORKERS = 1, 2, 4 and 8 (see CMakeLists.txt).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h" /* stop_with_live watches a join slot */
#include "weft/sched.h"

/* ---- results through join -------------------------------------------------- */

static void *square(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  weft_yield();
  return (void *)(v * v);
}

static void *join_main(void *arg) {
  (void)arg;
  enum { N = 1000 };
  weft_co *c[N];
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], square, (void *)i), 0);
  for (uintptr_t i = 0; i < N; i++) {
    void *r = NULL;
    CHECK_EQ(weft_join(c[i], &r), 0);
    CHECK_EQ((uintptr_t)r, i * i);
  }
  return (void *)42;
}

static void join_results(void) {
  void *r = NULL;
  CHECK_EQ(weft_run(NULL, join_main, NULL, &r), 0);
  CHECK_EQ((uintptr_t)r, 42);
}

/* ---- detached coroutines ---------------------------------------------------- */

static uint64_t detached_done;

static void *detached_fn(void *arg) {
  (void)arg;
  weft_yield();
  __atomic_fetch_add(&detached_done, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *detached_main(void *arg) {
  (void)arg;
  enum { N = 20000 };
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(NULL, detached_fn, NULL), 0);
  /* No wait group yet (a later primitive): yield until every one counted. */
  while (__atomic_load_n(&detached_done, __ATOMIC_RELAXED) < N)
    weft_yield();
  CHECK_EQ(__atomic_load_n(&detached_done, __ATOMIC_RELAXED), N);
  return NULL;
}

static void detached(void) { CHECK_EQ(weft_run(NULL, detached_main, NULL, NULL), 0); }

/* ---- deep and wide trees ---------------------------------------------------- */

static void *deep(void *arg) {
  uintptr_t depth = (uintptr_t)arg;
  if (depth == 0)
    return (void *)1;
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, deep, (void *)(depth - 1)), 0);
  void *r;
  CHECK_EQ(weft_join(c, &r), 0);
  return (void *)((uintptr_t)r + 1);
}

static void deep_tree(void) {
  void *r;
  uintptr_t depth = SCALE_LIVE(20000);
  CHECK_EQ(weft_run(NULL, deep, (void *)depth, &r), 0);
  CHECK_EQ((uintptr_t)r, depth + 1);
}

/* A 4-ary tree of depth 7 (21845 coroutines); each returns its subtree size. */
static void *wide(void *arg) {
  uintptr_t depth = (uintptr_t)arg;
  if (depth == 0)
    return (void *)1;
  weft_co *c[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_spawn(&c[i], wide, (void *)(depth - 1)), 0);
  uintptr_t sum = 1;
  for (int i = 0; i < 4; i++) {
    void *r;
    CHECK_EQ(weft_join(c[i], &r), 0);
    sum += (uintptr_t)r;
  }
  return (void *)sum;
}

static void wide_tree(void) {
  void *r;
  CHECK_EQ(weft_run(NULL, wide, (void *)7, &r), 0);
  CHECK_EQ((uintptr_t)r, (1u << 16) / 3); /* (4^8 - 1) / 3 = 21845 */
}

/* ---- spawn from foreign threads --------------------------------------------- */

static weft_runtime *foreign_rt;

static void *add_one(void *arg) {
  weft_yield();
  return (void *)((uintptr_t)arg + 1);
}

static void *foreign_thread(void *arg) {
  uintptr_t base = (uintptr_t)arg;
  enum { N = 500 };
  weft_co *c[N];
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ(weft_runtime_spawn(foreign_rt, &c[i], add_one, (void *)(base + i)), 0);
  for (uintptr_t i = 0; i < N; i++) {
    void *r;
    CHECK_EQ(weft_join(c[i], &r), 0); /* blocks this thread */
    CHECK_EQ((uintptr_t)r, base + i + 1);
  }
  return NULL;
}

static void foreign_spawn(void) {
  CHECK_EQ(weft_runtime_start(NULL, &foreign_rt), 0);
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, foreign_thread, (void *)(i * 100000)), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  CHECK_EQ(weft_runtime_stop(foreign_rt), 0);
}

/* ---- stop with live coroutines ---------------------------------------------- */

static uint32_t spinners_started;

static void *spin_yield(void *arg) {
  (void)arg;
  __atomic_fetch_add(&spinners_started, 1, __ATOMIC_RELAXED);
  for (;;)
    weft_yield();
  return NULL;
}

static void *wait_forever(void *arg) {
  /* Joins a coroutine that never finishes: parked for good. */
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, spin_yield, arg), 0);
  weft_join(c, NULL);
  CHECK(!"unreachable: the runtime stopped");
  return NULL;
}

static void *stopped_join(void *arg) {
  weft_co *c = arg;
  return (void *)(intptr_t)weft_join(c, NULL);
}

static void stop_with_live(void) {
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  enum { N = 50 };
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_runtime_spawn(rt, NULL, wait_forever, NULL), 0);
  weft_co *never;
  CHECK_EQ(weft_runtime_spawn(rt, &never, spin_yield, NULL), 0);
  /* A foreign thread blocked in join must be released by the stop. */
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, stopped_join, never), 0);
  while (__atomic_load_n(&spinners_started, __ATOMIC_RELAXED) < N + 1)
    usleep(1000);
  /* Stop only once the thread is registered as never's joiner: joining a
   * coroutine after its runtime stopped would touch freed memory. */
  while (__atomic_load_n(&never->joiner, __ATOMIC_ACQUIRE) == NULL)
    usleep(1000);
  usleep(20000);
  CHECK_EQ(weft_runtime_stop(rt), 0);
  void *rc;
  pthread_join(t, &rc);
  CHECK_EQ((intptr_t)rc, -ECANCELED);
  /* ASan/LSan (the asan preset) checks that nothing leaked. */
}

/* ---- identity and errors ---------------------------------------------------- */

static void *self_fn(void *arg) {
  (void)arg;
  return weft_self();
}

static void *ids_main(void *arg) {
  (void)arg;
  CHECK(weft_self() != NULL);
  CHECK_EQ(weft_co_id(weft_self()), 1);
  CHECK(weft_workers() >= 1);
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, self_fn, NULL), 0);
  CHECK(weft_co_id(c) > 1);
  weft_co *seen = NULL;
  weft_co *expect = c;
  CHECK_EQ(weft_join(c, (void **)&seen), 0);
  CHECK(seen == expect);
  CHECK_EQ(weft_join(weft_self(), NULL), -EDEADLK);
  CHECK_EQ(weft_join(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_spawn(NULL, NULL, NULL), -EINVAL);
  return NULL;
}

static void ids_and_errors(void) {
  CHECK(weft_self() == NULL);
  CHECK_EQ(weft_co_id(NULL), 0);
  CHECK_EQ(weft_spawn(NULL, self_fn, NULL), WEFT_ENOTCO);
  weft_yield(); /* harmless outside a coroutine */
  CHECK_EQ(weft_run(NULL, ids_main, NULL, NULL), 0);
  CHECK_EQ(weft_run(NULL, NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_runtime_stop(NULL), -EINVAL);
  CHECK(strcmp(weft_strerror(WEFT_ENOTCO), "not called from a coroutine") == 0);
  CHECK(strcmp(weft_strerror(-ECANCELED), "Operation canceled") == 0);
  CHECK(strcmp(weft_strerror(-999999), "unknown weft error code") == 0);
  weft_config small = {.workers = 1, .stack_size = 1024};
  CHECK_EQ(weft_run(&small, self_fn, NULL, NULL), -EINVAL);
  weft_config many = {.workers = 100000};
  CHECK_EQ(weft_run(&many, self_fn, NULL, NULL), -EINVAL);
}

static void *count_workers(void *arg) {
  (void)arg;
  return (void *)(uintptr_t)weft_workers();
}

static void bad_env(void) {
  const char *bad[] = {"abc", "0", "-2", "5000", "3x", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("WEFT_WORKERS", bad[i], 1);
    int rc = weft_run(NULL, self_fn, NULL, NULL);
    if (bad[i][0]) /* empty means unset: the CPU count */
      CHECK_EQ(rc, -EINVAL);
    else
      CHECK_EQ(rc, 0);
  }
  setenv("WEFT_WORKERS", " 3 ", 1); /* surrounding blanks are tolerated */
  void *r;
  CHECK_EQ(weft_run(NULL, count_workers, NULL, &r), 0);
  CHECK_EQ((uintptr_t)r, 3);
}


/* Runtimes one after another in one process leave nothing behind. */
static void repeated_runtimes(void) {
  for (unsigned i = 1; i <= 20; i++) {
    weft_config cfg = {.workers = 1 + i % 4};
    void *r;
    CHECK_EQ(weft_run(&cfg, count_workers, NULL, &r), 0);
    CHECK_EQ((uintptr_t)r, 1 + i % 4);
  }
}

/* ---- worker threads are named ------------------------------------------------ */

static void thread_names(void) {
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  unsigned n = rt->nworkers, found = 0;
  /* Each worker names itself when it starts: look until all are there. */
  for (int tries = 0; tries < 1000 && found < n; tries++) {
    found = 0;
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
      char path[300], comm[32] = "";
      snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
      FILE *f = fopen(path, "r");
      if (!f)
        continue;
      if (fgets(comm, sizeof comm, f)) {
        unsigned idx;
        char nl;
        if (sscanf(comm, "weft-w%u%c", &idx, &nl) == 2 && nl == '\n' && idx < n)
          found++;
      }
      fclose(f);
    }
    closedir(d);
    if (found < n)
      usleep(10000);
  }
  CHECK_EQ(found, n);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

static const test_case cases[] = {
    {"join_results", join_results},
    {"detached", detached},
    {"deep_tree", deep_tree},
    {"wide_tree", wide_tree},
    {"foreign_spawn", foreign_spawn},
    {"stop_with_live", stop_with_live},
    {"ids_and_errors", ids_and_errors},
    {"bad_env", bad_env},
    {"repeated_runtimes", repeated_runtimes},
    {"thread_names", thread_names},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
