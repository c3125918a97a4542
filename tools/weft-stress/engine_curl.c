/*
 * engine_curl.c - requests through weft::http (libcurl's multi interface
 * on the poller): https://, HTTP/2 (--http2: ALPN h2 over TLS, prior
 * knowledge on http://), or any URL with --engine curl.
 *
 * One weft_http_client for the run, max_conns = -c, so curl keeps at most
 * that many connections (fewer with HTTP/2, which multiplexes the -c
 * coroutines' requests over them). Redirects are not followed: a load
 * generator reports a 3xx as what the server answered. The body arrives
 * in memory (weft_http_do) and is counted, then freed; bytes on the wire
 * are not known here, so wire_bytes stays 0.
 *
 * libcurl before 8.0 (Debian 12 ships 7.88.1) breaks every reused HTTP/2
 * prior-knowledge connection: the next request on it fails with a
 * framing error (curl/curl#10634, fixed by #10643 in 8.0.0), and new
 * requests are multiplexed onto live connections, so even closing each
 * connection after its request does not avoid it. With such a libcurl,
 * h2c (--http2 on http://) is refused with that reason rather than
 * reported as a server's errors.
 */
#include "stress.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>

typedef struct cctx {
  weft_http_client *client;
  const char **headers; /* NULL-terminated, -H as given */
} cctx;

typedef struct cconn {
  run *r;
} cconn;

static int curl_init(run *r) {
  const options *o = r->opt;
  cctx *x = calloc(1, sizeof *x);
  if (x)
    x->headers = calloc(o->nheaders + 1, sizeof *x->headers);
  if (!x || !x->headers) {
    free(x);
    fprintf(stderr, STRESS_NAME ": out of memory\n");
    return -ENOMEM;
  }
  for (size_t i = 0; i < o->nheaders; i++)
    x->headers[i] = o->headers[i];
  bool any_https = false;
  for (size_t i = 0; i < r->ntargets; i++)
    any_https |= r->targets[i].https;
  bool h2c = o->http2 && !any_https;
  const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
  if (h2c && cv->version_num < 0x080000) {
    fprintf(stderr,
            STRESS_NAME ": --http2 on http:// (h2c, prior knowledge) needs libcurl 8.0.0 or "
                        "later: %s fails every reused HTTP/2 prior-knowledge connection "
                        "(curl/curl#10634); use https:// or HTTP/1.1\n",
            cv->version);
    free(x->headers);
    free(x);
    return WEFT_EHTTP_FAILED;
  }
  weft_http_client_config cfg = {
      .max_conns = o->conns,
      .max_conns_per_host = o->conns,
      .version = !o->http2 ? WEFT_HTTP_1_1 : h2c ? WEFT_HTTP_2_PRIOR_KNOWLEDGE : WEFT_HTTP_AUTO,
      .insecure = o->insecure,
      .ca_file = o->cacert,
      .user_agent = "weft-stress/0.1",
      .connect_timeout_ms = o->timeout_ns ? (o->timeout_ns + NS_PER_MS - 1) / NS_PER_MS : 0,
      .max_redirects = -1,
  };
  int rc = weft_http_client_new(&cfg, &x->client);
  if (rc) {
    char name[128];
    fprintf(stderr, STRESS_NAME ": the HTTP client: %s\n", err_name(rc, name, sizeof name));
    free(x->headers);
    free(x);
    return rc;
  }
  r->eng_ctx = x;
  return 0;
}

static void curl_fini(run *r) {
  cctx *x = r->eng_ctx;
  if (!x)
    return;
  weft_http_client_free(x->client);
  free(x->headers);
  free(x);
  r->eng_ctx = NULL;
}

static void *curl_conn_new(run *r, unsigned id) {
  (void)id;
  cconn *c = calloc(1, sizeof *c);
  if (c)
    c->r = r;
  return c;
}

static int curl_request(void *cv, const target *t, uint64_t deadline, req_result *res) {
  cconn *c = cv;
  const options *o = c->r->opt;
  cctx *x = c->r->eng_ctx;
  uint64_t timeout_ms = 0;
  if (deadline) {
    uint64_t now = weft_now_ns();
    timeout_ms = deadline > now ? (deadline - now + NS_PER_MS - 1) / NS_PER_MS : 1;
  }
  weft_http_request req = {
      .method = request_method(o),
      .url = t->url,
      .headers = x->headers,
      .body = o->body,
      .body_len = o->body ? o->body_len : 0,
      .timeout_ms = timeout_ms,
      .max_redirects = -1,
  };
  weft_http_response resp = {0};
  int rc = weft_http_do(x->client, &req, &resp);
  if (rc == 0) {
    res->status = resp.status;
    res->body_bytes = resp.body_len;
  } else {
    res->phase = rc == WEFT_EHTTP_REFUSED ? PH_CONNECT : PH_REQUEST;
  }
  weft_http_response_free(&resp);
  return rc;
}

static void curl_conn_free(void *c) { free(c); }

const engine engine_curl = {
    .name = "curl",
    .init = curl_init,
    .fini = curl_fini,
    .conn_new = curl_conn_new,
    .conn_prepare = NULL,
    .request = curl_request,
    .conn_free = curl_conn_free,
};
