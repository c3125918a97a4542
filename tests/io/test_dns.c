/*
 * test_dns.c - weft_resolve against real servers on loopback: Debian's
 * dnsmasq started by the test with host records, a server that never
 * answers (deadline), /etc/hosts and literals; many lookups at once with
 * every answer checked, and no thread started per lookup. Also what weft
 * does itself (dns.c): getaddrinfo's AI_* flags, services, the order of
 * the addresses, and a hosts file of the test's own (WEFT_HOSTS_FILE)
 * read, answered from, and re-read when it changes.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "../dnsmasq.h"
#include "weft/io.h"

#define MS 1000000ull
#define SKIP 77

static uint32_t first_v4(struct addrinfo *ai) {
  for (; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET)
      return ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr);
  return 0;
}

/* An answer as text: "=CANON " if the first entry has ai_canonname, then
 * "a.b.c.d:port" or "[v6]:port" per entry, space-separated; each entry's
 * socktype must be `socktype`, and only the first may have a name. */
static const char *answer_text(const struct addrinfo *ai, int socktype, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  if (ai && ai->ai_canonname)
    len += (size_t)snprintf(buf + len, n - len, "=%s ", ai->ai_canonname);
  for (const struct addrinfo *p = ai; p && len < n; p = p->ai_next) {
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    CHECK_EQ(p->ai_socktype, socktype);
    CHECK(p == ai || p->ai_canonname == NULL);
    if (p->ai_family == AF_INET) {
      const struct sockaddr_in *s = (const struct sockaddr_in *)p->ai_addr;
      CHECK_EQ(p->ai_addrlen, sizeof *s);
      CHECK_EQ(s->sin_family, AF_INET);
      inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
      port = ntohs(s->sin_port);
      len += (size_t)snprintf(buf + len, n - len, "%s:%u ", ip, port);
    } else {
      const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)p->ai_addr;
      CHECK_EQ(p->ai_family, AF_INET6);
      CHECK_EQ(p->ai_addrlen, sizeof *s);
      CHECK_EQ(s->sin6_family, AF_INET6);
      inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
      port = ntohs(s->sin6_port);
      len += (size_t)snprintf(buf + len, n - len, "[%s]:%u ", ip, port);
    }
  }
  if (len && len < n)
    buf[len - 1] = 0; /* the last space */
  return buf;
}

/* Resolve and compare with want_rc and the answer's text (answer_text). */
static void expect_at(int line, const char *host, const char *service, int family, int flags,
                      int socktype, int want_rc, const char *want) {
  struct addrinfo hints = {.ai_family = family, .ai_flags = flags, .ai_socktype = socktype};
  struct addrinfo *res = NULL;
  int rc = weft_resolve_until(host, service, &hints, &res, weft_now_ns() + 5000 * MS);
  char got[512];
  answer_text(res, socktype, got, sizeof got);
  if (rc != want_rc || strcmp(got, want) != 0) {
    fprintf(stderr,
            "test_dns.c:%d: weft_resolve(%s, %s, family %d, flags %#x): %d (%s) \"%s\", "
            "want %d \"%s\"\n",
            line, host ? host : "NULL", service ? service : "NULL", family, flags, rc,
            weft_strerror(rc), got, want_rc, want);
    exit(1);
  }
  CHECK(rc == 0 || res == NULL);
  weft_freeaddrinfo(res);
}
#define EXPECT(host, service, family, flags, rc, want)                                             \
  expect_at(__LINE__, host, service, family, flags, SOCK_STREAM, rc, want)

/* ---- a dnsmasq of our own (tests/dnsmasq.h) with n host records ----------------- */

/* Name i answers 127.1.<i/256>.<i%256>; also a name with both an A and
 * an AAAA record, and a CNAME to h1. */
static void start_dnsmasq(int names) {
  char **recs = calloc((size_t)names + 3, sizeof *recs);
  for (int i = 0; i < names; i++) {
    recs[i] = malloc(80);
    snprintf(recs[i], 80, "--host-record=h%d.weft.test,127.1.%d.%d", i, i / 256, i % 256);
  }
  recs[names] = strdup("--host-record=both.weft.test,127.1.9.9,::9");
  recs[names + 1] = strdup("--cname=alias.weft.test,h1.weft.test");
  start_dnsmasq_with(recs, names + 2);
  for (int i = 0; i < names + 2; i++)
    free(recs[i]);
  free(recs);
}

/* dnsmasq needs a moment to bind: retry the first lookup. */
static void wait_for_server(void) {
  struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
  for (int i = 0; i < 100; i++) {
    int rc = weft_resolve_until("h0.weft.test", NULL, &hints, &res, weft_now_ns() + 200 * MS);
    if (rc == 0) {
      weft_freeaddrinfo(res);
      return;
    }
    weft_sleep_ms(50);
  }
  CHECK(!"dnsmasq did not answer");
}

static int count_threads(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

enum { NAMES = 1000 };
static uint64_t answered_ok;

static void *lookup(void *arg) {
  int i = (int)(intptr_t)arg;
  char name[64];
  snprintf(name, sizeof name, "h%d.weft.test", i);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = weft_resolve_until(name, "80", &hints, &res, weft_now_ns() + 10000 * MS);
  CHECK_EQ(rc, 0);
  CHECK_EQ(first_v4(res), (127u << 24) | (1u << 16) | ((unsigned)i / 256 << 8) | (unsigned)i % 256);
  CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 80);
  weft_freeaddrinfo(res);
  __atomic_fetch_add(&answered_ok, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *many_main(void *arg) {
  (void)arg;
  wait_for_server();
  int before = count_threads();
  weft_co **c = calloc(NAMES, sizeof *c);
  for (int i = 0; i < NAMES; i++)
    CHECK_EQ(weft_spawn(&c[i], lookup, (void *)(intptr_t)i), 0);
  int during = count_threads(); /* lookups in flight now */
  CHECK_EQ(weft_gather(c, NAMES, NULL), 0);
  free(c);
  fprintf(stderr, "threads before %d, during %d lookups %d\n", before, NAMES, during);
  CHECK(during <= before); /* no thread per lookup */
  CHECK_EQ(answered_ok, NAMES);
  /* A name the server does not have. */
  struct addrinfo *res = NULL;
  CHECK_EQ(weft_resolve("nope.weft.test", NULL, NULL, &res), WEFT_EDNS_NOTFOUND);
  CHECK(res == NULL);
  /* A name outside its domain, with no upstream: dnsmasq refuses. */
  CHECK_EQ(weft_resolve("www.example.org", NULL, NULL, &res), WEFT_EDNS_REFUSED);
  /* Flags and order, on answers from a server (then from the cache: the
   * same question, shaped for each caller). IPv4 first, unsorted. */
  EXPECT("both.weft.test", "80", AF_UNSPEC, 0, 0, "127.1.9.9:80 [::9]:80");
  EXPECT("both.weft.test", "443", AF_UNSPEC, 0, 0, "127.1.9.9:443 [::9]:443");
  EXPECT("both.weft.test", "80", AF_INET6, 0, 0, "[::9]:80");
  EXPECT("both.weft.test", "80", AF_INET6, AI_V4MAPPED, 0, "[::9]:80");
  EXPECT("both.weft.test", "80", AF_INET6, AI_V4MAPPED | AI_ALL, 0,
         "[::9]:80 [::ffff:127.1.9.9]:80");
  EXPECT("both.weft.test", "80", AF_INET, AI_V4MAPPED | AI_ALL, 0, "127.1.9.9:80");
  /* AAAA is NODATA for h1: mapped only when asked */
  EXPECT("h1.weft.test", "80", AF_INET6, 0, WEFT_EDNS_NOTFOUND, "");
  EXPECT("h1.weft.test", "80", AF_INET6, AI_V4MAPPED, 0, "[::ffff:127.1.0.1]:80");
  EXPECT("h1.weft.test", "80", AF_UNSPEC, AI_V4MAPPED, 0, "127.1.0.1:80");
  /* the canonical name: the end of the CNAME chain, else the name */
  EXPECT("alias.weft.test", "80", AF_INET, AI_CANONNAME, 0, "=h1.weft.test 127.1.0.1:80");
  EXPECT("alias.weft.test", "80", AF_INET, 0, 0, "127.1.0.1:80");
  EXPECT("h2.weft.test", NULL, AF_UNSPEC, AI_CANONNAME | AI_ADDRCONFIG, 0,
         "=h2.weft.test 127.1.0.2:0");
  return NULL;
}

static void dnsmasq_many(void) {
  start_dnsmasq(NAMES);
  int rc = weft_run(NULL, many_main, NULL, NULL);
  stop_dnsmasq();
  CHECK_EQ(rc, 0);
}

/* ---- a server that never answers ----------------------------------------------- */

static void *silent_main(void *arg) {
  (void)arg;
  struct addrinfo *res = NULL;
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_resolve_until("x.weft.test", NULL, NULL, &res, t0 + 300 * MS),
           WEFT_EDNS_TIMEOUT);
  CHECK(weft_now_ns() - t0 >= 300 * MS);
  /* Cancelled while waiting: -ECANCELED, nothing leaks. */
  CHECK_EQ(weft_cancel(weft_self()), 0);
  CHECK_EQ(weft_resolve("y.weft.test", NULL, NULL, &res), -ECANCELED);
  return NULL;
}

static void silent_server(void) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &l);
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", ntohs(a.sin_port));
  setenv("WEFT_DNS_SERVERS", servers, 1);
  CHECK_EQ(weft_run(NULL, silent_main, NULL, NULL), 0);
  close(s);
}

/* ---- /etc/hosts, literals, bad input ------------------------------------------- */

/* The port "http" has here, or 0 if /etc/services does not name it. */
static unsigned http_port(void) {
  struct servent *se = getservbyname("http", "tcp");
  return se ? ntohs((uint16_t)se->s_port) : 0;
}

static void *local_main(void *arg) {
  (void)arg;
  struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
  CHECK_EQ(weft_resolve("localhost", NULL, &hints, &res), 0);
  CHECK_EQ(first_v4(res), 0x7f000001u);
  weft_freeaddrinfo(res);
  CHECK_EQ(weft_resolve("127.0.0.9", "443", &hints, &res), 0);
  CHECK_EQ(first_v4(res), 0x7f000009u);
  weft_freeaddrinfo(res);
  CHECK_EQ(weft_resolve(NULL, NULL, NULL, &res), -EINVAL);
  CHECK_EQ(weft_resolve("localhost", NULL, NULL, NULL), -EINVAL);
  weft_freeaddrinfo(NULL); /* harmless */
  CHECK(strcmp(weft_strerror(WEFT_EDNS_NOTFOUND), "DNS: name not found") == 0);

  /* AI_V4MAPPED is not c-ares's bit of the same value (that one is
   * ARES_AI_NUMERICSERV, which took "http" for a bad port): with AF_UNSPEC
   * it means nothing, as in getaddrinfo. */
  unsigned http = http_port();
  struct addrinfo v4m = {.ai_flags = AI_V4MAPPED, .ai_socktype = SOCK_STREAM};
  if (http) {
    CHECK_EQ(weft_resolve("localhost", "http", &v4m, &res), 0);
    CHECK_EQ(res->ai_family, AF_INET); /* IPv4 first */
    CHECK_EQ(first_v4(res), 0x7f000001u);
    CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), http);
    weft_freeaddrinfo(res);
  } else { /* no /etc/services here */
    CHECK_EQ(weft_resolve("localhost", "http", &v4m, &res), -EINVAL);
  }

  /* literals and no host: answered without a lookup */
  EXPECT("127.0.0.9", "80", AF_UNSPEC, 0, 0, "127.0.0.9:80");
  EXPECT("127.0.0.9", "80", AF_INET6, 0, WEFT_EDNS_NOTFOUND, "");
  EXPECT("127.0.0.9", "80", AF_INET6, AI_V4MAPPED, 0, "[::ffff:127.0.0.9]:80");
  EXPECT("::1", "80", AF_UNSPEC, 0, 0, "[::1]:80");
  EXPECT("::1", "80", AF_INET, 0, WEFT_EDNS_NOTFOUND, "");
  EXPECT("127.0.0.9", "80", AF_UNSPEC, AI_CANONNAME, 0, "=127.0.0.9 127.0.0.9:80");
  EXPECT("127.0.0.9", "80", AF_UNSPEC, AI_NUMERICHOST | AI_ADDRCONFIG, 0, "127.0.0.9:80");
  EXPECT(NULL, "80", AF_UNSPEC, 0, 0, "127.0.0.1:80 [::1]:80");
  EXPECT(NULL, "80", AF_UNSPEC, AI_PASSIVE, 0, "0.0.0.0:80 [::]:80");
  EXPECT(NULL, "80", AF_INET6, AI_PASSIVE, 0, "[::]:80");
  EXPECT(NULL, "80", AF_INET6, AI_V4MAPPED, 0, "[::1]:80");
  EXPECT("localhost", "80", AF_UNSPEC, AI_NUMERICHOST, WEFT_EDNS_NOTFOUND, "");
  EXPECT("", "80", AF_UNSPEC, 0, WEFT_EDNS_NOTFOUND, "");
  /* services: digits, "" (0), a name, or bad */
  EXPECT("127.0.0.9", "0", AF_INET, 0, 0, "127.0.0.9:0");
  EXPECT("127.0.0.9", "", AF_INET, 0, 0, "127.0.0.9:0");
  EXPECT("127.0.0.9", "65535", AF_INET, AI_NUMERICSERV, 0, "127.0.0.9:65535");
  EXPECT("127.0.0.9", "65536", AF_INET, 0, -EINVAL, "");
  EXPECT("127.0.0.9", "-1", AF_INET, 0, -EINVAL, "");
  EXPECT("127.0.0.9", "http", AF_INET, AI_NUMERICSERV, -EINVAL, "");
  EXPECT("127.0.0.9", "no-such-service", AF_INET, 0, -EINVAL, "");
  if (http) {
    char want[64];
    snprintf(want, sizeof want, "127.0.0.9:%u", http);
    EXPECT("127.0.0.9", "http", AF_INET, 0, 0, want);
  }
  struct servent *dom = getservbyname("domain", "udp");
  if (dom) {
    char want[64];
    snprintf(want, sizeof want, "127.0.0.9:%u", ntohs((uint16_t)dom->s_port));
    expect_at(__LINE__, "127.0.0.9", "domain", AF_INET, 0, SOCK_DGRAM, 0, want);
  }
  /* bad input */
  EXPECT("localhost", "80", AF_UNSPEC, 0x10000, -EINVAL, ""); /* no such flag */
#ifdef AI_IDN
  EXPECT("localhost", "80", AF_UNSPEC, AI_IDN, -EINVAL, ""); /* not done */
#endif
  EXPECT("localhost", "80", AF_UNIX, 0, -EINVAL, "");
  EXPECT(NULL, "80", AF_UNSPEC, AI_CANONNAME, -EINVAL, "");
  return NULL;
}

/* ---- a hosts file of our own (WEFT_HOSTS_FILE) ------------------------------------ */

static char hosts_path[64];

/* Replace the file by a new one (a new inode), or rewrite it in place. */
static void write_hosts(const char *text, bool in_place) {
  char tmp[80];
  snprintf(tmp, sizeof tmp, "%s.new", hosts_path);
  const char *path = in_place ? hosts_path : tmp;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  if (!in_place)
    CHECK_EQ(rename(tmp, hosts_path), 0);
}

/* The "server" of the hosts-file case: a UDP socket that reads queries
 * and never answers; a name missing from the file is asked of it. */
static int catcher;

/* Whether a query naming `label` (its first label) reached the catcher
 * since the last call. */
static bool asked(const char *label) {
  bool seen = false;
  unsigned char q[1024];
  ssize_t n;
  while ((n = recv(catcher, q, sizeof q, MSG_DONTWAIT)) > 0)
    if (n > 13 && q[12] == strlen(label) && memcmp(q + 13, label, q[12]) == 0)
      seen = true;
  return seen;
}

/* Not in the file (for this family): the server is asked (and says
 * nothing: the deadline ends it). */
static void expect_server(const char *host, int family, int flags, const char *label) {
  struct addrinfo hints = {.ai_family = family, .ai_flags = flags}, *res = NULL;
  CHECK_EQ(weft_resolve_until(host, NULL, &hints, &res, weft_now_ns() + 200 * MS),
           WEFT_EDNS_TIMEOUT);
  CHECK(res == NULL);
  weft_sleep_ms(20); /* loopback: the query is there; a moment for a slow machine */
  if (!asked(label)) {
    fprintf(stderr, "%s (family %d): no query reached the server\n", host, family);
    exit(1);
  }
}

static void *hosts_file_main(void *arg) {
  (void)arg;
  /* comments, blank lines, CRLF, tabs, a bad address, an address with no
   * name, no newline at the end; names match whatever their case */
  write_hosts("# weft's test hosts\r\n"
              "127.0.0.5\tFoo.Hosts.Test foo alias.hosts.test # the first line\n"
              "::5 foo.hosts.test\n"
              "\n"
              "   127.0.0.6 FOO.hosts.test\r\n"
              "127.0.0.7 v4only.hosts.test\n"
              "::7 v6only.hosts.test\n"
              "not-an-address bad.hosts.test\n"
              "127.0.0.8\n"
              "#127.0.0.9 commented.hosts.test\n"
              "127.0.0.10 last.hosts.test",
              false);
  EXPECT("foo.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.5:80 127.0.0.6:80 [::5]:80");
  EXPECT("FOO", "80", AF_INET, AI_CANONNAME, 0, "=Foo.Hosts.Test 127.0.0.5:80");
  EXPECT("alias.hosts.test", "80", AF_UNSPEC, AI_CANONNAME, 0, "=Foo.Hosts.Test 127.0.0.5:80");
  EXPECT("foo.hosts.test", "80", AF_INET6, AI_CANONNAME, 0, "=Foo.Hosts.Test [::5]:80");
  EXPECT("foo.hosts.test", "80", AF_INET6, AI_V4MAPPED, 0, "[::5]:80");
  EXPECT("foo.hosts.test", "80", AF_INET6, AI_V4MAPPED | AI_ALL, 0,
         "[::5]:80 [::ffff:127.0.0.5]:80 [::ffff:127.0.0.6]:80");
  EXPECT("v4only.hosts.test", "80", AF_INET6, AI_V4MAPPED, 0, "[::ffff:127.0.0.7]:80");
  EXPECT("v6only.hosts.test", "80", AF_UNSPEC, 0, 0, "[::7]:80");
  EXPECT("last.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.10:80");
  /* localhost, not in this file: the loopback, never asked of a server */
  EXPECT("localhost", "80", AF_UNSPEC, 0, 0, "127.0.0.1:80 [::1]:80");
  EXPECT("LocalHost", "80", AF_INET6, 0, 0, "[::1]:80");
  EXPECT("localhost", "http", AF_UNSPEC, AI_V4MAPPED | AI_NUMERICSERV, -EINVAL, "");
  EXPECT("localhost", "80", AF_INET, AI_CANONNAME, 0, "=localhost 127.0.0.1:80");
  CHECK(!asked("localhost"));
  /* what the file does not have for the family asked goes to the server */
  expect_server("v4only.hosts.test", AF_INET6, 0, "v4only");
  expect_server("v6only.hosts.test", AF_INET, 0, "v6only");
  expect_server("bad.hosts.test", AF_UNSPEC, 0, "bad");
  expect_server("commented.hosts.test", AF_UNSPEC, 0, "commented");
  expect_server("alias.hosts.test", AF_INET6, 0, "alias"); /* on an IPv4 line only */
  CHECK(!asked("foo")); /* and what it has, not */

  /* Re-read when it changes (checked at most once a second): replaced... */
  write_hosts("127.0.0.11 foo.hosts.test\n", false);
  weft_sleep_ms(1100);
  EXPECT("foo.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.11:80");
  expect_server("last.hosts.test", AF_INET, 0, "last");
  /* ... rewritten in place (same inode, another size) ... */
  write_hosts("127.0.0.12 foo.hosts.test new.hosts.test\n", true);
  weft_sleep_ms(1100);
  EXPECT("new.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.12:80");
  EXPECT("foo.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.12:80");
  /* ... removed: every name to the server ... */
  CHECK_EQ(unlink(hosts_path), 0);
  weft_sleep_ms(1100);
  asked(""); /* drain */
  expect_server("foo.hosts.test", AF_INET, 0, "foo");
  EXPECT("localhost", "80", AF_INET, 0, 0, "127.0.0.1:80");
  /* ... and back */
  write_hosts("127.0.0.13 foo.hosts.test\n", false);
  weft_sleep_ms(1100);
  EXPECT("foo.hosts.test", "80", AF_UNSPEC, 0, 0, "127.0.0.13:80");
  return NULL;
}

static void hosts_and_literals(void) {
  /* On a foreign thread weft_resolve is getaddrinfo, its list in weft's
   * layout (the canonical name too: no leak under ASan). */
  struct addrinfo canon = {.ai_flags = AI_CANONNAME | AI_V4MAPPED, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  CHECK_EQ(weft_resolve("localhost", "80", &canon, &res), 0);
  CHECK(res && res->ai_canonname);
  weft_freeaddrinfo(res);
  CHECK_EQ(weft_resolve("localhost", "80", &(struct addrinfo){.ai_flags = AI_V4MAPPED}, &res),
           0);
  weft_freeaddrinfo(res);

  setenv("WEFT_DNS_SERVERS", "127.0.0.1:9", 1); /* nothing needs a server here */
  CHECK_EQ(weft_run(NULL, local_main, NULL, NULL), 0);

  catcher = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(catcher, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  CHECK_EQ(getsockname(catcher, (struct sockaddr *)&a, &l), 0);
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", ntohs(a.sin_port));
  setenv("WEFT_DNS_SERVERS", servers, 1);
  snprintf(hosts_path, sizeof hosts_path, "/tmp/weft-hosts-%d", (int)getpid());
  setenv("WEFT_HOSTS_FILE", hosts_path, 1);
  CHECK_EQ(weft_run(NULL, hosts_file_main, NULL, NULL), 0);
  unlink(hosts_path);
  close(catcher);
}

/* ---- identical lookups merge; answers are cached for their TTL --------------- */

static void *same_name(void *arg) {
  (void)arg;
  struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
  CHECK_EQ(weft_resolve("h7.weft.test", NULL, &hints, &res), 0);
  CHECK_EQ(first_v4(res), 0x7f010007u);
  weft_freeaddrinfo(res);
  return NULL;
}

static void *merge_main(void *arg) {
  (void)arg;
  wait_for_server(); /* asks h0 */
  enum { N = 200 };
  weft_co *c[N];
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], same_name, NULL), 0);
  CHECK_EQ(weft_gather(c, N, NULL), 0);
  weft_sleep_ms(200); /* let dnsmasq write its log */
  int merged = queries_for("h7.weft.test");
  fprintf(stderr, "%d concurrent lookups of one name: %d queries\n", N, merged);
  /* One question on the wire (c-ares may resend it once or twice if the
   * answer is slow on a loaded machine), not one per lookup. */
  CHECK(merged >= 1 && merged <= 3);
  same_name(NULL); /* again: from the cache (TTL 60 s), no new query */
  weft_sleep_ms(200);
  CHECK_EQ(queries_for("h7.weft.test"), merged);
  return NULL;
}

static void merge_and_cache(void) {
  start_dnsmasq(16);
  int rc = weft_run(NULL, merge_main, NULL, NULL);
  stop_dnsmasq();
  CHECK_EQ(rc, 0);
}

static const test_case cases[] = {
    {"hosts_and_literals", hosts_and_literals},
    {"dnsmasq_many", dnsmasq_many},
    {"silent_server", silent_server},
    {"merge_and_cache", merge_and_cache},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
