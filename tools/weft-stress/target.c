/*
 * target.c - the URLs: parsed once, each origin (host, port) resolved
 * once through weft_resolve, and for the native engine the request bytes
 * of each URL built once, so a connection's hot loop only writes them.
 *
 * The request (HTTP/1.1):
 *   METHOD path?query HTTP/1.1
 *   Host: host[:port]                (unless -H gives one)
 *   User-Agent: weft-stress/VERSION  (unless -H gives one)
 *   -H headers, in order
 *   Content-Length: N                (a body, or POST/PUT/PATCH without one)
 *   <blank line><body>
 */
#include "stress.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USER_AGENT "weft-stress/0.1"

typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const void *d, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return -ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static int sb_str(sbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

/* Has -H a header called name (any case)? */
static bool user_has(const options *o, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < o->nheaders; i++)
    if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':')
      return true;
  return false;
}

const char *request_method(const options *o) {
  return o->method ? o->method : o->body ? "POST" : "GET";
}

static int build_request(run *r, target *t, const char *path, const char *hostport) {
  const options *o = r->opt;
  const char *m = request_method(o);
  sbuf b = {0};
  int rc = sb_str(&b, m);
  rc = rc ? rc : sb_str(&b, " ");
  rc = rc ? rc : sb_str(&b, path);
  rc = rc ? rc : sb_str(&b, " HTTP/1.1\r\n");
  if (!rc && !user_has(o, "host")) {
    rc = sb_str(&b, "Host: ");
    rc = rc ? rc : sb_str(&b, hostport);
    rc = rc ? rc : sb_str(&b, "\r\n");
  }
  if (!rc && !user_has(o, "user-agent"))
    rc = sb_str(&b, "User-Agent: " USER_AGENT "\r\n");
  for (size_t i = 0; !rc && i < o->nheaders; i++) {
    rc = sb_str(&b, o->headers[i]);
    rc = rc ? rc : sb_str(&b, "\r\n");
  }
  bool wants_length = o->body || !strcasecmp(m, "POST") || !strcasecmp(m, "PUT") ||
                      !strcasecmp(m, "PATCH");
  if (!rc && wants_length && !user_has(o, "content-length")) {
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", o->body ? o->body_len : 0);
    rc = sb_str(&b, cl);
  }
  rc = rc ? rc : sb_str(&b, "\r\n");
  if (!rc && o->body)
    rc = sb_add(&b, o->body, o->body_len);
  if (rc) {
    free(b.p);
    return rc;
  }
  t->req = b.p;
  t->req_len = b.len;
  t->head = strcasecmp(m, "HEAD") == 0;
  return 0;
}

/* The origin (host, port), added if new; its index. */
static int origin_add(run *r, const char *host, const char *port, bool v6) {
  for (size_t i = 0; i < r->norigins; i++)
    if (!strcmp(r->origins[i].host, host) && !strcmp(r->origins[i].port, port))
      return (int)i;
  origin *v = realloc(r->origins, (r->norigins + 1) * sizeof *v);
  if (!v)
    return -ENOMEM;
  r->origins = v;
  size_t idx = r->norigins++; /* counted at once: targets_free frees what is there */
  origin *o = &v[idx];
  memset(o, 0, sizeof *o);
  o->host = strdup(host);
  snprintf(o->port, sizeof o->port, "%s", port);
  size_t n = strlen(host) + strlen(port) + 4;
  o->label = malloc(n);
  if (!o->host || !o->label)
    return -ENOMEM;
  snprintf(o->label, n, v6 ? "[%s]:%s" : "%s:%s", host, port);
  return (int)idx;
}

/* scheme://[userinfo@]host[:port][/path][?query][#fragment] */
static int parse_one(run *r, target *t, const char *url, char *err, size_t cap) {
  t->url = url;
  const char *p;
  if (!strncasecmp(url, "http://", 7)) {
    p = url + 7;
  } else if (!strncasecmp(url, "https://", 8)) {
    p = url + 8;
    t->https = true;
  } else {
    snprintf(err, cap, "%s: only http:// and https:// URLs", url);
    return -EINVAL;
  }
  size_t alen = strcspn(p, "/?#");
  const char *rest = p + alen;
  if (memchr(p, '@', alen)) {
    snprintf(err, cap, "%s: user:password@ is not supported (use -H 'Authorization: ...')", url);
    return -EINVAL;
  }
  char host[256], port[8];
  const char *hend, *pstart = NULL;
  bool v6 = false;
  if (*p == '[') {
    hend = memchr(p, ']', alen);
    if (!hend) {
      snprintf(err, cap, "%s: unclosed [ in the host", url);
      return -EINVAL;
    }
    v6 = true;
    if (hend + 1 < rest && hend[1] != ':')
      goto bad_host;
    pstart = hend + 1 < rest ? hend + 2 : NULL;
    p++;
  } else {
    hend = memchr(p, ':', alen);
    if (hend)
      pstart = hend + 1;
    else
      hend = rest;
  }
  size_t hlen = (size_t)(hend - p);
  if (hlen == 0 || hlen >= sizeof host)
    goto bad_host;
  memcpy(host, p, hlen);
  host[hlen] = 0;
  if (pstart) {
    size_t plen = (size_t)(rest - pstart);
    char *end;
    char tmp[8];
    if (plen == 0 || plen >= sizeof tmp)
      goto bad_port;
    memcpy(tmp, pstart, plen);
    tmp[plen] = 0;
    long v = strtol(tmp, &end, 10);
    if (*end || v < 1 || v > 65535)
      goto bad_port;
    snprintf(port, sizeof port, "%ld", v);
  } else {
    snprintf(port, sizeof port, "%s", t->https ? "443" : "80");
  }
  int oi = origin_add(r, host, port, v6);
  if (oi < 0)
    return oi;
  t->origin = (unsigned)oi;

  /* Host header: the authority without a default port. */
  char hostport[300];
  bool default_port = !pstart || !strcmp(port, t->https ? "443" : "80");
  snprintf(hostport, sizeof hostport, v6 ? (default_port ? "[%s]" : "[%s]:%s")
                                         : (default_port ? "%s" : "%s:%s"),
           host, port);
  /* The request target: path and query, no fragment; "/" if empty. */
  size_t plen = strcspn(rest, "#");
  char *path = malloc(plen + 2);
  if (!path)
    return -ENOMEM;
  if (plen == 0 || rest[0] == '?') {
    path[0] = '/';
    memcpy(path + 1, rest, plen);
    path[plen + 1] = 0;
  } else {
    memcpy(path, rest, plen);
    path[plen] = 0;
  }
  if (strpbrk(path, " \t\r\n")) {
    free(path);
    snprintf(err, cap, "%s: a space or line break in the path (percent-encode it)", url);
    return -EINVAL;
  }
  int rc = build_request(r, t, path, hostport);
  free(path);
  return rc;
bad_host:
  snprintf(err, cap, "%s: bad host", url);
  return -EINVAL;
bad_port:
  snprintf(err, cap, "%s: bad port", url);
  return -EINVAL;
}

int targets_parse(run *r, char *err, size_t cap) {
  const options *o = r->opt;
  r->targets = calloc(o->nurls, sizeof *r->targets);
  if (!r->targets)
    return -ENOMEM;
  r->ntargets = o->nurls;
  for (size_t i = 0; i < o->nurls; i++) {
    int rc = parse_one(r, &r->targets[i], o->urls[i], err, cap);
    if (rc) {
      if (rc == -ENOMEM)
        snprintf(err, cap, "out of memory");
      return rc;
    }
  }
  return 0;
}

int origin_connect(const origin *o, uint64_t deadline_ns) {
  int fd = weft_socket(o->addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0)
    return fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = weft_connect_until(fd, (const struct sockaddr *)&o->addr, o->addr_len, deadline_ns);
  if (rc) {
    weft_close(fd);
    return rc;
  }
  return fd;
}

int targets_check(run *r) {
  char name[128];
  for (size_t i = 0; i < r->norigins; i++) {
    origin *o = &r->origins[i];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    uint64_t deadline = r->opt->timeout_ns ? weft_now_ns() + r->opt->timeout_ns : 0;
    int rc = weft_resolve_until(o->host, o->port, &hints, &res, deadline);
    if (rc == 0 && !res)
      rc = WEFT_EDNS_NOTFOUND;
    if (rc) {
      fprintf(stderr, STRESS_NAME ": resolve %s: %s\n", o->host, err_name(rc, name, sizeof name));
      return rc;
    }
    memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
    o->addr_len = res->ai_addrlen;
    weft_freeaddrinfo(res);
    deadline = weft_now_ns() + (r->opt->timeout_ns ? r->opt->timeout_ns : 10 * NS_PER_S);
    int fd = origin_connect(o, deadline);
    if (fd < 0) {
      fprintf(stderr, STRESS_NAME ": connect %s: %s\n", o->label, err_name(fd, name, sizeof name));
      return fd;
    }
    weft_close(fd);
  }
  return 0;
}

void targets_free(run *r) {
  for (size_t i = 0; i < r->ntargets; i++)
    free(r->targets[i].req);
  free(r->targets);
  for (size_t i = 0; i < r->norigins; i++) {
    free(r->origins[i].host);
    free(r->origins[i].label);
  }
  free(r->origins);
  r->targets = NULL;
  r->origins = NULL;
  r->ntargets = r->norigins = 0;
}
