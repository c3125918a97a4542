/*
 * http_internal.h - weft::http's private interface between the caller's
 * side (request.c, stream.c, client.c) and the poller's side (driver.c).
 *
 * Ownership in one paragraph. A client owns one curl multi handle, which
 * only the poller thread touches (DESIGN.md: one thread at a time on the
 * multi handle; the poller is that thread, see driver.c for why). A
 * transfer (weft__xfer) is made by the requesting coroutine, which sets
 * up its easy handle while curl does not know it, then hands it to the
 * poller with an op. From OP_ADD until the poller reports X_DONE the easy
 * handle is the poller's; after X_DONE it is the caller's again (to read
 * its info, or to send it again for a redirect). The caller never frees a
 * transfer: it posts OP_RELEASE and the poller frees it (removing it from
 * curl first if it still runs), so an op still queued can never point at
 * freed memory.
 *
 * Events and waits. The caller waits for bits of x->events (X_DONE; in a
 * stream also X_HEADERS and X_DATA; with a body reader X_UPLOAD) with the
 * sched wait protocol: under x->lock it checks the bits, else opens a wait
 * and records (co, gen) in x->waiter / x->gen and parks, the lock released
 * by the park (so a poller that sets a bit after the check finds the
 * waiter). The poller sets bits under x->lock and claims a recorded wait
 * by its generation; the unparks go out in a batch at the end of its
 * round. A cancelled caller (-ECANCELED) aborts: OP_RELEASE with the
 * transfer still running makes the poller remove it from curl.
 */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "fd.h"
#include "internal.h"
#include "weft/http.h"

#define WEFT__HTTP_EXT_SLOT 0u
#define WEFT__STREAM_WINDOW (256u * 1024u) /* body bytes a stream buffers at most */

/* x->events */
enum {
  X_DONE = 1u << 0,    /* curl finished it (x->result); the poller let go */
  X_HEADERS = 1u << 1, /* the final response's headers are in */
  X_DATA = 1u << 2,    /* stream: body bytes wait in x->body */
  X_UPLOAD = 1u << 3,  /* body reader: curl wants more of the request body */
};

/* ops, posted by the caller to the poller (x->ops) */
enum {
  OP_ADD = 1u << 0,     /* start it (curl_multi_add_handle) */
  OP_RESUME = 1u << 1,  /* curl_easy_pause(CONT): the reader caught up, or
                           the upload buffer has bytes */
  OP_RELEASE = 1u << 2, /* the caller is done with it: abort if running, free */
};

typedef struct weft__http_driver weft__http_driver;
typedef struct weft__http_multi weft__http_multi;

typedef struct weft__buf {
  char *p;
  size_t len, cap, off; /* off: bytes already consumed from the front */
} weft__buf;

typedef struct weft__xfer {
  CURL *easy;
  weft__http_multi *m;
  struct curl_slist *resolve, *headers;
  /* Shared between caller and poller: under lock. */
  weft__spinlock lock;
  uint32_t events;
  weft_co *waiter; /* parked (or about to) on gen */
  uint32_t gen;
  bool paused_write; /* stream: curl is paused until the reader catches up */
  bool paused_read;  /* upload: curl is paused until the buffer has bytes */
  bool too_big, body_failed, in_multi;
  bool hdr_done; /* the final response's header block is complete */
  CURLcode result;
  char errbuf[CURL_ERROR_SIZE]; /* curl's reason for `result` (CURLOPT_ERRORBUFFER) */
  weft__buf body; /* the response body (a stream keeps a window of it) */
  weft__buf hdr;  /* the header block of the latest response */
  weft__buf up;   /* upload bytes from the reader, not yet taken by curl */
  bool up_eof;
  /* The caller's settings, read by the poller's callbacks. */
  bool stream;
  size_t max_body;
  /* The op queue: under the multi's qlock. */
  uint32_t ops;
  bool queued;
  struct weft__xfer *qnext;
  struct weft__xfer *allnext, *allprev; /* every transfer of the multi (qlock) */
} weft__xfer;

/* A client's curl multi handle and its place on the poller. */
struct weft__http_multi {
  CURLM *multi;
  weft__http_driver *d;
  unsigned id;
  /* The op queue from callers. */
  weft__spinlock qlock;
  weft__xfer *qhead, *qtail;
  weft__xfer *all; /* every transfer made and not yet freed */
  weft_http_client *client; /* not read by the poller once dead may be set */
  /* The client's limits, copied when m is made: multi_reset builds a
   * fresh handle from them on the poller, where the client may be freed
   * at any moment (its last transfer ended a moment earlier). */
  long max_conns, max_conns_per_host, max_cached_conns;
  /* Poller only. */
  uint64_t timer_ns; /* curl's timeout as a deadline; UINT64_MAX: none */
  int running;
  bool dead;         /* atomic: the client was freed; free when empty */
  unsigned inflight; /* transfers in curl */
};

struct weft_http_client {
  weft_http_client_config cfg;
  char *ca_file, *user_agent;
  /* Bound on first use to that runtime's poller; bind, detach and free
   * under client.c's life_lock (client.c says why). */
  weft__http_multi *m;
  struct weft_runtime *rt; /* atomic: stored with release after m */
  uint32_t inflight;   /* atomic: requests between submit and release */
  bool is_default;
};

/* driver.c */
weft__http_driver *weft__http_driver_get(int *err);
int weft__http_multi_new(weft__http_driver *d, weft_http_client *c,
                         weft__http_multi **out);
void weft__http_post(weft__xfer *x, uint32_t ops, bool poke);
weft_http_client *weft__http_default_client(weft__http_driver *d);
void weft__http_multi_retire(weft__http_multi *m);
void weft__http_xfer_link(weft__xfer *x); /* onto m->all, at creation */

curl_socket_t weft__http_open_socket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *a);
int weft__http_close_socket(void *clientp, curl_socket_t fd);
size_t weft__http_on_write(char *p, size_t size, size_t n, void *x);
size_t weft__http_on_header(char *p, size_t size, size_t n, void *x);
size_t weft__http_on_read(char *p, size_t size, size_t n, void *x);

struct weft_runtime *weft__http_driver_rt(weft__http_driver *d);

/* client.c */
int weft__http_client_bind(weft_http_client *c, weft__http_driver *d);
/* m's runtime stops (its poller frees m): the client forgets both. */
void weft__http_client_detach(weft__http_multi *m);

/* request.c */
/* R1: url's host (malloc'd; IPv6 literals in brackets, as curl keeps
 * them) and port (the scheme's default if none), or WEFT_EHTTP_URL,
 * WEFT_EHTTP_SCHEME, -ENOMEM. */
int weft__http_url_check(const char *url, char **host, long *port);
bool weft__http_is_ip_literal(const char *host);
struct addrinfo;
bool weft__http_resolve_line(const char *host, long port, const struct addrinfo *ai, char *line,
                             size_t cap);
int weft__http_map_error(const weft__xfer *x);
int weft__http_wait(weft__xfer *x, uint32_t want, uint32_t *got);
int weft__http_send(weft_http_client *c, const weft_http_request *req, bool stream,
                    weft_http_response *resp, weft__xfer **out, weft_http_client **client);
void weft__http_xfer_release(weft_http_client *c, weft__xfer *x, bool running);

#endif
