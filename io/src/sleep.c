/*
 * sleep.c - weft_sleep_*: a wait that only a timer (or a cancel) ends.
 * The coroutine opens a wait and parks with a deadline (sched's
 * weft__wait_park_until, which arms a poller timer); the timer's claim
 * ends it with -ETIMEDOUT, which for a sleep is success.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"
#include "weft/io.h"

void weft__io_install(void);

uint64_t weft_now_ns(void) { return weft__now_ns(); }

int weft_sleep_until(uint64_t deadline_ns) {
  weft__io_install();
  weft_co *self = weft__self_or_foreign();
  int rc = weft__wait_begin(self);
  if (rc)
    return rc;
  rc = weft__wait_park_until(self, WEFT__PARK_TIMER, NULL, NULL,
                             deadline_ns ? deadline_ns : 1);
  return rc == -ETIMEDOUT ? 0 : rc;
}

int weft_sleep_ns(uint64_t ns) {
  uint64_t now = weft__now_ns();
  uint64_t deadline = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
  return weft_sleep_until(deadline);
}

int weft_sleep_ms(uint64_t ms) {
  return weft_sleep_ns(ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u);
}
