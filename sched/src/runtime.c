/*
 * runtime.c - starting and stopping a runtime; weft_run; the embedding API.
 *
 * Start: resolve the configuration (cfg, then WEFT_WORKERS, then the CPUs
 * in the affinity mask), allocate the runtime and its workers, start one
 * thread per worker. Any failure undoes what was done and returns a code.
 *
 * Stop (weft_runtime_stop), in order:
 *   1. set `stopping` and wake every worker; each finishes the coroutine
 *      it is running up to its next scheduling point, then leaves its loop
 *      without taking more work;
 *   2. join the worker threads, then stop the offload pool (each pool
 *      thread finishes the call it is running; queued calls are dropped):
 *      from here no thread runs in the runtime;
 *   3. unpark, with -ECANCELED, every foreign thread blocked in weft_join
 *      on a coroutine that did not finish;
 *   4. unmap every stack on the registry (live coroutines included: their
 *      records live there) and free the runtime.
 * Coroutines alive at stop are never resumed: their remaining code,
 * cleanup included, does not run. That is the defined behaviour.
 *
 * weft_run = start + spawn fn as the first coroutine + join it from the
 * calling thread (which blocks on a futex) + stop. Its runtime is private,
 * so when every worker has slept a while with nothing queued and no
 * offload call running and no timer or fd armed with io's poller, nothing
 * can wake its coroutines again: the
 * deadlock report (weft__deadlock) lists them and weft_run returns
 * WEFT_EDEADLOCK instead of hanging. A program whose own threads wake
 * coroutines of weft_run's runtime sets WEFT_DEADLOCK_CHECK=0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_WORKERS 1024u
#define DEFAULT_STACK (256u * 1024u)
#define MIN_STACK (16u * 1024u)
#define MAX_STACK (1024u * 1024u * 1024u)

static unsigned affinity_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0)
      return (unsigned)n;
  }
  return 1;
}

/* A WEFT_WORKERS value: a count in 1..MAX_WORKERS, in decimal. 0 with
 * *out set, or -EINVAL. */
int weft__parse_workers(const char *s, unsigned *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n')
    end++;
  /* strtoul skips leading blanks, then negates a number after '-': the
   * sign is looked for past the blanks (" -18446744073709551615" read
   * as 1 worker). */
  size_t lead = strspn(s, " \t\n\v\f\r");
  if (errno || *end || end == s || v < 1 || v > MAX_WORKERS || s[lead] == '-')
    return -EINVAL;
  *out = (unsigned)v;
  return 0;
}

/* Parse WEFT_WORKERS. Returns 0 and leaves *out alone when it is unset. */
static int env_workers(unsigned *out) {
  const char *s = getenv("WEFT_WORKERS");
  if (!s || !*s)
    return 0;
  if (weft__parse_workers(s, out)) {
    fprintf(stderr, "weft: WEFT_WORKERS=\"%s\" is not a worker count (1..%u)\n",
            s, MAX_WORKERS);
    return -EINVAL;
  }
  return 0;
}

static int resolve_config(const weft_config *cfg, unsigned *workers,
                          size_t *stack) {
  *workers = cfg && cfg->workers ? cfg->workers : 0;
  if (*workers > MAX_WORKERS) {
    fprintf(stderr, "weft: %u workers asked for; at most %u\n", *workers,
            MAX_WORKERS);
    return -EINVAL;
  }
  if (!*workers) {
    int rc = env_workers(workers);
    if (rc)
      return rc;
  }
  if (!*workers)
    *workers = affinity_cpus();
  size_t ss = cfg && cfg->stack_size ? cfg->stack_size : DEFAULT_STACK;
  if (ss < MIN_STACK || ss > MAX_STACK) {
    fprintf(stderr, "weft: stack_size %zu is outside %u..%u bytes\n", ss,
            MIN_STACK, MAX_STACK);
    return -EINVAL;
  }
  size_t page = weft__page_size();
  *stack = (ss + page - 1) / page * page;
  return 0;
}

static void free_runtime(struct weft_runtime *rt) {
  pthread_mutex_destroy(&rt->idle_lock);
  if (rt->inject_q)
    weft__free(rt->inject_q, rt->inject_cap * sizeof *rt->inject_q);
  weft__free(rt->idle_stack, rt->nworkers * sizeof *rt->idle_stack);
  weft__free(rt->workers, rt->nworkers * sizeof *rt->workers);
  weft__free(rt, sizeof *rt);
}

static void stop_threads(struct weft_runtime *rt, unsigned started) {
  weft__st_sc(&rt->stopping, 1);
  weft__wake_all(rt);
  for (unsigned i = 0; i < started; i++)
    pthread_join(rt->workers[i].thread, NULL);
}

/* private_rt: weft_run's own runtime, which nothing outside can reach, so
 * the deadlock check may run in it. Set before the workers start. */
static int runtime_start(const weft_config *cfg, weft_runtime **out,
                         bool private_rt) {
  if (!out)
    return -EINVAL;
  *out = NULL;
  weft__stack_global_init();
  unsigned nworkers;
  size_t stack;
  int rc = resolve_config(cfg, &nworkers, &stack);
  if (rc)
    return rc;
  struct weft_runtime *rt = weft__calloc(1, sizeof *rt);
  if (!rt)
    return -ENOMEM;
  rt->nworkers = nworkers;
  rt->stack_size = stack;
  if (private_rt) {
    const char *dc = getenv("WEFT_DEADLOCK_CHECK");
    rt->deadlock_check = !(dc && strcmp(dc, "0") == 0);
  }
  rt->next_id = 1;
  pthread_mutex_init(&rt->idle_lock, NULL);
  rt->workers = weft__calloc(nworkers, sizeof *rt->workers);
  rt->idle_stack = weft__calloc(nworkers, sizeof *rt->idle_stack);
  if (!rt->workers || !rt->idle_stack) {
    free_runtime(rt);
    return -ENOMEM;
  }
  if (weft__offload_init(rt, cfg ? cfg->offload_threads : 0)) {
    free_runtime(rt);
    return -ENOMEM;
  }
  for (unsigned i = 0; i < nworkers; i++) {
    weft__worker *w = &rt->workers[i];
    w->rt = rt;
    w->index = i;
    w->rng = 0x9E3779B97F4A7C15ull * (i + 1) | 1;
  }
  /* Workers must not inherit a blocked-signal mask surprise; they inherit
   * the creator's, as any thread does. */
  rt->start_ns = weft__now_ns();
  for (unsigned i = 0; i < nworkers; i++) {
    rc = pthread_create(&rt->workers[i].thread, NULL, weft__worker_main,
                        &rt->workers[i]);
    if (rc == 0) { /* named here too: a look (perf, /proc) before it runs */
      char name[16];
      snprintf(name, sizeof name, "weft-w%u", i % 100000u);
      pthread_setname_np(rt->workers[i].thread, name);
    }
    if (rc) {
      fprintf(stderr, "weft: cannot start worker thread %u of %u: %s\n", i,
              nworkers, strerror(rc));
      stop_threads(rt, i);
      weft__offload_stop(rt);
      weft__stack_release_all(rt);
      free_runtime(rt);
      return -rc;
    }
  }
  *out = rt;
  return 0;
}

int weft_runtime_start(const weft_config *cfg, weft_runtime **out) {
  return runtime_start(cfg, out, false);
}

int weft_runtime_spawn(weft_runtime *rt, weft_co **out, void *(*fn)(void *),
                       void *arg) {
  if (!rt)
    return -EINVAL;
  if (weft__ld_acq(&rt->stopping))
    return -ECANCELED;
  weft_co *co;
  int rc = weft__spawn_in(rt, NULL, &co, fn, arg, out == NULL);
  if (rc)
    return rc;
  if (out)
    *out = co;
  weft__inject_push(rt, &co, 1);
  weft__wake_one(rt);
  return 0;
}

int weft_runtime_stop(weft_runtime *rt) {
  if (!rt)
    return -EINVAL;
  weft__worker *w = weft__current_worker();
  if (w && w->rt == rt)
    return -EDEADLK;
  stop_threads(rt, rt->nworkers); /* steps 1-2 */
  weft__stats_at_stop(rt);        /* WEFT_STATS=1: final counters */
  weft__offload_stop(rt); /* pool threads may still unpark: stacks stay */
  const weft__driver_ops *d = weft__get_driver();
  if (d && rt->driver_ctx) /* the poller, likewise */
    d->runtime_stop(rt);
  weft__spin_lock(&rt->reg_lock); /* step 3 */
  for (weft_co *co = rt->reg_head; co; co = co->reg_next) {
    if (!(co->flags & WEFT__CO_LIVE))
      continue;
    weft_co *j = weft__xchg_ar(&co->joiner, WEFT__JOIN_DONE);
    /* (JOIN_BUSY lives only inside a finishing worker's E2 (co.c), and
     * every worker has stopped; tested anyway: it is no record.) */
    if (j && j != WEFT__JOIN_DONE && j != WEFT__JOIN_BUSY && (j->flags & WEFT__CO_FOREIGN) &&
        weft__wait_claim_gen(j, weft__ld_rlx(&co->joiner_gen)))
      weft__unpark(j, WEFT__WAKE_STOPPED);
  }
  weft__spin_unlock(&rt->reg_lock);
  weft__stack_release_all(rt); /* step 4 */
  free_runtime(rt);
  return 0;
}

static const char *reason_name(uint32_t r) {
  static const char *names[] = {"join", "mutex/cond/sem/waitgroup", "channel",
                                "fd", "timer", "dns", "http", "offload", "test"};
  return r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* Every worker sleeps, nothing is queued and no pool thread is busy:
 * in weft_run's private runtime nothing can wake a coroutine again. Say
 * which coroutines wait on what, the way Go reports "all goroutines are
 * asleep", and release weft_run's caller with WEFT_EDEADLOCK. */
void weft__deadlock(struct weft_runtime *rt) {
  uint32_t zero = 0;
  weft_co *main = weft__ld_acq(&rt->main_co);
  if (!main || weft__ld_acq(&main->joiner) == WEFT__JOIN_DONE ||
      !weft__cas_ar(&rt->deadlocked, &zero, 1))
    return;
  char line[160];
  int n = snprintf(line, sizeof line,
                   "weft: deadlock: all coroutines are asleep and nothing can "
                   "wake them (WEFT_DEADLOCK_CHECK=0 turns this check off)\n");
  fwrite(line, 1, (size_t)n, stderr);
  unsigned shown = 0, asleep = 0;
  weft__spin_lock(&rt->reg_lock);
  for (weft_co *co = rt->reg_head; co; co = co->reg_next) {
    if (!(co->flags & WEFT__CO_LIVE) || weft__ld_acq(&co->joiner) == WEFT__JOIN_DONE)
      continue;
    asleep++;
    if (shown++ < 20)
      fprintf(stderr, "  coroutine %llu: parked on %s\n",
              (unsigned long long)co->id, reason_name(co->park_reason));
  }
  weft__spin_unlock(&rt->reg_lock);
  if (shown > 20)
    fprintf(stderr, "  ... and %u more\n", shown - 20);
  fprintf(stderr, "  (%u coroutines asleep)\n", asleep);
  weft_co *j = weft__ld_acq(&main->joiner);
  if (j && j != WEFT__JOIN_DONE && j != WEFT__JOIN_BUSY && (j->flags & WEFT__CO_FOREIGN) &&
      weft__wait_claim_gen(j, weft__ld_rlx(&main->joiner_gen)))
    weft__unpark(j, WEFT__WAKE_DEADLOCK);
}

int weft_run(const weft_config *cfg, void *(*fn)(void *), void *arg,
             void **result) {
  if (!fn)
    return -EINVAL;
  weft_runtime *rt;
  /* Nobody outside holds this runtime, so "everyone asleep" is final. */
  int rc = runtime_start(cfg, &rt, true);
  if (rc)
    return rc;
  weft_co *main_co;
  rc = weft_runtime_spawn(rt, &main_co, fn, arg);
  if (rc == 0)
    weft__st_rel(&rt->main_co, main_co);
  if (rc == 0)
    rc = weft_join(main_co, result);
  weft_runtime_stop(rt);
  return rc;
}
