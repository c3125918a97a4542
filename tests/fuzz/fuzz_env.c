/*
 * fuzz_env.c - weft's environment variables that take more than a fixed
 * word: WEFT_WORKERS (sched/src/runtime.c, weft__parse_workers) and
 * WEFT_DNS_SERVERS (io/src/dns.c hands it to c-ares's
 * ares_set_servers_ports_csv on a channel set up as channel_open sets
 * it up; weft does not parse it itself, so the target calls the same
 * function the same way). WEFT_HOSTS_FILE's contents have their own
 * target (fuzz_hosts_file.c); WEFT_STATS and WEFT_DEADLOCK_CHECK are
 * compared with "0" and "" in place and need none.
 *
 * The input's first byte picks the variable (bit 0: 0 WEFT_WORKERS,
 * 1 WEFT_DNS_SERVERS); the rest, up to a NUL byte, is its value.
 *
 * What it checks:
 *   E1. WEFT_WORKERS: an accepted value is a count in 1..1024, written in
 *       decimal: optional leading blanks and '+', its digits (their
 *       value is the count), optional trailing blanks; no '-' anywhere.
 *       Every plain decimal count in 1..1024 ("8", "0016") is accepted.
 *   E2. WEFT_DNS_SERVERS: whatever c-ares accepts, written back as a
 *       list ("a.b.c.d:port", "[v6]:port") and set again, gives the same
 *       servers: what weft's channel uses is what the variable says.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"

static ares_channel channel;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  FUZZ_CHECK(ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS);
  struct ares_options o = {.lookups = (char *)"b"};
  FUZZ_CHECK(ares_init_options(&channel, &o, ARES_OPT_LOOKUPS) == ARES_SUCCESS);
  return 0;
}

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* E1. */
static void check_workers(const char *s) {
  unsigned n = 0;
  int rc = weft__parse_workers(s, &n);
  FUZZ_CHECK(rc == 0 || rc == -EINVAL);
  size_t i = 0;
  while (blank(s[i]))
    i++;
  bool plus = s[i] == '+';
  i += plus;
  size_t d0 = i;
  unsigned long long v = 0;
  while (s[i] >= '0' && s[i] <= '9' && v <= 100000)
    v = v * 10 + (unsigned)(s[i++] - '0');
  size_t d1 = i;
  while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')
    i++;
  bool plain = d1 > d0 && s[i] == 0;
  if (rc == 0) {
    if (!plain || strchr(s, '-'))
      fprintf(stderr, "WEFT_WORKERS=\"%s\" accepted as %u\n", s, n);
    FUZZ_CHECK(n >= 1 && n <= 1024);
    FUZZ_CHECK(plain && v == n && !strchr(s, '-'));
  }
  if (plain && v >= 1 && v <= 1024 && d0 == 0 && !plus)
    FUZZ_CHECK(rc == 0 && n == v);
}

/* The channel's servers as a CSV list, into out[cap]. */
static void servers_csv(char *out, size_t cap, size_t *count) {
  struct ares_addr_port_node *list = NULL;
  FUZZ_CHECK(ares_get_servers_ports(channel, &list) == ARES_SUCCESS);
  size_t n = 0;
  *count = 0;
  out[0] = 0;
  for (struct ares_addr_port_node *p = list; p; p = p->next) {
    char ip[INET6_ADDRSTRLEN];
    FUZZ_CHECK(p->family == AF_INET || p->family == AF_INET6);
    FUZZ_CHECK(inet_ntop(p->family, &p->addr, ip, sizeof ip));
    FUZZ_CHECK(p->udp_port >= 0 && p->udp_port <= 65535 && p->udp_port == p->tcp_port);
    int w = snprintf(out + n, cap - n, p->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
                     n ? "," : "", ip, p->udp_port);
    FUZZ_CHECK(w > 0 && (size_t)w < cap - n);
    n += (size_t)w;
    ++*count;
  }
  ares_free_data(list);
}

/* E2. */
static void check_servers(const char *csv) {
  int rc = ares_set_servers_ports_csv(channel, csv);
  if (rc != ARES_SUCCESS)
    return;
  static char first[1 << 16], again[1 << 16];
  size_t n1, n2;
  servers_csv(first, sizeof first, &n1);
  FUZZ_CHECK(ares_set_servers_ports_csv(channel, first) == ARES_SUCCESS);
  servers_csv(again, sizeof again, &n2);
  if (strcmp(first, again) != 0)
    fprintf(stderr, "WEFT_DNS_SERVERS=\"%s\": \"%s\" then \"%s\"\n", csv, first, again);
  FUZZ_CHECK(n1 == n2 && strcmp(first, again) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *nul = memchr(data + 1, 0, size - 1);
  size_t len = nul ? (size_t)(nul - data - 1) : size - 1;
  char *s = malloc(len + 1);
  FUZZ_CHECK(s);
  memcpy(s, data + 1, len);
  s[len] = 0;
  if (data[0] & 1)
    check_servers(s);
  else
    check_workers(s);
  free(s);
  return 0;
}
