/*
 * weft/http_server.h - a small, fast HTTP/1.1 server (weft::http).
 *
 * One coroutine per connection on weft's io sockets: keep-alive and
 * pipelining, Content-Length and chunked request bodies, a strict parser
 * with limits (answers 400, 413 or 431 and closes on bad input), a
 * deadline for reading a request's header and one for idle keep-alive
 * connections (a slowloris client holds neither a worker nor a connection
 * for long), and graceful shutdown. The handler runs on the connection's
 * coroutine, so it may sleep, fetch, resolve or wait on anything without
 * blocking other connections.
 *
 * Every call returns 0 or a negative code (weft_strerror names it).
 */
#ifndef WEFT_HTTP_SERVER_H
#define WEFT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "weft/http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A request as the handler sees it; valid until the handler returns. */
typedef struct weft_http_server_request {
  const char *method; /* "GET", "POST", ... */
  const char *target; /* as sent: "/path?query" */
  const char *path;   /* "/path" (not decoded) */
  const char *query;  /* "query", or "" */
  int version;        /* 10 or 11 */
  const weft_http_header *headers;
  size_t nheaders;
  const char *body; /* the whole body (chunked ones decoded), NUL-terminated */
  size_t body_len;
  const struct sockaddr *peer;
  socklen_t peer_len;
} weft_http_server_request;

/* Header lookup, any case (NULL if absent). */
WEFT_API const char *weft_http_server_header(const weft_http_server_request *req,
                                             const char *name);

/* The response the handler builds. Status 200 unless set; Content-Length
 * is added by the server; Connection follows the request's keep-alive. */
typedef struct weft_http_server_response weft_http_server_response;
WEFT_API int weft_http_server_status(weft_http_server_response *resp, int status);
WEFT_API int weft_http_server_add_header(weft_http_server_response *resp, const char *name,
                                         const char *value);
WEFT_API int weft_http_server_body(weft_http_server_response *resp, const void *data,
                                   size_t n); /* appends */

typedef void (*weft_http_handler)(void *arg, const weft_http_server_request *req,
                                  weft_http_server_response *resp);

/* Zero means the default for every field. */
typedef struct weft_http_server_config {
  const struct sockaddr *addr; /* default 127.0.0.1, port 0 (any free one) */
  socklen_t addr_len;
  weft_http_handler handler;   /* required */
  void *arg;
  int backlog;                 /* default 1024 */
  bool reuseport;              /* SO_REUSEPORT on the listener */
  size_t max_header_bytes;     /* request line + headers; default 16 KiB -> 431 */
  unsigned max_headers;        /* default 100 -> 431 */
  size_t max_body;             /* default 1 MiB -> 413 */
  uint64_t header_timeout_ms;  /* to read a whole request header; default 10,000 */
  uint64_t idle_timeout_ms;    /* between keep-alive requests; default 60,000 */
} weft_http_server_config;

typedef struct weft_http_server weft_http_server;

typedef struct weft_http_server_stats {
  uint64_t connections; /* accepted since start */
  uint64_t requests;    /* answered, any status */
  uint64_t rejected;    /* answered 400/413/431 or cut for a deadline */
  uint64_t active;      /* connections open now */
} weft_http_server_stats;

/* Listen and start accepting (from a coroutine); returns at once. */
WEFT_API int weft_http_server_start(const weft_http_server_config *cfg,
                                    weft_http_server **out);
WEFT_API uint16_t weft_http_server_port(const weft_http_server *s);
WEFT_API void weft_http_server_get_stats(const weft_http_server *s,
                                         weft_http_server_stats *st);
/* Stop accepting, let requests in progress finish (at most grace_ms, then
 * cut them), close idle connections, and free the server (from a
 * coroutine of the same runtime). */
WEFT_API int weft_http_server_stop(weft_http_server *s, uint64_t grace_ms);

#ifdef __cplusplus
}
#endif

#endif
