/*
 * stream.c - streaming response bodies: weft_http_stream_*.
 *
 * weft__http_send (request.c) returns once the final response's headers
 * are in; the transfer goes on, and curl's write callback (driver.c) keeps
 * at most a window of the body (STREAM_WINDOW) in x->body: beyond it the
 * callback pauses the transfer. The reader takes bytes from the front
 * under x->lock; once it has drained the window below half, it posts
 * OP_RESUME and the poller unpauses curl, which delivers what it held
 * back. So memory stays bounded whatever the body's size, and a slow
 * reader slows the sender down (TCP flow control) instead of buffering.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

struct weft_http_stream {
  weft_http_client *c;
  weft__xfer *x;
};

int weft_http_stream_open(weft_http_client *c, const weft_http_request *req,
                          weft_http_response *resp, weft_http_stream **out) {
  if (!out)
    return -EINVAL;
  *out = NULL;
  weft_http_stream *s = weft__calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc = weft__http_send(c, req, true, resp, &s->x, &s->c);
  if (rc) {
    weft__free(s, sizeof *s);
    return rc;
  }
  *out = s;
  return 0;
}

ssize_t weft_http_stream_read(weft_http_stream *s, void *buf, size_t n) {
  if (!s || (!buf && n))
    return -EINVAL;
  weft__xfer *x = s->x;
  for (;;) {
    weft__spin_lock(&x->lock);
    size_t have = x->body.len - x->body.off;
    if (have && n) {
      size_t k = have < n ? have : n;
      memcpy(buf, x->body.p + x->body.off, k);
      x->body.off += k;
      bool resume = x->paused_write && x->body.len - x->body.off < WEFT__STREAM_WINDOW / 2;
      if (resume)
        x->paused_write = false; /* one OP_RESUME per pause */
      weft__spin_unlock(&x->lock);
      if (resume)
        weft__http_post(x, OP_RESUME, true);
      return (ssize_t)k;
    }
    bool done = x->events & X_DONE;
    weft__spin_unlock(&x->lock);
    if (done || !n)
      return done ? weft__http_map_error(x) : 0;
    uint32_t got;
    int rc = weft__http_wait(x, X_DATA | X_DONE, &got);
    if (rc)
      return rc;
  }
}

void weft_http_stream_close(weft_http_stream *s) {
  if (!s)
    return;
  weft__spin_lock(&s->x->lock);
  bool running = !(s->x->events & X_DONE);
  weft__spin_unlock(&s->x->lock);
  weft__http_xfer_release(s->c, s->x, running);
  weft__free(s, sizeof *s);
}
