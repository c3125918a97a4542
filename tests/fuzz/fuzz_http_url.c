/*
 * fuzz_http_url.c - how the HTTP client turns a URL into the host it
 * resolves and the CURLOPT_RESOLVE entry it hands curl (http/src/
 * request.c, R1): weft__http_url_check, weft__http_is_ip_literal and
 * weft__http_resolve_line.
 *
 * The input is a URL, then (after its first NUL byte, if any) the
 * addresses a lookup of its host "returned": each a tag byte (bit 0:
 * IPv6) and 4 or 16 address bytes. No lookup runs: the addresses stand
 * for weft_resolve's answer, so the entry is built as resolve_entry
 * builds it.
 *
 * What it checks:
 *   U1. An accepted URL has a non-empty host and a port in 1-65535
 *       (curl takes ":0"; weft calls it a URL error); anything else is
 *       WEFT_EHTTP_URL or WEFT_EHTTP_SCHEME.
 *   U2. A host in brackets is an IPv6 literal inet_pton takes; any other
 *       host is either an IPv4 literal or a name in the form curl looks
 *       up, which the CURLOPT_RESOLVE entry must carry for curl to find
 *       it: printable ASCII (an IDN host in punycode, as curl converts
 *       it before looking in its DNS cache), and none of ':' ',' '['
 *       ']' '/', which would cut the entry ("+host:port:addr,addr")
 *       elsewhere than where it was joined.
 *   U3. The entry: with any address and a host that leaves room, one is
 *       made; it is "+host:port:" and then the addresses in order,
 *       IPv6 ones in brackets, separated by commas, and complete (not
 *       cut off by the buffer).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "http_internal.h"

enum { LINE_CAP = 1024, MAX_ADDRS = 64 };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

static bool name_char(char c) {
  return c > ' ' && c < 0x7f && !strchr(":,[]/", c);
}

/* U2 on an accepted host. */
static void check_host(const char *host) {
  size_t n = strlen(host);
  unsigned char a[16];
  if (host[0] == '[') {
    FUZZ_CHECK(n > 2 && host[n - 1] == ']' && weft__http_is_ip_literal(host));
    char inner[64];
    FUZZ_CHECK(n - 2 < sizeof inner);
    memcpy(inner, host + 1, n - 2);
    inner[n - 2] = 0;
    FUZZ_CHECK(inet_pton(AF_INET6, inner, a) == 1);
    return;
  }
  if (inet_pton(AF_INET, host, a) == 1) {
    FUZZ_CHECK(weft__http_is_ip_literal(host));
    return;
  }
  FUZZ_CHECK(!weft__http_is_ip_literal(host));
  for (size_t i = 0; i < n; i++)
    if (!name_char(host[i])) {
      fprintf(stderr, "host \"%s\": byte %zu (0x%02x) is not in the form curl looks up\n", host, i,
              (unsigned char)host[i]);
      FUZZ_CHECK(name_char(host[i]));
    }
}

/* The "returned" addresses: a list as weft_resolve makes them. */
static struct addrinfo *make_addrs(const uint8_t *p, size_t n, size_t *count) {
  struct addrinfo *head = NULL, **tail = &head;
  *count = 0;
  while (n >= 1 && *count < MAX_ADDRS) {
    bool v6 = p[0] & 1;
    size_t alen = v6 ? 16 : 4;
    if (n < 1 + alen)
      break;
    size_t slen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    struct addrinfo *ai = calloc(1, sizeof *ai + slen);
    FUZZ_CHECK(ai);
    ai->ai_family = v6 ? AF_INET6 : AF_INET;
    ai->ai_addrlen = (socklen_t)slen;
    ai->ai_addr = (struct sockaddr *)(ai + 1);
    if (v6) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)ai->ai_addr;
      s->sin6_family = AF_INET6;
      memcpy(&s->sin6_addr, p + 1, 16);
    } else {
      struct sockaddr_in *s = (struct sockaddr_in *)ai->ai_addr;
      s->sin_family = AF_INET;
      memcpy(&s->sin_addr, p + 1, 4);
    }
    *tail = ai;
    tail = &ai->ai_next;
    ++*count;
    p += 1 + alen;
    n -= 1 + alen;
  }
  return head;
}

static void free_addrs(struct addrinfo *ai) {
  while (ai) {
    struct addrinfo *next = ai->ai_next;
    free(ai);
    ai = next;
  }
}

/* U3 on an entry built for host:port from ai (count addresses). */
static void check_entry(const char *host, long port, const struct addrinfo *ai, size_t count) {
  char *line = malloc(LINE_CAP);
  FUZZ_CHECK(line);
  bool any = weft__http_resolve_line(host, port, ai, line, LINE_CAP);
  char prefix[LINE_CAP];
  int plen = snprintf(prefix, sizeof prefix, "+%s:%ld:", host, port);
  if (count && plen < LINE_CAP - 64)
    FUZZ_CHECK(any);
  if (!count)
    FUZZ_CHECK(!any);
  if (any) {
    size_t len = strnlen(line, LINE_CAP);
    FUZZ_CHECK(len < LINE_CAP - 1);
    FUZZ_CHECK(plen > 0 && (size_t)plen < len && memcmp(line, prefix, (size_t)plen) == 0);
    const char *p = line + plen;
    size_t seen = 0;
    for (const struct addrinfo *a = ai; a && *p; a = a->ai_next, seen++) {
      char ip[INET6_ADDRSTRLEN + 2];
      const void *src = a->ai_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
      char txt[INET6_ADDRSTRLEN];
      FUZZ_CHECK(inet_ntop(a->ai_family, src, txt, sizeof txt));
      snprintf(ip, sizeof ip, a->ai_family == AF_INET6 ? "[%s]" : "%s", txt);
      size_t il = strlen(ip);
      FUZZ_CHECK(strncmp(p, ip, il) == 0 && (p[il] == ',' || p[il] == 0));
      p += il + (p[il] == ',');
    }
    FUZZ_CHECK(*p == 0 && seen >= 1);
  }
  free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t ulen = nul ? (size_t)(nul - data) : size;
  char *url = malloc(ulen + 1);
  FUZZ_CHECK(url);
  memcpy(url, data, ulen);
  url[ulen] = 0;
  char *host = NULL;
  long port = -1;
  int rc = weft__http_url_check(url, &host, &port);
  FUZZ_CHECK(rc == 0 || rc == WEFT_EHTTP_URL || rc == WEFT_EHTTP_SCHEME); /* U1 */
  if (rc == 0) {
    FUZZ_CHECK(host && *host && port >= 1 && port <= 65535);
    check_host(host);
    size_t count = 0;
    struct addrinfo *ai =
        nul ? make_addrs(nul + 1, size - ulen - 1, &count) : NULL;
    check_entry(host, port, ai, count);
    free_addrs(ai);
    free(host);
  }
  free(url);
  return 0;
}
