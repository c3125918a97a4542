/*
 * probe.h - weft's USDT probes (static tracepoints for perf, bpftrace,
 * SystemTap), used by sched, io and http.
 *
 * A probe is one `nop` in the code plus a note in the ELF file
 * (.note.stapsdt) naming it and saying where its arguments live; nothing
 * runs when no tracer is attached. A tracer turns the nop into a trap
 * (uprobe) only while it listens. Arguments are computed whether or not
 * anyone listens, so every argument here is a value the code already has
 * in a register or one load away: no calls, no formatting. Every site of
 * one probe passes the same arguments, none of them a compile-time
 * constant: perf makes one event per name and (6.1) drops immediate
 * arguments, so a site whose argument list differs cannot be added.
 *
 * Provider "weft"; perf names them sdt_weft:NAME once it has read the
 * binary's notes (tools/profile and CONTRIBUTING.md show how). Built
 * without probes (WEFT_PROBES=OFF, or no <sys/sdt.h>) every WEFT_PROBE is
 * nothing.
 *
 * The probes and their arguments (ids are weft_co_id; worker is the
 * worker's index, -1 on a thread that is not a worker):
 *   spawn        (co, parent, worker)    parent 0: spawned from outside a
 *                                        coroutine
 *   run          (co, worker)            a slice starts: co is switched in
 *   yield        (co, worker)            weft_yield that gives way
 *   park         (co, reason)            reason: WEFT_PARK_* (join 0, sync 1,
 *                                        channel 2, fd 3, timer 4, dns 5,
 *                                        http 6, offload 7, other 8)
 *   unpark       (co, result, waker)     waker: 0 a worker, 1 the poller,
 *                                        2 a foreign thread, 3 an offload
 *                                        thread; result is what the park
 *                                        returns (0, -ETIMEDOUT, ...)
 *   steal        (thief, victim, count)  worker indices; coroutines moved
 *   worker_sleep (worker)                about to sleep on its futex
 *   worker_wake  (worker, slept_ns)      back from the futex
 *   poller_wake  (events, timers)        the poller's epoll returned:
 *                                        readiness events and timers it
 *                                        handles this round
 *   dns_start    (host)                  a name goes to a DNS server
 *                                        (char *, NUL-terminated)
 *   dns_done     (host, status)          0 or a WEFT_EDNS_* / -errno code
 *   http_start   (url, method)           char *, char *
 *   http_done    (url, status)           the HTTP status, or a negative
 *                                        WEFT_EHTTP_* / -errno code
 *   exit         (co, worker)            co's function returned
 */
#ifndef WEFT_PROBE_H
#define WEFT_PROBE_H

#if defined(WEFT_HAVE_SDT) && !defined(WEFT_NO_PROBES)
#include <sys/sdt.h>
#define WEFT_PROBE1(name, a) STAP_PROBE1(weft, name, a)
#define WEFT_PROBE2(name, a, b) STAP_PROBE2(weft, name, a, b)
#define WEFT_PROBE3(name, a, b, c) STAP_PROBE3(weft, name, a, b, c)
#else
#define WEFT_PROBE1(name, a) ((void)0)
#define WEFT_PROBE2(name, a, b) ((void)0)
#define WEFT_PROBE3(name, a, b, c) ((void)0)
#endif

/* The value in a register: an argument read from thread-local storage
 * would otherwise be described as a TLS offset expression
 * (8@40+sym@dtpoff(%rax)), which perf cannot read. */
#define WEFT__PROBE_REG(x)                                                     \
  __extension__({                                                              \
    __typeof__(x) weft_probe_v_ = (x);                                         \
    __asm__("" : "+r"(weft_probe_v_));                                         \
    weft_probe_v_;                                                             \
  })

/* Who unparks (the unpark probe's third argument). */
enum {
  WEFT__WAKER_WORKER = 0,
  WEFT__WAKER_POLLER = 1,
  WEFT__WAKER_FOREIGN = 2,
  WEFT__WAKER_OFFLOAD = 3,
};

#endif
