/*
 * chaos.c - the randomized-schedule stress mode (WEFT_ATOMIC_CHAOS=ON).
 *
 * Every atomic operation in atomics.h (and the full fence) first calls
 * weft__chaos_point. On a quiet machine the windows between a load and the
 * CAS that validates it (a thief's read of head and its CAS, runq.c), or
 * between a park's announcement and its completion (park.c steps 1-3), are
 * nanoseconds wide; here they open up, so the interleavings the protocols
 * must survive actually happen. Build with -DWEFT_ATOMIC_CHAOS=ON (the
 * chaos-tsan preset adds TSan) and run the stress tests: .ci/chaos.
 *
 * What a point does. With probability 1/RATE it acts, else it returns at
 * once. An acting point picks, at random:
 *   - a short spin (0-255 pauses, ~0-1 us): reorders near-simultaneous
 *     operations on two cores;
 *   - a long spin (up to 8191 pauses, ~2-20 us): the other core runs a
 *     whole protocol step (a steal, an unpark and a queue) in the window;
 *   - sched_yield: with more threads than cores (8 workers on 2 cores,
 *     plus the poller and offload threads) another thread runs here;
 *   - rarely, a sleep of 1-64 us: the thread is really descheduled, which
 *     sched_yield does not guarantee when nothing else is runnable on the
 *     core (1 or 2 workers): the closest thing to a preemption at the worst
 *     moment.
 *
 * Knobs (environment, read once at start-up):
 *   WEFT_CHAOS_SEED=N  seed (decimal or 0x hex). Unset: from the time and
 *                      pid. The seed in use is printed to stderr at start
 *                      ("weft: chaos seed N ..."). Each thread's generator
 *                      is derived from the seed and the order in which the
 *                      thread first reached a chaos point, so a replay with
 *                      the same seed makes the same decisions per thread;
 *                      the OS still schedules differently from run to run,
 *                      so a replay raises the odds of a failure, it does not
 *                      reproduce it exactly.
 *   WEFT_CHAOS_RATE=N  one point in N acts (default 8; 1 = every point;
 *                      0 = off, to compare against the same build).
 *   WEFT_CHAOS_QUIET=1 do not print the seed.
 *
 * This file uses the __atomic builtins directly: the atomics.h wrappers
 * would call back into it. Not for production: every atomic costs a call.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"

#define DEFAULT_RATE 8u

static uint64_t chaos_seed;
static uint32_t chaos_rate = DEFAULT_RATE; /* written once, before threads */
static uint32_t chaos_threads;             /* threads that reached a point */

static __thread uint64_t chaos_rng;

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Runs before main (and before any worker thread exists), so the knobs are
 * plain reads afterwards; printing here, not in the first chaos point,
 * keeps the line out of forked children's stderr (death tests parse it). */
__attribute__((constructor)) static void chaos_init(void) {
  const char *s = getenv("WEFT_CHAOS_SEED");
  char *end;
  if (s && *s) {
    chaos_seed = strtoull(s, &end, 0);
    if (*end)
      fprintf(stderr, "weft: WEFT_CHAOS_SEED=%s is not a number; using %llu\n",
              s, (unsigned long long)chaos_seed);
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    chaos_seed = splitmix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
                            (uint64_t)getpid() << 16) >> 1;
  }
  const char *r = getenv("WEFT_CHAOS_RATE");
  if (r && *r) {
    unsigned long v = strtoul(r, &end, 10);
    chaos_rate = *end || v > UINT32_MAX ? DEFAULT_RATE : (uint32_t)v;
  }
  const char *q = getenv("WEFT_CHAOS_QUIET");
  if (!(q && *q && *q != '0'))
    fprintf(stderr, "weft: chaos seed %llu rate 1/%u (replay: WEFT_CHAOS_SEED=%llu)\n",
            (unsigned long long)chaos_seed, chaos_rate,
            (unsigned long long)chaos_seed);
}

static uint64_t next(void) {
  uint64_t x = chaos_rng;
  if (__builtin_expect(!x, 0)) {
    uint32_t k = __atomic_fetch_add(&chaos_threads, 1, __ATOMIC_RELAXED);
    x = splitmix64(chaos_seed ^ splitmix64(k)) | 1;
  }
  x ^= x << 13; /* xorshift64 */
  x ^= x >> 7;
  x ^= x << 17;
  chaos_rng = x;
  return x;
}

void weft__chaos_point(void) {
  uint32_t rate = chaos_rate;
  if (!rate)
    return;
  uint64_t x = next();
  if (rate > 1 && (uint32_t)(x >> 32) % rate)
    return;
  unsigned r = (unsigned)x;
  switch ((r >> 24) & 15) {
  case 0 ... 6: /* short spin */
    for (unsigned i = r & 255; i; i--)
      weft__cpu_relax();
    break;
  case 7 ... 10: /* long spin */
    for (unsigned i = r & 8191; i; i--)
      weft__cpu_relax();
    break;
  case 11 ... 14:
    sched_yield();
    break;
  default: /* 1 in 16 acting points, and of those 1 in 8: a real sleep */
    if ((r & 7) == 0) {
      struct timespec ts = {0, (long)(1 + ((r >> 3) & 63)) * 1000};
      nanosleep(&ts, NULL);
    } else {
      sched_yield();
    }
    break;
  }
}
