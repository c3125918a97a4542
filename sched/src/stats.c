/*
 * stats.c - weft_stats: snapshots of a runtime's counters, and the
 * WEFT_STATS=1 summary at stop.
 *
 * Where the counters live, and who writes them:
 *   - per worker (weft__worker.st): written only by the worker's own thread
 *     with weft__stat_inc/add (a relaxed load and store: no locked
 *     instruction on the hot paths of run, spawn, park and yield); the one
 *     exception, stolen_from, is bumped by thieves with an atomic add and
 *     sits on its own cache line;
 *   - per runtime: foreign spawns and finished offload calls (atomic adds:
 *     rare paths), the live count the scheduler keeps anyway; stacks from
 *     stack.c's own bookkeeping (the registry's count, the pools' lengths);
 *   - io and http: the driver's stats hook (internal.h, weft__driver_ops)
 *     fills the poller, DNS and HTTP parts; their counters are written by
 *     the poller thread only. sched knows nothing of them but the shape of
 *     the public struct.
 * A snapshot reads each counter once, relaxed: it is a consistent view of
 * each number, not of all of them at one instant (a coroutine may be
 * counted as spawned and not yet as run). That is what a once-a-second
 * monitor needs and costs the workers nothing.
 *
 * Busy time is the worker's life minus the time it slept on its futex:
 * searching for work (at most SEARCH_SPIN_NS at a time) counts as busy, as
 * it does in top(1).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "probe.h"

static __thread int thread_role = WEFT__WAKER_FOREIGN;

void weft__set_thread_role(int waker) { thread_role = waker; }
int weft__thread_role(void) { return thread_role; }

const char *weft_park_reason_name(unsigned reason) {
  static const char *names[WEFT_PARK_REASONS] = {
      "join", "sync", "channel", "fd", "timer", "dns", "http", "offload", "other"};
  return reason < WEFT_PARK_REASONS ? names[reason] : "?";
}

static void worker_snapshot(const weft__worker *w, uint64_t now, weft_worker_stats *o) {
  const weft_worker_stats *s = &w->st;
  o->runs = weft__stat_ld(&s->runs);
  o->spawned = weft__stat_ld(&s->spawned);
  o->exited = weft__stat_ld(&s->exited);
  o->yields = weft__stat_ld(&s->yields);
  o->steals = weft__stat_ld(&s->steals);
  o->stolen = weft__stat_ld(&s->stolen);
  o->stolen_from = weft__stat_ld(&w->stolen_from);
  for (unsigned r = 0; r < WEFT_PARK_REASONS; r++)
    o->parks[r] = weft__stat_ld(&s->parks[r]);
  o->sleeps = weft__stat_ld(&s->sleeps);
  o->idle_ns = weft__stat_ld(&s->idle_ns);
  o->ring_high_water = weft__stat_ld(&s->ring_high_water);
  uint64_t start = weft__ld_rlx(&w->start_ns), end = weft__ld_rlx(&w->end_ns);
  uint64_t until = end ? end : now;
  uint64_t life = start && until > start ? until - start : 0;
  o->busy_ns = life > o->idle_ns ? life - o->idle_ns : 0;
}

static void add_into(weft_worker_stats *t, const weft_worker_stats *o) {
  t->runs += o->runs;
  t->spawned += o->spawned;
  t->exited += o->exited;
  t->yields += o->yields;
  t->steals += o->steals;
  t->stolen += o->stolen;
  t->stolen_from += o->stolen_from;
  for (unsigned r = 0; r < WEFT_PARK_REASONS; r++)
    t->parks[r] += o->parks[r];
  t->sleeps += o->sleeps;
  t->idle_ns += o->idle_ns;
  t->busy_ns += o->busy_ns;
  if (o->ring_high_water > t->ring_high_water)
    t->ring_high_water = o->ring_high_water;
}

int weft_stats_get(weft_runtime *rt, weft_stats *out) {
  if (!out)
    return -EINVAL;
  if (!rt) {
    weft__worker *w = weft__current_worker();
    if (!w)
      return -EINVAL;
    rt = w->rt;
  }
  memset(out, 0, sizeof *out);
  out->worker = calloc(rt->nworkers, sizeof *out->worker);
  if (!out->worker)
    return -ENOMEM;
  uint64_t now = weft__now_ns();
  out->uptime_ns = now - rt->start_ns;
  out->nworkers = rt->nworkers;
  for (unsigned i = 0; i < rt->nworkers; i++) {
    worker_snapshot(&rt->workers[i], now, &out->worker[i]);
    add_into(&out->total, &out->worker[i]);
  }
  out->foreign_spawned = weft__stat_ld(&rt->foreign_spawned);
  /* Coroutines run only on workers, so every exit is counted there. */
  uint64_t born = out->total.spawned + out->foreign_spawned;
  out->live = born > out->total.exited ? born - out->total.exited : 0;
  out->offload.threads = weft__offload_threads(rt);
  out->offload.depth = weft__ld_rlx(&rt->offload_busy);
  out->offload.done = weft__stat_ld(&rt->offload_done);
  out->stacks.mapped = weft__stat_ld(&rt->reg_count);
  out->stacks.pooled = weft__ld_rlx(&rt->gpool_len);
  for (unsigned i = 0; i < rt->nworkers; i++)
    out->stacks.pooled += weft__stat_ld(&rt->workers[i].pool_len);
  const weft__driver_ops *d = weft__get_driver();
  if (d && d->stats && weft__ld_acq(&rt->driver_ctx))
    d->stats(rt, out);
  return 0;
}

void weft_stats_free(weft_stats *s) {
  if (!s)
    return;
  free(s->worker);
  s->worker = NULL;
  s->nworkers = 0;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void print_parks(FILE *f, const uint64_t *parks) {
  bool any = false;
  for (unsigned r = 0; r < WEFT_PARK_REASONS; r++) {
    if (!parks[r])
      continue;
    fprintf(f, "%s%s %" PRIu64, any ? ", " : "", weft_park_reason_name(r), parks[r]);
    any = true;
  }
  if (!any)
    fputs("none", f);
}

void weft_stats_print(const weft_stats *s, FILE *f) {
  if (!s || !f)
    return;
  const weft_worker_stats *t = &s->total;
  fprintf(f, "weft stats: %u workers, up %.1f ms, %" PRIu64 " coroutines live\n",
          s->nworkers, ms(s->uptime_ns), s->live);
  fprintf(f, "  total     runs %" PRIu64 ", spawned %" PRIu64 " (+%" PRIu64
             " from other threads), exited %" PRIu64 ", yields %" PRIu64 "\n",
          t->runs, t->spawned, s->foreign_spawned, t->exited, t->yields);
  fprintf(f, "            steals %" PRIu64 " taking %" PRIu64 ", sleeps %" PRIu64
             ", busy %.1f ms, idle %.1f ms\n",
          t->steals, t->stolen, t->sleeps, ms(t->busy_ns), ms(t->idle_ns));
  fputs("            parks: ", f);
  print_parks(f, t->parks);
  fputc('\n', f);
  for (unsigned i = 0; i < s->nworkers && s->worker; i++) {
    const weft_worker_stats *w = &s->worker[i];
    uint64_t life = w->busy_ns + w->idle_ns;
    fprintf(f, "  worker %-2u runs %" PRIu64 ", spawned %" PRIu64 ", stole %" PRIu64
               ", stolen from %" PRIu64 ", sleeps %" PRIu64 ", busy %.0f%%, ring max %u\n",
            i, w->runs, w->spawned, w->stolen, w->stolen_from, w->sleeps,
            life ? 100.0 * (double)w->busy_ns / (double)life : 0.0, w->ring_high_water);
    fputs("            parks: ", f);
    print_parks(f, w->parks);
    fputc('\n', f);
  }
  fprintf(f, "  poller    wakes %" PRIu64 ", events %" PRIu64 ", timers fired %" PRIu64
             ", armed now %" PRIu64 "\n",
          s->poller.wakes, s->poller.events, s->poller.timers_fired, s->poller.timers_armed);
  fprintf(f, "  offload   threads %u, queued or running %" PRIu64 ", done %" PRIu64 "\n",
          s->offload.threads, s->offload.depth, s->offload.done);
  fprintf(f, "  stacks    mapped %" PRIu64 ", pooled %" PRIu64 "\n", s->stacks.mapped,
          s->stacks.pooled);
  fprintf(f, "  dns       lookups %" PRIu64 ", cache hits %" PRIu64 ", queries %" PRIu64
             ", failures %" PRIu64 ", in flight %" PRIu64 "\n",
          s->dns.lookups, s->dns.cache_hits, s->dns.queries, s->dns.failures, s->dns.in_flight);
  fprintf(f, "  http      started %" PRIu64 ", done %" PRIu64 ", failed %" PRIu64
             ", in flight %" PRIu64 ", connections %" PRIu64 "\n",
          s->http.started, s->http.done, s->http.failed, s->http.in_flight,
          s->http.connections);
}

void weft__stats_at_stop(struct weft_runtime *rt) {
  const char *e = getenv("WEFT_STATS");
  if (!e || !*e || !strcmp(e, "0"))
    return;
  weft_stats s;
  if (weft_stats_get(rt, &s)) {
    fputs("weft: WEFT_STATS: no memory for the summary\n", stderr);
    return;
  }
  weft_stats_print(&s, stderr);
  weft_stats_free(&s);
}
