/*
 * test_dns.c - weft_resolve against real servers on loopback: Debian's
 * dnsmasq started by the test with host records, a server that never
 * answers (deadline), /etc/hosts and literals; many lookups at once with
 * every answer checked, and no thread started per lookup.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
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

/* ---- a dnsmasq of our own (tests/dnsmasq.h) with n host records ----------------- */

/* Name i answers 127.1.<i/256>.<i%256>. */
static void start_dnsmasq(int names) {
  char **recs = calloc((size_t)names + 1, sizeof *recs);
  for (int i = 0; i < names; i++) {
    recs[i] = malloc(80);
    snprintf(recs[i], 80, "--host-record=h%d.weft.test,127.1.%d.%d", i, i / 256, i % 256);
  }
  start_dnsmasq_with(recs, names);
  for (int i = 0; i < names; i++)
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
  return NULL;
}

static void hosts_and_literals(void) {
  setenv("WEFT_DNS_SERVERS", "127.0.0.1:9", 1); /* nothing needs a server here */
  CHECK_EQ(weft_run(NULL, local_main, NULL, NULL), 0);
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
