/*
 * client.c - weft_http_client: settings, and a curl multi handle (its
 * connection pool and limits) made on first use on the poller of the
 * runtime that uses it (driver.c). A client serves one runtime at a time;
 * when that runtime stops, the client forgets it and may serve another.
 *
 * A client's life: bind (first use in a runtime: c->m and c->rt set),
 * detach (that runtime stops: its poller frees the multi and clears both)
 * and free (the user's call, from any thread: the multi is retired, and
 * the poller frees it). Detach and free may run at once on two threads
 * (a foreign thread frees the client while the runtime that used it
 * stops), and each must know whether the other came first: after a
 * detach the multi is gone, after a free the client is. So all three run
 * under one process-wide mutex (life_lock), and m->dead, set by free
 * under it, tells a later detach to leave the client alone; and as free
 * pokes the poller under the mutex, a detach that follows it (every
 * multi's free takes the mutex, dead or not) knows the poke is over
 * before the poller's stop closes the eventfd and frees itself. Binding is
 * rare (once per client and runtime); a request whose client is already
 * bound to its own runtime does not take the lock: it reads c->rt
 * (acquire; stored with release after c->m) and finds its runtime, whose
 * stop is the only thing that could clear c->m, and which cannot stop
 * while this request runs in it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

int weft_http_client_new(const weft_http_client_config *cfg, weft_http_client **out) {
  if (!out)
    return -EINVAL;
  *out = NULL;
  weft_http_client_config zero = {0};
  if (!cfg)
    cfg = &zero;
  if (cfg->version < WEFT_HTTP_AUTO || cfg->version > WEFT_HTTP_2_PRIOR_KNOWLEDGE ||
      cfg->max_redirects < -1)
    return -EINVAL;
  weft_http_client *c = weft__calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->cfg = *cfg;
  c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
  c->user_agent = cfg->user_agent ? strdup(cfg->user_agent) : NULL;
  if ((cfg->ca_file && !c->ca_file) || (cfg->user_agent && !c->user_agent)) {
    free(c->ca_file);
    free(c->user_agent);
    weft__free(c, sizeof *c);
    return -ENOMEM;
  }
  c->cfg.ca_file = c->ca_file;
  c->cfg.user_agent = c->user_agent;
  *out = c;
  return 0;
}

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;

int weft__http_client_bind(weft_http_client *c, weft__http_driver *d) {
  struct weft_runtime *rt = weft__http_driver_rt(d);
  if (weft__ld_acq(&c->rt) == rt)
    return 0;
  pthread_mutex_lock(&life_lock);
  int rc = 0;
  if (!c->m) {
    rc = weft__http_multi_new(d, c, &c->m);
    if (!rc)
      weft__st_rel(&c->rt, rt);
  } else if (c->rt != rt) {
    rc = -EINVAL; /* in use by another runtime */
  }
  pthread_mutex_unlock(&life_lock);
  return rc;
}

void weft__http_client_detach(weft__http_multi *m) {
  pthread_mutex_lock(&life_lock);
  weft_http_client *c = m->client;
  if (c && !weft__ld_acq(&m->dead)) { /* else c was freed, or is being */
    c->m = NULL;
    weft__st_rel(&c->rt, NULL);
  }
  pthread_mutex_unlock(&life_lock);
}

int weft_http_client_free(weft_http_client *c) {
  if (!c)
    return 0;
  if (c->is_default)
    return -EINVAL;
  if (weft__ld_acq(&c->inflight))
    return -EBUSY;
  pthread_mutex_lock(&life_lock);
  if (c->m) /* not detached: its runtime's poller (and m) are still whole */
    weft__http_multi_retire(c->m); /* the poller frees it; it no longer
                                      looks at c */
  pthread_mutex_unlock(&life_lock);
  free(c->ca_file);
  free(c->user_agent);
  weft__free(c, sizeof *c);
  return 0;
}
