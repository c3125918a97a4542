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

/* A request as the handler sees it; valid until the handler returns.
 * Header names are as the client sent them (weft_http_server_header
 * finds them in any case); values have their surrounding whitespace
 * trimmed. An absolute-form target ("http://host/p?q") is served by its
 * path. The body is read in full before the handler runs (up to
 * max_body). */
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
 * is added by the server; Connection follows the request's keep-alive.
 *
 * Details. status: 200-599 (-EINVAL otherwise). add_header: name a token,
 * value without CR, LF or other control bytes (-EINVAL); the server adds
 * Server and Date unless the handler did. The framing is the server's:
 * Transfer-Encoding is refused (-EINVAL); "Connection: close" is honoured
 * (the connection closes after this response; the server writes the
 * Connection header itself); a Content-Length the handler adds is used
 * for a streamed body (weft_http_server_write) and for HEAD, and replaced
 * by the body's length otherwise. A HEAD request gets the head only, as
 * do 204 and 304. One writev sends the head and a buffered body. The
 * calls return 0 or a negative code, -EALREADY once the head was sent (or
 * the connection taken over); call them only from the handler, while it
 * runs. */
typedef struct weft_http_server_response weft_http_server_response;
WEFT_API int weft_http_server_status(weft_http_server_response *resp, int status);
WEFT_API int weft_http_server_add_header(weft_http_server_response *resp, const char *name,
                                         const char *value);
WEFT_API int weft_http_server_body(weft_http_server_response *resp, const void *data,
                                   size_t n); /* appends (after a write: writes) */

/* Streaming (an addition to the buffered body above, for bodies too large
 * or too slow to hold): the first call sends the head, then each call
 * sends data at once (and any body appended before). Framing: the
 * handler's Content-Length if it added one (writing past it is -EINVAL;
 * stopping short of it closes the connection after the handler returns),
 * else chunked, one chunk per call (HTTP/1.1), else the connection's end
 * (HTTP/1.0). n = 0 only sends the head. 0, or a negative code once the
 * client is gone (-EPIPE, -ECONNRESET, -ETIMEDOUT: no progress within
 * idle_timeout_ms, -ECANCELED), after which the connection is closed. */
WEFT_API int weft_http_server_write(weft_http_server_response *resp, const void *data,
                                    size_t n);

/* Take the connection over: returns its socket's fd, on which the
 * handler then reads and writes what it likes with weft's socket calls;
 * the server sends nothing more on it, and closes it (weft_close) when
 * the handler returns, so a handler that wants an abortive close sets
 * SO_LINGER and returns. Bytes the client sent after this request and
 * that the server had already read are dropped. -EALREADY if the head
 * was sent. (For tests that need a broken server, and for protocols that
 * upgrade.) */
WEFT_API int weft_http_server_hijack(weft_http_server_response *resp);

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
/* Deadlines, precisely: a new connection has header_timeout_ms from its
 * accept to deliver its first request's head; a kept-alive one has
 * idle_timeout_ms for the first byte of the next request, then
 * header_timeout_ms from that byte for the rest of the head. A head cut
 * by its deadline is answered 408 (a connection that sent nothing is just
 * closed). Reading a body and writing a response must make progress
 * within idle_timeout_ms of each wait. */

typedef struct weft_http_server weft_http_server;

typedef struct weft_http_server_stats {
  uint64_t connections; /* accepted since start */
  uint64_t requests;    /* answered, any status */
  uint64_t rejected;    /* answered 400/413/431 or cut for a deadline */
  uint64_t active;      /* connections open now */
} weft_http_server_stats;
/* "rejected" counts the 400, 408, 413, 431 and 501 answers, and new
 * connections closed for sending nothing within header_timeout_ms; a
 * kept-alive connection closed by its idle deadline is not a rejection.
 * "requests" counts those answers too, and hijacked requests. */

/* Listen and start accepting (from a coroutine); returns at once. 0,
 * -EINVAL (no handler, a bad address), WEFT_ENOTCO, or the listen's
 * -errno (-EADDRINUSE, ...). */
WEFT_API int weft_http_server_start(const weft_http_server_config *cfg,
                                    weft_http_server **out);
WEFT_API uint16_t weft_http_server_port(const weft_http_server *s);
WEFT_API void weft_http_server_get_stats(const weft_http_server *s,
                                         weft_http_server_stats *st);
/* Stop accepting, let requests in progress finish (at most grace_ms, then
 * cut them), close idle connections, and free the server (from a
 * coroutine of the same runtime).
 *
 * In order: the listener is closed (new connections are refused); idle
 * connections are closed at once; a request in progress is finished and
 * answered with "Connection: close"; after grace_ms, what is left is cut:
 * its coroutine is cancelled (the handler's waits return -ECANCELED) and
 * its socket shut down, and stop waits for its handler to return (a
 * handler that ignores cancellation delays it). The call itself is not
 * cancellable. Returns 0, -EINVAL, WEFT_ENOTCO, or -EDEADLK from a
 * handler of this server (it would wait for itself: stop from another
 * coroutine, which the handler may spawn). */
WEFT_API int weft_http_server_stop(weft_http_server *s, uint64_t grace_ms);

#ifdef __cplusplus
}
#endif

#endif
