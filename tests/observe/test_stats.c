/*
 * test_stats.c - weft_stats: the counters agree with the work a program
 * did. Each case does a known amount of one kind of work between two
 * snapshots and checks the difference exactly where the runtime's
 * behaviour makes it exact (spawns, exits, sleeps, offload calls, hosts-file
 * lookups, HTTP transfers), and by bounds where scheduling decides (runs,
 * steals, sleeps of workers).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "weft/http.h"
#include "weft/http_server.h"
#include "weft/io.h"
#include "weft/sched.h"

static weft_stats snap(void) {
  weft_stats s;
  CHECK_EQ(weft_stats_get(NULL, &s), 0);
  CHECK(s.worker != NULL);
  CHECK_EQ(s.nworkers, weft_workers());
  /* The total is the sum of the workers. */
  uint64_t runs = 0, spawned = 0;
  for (unsigned i = 0; i < s.nworkers; i++)
    runs += s.worker[i].runs, spawned += s.worker[i].spawned;
  CHECK_EQ(runs, s.total.runs);
  CHECK_EQ(spawned, s.total.spawned);
  return s;
}

/* ---- spawns, exits, runs ---- */

static void *nothing(void *arg) { return arg; }

#define NSPAWN 5000
static void *spawn_main(void *arg) {
  (void)arg;
  weft_stats a = snap();
  static weft_co *cos[NSPAWN];
  for (int i = 0; i < NSPAWN; i++)
    CHECK_EQ(weft_spawn(&cos[i], nothing, NULL), 0);
  CHECK_EQ(weft_gather(cos, NSPAWN, NULL), 0);
  weft_stats b = snap();
  CHECK_EQ(b.total.spawned - a.total.spawned, NSPAWN);
  CHECK_EQ(b.total.exited - a.total.exited, NSPAWN);
  CHECK(b.total.runs - a.total.runs >= NSPAWN); /* each ran at least once */
  CHECK_EQ(b.foreign_spawned, 1);              /* weft_run's first coroutine */
  CHECK_EQ(b.live, 1);                         /* this one */
  CHECK(b.uptime_ns > a.uptime_ns);
  uint64_t stolen = 0, stolen_from = 0;
  for (unsigned i = 0; i < b.nworkers; i++) {
    stolen += b.worker[i].stolen;
    stolen_from += b.worker[i].stolen_from;
    CHECK(b.worker[i].ring_high_water <= 256);
  }
  CHECK_EQ(stolen, stolen_from); /* every steal has a thief and a victim */
  CHECK(b.total.stolen >= b.total.steals);
  if (b.nworkers == 1)
    CHECK_EQ(b.total.steals, 0);
  weft_stats_free(&a);
  weft_stats_free(&b);
  CHECK(b.worker == NULL);
  weft_stats_free(&b); /* twice: harmless */
  return NULL;
}
static void spawns(void) { CHECK_EQ(weft_run(NULL, spawn_main, NULL, NULL), 0); }

/* ---- yields: two coroutines taking turns on one worker ---- */

#define NYIELD 1000
static void *yielder(void *arg) {
  (void)arg;
  for (int i = 0; i < NYIELD; i++)
    weft_yield();
  return NULL;
}
static void *yield_main(void *arg) {
  (void)arg;
  weft_stats a = snap();
  weft_co *c[2];
  CHECK_EQ(weft_spawn(&c[0], yielder, NULL), 0);
  CHECK_EQ(weft_spawn(&c[1], yielder, NULL), 0);
  CHECK_EQ(weft_gather(c, 2, NULL), 0);
  weft_stats b = snap();
  /* On one worker the other yielder (or this coroutine) is always
   * runnable, so every call switches; on more some find nothing to run. */
  uint64_t d = b.total.yields - a.total.yields;
  if (b.nworkers == 1)
    CHECK(d >= 2 * NYIELD - 2);
  CHECK(d <= 2 * NYIELD);
  weft_stats_free(&a);
  weft_stats_free(&b);
  return NULL;
}
static void yields(void) { CHECK_EQ(weft_run(NULL, yield_main, NULL, NULL), 0); }

/* ---- parks by reason, timers, offload ---- */

#define NSLEEP 200
static void *sleeper(void *arg) {
  (void)arg;
  CHECK_EQ(weft_sleep_ms(5), 0);
  return NULL;
}
static void *work(void *arg) { return (void *)((intptr_t)arg + 1); }

static void *park_main(void *arg) {
  (void)arg;
  weft_stats a = snap();
  static weft_co *cos[NSLEEP];
  for (int i = 0; i < NSLEEP; i++)
    CHECK_EQ(weft_spawn(&cos[i], sleeper, NULL), 0);
  CHECK_EQ(weft_gather(cos, NSLEEP, NULL), 0);
  for (int i = 0; i < 50; i++) {
    void *r;
    CHECK_EQ(weft_offload(work, (void *)(intptr_t)i, &r), 0);
    CHECK_EQ((intptr_t)r, i + 1);
  }
  weft_stats b = snap();
  CHECK_EQ(b.total.parks[WEFT_PARK_TIMER] - a.total.parks[WEFT_PARK_TIMER], NSLEEP);
  CHECK(b.total.parks[WEFT_PARK_JOIN] - a.total.parks[WEFT_PARK_JOIN] <= NSLEEP);
  CHECK(b.total.parks[WEFT_PARK_OFFLOAD] - a.total.parks[WEFT_PARK_OFFLOAD] <= 50);
  CHECK_EQ(b.poller.timers_fired - a.poller.timers_fired, NSLEEP);
  CHECK_EQ(b.poller.timers_armed, 0);
  CHECK(b.poller.wakes > a.poller.wakes);
  CHECK_EQ(b.offload.done - a.offload.done, 50);
  CHECK_EQ(b.offload.depth, 0);
  CHECK(b.offload.threads >= 1);
  CHECK(strcmp(weft_park_reason_name(WEFT_PARK_TIMER), "timer") == 0);
  CHECK(strcmp(weft_park_reason_name(WEFT_PARK_REASONS), "?") == 0);
  /* Time: 200 sleepers of 5 ms leave the workers mostly idle, and busy +
   * idle never exceeds the workers' lives. */
  uint64_t life = b.total.busy_ns + b.total.idle_ns;
  CHECK(life <= b.uptime_ns * b.nworkers + 50000000ull);
  CHECK(b.total.sleeps > 0 && b.total.idle_ns > 0);
  weft_stats_free(&a);
  weft_stats_free(&b);
  return NULL;
}
static void parks(void) { CHECK_EQ(weft_run(NULL, park_main, NULL, NULL), 0); }

/* ---- stacks: mapped and pooled ---- */

#define NSTACK 2000
static void *stack_main(void *arg) {
  (void)arg;
  static weft_co *cos[NSTACK];
  for (int i = 0; i < NSTACK; i++)
    CHECK_EQ(weft_spawn(&cos[i], sleeper, NULL), 0);
  /* While they sleep every one has a stack that is not pooled (read in
   * this order, a pool trimmed between the two reads only adds to it). */
  weft_stats a = snap();
  CHECK(a.stacks.mapped >= NSTACK + 1);
  CHECK(a.stacks.mapped - a.stacks.pooled >= NSTACK + 1);
  CHECK_EQ(weft_gather(cos, NSTACK, NULL), 0);
  /* Waking every 10 ms, the workers never idle long enough for the idle
   * trim; the shared pool's decay (stack.c D1-D3) gives the burst's stacks
   * back within a few seconds all the same: at most the workers' own
   * pools and GPOOL_IDLE stay, and only this coroutine's stack is in use. */
  bool settled = false;
  weft_stats b = {0};
  for (int i = 0; i < 3000 && !settled; i++) {
    CHECK_EQ(weft_sleep_ms(10), 0);
    weft_stats_free(&b);
    b = snap();
    settled = b.stacks.mapped - b.stacks.pooled == 1 &&
              b.stacks.pooled <= 64u * b.nworkers + 64u; /* POOL_MAX, GPOOL_IDLE */
  }
  if (!settled)
    fprintf(stderr, "stacks: mapped %llu, pooled %llu\n", (unsigned long long)b.stacks.mapped,
            (unsigned long long)b.stacks.pooled);
  CHECK(settled);
  CHECK(b.stacks.mapped < a.stacks.mapped);
  weft_stats_free(&a);
  weft_stats_free(&b);
  return NULL;
}
static void stacks(void) { CHECK_EQ(weft_run(NULL, stack_main, NULL, NULL), 0); }

/* ---- channel parks: an unbuffered channel always parks one side ---- */

static void *chan_sender(void *arg) {
  weft_chan *ch = arg;
  for (int i = 0; i < 100; i++)
    CHECK_EQ(weft_chan_send(ch, &i), 0);
  return NULL;
}
static void *chan_main(void *arg) {
  (void)arg;
  weft_chan *ch;
  CHECK_EQ(weft_chan_create(&ch, sizeof(int), 0), 0);
  weft_stats a = snap();
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, chan_sender, ch), 0);
  for (int i = 0; i < 100; i++) {
    int v;
    CHECK_EQ(weft_chan_recv(ch, &v), 0);
    CHECK_EQ(v, i);
  }
  CHECK_EQ(weft_join(c, NULL), 0);
  weft_stats b = snap();
  uint64_t d = b.total.parks[WEFT_PARK_CHANNEL] - a.total.parks[WEFT_PARK_CHANNEL];
  CHECK(d >= 1 && d <= 200);
  CHECK_EQ(weft_chan_destroy(ch), 0);
  weft_stats_free(&a);
  weft_stats_free(&b);
  return NULL;
}
static void channel_parks(void) { CHECK_EQ(weft_run(NULL, chan_main, NULL, NULL), 0); }

/* ---- DNS from the hosts file ---- */

static char hosts_path[64];
static void *dns_main(void *arg) {
  (void)arg;
  struct addrinfo *res;
  CHECK_EQ(weft_resolve("warm.stats.test", NULL, NULL, &res), 0); /* starts the poller */
  weft_freeaddrinfo(res);
  weft_stats a = snap();
  for (int i = 0; i < 100; i++) {
    CHECK_EQ(weft_resolve("one.stats.test", "80", NULL, &res), 0);
    weft_freeaddrinfo(res);
  }
  CHECK_EQ(weft_resolve("127.0.0.1", "80", NULL, &res), 0); /* a literal: not counted */
  weft_freeaddrinfo(res);
  weft_stats b = snap();
  CHECK_EQ(b.dns.lookups - a.dns.lookups, 100);
  CHECK_EQ(b.dns.cache_hits - a.dns.cache_hits, 100);
  CHECK_EQ(b.dns.queries - a.dns.queries, 0);
  CHECK_EQ(b.dns.failures - a.dns.failures, 0);
  CHECK_EQ(b.dns.in_flight, 0);
  CHECK(b.total.parks[WEFT_PARK_DNS] - a.total.parks[WEFT_PARK_DNS] <= 100);
  weft_stats_free(&a);
  weft_stats_free(&b);
  return NULL;
}
static void dns(void) {
  strcpy(hosts_path, "/tmp/weft-stats-hosts-XXXXXX");
  int fd = mkstemp(hosts_path);
  CHECK(fd >= 0);
  const char *text = "127.0.0.7 one.stats.test\n127.0.0.8 warm.stats.test\n";
  CHECK_EQ(write(fd, text, strlen(text)), (long)strlen(text));
  close(fd);
  setenv("WEFT_HOSTS_FILE", hosts_path, 1);
  int rc = weft_run(NULL, dns_main, NULL, NULL);
  unlink(hosts_path);
  CHECK_EQ(rc, 0);
}

/* ---- HTTP: transfers and connections against an in-process server ---- */

static void hello(void *arg, const weft_http_server_request *req,
                  weft_http_server_response *resp) {
  (void)arg;
  (void)req;
  weft_http_server_body(resp, "hello", 5);
}

#define NGET 50
static void *http_main(void *arg) {
  (void)arg;
  weft_http_server *srv;
  weft_http_server_config cfg = {.handler = hello};
  CHECK_EQ(weft_http_server_start(&cfg, &srv), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", weft_http_server_port(srv));
  weft_stats a = snap();
  for (int i = 0; i < NGET; i++) {
    weft_http_response r = {0};
    CHECK_EQ(weft_http_get(url, &r), 0);
    CHECK_EQ(r.status, 200);
    weft_http_response_free(&r);
  }
  weft_stats b = snap();
  CHECK_EQ(b.http.started - a.http.started, NGET);
  CHECK_EQ(b.http.done - a.http.done, NGET);
  CHECK_EQ(b.http.failed - a.http.failed, 0);
  CHECK_EQ(b.http.in_flight, 0);
  CHECK_EQ(b.http.connections, 1); /* one kept-alive connection for them all */
  /* (HTTP parks are not counted here: a caller that finds its transfer
   * already done does not park.) */
  /* A refused connection is a failed transfer, and leaves no connection. */
  weft_http_response r = {0};
  CHECK_EQ(weft_http_get("http://127.0.0.1:1/", &r), WEFT_EHTTP_REFUSED);
  weft_stats c = snap();
  CHECK_EQ(c.http.failed - b.http.failed, 1);
  CHECK_EQ(c.http.in_flight, 0);
  CHECK_EQ(weft_http_server_stop(srv, 1000), 0);
  weft_stats_free(&a);
  weft_stats_free(&b);
  weft_stats_free(&c);
  return NULL;
}
static void http(void) { CHECK_EQ(weft_run(NULL, http_main, NULL, NULL), 0); }

/* ---- bad input, and the embedding API ---- */

static void *inner(void *arg) {
  (void)arg;
  return NULL;
}
static void errors(void) {
  weft_stats s;
  CHECK_EQ(weft_stats_get(NULL, &s), -EINVAL); /* not in a coroutine */
  weft_stats_free(NULL);
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  CHECK_EQ(weft_stats_get(rt, NULL), -EINVAL);
  weft_co *co;
  for (int i = 0; i < 10; i++) {
    CHECK_EQ(weft_runtime_spawn(rt, &co, inner, NULL), 0);
    CHECK_EQ(weft_join(co, NULL), 0);
  }
  CHECK_EQ(weft_stats_get(rt, &s), 0); /* from a foreign thread */
  CHECK_EQ(s.foreign_spawned, 10);
  CHECK_EQ(s.total.exited, 10);
  CHECK_EQ(s.live, 0);
  CHECK_EQ(s.poller.wakes, 0); /* io never started */
  weft_stats_free(&s);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      {"spawns", spawns}, {"yields", yields}, {"parks", parks}, {"stacks", stacks},
      {"channel_parks", channel_parks}, {"dns", dns}, {"http", http},
      {"errors", errors}, {NULL, NULL}};
  return test_main(argc, argv, cases);
}
