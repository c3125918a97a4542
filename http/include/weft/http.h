/*
 * weft/http.h - HTTP fetches from coroutines (weft::http).
 *
 * A coroutine calls weft_http_get (or weft_http_do) and parks until its
 * response arrives; thousands may do so at once, and no thread is started
 * per request: libcurl's multi interface runs on the runtime's poller
 * thread, and every host name is resolved through weft_resolve (c-ares).
 *
 * Every call returns 0 or a negative code (weft_strerror names it):
 * -EINVAL, -ENOMEM, -ECANCELED (the coroutine was cancelled: the transfer
 * is aborted and freed), WEFT_ENOTCO, WEFT_EDNS_* (the name), or one of
 * WEFT_EHTTP_* below. An HTTP status of 4xx or 5xx is not an error: the
 * call returns 0 and resp->status says it.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weft/io.h"
#include "weft/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The WEFT_EHTTP_* codes are in weft/sched.h, beside the others. */

typedef struct weft_http_header {
  const char *name, *value;
} weft_http_header;

/* A response. Zero it before the first use; weft_http_response_free is
 * harmless on a zeroed or already freed one. */
typedef struct weft_http_response {
  int status;        /* 200, 404, ... */
  char *body;        /* NUL-terminated (the NUL is not counted) */
  size_t body_len;
  weft_http_header *headers; /* of the final response, in arrival order */
  size_t nheaders;
  char *url;         /* the final URL, after redirects */
  int http_version;  /* 10, 11 or 20 */
  unsigned redirects; /* how many were followed */
} weft_http_response;

/* GET url with the runtime's default client. 0 when a response arrived,
 * whatever its status. */
WEFT_API int weft_http_get(const char *url, weft_http_response *resp);
WEFT_API void weft_http_response_free(weft_http_response *resp);
/* The value of the first header called name (any case), or NULL. */
WEFT_API const char *weft_http_header_get(const weft_http_response *resp, const char *name);

/* ---- clients ------------------------------------------------------------------- */

enum weft_http_version {
  WEFT_HTTP_AUTO = 0,           /* HTTP/2 over TLS when offered (ALPN), else 1.1 */
  WEFT_HTTP_1_1 = 1,            /* HTTP/1.1 only */
  WEFT_HTTP_2_PRIOR_KNOWLEDGE = 2, /* HTTP/2 without TLS (h2c) */
};

/* Zero means the default for every field. */
typedef struct weft_http_client_config {
  unsigned max_conns;          /* open connections in all; default unlimited */
  unsigned max_conns_per_host; /* default unlimited */
  unsigned max_cached_conns;   /* connections kept open, busy or idle, for
                                  reuse (curl's connection cache); default
                                  4 x the most requests in flight at once */
  bool no_keepalive;           /* close each connection after its request */
  int version;                 /* enum weft_http_version */
  bool insecure;               /* do not verify TLS certificates (default: verify) */
  const char *ca_file;         /* trust these CAs instead of the system's */
  const char *user_agent;      /* default "weft/<version>" */
  uint64_t connect_timeout_ms; /* default 30,000 */
  uint64_t timeout_ms;         /* the whole transfer; default none */
  int max_redirects;           /* default 10; -1: do not follow redirects */
  size_t max_body;             /* default 256 MiB */
} weft_http_client_config;

typedef struct weft_http_client weft_http_client;

/* A client: its own connection pool and limits. Callable from anywhere;
 * its requests must come from coroutines of one runtime. */
WEFT_API int weft_http_client_new(const weft_http_client_config *cfg,
                                  weft_http_client **out);
/* Free a client that has no request in flight (-EBUSY otherwise). */
WEFT_API int weft_http_client_free(weft_http_client *c);

/* ---- requests ----------------------------------------------------------------- */

/* A request body pulled from a reader: called from the requesting
 * coroutine (never from weft's threads); returns bytes written to buf
 * (0 at the end) or a negative value to fail with WEFT_EHTTP_BODY. */
typedef ssize_t (*weft_http_body_reader)(void *arg, void *buf, size_t n);

typedef struct weft_http_request {
  const char *method;         /* NULL: GET, or POST when there is a body */
  const char *url;
  const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
  const void *body;           /* a body in memory ... */
  size_t body_len;
  weft_http_body_reader body_reader; /* ... or from a reader */
  void *body_arg;
  int64_t body_size;          /* the reader's total, or -1: chunked */
  uint64_t connect_timeout_ms; /* 0: the client's */
  uint64_t timeout_ms;         /* 0: the client's */
  int max_redirects;           /* 0: the client's; -1: do not follow */
  size_t max_body;             /* 0: the client's */
} weft_http_request;

/* Send req with client c (NULL: the runtime's default) and park until the
 * response has arrived in full. */
WEFT_API int weft_http_do(weft_http_client *c, const weft_http_request *req,
                          weft_http_response *resp);

/* ---- streaming responses -------------------------------------------------------- */

typedef struct weft_http_stream weft_http_stream;

/* Send req and park until the final response's headers have arrived: resp
 * gets status, headers, url and version (no body). The body is then
 * pulled with weft_http_stream_read; the transfer is paused while the
 * reader is behind, so a body of any size passes through a bounded
 * buffer. */
WEFT_API int weft_http_stream_open(weft_http_client *c, const weft_http_request *req,
                                   weft_http_response *resp, weft_http_stream **out);
/* Up to n bytes of the body; 0 at its end; or a negative code. */
WEFT_API ssize_t weft_http_stream_read(weft_http_stream *s, void *buf, size_t n);
/* Abort what is left of the transfer, if anything, and free the stream. */
WEFT_API void weft_http_stream_close(weft_http_stream *s);

#ifdef __cplusplus
}
#endif

#endif
