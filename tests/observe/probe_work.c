/*
 * probe_work.c - a program that does a known amount of each kind of work,
 * for test_probes.sh to count the USDT probes that fire under perf.
 *
 *   probe_work [SPAWNS [SLEEPS [LOOKUPS [GETS]]]]
 *
 * It prints one line, "expect spawn=.. exit=.. park_timer=.. dns_start=..
 * dns_done=.. http_start=.. http_done=..", the counts the probes must
 * show exactly; the script compares the scheduling-dependent ones (run,
 * steal, worker sleeps, yields) with the WEFT_STATS=1 summary printed at
 * stop. Lookups go to WEFT_DNS_SERVERS (the script points it at a closed
 * loopback port, so each is one query that fails); GETs go to a server in
 * this process.
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft/http.h"
#include "weft/http_server.h"
#include "weft/io.h"
#include "weft/sched.h"

static int nspawn = 1000, nsleep = 100, nlookup = 20, nget = 20;

static void *nothing(void *arg) { return arg; }
/* Parks on a timer (its deadline far away, so it cannot have passed
 * before the park, however slow the machine) until cancelled. */
static void *sleeper(void *arg) {
  (void)arg;
  weft_sleep_ms(600000);
  return NULL;
}
static void *yielder(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++)
    weft_yield();
  return NULL;
}
static void hello(void *arg, const weft_http_server_request *req,
                  weft_http_server_response *resp) {
  (void)arg;
  (void)req;
  weft_http_server_body(resp, "hi", 2);
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "probe_work: %s: %s\n", what, weft_strerror(rc));
  exit(1);
}

static void *main_co(void *arg) {
  (void)arg;
  weft_co **cos = calloc((size_t)(nspawn > nsleep ? nspawn : nsleep), sizeof *cos);
  int rc;
  for (int i = 0; i < nspawn; i++)
    if ((rc = weft_spawn(&cos[i], nothing, NULL)))
      fail("spawn", rc);
  weft_gather(cos, (size_t)nspawn, NULL);
  /* Work first: each sleeper runs at once, up to its park, before
   * weft_spawn returns here; so every one has parked before the cancels. */
  for (int i = 0; i < nsleep; i++)
    if ((rc = weft_spawn(&cos[i], sleeper, NULL)))
      fail("spawn", rc);
  for (int i = 0; i < nsleep; i++)
    weft_cancel(cos[i]);
  weft_gather(cos, (size_t)nsleep, NULL);
  weft_co *y[2];
  weft_spawn(&y[0], yielder, NULL);
  weft_spawn(&y[1], yielder, NULL);
  weft_gather(y, 2, NULL);
  for (int i = 0; i < nlookup; i++) {
    char name[64];
    snprintf(name, sizeof name, "n%d.probe.test", i); /* distinct: no merging */
    struct addrinfo *res = NULL;
    if (weft_resolve(name, NULL, NULL, &res) == 0) /* expected to fail */
      weft_freeaddrinfo(res);
  }
  weft_http_server *srv;
  weft_http_server_config cfg = {.handler = hello};
  if ((rc = weft_http_server_start(&cfg, &srv)))
    fail("server", rc);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", weft_http_server_port(srv));
  for (int i = 0; i < nget; i++) {
    weft_http_response r = {0};
    if ((rc = weft_http_get(url, &r)))
      fail("GET", rc);
    weft_http_response_free(&r);
  }
  weft_http_server_stop(srv, 1000);
  free(cos);
  /* The server's connection coroutines and its acceptor are spawned too:
   * count them from the stats rather than guess. */
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1)
    nspawn = atoi(argv[1]);
  if (argc > 2)
    nsleep = atoi(argv[2]);
  if (argc > 3)
    nlookup = atoi(argv[3]);
  if (argc > 4)
    nget = atoi(argv[4]);
  int rc = weft_run(NULL, main_co, NULL, NULL);
  if (rc)
    fail("weft_run", rc);
  printf("expect park_timer=%d dns_start=%d dns_done=%d http_start=%d http_done=%d\n",
         nsleep, nlookup, nlookup, nget, nget);
  return 0;
}
