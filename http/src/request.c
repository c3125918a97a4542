/*
 * request.c - the caller's side of a fetch: weft_http_do / weft_http_get.
 *
 * A request, on the requesting coroutine:
 *   R1. check the URL (curl's URL parser: scheme http or https, a host)
 *       and resolve its host with weft_resolve (c-ares: cache, merging,
 *       /etc/hosts), unless it is an IP literal; the addresses go to curl
 *       as a CURLOPT_RESOLVE entry, so curl never starts its resolver
 *       thread;
 *   R2. set up the easy handle (curl does not know it yet, so any thread
 *       may) and post OP_ADD; curl never follows redirects itself, since
 *       a redirect's host must be resolved here too;
 *   R3. park until X_DONE (feeding a body reader on X_UPLOAD meanwhile);
 *   R4. on a redirect that may be followed, resolve the new host and send
 *       the same handle again (R1-R3); otherwise move the body and headers
 *       into the response and post OP_RELEASE.
 * Cancellation at R3 posts OP_RELEASE at once (the poller removes the
 * transfer from curl and frees it) and returns -ECANCELED: once the call
 * returns, nothing refers to the caller's memory (curl copied the body).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

#define DEFAULT_MAX_BODY (256u * 1024u * 1024u)
#define DEFAULT_CONNECT_MS 30000u
#define DEFAULT_REDIRECTS 10

/* ---- errors ------------------------------------------------------------------ */

/* curl refused the response's head as too large, which is the server's
 * fault, not memory's or the connection's: WEFT_EHTTP_PROTOCOL.
 *  - A head over 300 KiB in all: CURLE_RECV_ERROR, "Too large response
 *    headers" (curl 8.3+, and Debian's 7.88 with that fix).
 *  - A header line over CURL_MAX_HTTP_HEADER (100 KiB): curl before 8.6
 *    says CURLE_OUT_OF_MEMORY, with no message (its header buffer is
 *    capped at that size and reports the cap as a failed allocation). So
 *    an out-of-memory with no message while a response's head was coming
 *    in (its status line seen, its end not) is taken for this; a real
 *    allocation failure in that window reads the same, and is far rarer.
 * curl 8.6+ says CURLE_TOO_LARGE for both. */
static bool head_too_large(const weft__xfer *x) {
  if (x->result == CURLE_RECV_ERROR)
    return strncmp(x->errbuf, "Too large response headers",
                   sizeof "Too large response headers" - 1) == 0;
  return x->result == CURLE_OUT_OF_MEMORY && !x->errbuf[0] && x->hdr.len > 0 && !x->hdr_done;
}

int weft__http_map_error(const weft__xfer *x) {
  if (head_too_large(x))
    return WEFT_EHTTP_PROTOCOL;
  switch (x->result) {
  case CURLE_OK:
    return 0;
  case CURLE_URL_MALFORMAT:
    return WEFT_EHTTP_URL;
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
    return WEFT_EHTTP_REFUSED;
  case CURLE_OPERATION_TIMEDOUT:
    return WEFT_EHTTP_TIMEOUT;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2_STREAM:
    return WEFT_EHTTP_RESET;
  case CURLE_FILESIZE_EXCEEDED:
    return WEFT_EHTTP_TOOBIG;
  case CURLE_WRITE_ERROR:
    return x->too_big ? WEFT_EHTTP_TOOBIG : -ENOMEM;
  case CURLE_READ_ERROR:
  case CURLE_ABORTED_BY_CALLBACK:
    return x->body_failed ? WEFT_EHTTP_BODY : WEFT_EHTTP_FAILED;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_USE_SSL_FAILED:
    return WEFT_EHTTP_TLS;
  case CURLE_UNSUPPORTED_PROTOCOL: /* the scheme was checked before (R1), so
                                     this is an answer that is not HTTP */
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_HTTP2:
  case CURLE_HTTP3:
  case CURLE_TOO_MANY_REDIRECTS:
    return x->result == CURLE_TOO_MANY_REDIRECTS ? WEFT_EHTTP_REDIRECTS
                                                 : WEFT_EHTTP_PROTOCOL;
  case CURLE_OUT_OF_MEMORY:
    return -ENOMEM;
#if LIBCURL_VERSION_NUM >= 0x080600
  case CURLE_TOO_LARGE: /* curl 8.6+: a header or head over its limits */
    return WEFT_EHTTP_PROTOCOL;
#endif
  default:
    return WEFT_EHTTP_FAILED;
  }
}

/* ---- R1: the URL and its host ----------------------------------------------------- */

/* The host in the ASCII form curl connects to: curl turns an IDN host
 * ("b\u00fccher.example") into punycode before it looks in its DNS cache, so
 * both the lookup and the CURLOPT_RESOLVE entry must use that form, or
 * curl misses the entry and starts its own resolver. */
#ifdef CURLU_PUNYCODE
#define HOST_FORM CURLU_PUNYCODE
#else
#define HOST_FORM 0 /* curl before 7.88: no way to ask; IDN hosts miss */
#endif

/* A host curl will look up by name and the CURLOPT_RESOLVE entry must
 * carry: printable ASCII without the entry's separators. curl 7.88
 * URL-decodes the host, so "http://%7f.a/" arrives here with a DEL byte
 * (tests/fuzz, http_url): no DNS name has one, and it is a URL error
 * rather than a lookup that fails later. Bracketed IPv6 literals were
 * checked by curl. */
static bool host_ok(const char *h) {
  if (h[0] == '[')
    return true;
  for (; *h; h++) {
    unsigned char c = (unsigned char)*h;
    if (c <= ' ' || c >= 0x7f || strchr(":,[]/", c))
      return false;
  }
  return true;
}

int weft__http_url_check(const char *url, char **host, long *port) {
  CURLU *u = curl_url();
  if (!u)
    return -ENOMEM;
  char *scheme = NULL, *h = NULL, *p = NULL;
  int rc = 0;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (uc == CURLUE_UNSUPPORTED_SCHEME)
    rc = WEFT_EHTTP_SCHEME;
  else if (uc == CURLUE_OUT_OF_MEMORY)
    rc = -ENOMEM;
  else if (uc)
    rc = WEFT_EHTTP_URL;
  else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0))
    rc = WEFT_EHTTP_URL;
  else if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))
    rc = WEFT_EHTTP_SCHEME;
  else if (curl_url_get(u, CURLUPART_HOST, &h, HOST_FORM) || !*h || !host_ok(h))
    rc = WEFT_EHTTP_URL;
  else if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT))
    rc = WEFT_EHTTP_URL;
  if (!rc) {
    *port = strtol(p, NULL, 10);
    if (*port < 1 || *port > 65535) /* curl takes ":0"; nothing listens there */
      rc = WEFT_EHTTP_URL;
  }
  if (!rc) {
    *host = strdup(h);
    if (!*host)
      rc = -ENOMEM;
  }
  curl_free(scheme);
  curl_free(h);
  curl_free(p);
  curl_url_cleanup(u);
  return rc;
}

bool weft__http_is_ip_literal(const char *host) {
  unsigned char a[16];
  if (inet_pton(AF_INET, host, a) == 1)
    return true;
  size_t n = strlen(host);
  if (n > 2 && host[0] == '[' && host[n - 1] == ']')
    return true; /* curl's parser keeps IPv6 literals in brackets */
  return false;
}

/* The CURLOPT_RESOLVE entry "+host:port:a.b.c.d,[v6],..." for the
 * addresses of ai, into line[cap] (cap > 64); false if it names none. */
bool weft__http_resolve_line(const char *host, long port, const struct addrinfo *ai, char *line,
                             size_t cap) {
  int len = snprintf(line, cap, "+%s:%ld:", host, port);
  bool first = true;
  for (const struct addrinfo *a = ai; a && len < (int)cap - 64; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN];
    const void *src = a->ai_family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
    if (!inet_ntop(a->ai_family, src, ip, sizeof ip))
      continue;
    len += snprintf(line + len, cap - (size_t)len, a->ai_family == AF_INET6 ? "%s[%s]" : "%s%s",
                    first ? "" : ",", ip);
    first = false;
  }
  return !first;
}

/* A CURLOPT_RESOLVE list naming host:port's addresses (weft_resolve), or
 * NULL for an IP literal, which curl parses without a resolver. */
static int resolve_entry(const char *host, long port, struct curl_slist **out) {
  *out = NULL;
  if (weft__http_is_ip_literal(host))
    return 0;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai;
  int rc = weft_resolve(host, NULL, &hints, &ai);
  if (rc)
    return rc;
  char line[1024];
  bool any = weft__http_resolve_line(host, port, ai, line, sizeof line);
  weft_freeaddrinfo(ai);
  if (!any)
    return WEFT_EDNS_NOTFOUND;
  *out = curl_slist_append(NULL, line);
  return *out ? 0 : -ENOMEM;
}

/* ---- R2: the easy handle ---------------------------------------------------------- */

static int bind_client(weft_http_client **cp) {
  int err = 0;
  weft__http_driver *d = weft__http_driver_get(&err);
  if (!d)
    return err;
  weft_http_client *c = *cp;
  if (!c) {
    c = weft__http_default_client(d);
    if (!c)
      return -ENOMEM;
    *cp = c;
    return 0;
  }
  return weft__http_client_bind(c, d);
}

static void settings(const weft_http_client *c, const weft_http_request *req,
                     uint64_t *connect_ms, uint64_t *total_ms, int *redirects,
                     size_t *max_body) {
  const weft_http_client_config *cfg = &c->cfg;
  *connect_ms = req->connect_timeout_ms ? req->connect_timeout_ms
                : cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                          : DEFAULT_CONNECT_MS;
  *total_ms = req->timeout_ms ? req->timeout_ms : cfg->timeout_ms;
  *redirects = req->max_redirects ? req->max_redirects
               : cfg->max_redirects ? cfg->max_redirects
                                    : DEFAULT_REDIRECTS;
  *max_body = req->max_body ? req->max_body : cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
}

static int easy_setup(weft__xfer *x, const weft_http_client *c, const weft_http_request *req,
                      const char *url, const char *method, bool with_body) {
  CURL *e = x->easy;
  const weft_http_client_config *cfg = &c->cfg;
  uint64_t connect_ms, total_ms;
  int redirects;
  settings(c, req, &connect_ms, &total_ms, &redirects, &x->max_body);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  x->errbuf[0] = 0;
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, weft__http_on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, weft__http_on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, weft__http_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x->m->d);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, weft__http_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, x->m->d);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)total_ms);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* multiplex onto h2 rather than open more */
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent ? c->user_agent : "weft/0.1");
  curl_easy_setopt(e, CURLOPT_FORBID_REUSE, cfg->no_keepalive ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
  if (c->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   cfg->version == WEFT_HTTP_1_1 ? (long)CURL_HTTP_VERSION_1_1
                   : cfg->version == WEFT_HTTP_2_PRIOR_KNOWLEDGE
                       ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                       : (long)CURL_HTTP_VERSION_2TLS);
  /* Method and body. */
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* resets POST / upload from a previous hop */
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
  if (with_body && req->body_reader) {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, weft__http_on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, x);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_size);
    if (!method)
      method = "POST";
  } else if (with_body && req->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body);
  }
  if (method && strcmp(method, with_body && req->body && !req->body_reader ? "POST" : "GET"))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (method && strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
  return 0;
}

static int xfer_new(weft_http_client *c, const weft_http_request *req, bool stream,
                    weft__xfer **out) {
  weft__xfer *x = weft__calloc(1, sizeof *x);
  if (!x)
    return -ENOMEM;
  x->easy = curl_easy_init();
  x->m = c->m;
  x->stream = stream;
  if (!x->easy) {
    weft__free(x, sizeof *x);
    return -ENOMEM;
  }
  for (const char *const *h = req->headers; h && *h; h++) {
    struct curl_slist *l = curl_slist_append(x->headers, *h);
    if (!l) {
      curl_slist_free_all(x->headers);
      curl_easy_cleanup(x->easy);
      weft__free(x, sizeof *x);
      return -ENOMEM;
    }
    x->headers = l;
  }
  weft__http_xfer_link(x);
  weft__add_ar(&c->inflight, 1);
  *out = x;
  return 0;
}

/* R4's end, and every early exit after xfer_new. */
void weft__http_xfer_release(weft_http_client *c, weft__xfer *x, bool running) {
  weft__http_post(x, OP_RELEASE, running); /* an abort must be prompt */
  weft__add_ar(&c->inflight, (uint32_t)-1);
}

/* ---- R3: waits ---------------------------------------------------------------------- */

static void unlock_xfer(void *arg) { weft__spin_unlock((weft__spinlock *)arg); }

/* Park until one of want is in x->events; returns them (consumed, but
 * X_DONE and X_HEADERS stay set), or -ECANCELED. */
int weft__http_wait(weft__xfer *x, uint32_t want, uint32_t *got) {
  weft_co *self = weft_self();
  struct weft_runtime *rt = self->rt;
  weft__spin_lock(&x->lock);
  while (!(x->events & want)) {
    int rc = weft__wait_begin(self);
    if (rc) {
      weft__spin_unlock(&x->lock);
      return rc;
    }
    x->waiter = self;
    x->gen = weft__wait_gen(self);
    weft__add_ar(&rt->driver_pending, 1);
    rc = weft__wait_park_until(self, WEFT__PARK_HTTP, unlock_xfer, &x->lock, 0);
    weft__add_ar(&rt->driver_pending, (uint32_t)-1);
    weft__spin_lock(&x->lock);
    if (rc) {
      x->waiter = NULL;
      weft__spin_unlock(&x->lock);
      return rc;
    }
  }
  *got = x->events & want;
  x->events &= ~(want & (X_DATA | X_UPLOAD));
  weft__spin_unlock(&x->lock);
  return 0;
}

/* X_UPLOAD: pull the next piece of the body from the reader (user code, on
 * this coroutine) into x->up, and let curl go on if it paused for it. */
static int feed_upload(weft__xfer *x, const weft_http_request *req) {
  char piece[16384];
  weft__spin_lock(&x->lock);
  bool want = x->up.off == x->up.len && !x->up_eof;
  weft__spin_unlock(&x->lock);
  if (!want)
    return 0;
  ssize_t n = req->body_reader(req->body_arg, piece, sizeof piece);
  weft__spin_lock(&x->lock);
  if (n <= 0) {
    x->up_eof = true;
    x->body_failed = n < 0;
  } else {
    if (x->up.off == x->up.len)
      x->up.off = x->up.len = 0;
    if (x->up.len + (size_t)n > x->up.cap) {
      char *p = realloc(x->up.p, x->up.len + (size_t)n);
      if (!p) {
        weft__spin_unlock(&x->lock);
        return -ENOMEM;
      }
      x->up.p = p;
      x->up.cap = x->up.len + (size_t)n;
    }
    memcpy(x->up.p + x->up.len, piece, (size_t)n);
    x->up.len += (size_t)n;
  }
  bool paused = x->paused_read;
  weft__spin_unlock(&x->lock);
  if (paused)
    weft__http_post(x, OP_RESUME, true);
  return 0;
}

/* Send x (set up) and wait for its end; feeds a body reader meanwhile. */
static int run_transfer(weft__xfer *x, const weft_http_request *req, uint32_t until) {
  weft__spin_lock(&x->lock);
  x->events = 0;
  x->result = CURLE_OK;
  x->up.off = x->up.len = 0;
  x->up_eof = false;
  weft__spin_unlock(&x->lock);
  weft__http_post(x, OP_ADD, true);
  for (;;) {
    uint32_t got;
    int rc = weft__http_wait(x, until | X_UPLOAD, &got);
    if (rc)
      return rc;
    if (got & until)
      return 0;
    if (req->body_reader && (rc = feed_upload(x, req)))
      return rc;
  }
}

/* ---- R4: the response ----------------------------------------------------------------- */

/* The status line's code and version ("HTTP/1.1 200 OK", "HTTP/2 404").
 * From the header block, not curl_easy_getinfo: while a stream runs, the
 * easy handle is the poller's. */
static void status_line(const char *line, int *status, int *version) {
  *status = 0;
  *version = 11;
  if (strncmp(line, "HTTP/", 5))
    return;
  const char *p = line + 5;
  *version = p[0] == '2' ? 20 : p[0] == '3' ? 30 : strncmp(p, "1.0", 3) == 0 ? 10 : 11;
  while (*p && *p != ' ')
    p++;
  *status = (int)strtol(p, NULL, 10);
}

/* Parse x->hdr ("HTTP/1.1 200 OK\r\nName: value\r\n...") into resp. */
int weft__http_fill_headers(weft__xfer *x, const char *url, weft_http_response *resp) {
  weft__spin_lock(&x->lock);
  size_t n = x->hdr.len;
  char *block = malloc(n + 1);
  if (block) {
    memcpy(block, x->hdr.p ? x->hdr.p : "", n);
    block[n] = '\0';
  }
  weft__spin_unlock(&x->lock);
  if (!block)
    return -ENOMEM;
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += block[i] == '\n';
  /* One allocation: the array, then the strings it points into. */
  weft_http_header *h = malloc(count * sizeof *h + n + 1);
  if (!h) {
    free(block);
    return -ENOMEM;
  }
  char *text = (char *)(h + count);
  memcpy(text, block, n + 1);
  free(block);
  status_line(text, &resp->status, &resp->http_version);
  size_t k = 0;
  char *line = text, *end;
  bool first = true;
  while ((end = strchr(line, '\n'))) {
    *end = '\0';
    if (end > line && end[-1] == '\r')
      end[-1] = '\0';
    char *colon = first ? NULL : strchr(line, ':');
    first = false;
    if (colon) {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      h[k].name = line;
      h[k++].value = v;
    }
    line = end + 1;
  }
  free(resp->headers);
  resp->headers = h;
  resp->nheaders = k;
  free(resp->url);
  resp->url = strdup(url);
  return resp->url ? 0 : -ENOMEM;
}

/* The response code of x's latest response, from its header block. */
static int latest_status(weft__xfer *x) {
  int status = 0, version;
  weft__spin_lock(&x->lock);
  if (x->hdr.p)
    status_line(x->hdr.p, &status, &version);
  weft__spin_unlock(&x->lock);
  return status;
}

/* A stream met a redirect: its body is not wanted; wait for the end. */
static int drain_to_done(weft__xfer *x) {
  for (;;) {
    uint32_t got;
    int rc = weft__http_wait(x, X_DONE | X_DATA, &got);
    if (rc)
      return rc;
    if (got & X_DONE)
      return 0;
    weft__spin_lock(&x->lock);
    x->body.len = x->body.off = 0;
    bool paused = x->paused_write;
    weft__spin_unlock(&x->lock);
    if (paused)
      weft__http_post(x, OP_RESUME, true);
  }
}

static bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* R1-R4 for one hop and the hops after it. Used by weft_http_do and by
 * weft_http_stream_open (stream: stop at X_HEADERS of the final hop). */
int weft__http_send(weft_http_client *c, const weft_http_request *req, bool stream,
                    weft_http_response *resp, weft__xfer **out, weft_http_client **client) {
  if (!req || !req->url || !resp)
    return -EINVAL;
  if (!weft_self())
    return WEFT_ENOTCO;
  memset(resp, 0, sizeof *resp);
  int rc = bind_client(&c);
  if (rc)
    return rc;
  uint64_t connect_ms, total_ms;
  int max_redirects;
  size_t max_body;
  settings(c, req, &connect_ms, &total_ms, &max_redirects, &max_body);
  weft__xfer *x;
  if ((rc = xfer_new(c, req, stream, &x)))
    return rc;
  char *url = strdup(req->url);
  const char *method = req->method;
  bool with_body = req->body || req->body_reader;
  unsigned hops = 0;
  bool running = false;
  while (url) {
    char *host;
    long port;
    if ((rc = weft__http_url_check(url, &host, &port)))
      break;
    curl_slist_free_all(x->resolve);
    rc = resolve_entry(host, port, &x->resolve);
    free(host);
    if (rc)
      break;
    if ((rc = easy_setup(x, c, req, url, method, with_body)))
      break;
    running = true;
    weft__spin_lock(&x->lock);
    x->body.len = x->body.off = 0;
    weft__spin_unlock(&x->lock);
    rc = run_transfer(x, req, stream ? X_HEADERS : X_DONE);
    if (rc)
      break;
    weft__spin_lock(&x->lock);
    bool done = x->events & X_DONE;
    weft__spin_unlock(&x->lock);
    if (done) {
      running = false;
      /* A stream whose headers came in opens even if the body then
       * failed: its reader gets the error after the bytes that came. */
      weft__spin_lock(&x->lock);
      bool hdr = x->hdr_done;
      weft__spin_unlock(&x->lock);
      if ((rc = weft__http_map_error(x)) && !(stream && hdr))
        break;
      rc = 0;
    }
    int code = latest_status(x);
    char *next = NULL;
    if (max_redirects >= 0 && is_redirect(code)) {
      if (!done) { /* a stream: the redirect's body is not wanted */
        if ((rc = drain_to_done(x)))
          break;
        running = false;
        if ((rc = weft__http_map_error(x)))
          break;
      }
      curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &next);
      if (!next)
        goto final; /* no Location: this is the response */
      if (++hops > (unsigned)max_redirects) {
        rc = WEFT_EHTTP_REDIRECTS;
        break;
      }
      char *n = strdup(next);
      free(url);
      url = n;
      if (code == 303 || ((code == 301 || code == 302) && with_body && !req->body_reader)) {
        method = NULL; /* as browsers do: the next hop is a GET without the body */
        with_body = false;
      }
      continue;
    }
  final:
    if ((rc = weft__http_fill_headers(x, url, resp)))
      break;
    resp->redirects = hops;
    if (!stream) {
      weft__spin_lock(&x->lock);
      resp->body = x->body.p ? x->body.p : strdup("");
      resp->body_len = x->body.len;
      x->body.p = NULL;
      x->body.len = x->body.cap = 0;
      weft__spin_unlock(&x->lock);
      if (!resp->body)
        rc = -ENOMEM;
    }
    break;
  }
  if (!url && !rc)
    rc = -ENOMEM;
  free(url);
  if (rc || !stream) {
    if (rc)
      weft_http_response_free(resp);
    weft__http_xfer_release(c, x, running);
    return rc;
  }
  *out = x;
  *client = c;
  return 0;
}

int weft_http_do(weft_http_client *c, const weft_http_request *req, weft_http_response *resp) {
  return weft__http_send(c, req, false, resp, NULL, NULL);
}

int weft_http_get(const char *url, weft_http_response *resp) {
  weft_http_request req = {.url = url};
  return weft_http_do(NULL, &req, resp);
}

void weft_http_response_free(weft_http_response *resp) {
  if (!resp)
    return;
  free(resp->body);
  free(resp->headers);
  free(resp->url);
  memset(resp, 0, sizeof *resp);
}

const char *weft_http_header_get(const weft_http_response *resp, const char *name) {
  if (!resp || !name)
    return NULL;
  for (size_t i = 0; i < resp->nheaders; i++)
    if (strcasecmp(resp->headers[i].name, name) == 0)
      return resp->headers[i].value;
  return NULL;
}
