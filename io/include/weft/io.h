/*
 * weft/io.h - time, and (as they land) sockets, DNS and files, for
 * coroutines. A coroutine that waits here parks; the runtime's poller
 * thread (weft-poller, started on first use) wakes it.
 *
 * Linking weft::io also gives sched's primitives their deadlines (the
 * *_until calls in weft/sched.h): io installs itself as sched's driver.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stdint.h>

#include "weft/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Now, in ns, on the clock every weft deadline uses (CLOCK_MONOTONIC). */
WEFT_API uint64_t weft_now_ns(void);

/* Park the calling coroutine for at least ms milliseconds (ns
 * nanoseconds); other coroutines run meanwhile. Returns 0, or -ECANCELED
 * (weft_cancel) early. On a foreign thread it sleeps the thread. */
WEFT_API int weft_sleep_ms(uint64_t ms);
WEFT_API int weft_sleep_ns(uint64_t ns);
/* Park until the CLOCK_MONOTONIC instant deadline_ns. */
WEFT_API int weft_sleep_until(uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif
