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

/* The hosts-file parser on its own (tests/fuzz). weft__hosts_load parses
 * text (NUL-terminated, malloc'd; the table owns it) as WEFT_HOSTS_FILE's
 * contents; weft__hosts_lookup answers host from the table alone, shaped
 * by hints as weft_resolve would (no "localhost" default): 0 with *res,
 * WEFT_EDNS_NOTFOUND, -ENOMEM. */
typedef struct weft__hosts weft__hosts;
struct addrinfo;
weft__hosts *weft__hosts_load(char *text);
int weft__hosts_lookup(const weft__hosts *h, const char *host, const struct addrinfo *hints,
                       struct addrinfo **res);
void weft__hosts_free(weft__hosts *h);

#endif
