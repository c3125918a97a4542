/*
 * client.c - weft_http_client: settings, and a curl multi handle (its
 * connection pool and limits) made on first use on the poller of the
 * runtime that uses it (driver.c). A client serves one runtime at a time;
 * when that runtime stops, the client forgets it and may serve another.
 */
#include <errno.h>
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

int weft__http_client_bind(weft_http_client *c, weft__http_driver *d) {
  struct weft_runtime *rt = weft__http_driver_rt(d);
  weft__spin_lock(&c->bind_lock);
  int rc = 0;
  if (!c->m) {
    rc = weft__http_multi_new(d, c, &c->m);
    if (!rc)
      c->rt = rt;
  } else if (c->rt != rt) {
    rc = -EINVAL; /* in use by another runtime */
  }
  weft__spin_unlock(&c->bind_lock);
  return rc;
}

int weft_http_client_free(weft_http_client *c) {
  if (!c)
    return 0;
  if (c->is_default)
    return -EINVAL;
  if (weft__ld_acq(&c->inflight))
    return -EBUSY;
  weft__spin_lock(&c->bind_lock);
  if (c->m)
    weft__http_multi_retire(c->m); /* the poller frees it; it no longer
                                      looks at c */
  weft__spin_unlock(&c->bind_lock);
  free(c->ca_file);
  free(c->user_agent);
  weft__free(c, sizeof *c);
  return 0;
}
