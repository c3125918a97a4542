/*
 * chaos.c - the randomized-schedule stress mode (WEFT_ATOMIC_CHAOS=ON).
 *
 * Every atomic operation in atomics.h first calls weft__chaos_point, which
 * now and then yields the CPU or spins for a random while. On a quiet
 * machine the windows between a load and the CAS that validates it, or
 * between a park's announcement and its completion, are nanoseconds wide;
 * here they open up, so the interleavings the protocols must survive
 * actually happen. Build with -DWEFT_ATOMIC_CHAOS=ON and run the stress
 * tests (under TSan too). Not for production: every atomic costs a call.
 */
#include <sched.h>
#include <stdint.h>

#include "atomics.h"

static __thread uint64_t chaos_rng;

void weft__chaos_point(void) {
  uint64_t x = chaos_rng;
  if (!x)
    x = (uint64_t)(uintptr_t)&chaos_rng | 1; /* per-thread seed */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  chaos_rng = x;
  unsigned r = (unsigned)(x >> 40);
  if ((r & 63) == 0) {
    sched_yield();
  } else if ((r & 15) == 0) {
    for (unsigned i = (r >> 8) & 255; i; i--)
      weft__cpu_relax();
  }
}
