/*
 * run.c - the first coroutine: set the run up, watch it, end it.
 *
 *   R1. no URL: start the embedded server (embedded.c) and aim at it;
 *   R2. resolve every origin and connect once to each (target.c): a dead
 *       port or an unknown name ends the run here, with one clear line
 *       and exit status 1;
 *   R0. first, a watcher for SIGINT/SIGTERM (a signalfd read like any
 *       socket: the signals are blocked in every thread by main.c before
 *       the runtime starts): a signal before R4 ends the process, one
 *       after it stops the run and the report still comes;
 *   R3. the engine's init (the curl client), then one coroutine per
 *       connection (conn.c);
 *   R4. when every connection has connected (run.ready), fix start_ns,
 *       end_ns and the open loop's pace, then close the gate;
 *   R5. wait on run.done in slices of at most 100 ms, printing progress
 *       once a second, until every connection is done (-n, or the open
 *       loop's last request), the duration is over (closed loop), the
 *       open loop's drain limit is over (the duration plus the request
 *       timeout), or a signal came;
 *   R6. set run.stop, cancel the connections still going (conn.c C3),
 *       join them all, stop the watcher, the engine and the server.
 * The report is main.c's, once weft_run has returned.
 */
#include "stress.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define TICK_NS NS_PER_S
#define SLICE_NS (100 * NS_PER_MS)
#define DRAIN_DEFAULT_NS (10 * NS_PER_S)

typedef struct watcher {
  run *r;
  int fd;
} watcher;

/* A first signal stops the run (and the report still comes); a second
 * one, or one before the run has started (resolving, connecting), ends
 * the process at once. */
static void *signal_watcher(void *arg) {
  watcher *w = arg;
  struct signalfd_siginfo si;
  while (weft_read(w->fd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (LOAD(&w->r->interrupted) || !__atomic_load_n(&w->r->started, __ATOMIC_ACQUIRE))
      _exit(130);
    STORE(&w->r->interrupted, 1);
    STORE(&w->r->stop, 1);
  }
  return NULL;
}

static int start_watcher(watcher *w, weft_co **co) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  w->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (w->fd < 0)
    return -errno;
  int rc = weft_spawn(co, signal_watcher, w);
  if (rc) {
    close(w->fd);
    w->fd = -1;
  }
  return rc;
}

static void stop_watcher(watcher *w, weft_co *co) {
  if (!co)
    return;
  weft_cancel(co);
  weft_join(co, NULL);
  weft_close(w->fd);
}

/* R4: the schedule. */
static void open_gate(run *r) {
  const options *o = r->opt;
  r->start_ns = weft_now_ns();
  if (o->rate > 0)
    r->ns_per_req = 1e9 / o->rate;
  if (o->duration_ns)
    r->end_ns = r->start_ns + o->duration_ns;
  __atomic_store_n(&r->started, 1, __ATOMIC_RELEASE);
  weft_chan_close(r->gate);
}

/* R5: until the end; true when every connection finished by itself. */
static bool watch(run *r, progress *pg) {
  const options *o = r->opt;
  bool open = o->rate > 0;
  uint64_t drain = o->timeout_ns ? o->timeout_ns + NS_PER_S : DRAIN_DEFAULT_NS;
  uint64_t hard_end = r->end_ns ? (open ? r->end_ns + drain : r->end_ns) : 0;
  uint64_t next_tick = r->start_ns + TICK_NS;
  for (;;) {
    uint64_t now = weft_now_ns();
    uint64_t wake = now + SLICE_NS;
    if (wake > next_tick)
      wake = next_tick;
    if (hard_end && wake > hard_end)
      wake = hard_end;
    int rc = weft_waitgroup_wait_until(&r->done, wake);
    now = weft_now_ns();
    r->stop_ns = now;
    if (rc == 0)
      return true;
    if (now >= next_tick) {
      if (!o->quiet)
        progress_tick(pg, r, now);
      while (next_tick <= now)
        next_tick += TICK_NS;
    }
    if (LOAD(&r->stop) || (hard_end && now >= hard_end))
      return false;
  }
}

static int spawn_conns(run *r, conn_arg *args, weft_co **cos, unsigned *started) {
  const options *o = r->opt;
  weft_waitgroup_add(&r->ready, o->conns);
  weft_waitgroup_add(&r->done, o->conns);
  for (unsigned j = 0; j < o->conns; j++) {
    args[j] = (conn_arg){.r = r, .id = j, .ec = r->eng->conn_new(r, j)};
    int rc = args[j].ec ? weft_spawn(&cos[j], conn_main, &args[j]) : -ENOMEM;
    if (rc) {
      if (args[j].ec)
        r->eng->conn_free(args[j].ec);
      char name[128];
      fprintf(stderr, STRESS_NAME ": starting connection %u of %u: %s\n", j + 1, o->conns,
              err_name(rc, name, sizeof name));
      /* The ones not started will not say ready or done. */
      weft_waitgroup_add(&r->ready, -(int64_t)(o->conns - j));
      weft_waitgroup_add(&r->done, -(int64_t)(o->conns - j));
      *started = j;
      return rc;
    }
  }
  *started = o->conns;
  return 0;
}

static int setup(run *r) {
  options *o = r->opt;
  char err[256];
  if (r->embedded) { /* R1 */
    int rc = embedded_start(r->embedded_url, sizeof r->embedded_url, err, sizeof err);
    if (rc) {
      fprintf(stderr, STRESS_NAME ": %s\n", err);
      return rc;
    }
    r->embedded_up = true;
    r->embedded_urls[0] = r->embedded_url;
    o->urls = r->embedded_urls;
    o->nurls = 1;
    if ((rc = targets_parse(r, err, sizeof err))) {
      fprintf(stderr, STRESS_NAME ": %s\n", err);
      return rc;
    }
  }
  int rc = targets_check(r); /* R2: it says what failed */
  if (rc)
    return rc;
  return r->eng->init(r); /* it says what failed */
}

void *run_main(void *arg) {
  run *r = arg;
  const options *o = r->opt;
  void *result = (void *)1;
  bool engine_up = false;
  watcher w = {.r = r, .fd = -1};
  weft_co *wco = NULL;
  progress *pg = calloc(1, sizeof *pg);
  conn_arg *args = calloc(o->conns, sizeof *args);
  weft_co **cos = calloc(o->conns, sizeof *cos);
  unsigned started = 0;
  if (!pg || !args || !cos) {
    fprintf(stderr, STRESS_NAME ": out of memory\n");
    goto out;
  }
  r->workers = weft_workers();
  char name[128];
  int rc = start_watcher(&w, &wco); /* R0 */
  if (rc) {
    fprintf(stderr, STRESS_NAME ": watching signals: %s\n", err_name(rc, name, sizeof name));
    goto out;
  }
  if ((rc = setup(r))) /* R1, R2, R3: it says why */
    goto out;
  engine_up = true;
  if ((rc = weft_chan_create(&r->gate, 1, 0))) {
    fprintf(stderr, STRESS_NAME ": %s\n", err_name(rc, name, sizeof name));
    goto out;
  }
  rc = spawn_conns(r, args, cos, &started); /* R3 */
  weft_waitgroup_wait(&r->ready);              /* R4 */
  open_gate(r);
  if (rc) {
    STORE(&r->stop, 1);
  } else {
    progress_start(pg, r);
    bool finished = watch(r, pg); /* R5 */
    STORE(&r->stop, 1);           /* R6 */
    if (!finished)
      for (unsigned j = 0; j < started; j++)
        weft_cancel(cos[j]);
  }
  for (unsigned j = 0; j < started; j++)
    weft_join(cos[j], NULL);
  if (!r->stop_ns)
    r->stop_ns = weft_now_ns();
  if (!o->quiet)
    progress_end(pg);
  result = rc ? (void *)1 : NULL;
out:
  stop_watcher(&w, wco);
  if (r->gate)
    weft_chan_destroy(r->gate);
  r->gate = NULL;
  if (engine_up)
    r->eng->fini(r);
  if (r->embedded_up)
    r->embedded_requests = embedded_stop();
  r->embedded_up = false;
  if (o->show_stats) /* after the load and the server: the whole run */
    r->have_rt_stats = weft_stats_get(NULL, &r->rt_stats) == 0;
  free(pg);
  free(args);
  free(cos);
  return result;
}
