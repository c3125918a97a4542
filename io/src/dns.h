/*
 * dns.h - the poller's side of DNS (dns.c): c-ares runs on the poller
 * thread only.
 */
#ifndef WEFT_IO_DNS_H
#define WEFT_IO_DNS_H

#include <stdint.h>

#include "fd.h"

/* epoll data of a c-ares socket: the tag, then the fd (fds use fd | seq). */
#define WEFT__DNS_TAG (1ull << 63)

typedef struct weft__dns weft__dns;

weft__dns *weft__dns_new(weft__poller_io *io);
void weft__dns_free(weft__dns *d);
/* Each poller round: start queued lookups, run c-ares's timeouts, and
 * lower *sleep_ns to c-ares's next timeout. */
void weft__dns_poll(weft__dns *d, uint64_t *sleep_ns);
void weft__dns_event(weft__dns *d, uint64_t data, uint32_t events);

/* Fill out->dns (any thread: the counters are relaxed atomics). */
void weft__dns_stats(weft__dns *d, weft_stats *out);

/* poller.c */
weft__dns *weft__dns_of(struct weft_runtime *rt);

#endif
