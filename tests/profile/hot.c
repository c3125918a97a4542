/*
 * hot.c - a coroutine-heavy program for the profiling tests
 * (tests/profile/profile_test.sh), recorded under perf.
 *
 *   weft-test-hot spin [SECONDS]     (default 1.5)
 *   weft-test-hot switch [SECONDS]
 *   weft-test-hot names
 *
 * spin: 8 coroutines on the runtime's workers (WEFT_WORKERS; the tests use
 * 2) each call weft_test_hot_spin, a loop that cannot be inlined (about
 * 100 us a call), then yield, until SECONDS have passed. So nearly every
 * sample perf takes on a worker lands in weft_test_hot_spin called from
 * weft_test_hot_co, on a coroutine stack, many of them on a coroutine
 * that has just migrated to the other worker.
 * switch: the same with 50 rounds a call, so a good share of the samples
 * land in weft_yield, the scheduler and the context switch itself, whose
 * unwind information is written by hand (sched/src/ctx_x86_64.S).
 * The tests check that these stacks unwind to the coroutine entry
 * (weft__ctx_entry) and no further, with -g (frame pointers) and with
 * --call-graph dwarf, and that a flame graph names the hot function. The
 * runs are timed rather than counted, so that a loaded machine gives fewer
 * samples rather than a longer test.
 *
 * names: starts the poller (a sleep) and an offload thread (weft_offload),
 * reads every thread's name from /proc/self/task/N/comm while the offload
 * thread is certainly alive (from inside its job), prints them and checks
 * them: weft-w0 .. weft-w<N-1> once each, weft-poller, weft-blk-<n>. perf
 * shows these names as each sample's thread (and tools/profile puts them
 * at the root of the flame graph). A thread names itself once it runs, so
 * on a loaded machine a worker may still carry the program's name at the
 * first look: it looks again until all are there (every 10 ms, for at
 * most 30 s). Exit status 0 when all are there, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/weft.h>

/* noipa (GCC) keeps the function whole and under its own name: no
 * inlining, and no ".constprop" clone that would rename it in perf. */
#if defined(__clang__)
#define HOT_FN __attribute__((noinline, used))
#else
#define HOT_FN __attribute__((noipa, used))
#endif

#define HOT_COROUTINES 8

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The hot function: a dependent chain of multiplies the compiler cannot
 * fold, about 100 us per call. */
HOT_FN uint64_t weft_test_hot_spin(uint64_t seed, unsigned rounds) {
  volatile uint64_t sink = seed;
  uint64_t x = seed | 1;
  for (unsigned i = 0; i < rounds; i++) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    if ((i & 1023) == 0)
      sink = x;
  }
  return x ^ sink;
}

static uint64_t deadline_ns;
static unsigned spin_rounds = 100000;

/* The coroutine: spin, yield, until the deadline. */
HOT_FN void *weft_test_hot_co(void *arg) {
  uint64_t x = (uintptr_t)arg, calls = 0;
  while (now_ns() < deadline_ns) {
    x = weft_test_hot_spin(x, spin_rounds);
    calls++;
    weft_yield();
  }
  return (void *)(uintptr_t)(calls + (x & 1));
}

static void *spin_main(void *arg) {
  (void)arg;
  weft_co *co[HOT_COROUTINES];
  for (uintptr_t i = 0; i < HOT_COROUTINES; i++)
    if (weft_spawn(&co[i], weft_test_hot_co, (void *)(i + 1)) != 0)
      return (void *)1;
  uint64_t calls = 0;
  for (int i = 0; i < HOT_COROUTINES; i++) {
    void *r;
    if (weft_join(co[i], &r) != 0)
      return (void *)1;
    calls += (uintptr_t)r;
  }
  printf("%s: %d coroutines, %u workers, %llu calls of weft_test_hot_spin\n",
         spin_rounds < 1000 ? "switch" : "spin", HOT_COROUTINES, weft_workers(),
         (unsigned long long)calls);
  return NULL;
}

/* ---- names ------------------------------------------------------------------ */

#define MAX_THREADS 256

static char names[MAX_THREADS][17];
static int nnames;

static void *read_names(void *arg) {
  (void)arg;
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return (void *)1;
  struct dirent *e;
  while ((e = readdir(d)) && nnames < MAX_THREADS) {
    if (e->d_name[0] == '.')
      continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue; /* the thread just ended */
    if (fgets(names[nnames], sizeof names[nnames], f)) {
      names[nnames][strcspn(names[nnames], "\n")] = 0;
      nnames++;
    }
    fclose(f);
  }
  closedir(d);
  return NULL;
}

static int count_name(const char *want) {
  int n = 0;
  for (int i = 0; i < nnames; i++)
    n += strcmp(names[i], want) == 0;
  return n;
}

/* Whether every thread the runtime should have is there under its name;
 * says what is missing when loud. */
static bool names_ok(bool loud) {
  bool ok = true;
  unsigned w = weft_workers();
  for (unsigned i = 0; i < w; i++) {
    char want[24];
    snprintf(want, sizeof want, "weft-w%u", i);
    if (count_name(want) != 1) {
      if (loud)
        fprintf(stderr, "names: %d threads named %s, want 1\n", count_name(want), want);
      ok = false;
    }
  }
  if (count_name("weft-poller") != 1) {
    if (loud)
      fprintf(stderr, "names: %d threads named weft-poller, want 1\n", count_name("weft-poller"));
    ok = false;
  }
  int blk = 0;
  for (int i = 0; i < nnames; i++) {
    unsigned n;
    char end;
    blk += sscanf(names[i], "weft-blk-%u%c", &n, &end) == 1;
  }
  if (blk < 1) {
    if (loud)
      fprintf(stderr, "names: no offload thread named weft-blk-N\n");
    ok = false;
  }
  return ok;
}

/* Each thread names itself when it starts running, so on a loaded machine
 * a worker may not have run yet when this first looks: look again, every
 * 10 ms, for up to 30 s (a limit for a hung runtime, not a timing check). */
static void *names_main(void *arg) {
  (void)arg;
  int rc = weft_sleep_ms(1); /* the poller starts on first use */
  if (rc) {
    fprintf(stderr, "weft_sleep_ms: %s\n", weft_strerror(rc));
    return (void *)1;
  }
  int looks = 0;
  bool ok = false;
  while (!ok && looks < 3000) {
    if (looks)
      weft_sleep_ms(10);
    nnames = 0;
    void *r;
    rc = weft_offload(read_names, NULL, &r);
    if (rc || r) {
      fprintf(stderr, "weft_offload(read_names): %s\n", rc ? weft_strerror(rc) : "failed");
      return (void *)1;
    }
    looks++;
    ok = names_ok(false);
  }
  for (int i = 0; i < nnames; i++)
    printf("thread: %s\n", names[i]);
  if (!ok)
    names_ok(true);
  printf("names: %u workers, poller, offload: %s (%d look%s)\n", weft_workers(),
         ok ? "all named" : "FAILED", looks, looks == 1 ? "" : "s");
  return ok ? NULL : (void *)1;
}

int main(int argc, char **argv) {
  void *result = NULL;
  int rc;
  bool sw = argc >= 2 && strcmp(argv[1], "switch") == 0;
  if (argc >= 2 && (strcmp(argv[1], "spin") == 0 || sw) && argc <= 3) {
    if (sw)
      spin_rounds = 50;
    double secs = argc == 3 ? atof(argv[2]) : 1.5;
    if (!(secs > 0 && secs < 3600)) {
      fprintf(stderr, "%s: SECONDS must be > 0\n", argv[0]);
      return 2;
    }
    deadline_ns = now_ns() + (uint64_t)(secs * 1e9);
    rc = weft_run(NULL, spin_main, NULL, &result);
  } else if (argc == 2 && strcmp(argv[1], "names") == 0) {
    rc = weft_run(NULL, names_main, NULL, &result);
  } else {
    fprintf(stderr, "usage: %s spin|switch [SECONDS] | names\n", argv[0]);
    return 2;
  }
  if (rc) {
    fprintf(stderr, "weft_run: %s\n", weft_strerror(rc));
    return 1;
  }
  return result ? 1 : 0;
}
