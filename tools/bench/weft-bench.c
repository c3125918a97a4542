/*
 * weft-bench - weft's benchmarks, one program.
 *
 *   weft-bench list
 *   weft-bench NAME [-w WORKERS] [-n N] [-s STACK_BYTES]
 *
 * Each run prints one JSON line on stdout, the main figure in a field named
 * for its unit:
 *   {"bench":"skynet","impl":"weft","workers":2,"n":1000000,"ms":55.1,"sum":499999500000}
 * -w defaults to the CPUs in the affinity mask; -n overrides the size with
 * the same meaning as in the Go peer (tools/bench/peers/go/main.go), so that
 * tools/bench/compare can run both side by side:
 *
 *   ctxswitch      two contexts switching back and forth with the raw
 *                  machine switch (no scheduler); ns_per_op = wall / n.
 *                  n = 10,000,000; "workers" is 1.
 *   yield          200 coroutines, each yielding n/200 times;
 *                  ns_per_op = wall / total yields. n = 2,000,000.
 *   spawn          one coroutine spawns n detached coroutines that each
 *                  bump a counter; timed until all have run.
 *                  ns_per_op = wall / n. n = 1,000,000.
 *   chained_spawn  chains 1,000 deep (each coroutine spawns the next and
 *                  exits, the last bumps a counter), n/1000 chains one after
 *                  the other. ns_per_op = wall / n. n = 100,000.
 *   spawn_remote   a foreign thread spawns n detached coroutines with
 *                  weft_runtime_spawn, timed until all have run.
 *                  ns_per_op = wall / n. n = 10,000.
 *   skynet         a 10-ary tree of coroutines with n leaves (1,111,111
 *                  coroutines for n = 1,000,000), each node joining its ten
 *                  children and summing their results. "ms", "sum" (exits 1
 *                  unless n(n-1)/2).
 *   fib            fork-join fib(n): spawn fib(n-1), compute fib(n-2) inline,
 *                  join; n < 2 returns n. Timed at 1 worker and at W:
 *                  "ms_1", "ms_n", "speedup" = ms_1 / ms_n. n = 32.
 *   pingpong       two coroutines round-tripping a value over two
 *                  rendezvous channels; ns_per_op = wall / round trips.
 *                  n = 1,000,000.
 *   mutex_contended 8 coroutines doing n/8 lock/increment/unlock each on
 *                  one weft_mutex; ns_per_op = wall / n. n = 4,000,000.
 *   chan_throughput one producer, one consumer, capacity 1024; n messages,
 *                  summed and checked; "req_per_s" (= "msgs_per_s") =
 *                  messages per second. n = 10,000,000.
 *   offload        8 coroutines doing n/8 weft_offload round trips each
 *                  through a pool of 4 threads; "req_per_s" = round trips
 *                  per second. n = 200,000.
 *   sleep_gather   n coroutines, released together at t0, each sleeping
 *                  1 s; "ms" = t0 to the last wake-up; the lateness of
 *                  each wake-up against its own deadline (the time it
 *                  called weft_sleep_ms + 1 s): "late_p50_us",
 *                  "late_p99_us", "late_max_us"; and "release_ms", when
 *                  the last one started sleeping (so ms ~ release_ms +
 *                  1000 + the lateness of the last). n = 100,000; no
 *                  warm-up.
 *   parked         n coroutines parked at once; resident memory from
 *                  /proc/self/statm before and after: "bytes_per_coroutine"
 *                  = delta RSS / n, plus "pte_bytes_per_coroutine" (page
 *                  tables, which RSS does not count). n = 1,000,000.
 *   echo           weft's echo server (one coroutine per connection,
 *                  weft_read then weft_write of what came, as
 *                  examples/echo_server.c; TCP_NODELAY as Go sets it) on
 *                  127.0.0.1:0 in a runtime of W workers, driven by
 *                  weft-echo-load (tools/bench/echo_load.c: one epoll
 *                  thread, n connections, one 64-byte message in flight
 *                  on each, every echoed byte checked, 0.5 s warm-up then
 *                  3 s measured). "req_per_s" = round trips per second as
 *                  the client measured them, "round_trips", "secs". The
 *                  client is found next to this binary or at
 *                  $WEFT_ECHO_LOAD; $WEFT_ECHO_SECS and
 *                  $WEFT_ECHO_LOAD_THREADS change its -d and -t. The peers
 *                  (peers/c: a raw single-thread epoll server; peers/go: a
 *                  goroutine per connection) run the same client. n = 64.
 *   dns            n lookups, each of a name never asked before
 *                  (n<i>.bench.test, so the TTL cache and the merging of
 *                  identical questions in flight do not help), service
 *                  "80", hints AF_UNSPEC + SOCK_STREAM, by 512 coroutines
 *                  ($WEFT_BENCH_DNS_COROUTINES to change) taking indices
 *                  from one counter (weft keeps at most 128 queries on
 *                  the wire, an AF_UNSPEC lookup being two, and queues
 *                  the rest: beyond that dnsmasq's UDP buffer overflows
 *                  and each lost query costs c-ares's retry timeout),
 *                  against
 *                  dnsmasq on loopback answering *.bench.test with
 *                  127.0.0.9 (tools/bench/bench_proc.h: the server in
 *                  $WEFT_BENCH_DNS, which compare sets so every side asks
 *                  the same one, else one started here); WEFT_DNS_SERVERS
 *                  points weft at it. Every answer must be 127.0.0.9:80
 *                  and nothing else. "req_per_s" = lookups per second.
 *                  The peer is glibc getaddrinfo on 64 threads
 *                  (peers/c). n = 100,000, after n/10 with other names.
 *   fetch          n GETs (default 20,000) of a 100-byte file from nginx on
 *                  loopback (tools/bench/bench_proc.h: the server in
 *                  $WEFT_BENCH_HTTP, which compare sets so that every side
 *                  fetches from the same one, else one started here: one
 *                  worker process, HTTP/1.1 keep-alive) by 100 coroutines
 *                  ($WEFT_BENCH_FETCH_COROUTINES to change) taking indices
 *                  from one counter, all through one weft_http_client of
 *                  the default config (weft_http_do). Every response is
 *                  checked: status 200, exactly the 100 bytes of the file.
 *                  The same client first does n/10 GETs the same way as a
 *                  warm-up (so its connections are open and the measured
 *                  part is keep-alive traffic, as on every side).
 *                  "req_per_s" = GETs per second. The peers: peers/c, a
 *                  raw single-thread libcurl multi-socket loop on epoll
 *                  with 100 easy handles in flight (the limit for libcurl);
 *                  peers/go, net/http with 100 goroutines; peers/python,
 *                  asyncio + aiohttp with 100 tasks.
 *   fetch_latency  one coroutine doing n sequential GETs (default 2,000,
 *                  after n/10 as a warm-up) of the same file through one
 *                  default weft_http_client, each timed from the call to
 *                  its return and checked as in fetch: "p50_us" (the main
 *                  figure, lower is better), "p99_us", "mean_us",
 *                  "max_us" (percentiles nearest-rank, as sleep_gather's).
 *                  Against the raw curl loop doing the same with one easy
 *                  handle, it shows what weft adds to one fetch at low
 *                  load: the hops from the coroutine to the poller thread
 *                  and back, and weft_http_do's own work.
 *   stress_rps     weft-stress (next to weft-bench, or $WEFT_STRESS)
 *                  against the fetch benchmarks' nginx (the same 100-byte
 *                  file), 64 connections, closed loop, -w workers, for
 *                  $WEFT_BENCH_SECS (default 5) seconds: its
 *                  "requests_per_sec" as "req_per_s". The peer (peers/c)
 *                  is wrk with as many threads against the same nginx.
 *   server_rps     weft's HTTP/1.1 server (weft/http_server.h) on one
 *                  worker (nginx's side has one worker process; -w is
 *                  ignored) answering every request with the same 100
 *                  bytes, under wrk (one thread, 64 connections,
 *                  $WEFT_BENCH_SECS seconds): "req_per_s". The peers:
 *                  peers/c, nginx (one worker process) serving the file;
 *                  both under the same wrk command.
 *
 * Timed benchmarks run once smaller to warm up first. Times are
 * CLOCK_MONOTONIC wall time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"      /* ctxswitch drives the raw switch */
#include "internal.h" /* parked uses the park protocol directly */
#include "weft/io.h"
#include "weft/sched.h"

#ifdef WEFT_BENCH_WITH_HTTP
#include "weft/http.h"
#include "weft/http_server.h"
#endif

#include "bench_proc.h" /* echo's load client, dns's dnsmasq, fetch's nginx */

static unsigned opt_workers;
static long opt_n = -1;
static size_t opt_stack;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static weft_config config(unsigned workers) {
  weft_config c = {.workers = workers, .stack_size = opt_stack};
  return c;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "weft-bench: %s: %s\n", what, weft_strerror(rc));
  exit(1);
}

static void run(unsigned workers, void *(*fn)(void *), void *arg) {
  weft_config c = config(workers);
  int rc = weft_run(&c, fn, arg, NULL);
  if (rc)
    die("weft_run", rc);
}

/* Run fn twice at w workers: once at a tenth of the size (*size = n/10)
 * to warm up, then measured at *size = n. */
static void warm_then_run(unsigned w, void *(*fn)(void *), void *arg, long *size,
                          long n) {
  *size = n / 10 ? n / 10 : 1;
  run(w, fn, arg);
  *size = n;
  run(w, fn, arg);
}

static void print_ns(const char *bench, unsigned workers, long n, double ms) {
  printf("{\"bench\":\"%s\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"ns_per_op\":%.2f}\n",
         bench, workers, n, ms * 1e6 / (double)n);
}

/* ---- ctxswitch ------------------------------------------------------------- */

static void *ctx_main_sp, *ctx_co_sp;
static long ctx_rounds;

static void ctx_co(void *arg) {
  (void)arg;
  for (;;)
    weft__ctx_switch(&ctx_co_sp, ctx_main_sp);
}

static void bench_ctxswitch(unsigned w, long n) {
  (void)w;
  size_t size = 64 * 1024;
  char *stack = malloc(size);
  ctx_co_sp = weft__ctx_make(stack + size, ctx_co, NULL);
  ctx_rounds = n / 2;
  for (long i = 0; i < 10000; i++) /* warm-up */
    weft__ctx_switch(&ctx_main_sp, ctx_co_sp);
  double t0 = now_ms();
  for (long i = 0; i < ctx_rounds; i++)
    weft__ctx_switch(&ctx_main_sp, ctx_co_sp); /* two one-way switches */
  double ms = now_ms() - t0;
  free(stack);
  print_ns("ctxswitch", 1, ctx_rounds * 2, ms);
}

/* ---- yield ----------------------------------------------------------------- */

static long yield_each;

static void *yielder(void *arg) {
  (void)arg;
  for (long i = 0; i < yield_each; i++)
    weft_yield();
  return NULL;
}

static void *yield_main(void *arg) {
  double *ms = arg;
  enum { N = 200 };
  weft_co *c[N];
  double t0 = now_ms();
  for (int i = 0; i < N; i++)
    if (weft_spawn(&c[i], yielder, NULL))
      die("spawn", -1);
  for (int i = 0; i < N; i++)
    weft_join(c[i], NULL);
  *ms = now_ms() - t0;
  return NULL;
}

static void bench_yield(unsigned w, long n) {
  double ms;
  yield_each = n / 2000;
  run(w, yield_main, &ms);
  yield_each = n / 200;
  run(w, yield_main, &ms);
  print_ns("yield", w, yield_each * 200, ms);
}

/* ---- spawn ----------------------------------------------------------------- */

static uint64_t counter;
static long spawn_n;

static void *bump(void *arg) {
  (void)arg;
  __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void wait_counter(uint64_t target) {
  while (__atomic_load_n(&counter, __ATOMIC_ACQUIRE) < target)
    weft_yield();
}

static void *spawn_main(void *arg) {
  double *ms = arg;
  __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
  double t0 = now_ms();
  for (long i = 0; i < spawn_n; i++) {
    int rc = weft_spawn(NULL, bump, NULL);
    if (rc)
      die("spawn", rc);
  }
  wait_counter((uint64_t)spawn_n);
  *ms = now_ms() - t0;
  return NULL;
}

static void bench_spawn(unsigned w, long n) {
  double ms;
  warm_then_run(w, spawn_main, &ms, &spawn_n, n);
  print_ns("spawn", w, n, ms);
}

/* ---- chained_spawn --------------------------------------------------------- */

static void *chain(void *arg) {
  uintptr_t left = (uintptr_t)arg;
  if (left == 0) {
    __atomic_fetch_add(&counter, 1, __ATOMIC_RELEASE);
    return NULL;
  }
  int rc = weft_spawn(NULL, chain, (void *)(left - 1));
  if (rc)
    die("spawn", rc);
  return NULL;
}

static void *chained_main(void *arg) {
  double *ms = arg;
  long chains = spawn_n / 1000;
  __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
  double t0 = now_ms();
  for (long i = 0; i < chains; i++) {
    int rc = weft_spawn(NULL, chain, (void *)(uintptr_t)999);
    if (rc)
      die("spawn", rc);
    wait_counter((uint64_t)i + 1);
  }
  *ms = now_ms() - t0;
  return NULL;
}

static void bench_chained_spawn(unsigned w, long n) {
  double ms;
  spawn_n = n / 10 < 1000 ? 1000 : n / 10;
  run(w, chained_main, &ms);
  spawn_n = n;
  run(w, chained_main, &ms);
  print_ns("chained_spawn", w, n / 1000 * 1000, ms);
}

/* ---- spawn_remote ---------------------------------------------------------- */

static double remote_once(unsigned w, long n) {
  weft_config c = config(w);
  weft_runtime *rt;
  int rc = weft_runtime_start(&c, &rt);
  if (rc)
    die("weft_runtime_start", rc);
  __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
  double t0 = now_ms();
  for (long i = 0; i < n; i++) {
    rc = weft_runtime_spawn(rt, NULL, bump, NULL);
    if (rc)
      die("weft_runtime_spawn", rc);
  }
  while (__atomic_load_n(&counter, __ATOMIC_ACQUIRE) < (uint64_t)n)
    sched_yield();
  double ms = now_ms() - t0;
  weft_runtime_stop(rt);
  return ms;
}

static void bench_spawn_remote(unsigned w, long n) {
  remote_once(w, n / 10 ? n / 10 : 1);
  print_ns("spawn_remote", w, n, remote_once(w, n));
}

/* ---- skynet ---------------------------------------------------------------- */

static void *skynet(void *arg) {
  /* arg packs (num, size): size is a power of ten, num < 2^40. */
  uint64_t v = (uintptr_t)arg;
  uint64_t num = v >> 24, size = v & 0xFFFFFF;
  if (size == 1)
    return (void *)(uintptr_t)num;
  weft_co *c[10];
  uint64_t sub = size / 10;
  for (uint64_t i = 0; i < 10; i++) {
    uint64_t child = ((num + i * sub) << 24) | sub;
    int rc = weft_spawn(&c[i], skynet, (void *)(uintptr_t)child);
    if (rc)
      die("spawn", rc);
  }
  uint64_t sum = 0;
  for (int i = 0; i < 10; i++) {
    void *r;
    weft_join(c[i], &r);
    sum += (uintptr_t)r;
  }
  return (void *)(uintptr_t)sum;
}

static double skynet_once(unsigned w, long n, uint64_t *sum) {
  weft_config c = config(w);
  void *r;
  double t0 = now_ms();
  int rc = weft_run(&c, skynet, (void *)(uintptr_t)(uint64_t)n, &r);
  double ms = now_ms() - t0;
  if (rc)
    die("weft_run", rc);
  *sum = (uintptr_t)r;
  return ms;
}

static void bench_skynet(unsigned w, long n) {
  long p = 1;
  while (p < n)
    p *= 10;
  if (p != n || n > 0xFFFFFF) {
    fprintf(stderr, "weft-bench: skynet -n must be a power of 10 below 2^24\n");
    exit(2);
  }
  uint64_t sum;
  skynet_once(w, n / 10 ? n / 10 : 1, &sum);
  double ms = skynet_once(w, n, &sum);
  uint64_t want = (uint64_t)n * (uint64_t)(n - 1) / 2;
  printf("{\"bench\":\"skynet\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"ms\":%.2f,\"sum\":%llu}\n",
         w, n, ms, (unsigned long long)sum);
  if (sum != want) {
    fprintf(stderr, "weft-bench: skynet sum %llu, expected %llu\n",
            (unsigned long long)sum, (unsigned long long)want);
    exit(1);
  }
}

/* ---- fib ------------------------------------------------------------------- */

static void *fib(void *arg) {
  uintptr_t n = (uintptr_t)arg;
  if (n < 2)
    return (void *)n;
  weft_co *c;
  int rc = weft_spawn(&c, fib, (void *)(n - 1));
  if (rc)
    die("spawn", rc);
  uintptr_t b = (uintptr_t)fib((void *)(n - 2));
  void *a;
  weft_join(c, &a);
  return (void *)((uintptr_t)a + b);
}

static double fib_once(unsigned w, long n, uintptr_t *result) {
  weft_config c = config(w);
  void *r;
  double t0 = now_ms();
  int rc = weft_run(&c, fib, (void *)(uintptr_t)n, &r);
  double ms = now_ms() - t0;
  if (rc)
    die("weft_run", rc);
  *result = (uintptr_t)r;
  return ms;
}

static void bench_fib(unsigned w, long n) {
  uintptr_t r;
  fib_once(w, n > 4 ? n - 4 : n, &r);
  double ms1 = fib_once(1, n, &r);
  double msn = fib_once(w, n, &r);
  uintptr_t a = 0, b = 1;
  for (long i = 0; i < n; i++) {
    uintptr_t t = a + b;
    a = b;
    b = t;
  }
  printf("{\"bench\":\"fib\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"ms_1\":%.2f,\"ms_n\":%.2f,\"speedup\":%.3f,\"result\":%lu}\n",
         w, n, ms1, msn, ms1 / msn, (unsigned long)r);
  if (r != a) {
    fprintf(stderr, "weft-bench: fib(%ld) = %lu, expected %lu\n", n,
            (unsigned long)r, (unsigned long)a);
    exit(1);
  }
}

/* ---- parked ---------------------------------------------------------------- */

static weft_co **parked_cos;
static uint64_t parked_count;

static void *parker(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  parked_cos[i] = weft_self();
  __atomic_fetch_add(&parked_count, 1, __ATOMIC_RELEASE);
  weft__park(WEFT__PARK_TEST, NULL, NULL);
  __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
  return NULL;
}

static long read_statm_rss(void) {
  long size, rss;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &size, &rss) != 2)
    exit(1);
  fclose(f);
  return rss * sysconf(_SC_PAGESIZE);
}

static long read_pte_bytes(void) {
  char line[256];
  long kb = 0;
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmPTE: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb * 1024;
}

struct parked_result {
  long n;
  long rss0, rss1, pte0, pte1;
};

static void *parked_main(void *arg) {
  struct parked_result *pr = arg;
  long n = pr->n;
  parked_cos = calloc((size_t)n, sizeof *parked_cos);
  __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
  pr->rss0 = read_statm_rss();
  pr->pte0 = read_pte_bytes();
  for (long i = 0; i < n; i++) {
    int rc = weft_spawn(NULL, parker, (void *)(uintptr_t)i);
    if (rc)
      die("spawn", rc);
  }
  while (__atomic_load_n(&parked_count, __ATOMIC_ACQUIRE) < (uint64_t)n)
    weft_yield();
  pr->rss1 = read_statm_rss();
  pr->pte1 = read_pte_bytes();
  for (long i = 0; i < n; i++)
    weft__unpark(parked_cos[i], 0);
  wait_counter((uint64_t)n);
  free(parked_cos);
  return NULL;
}

static void bench_parked(unsigned w, long n) {
  struct parked_result pr = {.n = n};
  run(w, parked_main, &pr);
  printf("{\"bench\":\"parked\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"bytes_per_coroutine\":%.1f,\"pte_bytes_per_coroutine\":%.1f,"
         "\"rss_before\":%ld,\"rss_after\":%ld}\n",
         w, n, (double)(pr.rss1 - pr.rss0) / n, (double)(pr.pte1 - pr.pte0) / n,
         pr.rss0, pr.rss1);
}

/* ---- pingpong ------------------------------------------------------------- */

static weft_chan *pp_ab, *pp_ba;
static long pp_n;

static void *pp_b(void *arg) {
  (void)arg;
  uint64_t v;
  while (weft_chan_recv(pp_ab, &v) == 0) {
    v++;
    weft_chan_send(pp_ba, &v);
  }
  return NULL;
}

static void *pp_main(void *arg) {
  double *ms = arg;
  if (weft_chan_create(&pp_ab, sizeof(uint64_t), 0) ||
      weft_chan_create(&pp_ba, sizeof(uint64_t), 0))
    die("weft_chan_create", -ENOMEM);
  weft_co *b;
  weft_spawn(&b, pp_b, NULL);
  uint64_t v = 0;
  double t0 = now_ms();
  for (long i = 0; i < pp_n; i++) {
    weft_chan_send(pp_ab, &v);
    weft_chan_recv(pp_ba, &v);
  }
  *ms = now_ms() - t0;
  weft_chan_close(pp_ab);
  weft_join(b, NULL);
  weft_chan_destroy(pp_ab);
  weft_chan_destroy(pp_ba);
  if (v != (uint64_t)pp_n) {
    fprintf(stderr, "weft-bench: pingpong ended at %llu, expected %ld\n",
            (unsigned long long)v, pp_n);
    exit(1);
  }
  return NULL;
}

static void bench_pingpong(unsigned w, long n) {
  double ms;
  warm_then_run(w, pp_main, &ms, &pp_n, n);
  print_ns("pingpong", w, n, ms);
}

/* ---- mutex_contended ------------------------------------------------------- */

static weft_mutex bench_mu = WEFT_MUTEX_INIT;
static uint64_t mu_counter;
static long mu_each[8];

static void *mu_worker(void *arg) {
  long n = *(long *)arg;
  for (long i = 0; i < n; i++) {
    weft_mutex_lock(&bench_mu);
    mu_counter++;
    weft_mutex_unlock(&bench_mu);
  }
  return NULL;
}

static void *mu_main(void *arg) {
  long n = *(long *)((void **)arg)[0];
  double *ms = ((void **)arg)[1];
  mu_counter = 0;
  weft_co *c[8];
  for (int i = 0; i < 8; i++)
    mu_each[i] = n / 8 + (i < n % 8);
  double t0 = now_ms();
  for (int i = 0; i < 8; i++)
    weft_spawn(&c[i], mu_worker, &mu_each[i]);
  weft_gather(c, 8, NULL);
  *ms = now_ms() - t0;
  if (mu_counter != (uint64_t)n) {
    fprintf(stderr, "weft-bench: mutex counter %llu, expected %ld\n",
            (unsigned long long)mu_counter, n);
    exit(1);
  }
  return NULL;
}

static void bench_mutex_contended(unsigned w, long n) {
  double ms;
  long warm = n / 10 ? n / 10 : 1;
  void *args[2] = {&warm, &ms};
  run(w, mu_main, args);
  args[0] = &n;
  run(w, mu_main, args);
  print_ns("mutex_contended", w, n, ms);
}

/* ---- chan_throughput ------------------------------------------------------- */

static weft_chan *tp_ch;
static long tp_n;

static void *tp_producer(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < (uint64_t)tp_n; i++)
    weft_chan_send(tp_ch, &i);
  weft_chan_close(tp_ch);
  return NULL;
}

static void *tp_main(void *arg) {
  double *ms = arg;
  if (weft_chan_create(&tp_ch, sizeof(uint64_t), 1024))
    die("weft_chan_create", -ENOMEM);
  double t0 = now_ms();
  weft_co *p;
  weft_spawn(&p, tp_producer, NULL);
  uint64_t v, sum = 0;
  while (weft_chan_recv(tp_ch, &v) == 0)
    sum += v;
  *ms = now_ms() - t0;
  weft_join(p, NULL);
  weft_chan_destroy(tp_ch);
  if (sum != (uint64_t)tp_n * (uint64_t)(tp_n - 1) / 2) {
    fprintf(stderr, "weft-bench: chan_throughput sum %llu is wrong\n",
            (unsigned long long)sum);
    exit(1);
  }
  return NULL;
}

static void bench_chan_throughput(unsigned w, long n) {
  double ms;
  warm_then_run(w, tp_main, &ms, &tp_n, n);
  double per_s = (double)n / (ms / 1e3);
  printf("{\"bench\":\"chan_throughput\",\"impl\":\"weft\",\"workers\":%u,"
         "\"n\":%ld,\"req_per_s\":%.0f,\"msgs_per_s\":%.0f}\n",
         w, n, per_s, per_s);
}

/* ---- echo ------------------------------------------------------------------ */

static uint64_t echo_live; /* connections being served */

static void *echo_serve(void *arg) { /* as examples/echo_server.c */
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  ssize_t n;
  while ((n = weft_read(fd, buf, sizeof buf)) > 0)
    if (weft_write(fd, buf, (size_t)n) < 0)
      break;
  weft_close(fd);
  __atomic_fetch_sub(&echo_live, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *echo_acceptor(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = weft_accept(lfd, NULL, NULL);
    if (fd < 0)
      return NULL; /* -EBADF: echo_closer closed the listener */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as Go does */
    __atomic_fetch_add(&echo_live, 1, __ATOMIC_RELAXED);
    int rc = weft_spawn(NULL, echo_serve, (void *)(intptr_t)fd);
    if (rc)
      die("spawn", rc);
  }
}

static void *echo_closer(void *arg) {
  weft_close((int)(intptr_t)arg); /* wakes the acceptor with -EBADF */
  return NULL;
}

static void bench_echo(unsigned w, long n) {
  weft_config c = config(w);
  weft_runtime *rt;
  int rc = weft_runtime_start(&c, &rt);
  if (rc)
    die("weft_runtime_start", rc);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int lfd = weft_listen((struct sockaddr *)&a, sizeof a, 1024, 0);
  if (lfd < 0)
    die("weft_listen", lfd);
  getsockname(lfd, (struct sockaddr *)&a, &len);
  weft_co *acc, *closer;
  if ((rc = weft_runtime_spawn(rt, &acc, echo_acceptor, (void *)(intptr_t)lfd)))
    die("weft_runtime_spawn", rc);
  bp_load l = bp_echo_load(ntohs(a.sin_port), (int)n, BP_ECHO_MSG);
  /* Shut down in order: the listener, then the connections the client
   * closed, then the runtime. */
  if ((rc = weft_runtime_spawn(rt, &closer, echo_closer, (void *)(intptr_t)lfd)))
    die("weft_runtime_spawn", rc);
  weft_join(closer, NULL);
  weft_join(acc, NULL);
  for (int i = 0; i < 2000 && __atomic_load_n(&echo_live, __ATOMIC_ACQUIRE); i++)
    usleep(1000);
  weft_runtime_stop(rt);
  printf("{\"bench\":\"echo\",\"impl\":\"weft\",\"workers\":%u,\"conns\":%ld,"
         "\"msg_bytes\":%d,\"load_threads\":%d,\"secs\":%.3f,\"round_trips\":%lld,"
         "\"req_per_s\":%.0f}\n",
         w, n, BP_ECHO_MSG, l.threads, l.secs, l.round_trips, l.req_per_s);
}

/* ---- dns ------------------------------------------------------------------- */

enum { DNS_COROUTINES = 512 };
static int dns_coroutines = DNS_COROUTINES;
static long dns_n, dns_next;
static char dns_prefix;

static void *dns_client(void *arg) {
  (void)arg;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  uint32_t want = inet_addr(BP_DNS_ANSWER);
  long i;
  while ((i = __atomic_fetch_add(&dns_next, 1, __ATOMIC_RELAXED)) < dns_n) {
    char name[64];
    snprintf(name, sizeof name, "%c%ld." BP_DNS_DOMAIN, dns_prefix, i);
    struct addrinfo *res = NULL;
    int rc = weft_resolve(name, "80", &hints, &res);
    if (rc) {
      fprintf(stderr, "weft-bench: weft_resolve(%s): %s\n", name, weft_strerror(rc));
      exit(1);
    }
    if (!res) {
      fprintf(stderr, "weft-bench: %s: no address\n", name);
      exit(1);
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
      if (ai->ai_family != AF_INET || sin->sin_addr.s_addr != want ||
          ntohs(sin->sin_port) != 80) {
        fprintf(stderr, "weft-bench: %s: an answer other than %s:80 (family %d)\n",
                name, BP_DNS_ANSWER, ai->ai_family);
        exit(1);
      }
    }
    weft_freeaddrinfo(res);
  }
  return NULL;
}

static void *dns_main(void *arg) {
  double *ms = arg;
  weft_co **c = calloc((size_t)dns_coroutines, sizeof *c);
  dns_next = 0;
  double t0 = now_ms();
  for (int i = 0; i < dns_coroutines; i++) {
    int rc = weft_spawn(&c[i], dns_client, NULL);
    if (rc)
      die("spawn", rc);
  }
  weft_gather(c, (size_t)dns_coroutines, NULL);
  *ms = now_ms() - t0;
  free(c);
  return NULL;
}

static void bench_dns(unsigned w, long n) {
  struct sockaddr_in sa;
  char server[64];
  bp_dns_start(&sa, server, sizeof server);
  setenv("WEFT_DNS_SERVERS", server, 1);
  const char *co = getenv("WEFT_BENCH_DNS_COROUTINES");
  if (co && atoi(co) > 0)
    dns_coroutines = atoi(co);
  double ms;
  dns_n = n / 10 ? n / 10 : 1; /* warm-up, with other names */
  dns_prefix = 'w';
  run(w, dns_main, &ms);
  dns_n = n;
  dns_prefix = 'n';
  run(w, dns_main, &ms);
  printf("{\"bench\":\"dns\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"server\":\"%s\",\"coroutines\":%d,\"req_per_s\":%.0f}\n",
         w, n, server, dns_coroutines, (double)n / (ms / 1e3));
}

/* ---- offload ---------------------------------------------------------------- */

static void *off_inc(void *arg) { return (void *)((uintptr_t)arg + 1); }

static long off_each[8];

static void *off_client(void *arg) {
  long n = *(long *)arg;
  for (long i = 0; i < n; i++) {
    void *r;
    if (weft_offload(off_inc, (void *)(uintptr_t)i, &r) || (uintptr_t)r != (uintptr_t)i + 1) {
      fprintf(stderr, "weft-bench: offload round trip failed\n");
      exit(1);
    }
  }
  return NULL;
}

static void *off_main(void *arg) {
  long n = *(long *)((void **)arg)[0];
  double *ms = ((void **)arg)[1];
  weft_co *c[8];
  for (int i = 0; i < 8; i++)
    off_each[i] = n / 8 + (i < n % 8);
  double t0 = now_ms();
  for (int i = 0; i < 8; i++)
    weft_spawn(&c[i], off_client, &off_each[i]);
  weft_gather(c, 8, NULL);
  *ms = now_ms() - t0;
  return NULL;
}

static void bench_offload(unsigned w, long n) {
  double ms;
  long warm = n / 10 ? n / 10 : 1;
  void *args[2] = {&warm, &ms};
  weft_config c = config(w);
  c.offload_threads = 4; /* the Go peer's pool has 4 locked threads */
  if (weft_run(&c, off_main, args, NULL))
    die("weft_run", -1);
  args[0] = &n;
  if (weft_run(&c, off_main, args, NULL))
    die("weft_run", -1);
  double per_s = (double)n / (ms / 1e3);
  printf("{\"bench\":\"offload\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"req_per_s\":%.0f}\n",
         w, n, per_s);
}

/* ---- sleep_gather ----------------------------------------------------------- */

static weft_waitgroup sg_gate, sg_done;
static uint64_t sg_t0;
static uint64_t sg_release_ns; /* the last sleeper's start, after t0 */
static double *sg_late_us;

static void *sg_sleeper(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  weft_waitgroup_wait(&sg_gate);
  uint64_t started = weft_now_ns() - sg_t0;
  uint64_t seen = __atomic_load_n(&sg_release_ns, __ATOMIC_RELAXED);
  while (started > seen &&
         !__atomic_compare_exchange_n(&sg_release_ns, &seen, started, 0,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
  uint64_t due = sg_t0 + started + 1000000000ull; /* its own deadline */
  weft_sleep_ms(1000);
  uint64_t now = weft_now_ns();
  sg_late_us[i] = now > due ? (double)(now - due) / 1e3 : 0;
  weft_waitgroup_done(&sg_done);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *sg_main(void *arg) {
  long n = *(long *)((void **)arg)[0];
  double *ms = ((void **)arg)[1];
  weft_waitgroup_add(&sg_gate, 1);
  weft_waitgroup_add(&sg_done, n);
  for (long i = 0; i < n; i++)
    if (weft_spawn(NULL, sg_sleeper, (void *)(uintptr_t)i))
      die("spawn", -ENOMEM);
  sg_t0 = weft_now_ns();
  weft_waitgroup_done(&sg_gate); /* release them together */
  weft_waitgroup_wait(&sg_done);
  *ms = (double)(weft_now_ns() - sg_t0) / 1e6;
  return NULL;
}

static void bench_sleep_gather(unsigned w, long n) {
  double ms;
  sg_late_us = calloc((size_t)n, sizeof *sg_late_us);
  void *args[2] = {&n, &ms};
  run(w, sg_main, args); /* no warm-up: it takes a second */
  qsort(sg_late_us, (size_t)n, sizeof *sg_late_us, cmp_double);
  size_t p50 = (size_t)((n * 50 + 99) / 100), p99 = (size_t)((n * 99 + 99) / 100);
  printf("{\"bench\":\"sleep_gather\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"ms\":%.2f,\"late_p50_us\":%.2f,\"late_p99_us\":%.2f,"
         "\"late_max_us\":%.2f,\"release_ms\":%.2f}\n",
         w, n, ms, sg_late_us[p50 ? p50 - 1 : 0], sg_late_us[p99 ? p99 - 1 : 0],
         sg_late_us[n - 1], (double)sg_release_ns / 1e6);
  free(sg_late_us);
}

/* ---- fetch, fetch_latency --------------------------------------------------- */

#ifdef WEFT_BENCH_WITH_HTTP
enum { FETCH_COROUTINES = 100 };
static int fetch_coroutines = FETCH_COROUTINES;
static char fetch_url[160];
static weft_http_client *fetch_client;
static long fetch_n, fetch_next;

static void fetch_setup(void) {
  char base[128];
  bp_http_start(base, sizeof base);
  snprintf(fetch_url, sizeof fetch_url, "%s" BP_HTTP_PATH, base);
  int rc = weft_http_client_new(NULL, &fetch_client); /* the default config */
  if (rc)
    die("weft_http_client_new", rc);
}

/* One GET of fetch_url, checked; exits the program on anything wrong. */
static void fetch_one(void) {
  weft_http_request req = {.url = fetch_url};
  weft_http_response resp = {0};
  int rc = weft_http_do(fetch_client, &req, &resp);
  if (rc) {
    fprintf(stderr, "weft-bench: GET %s: %s\n", fetch_url, weft_strerror(rc));
    exit(1);
  }
  bool ok = resp.status == 200 && resp.body_len == BP_HTTP_LEN;
  for (size_t i = 0; ok && i < BP_HTTP_LEN; i++)
    ok = resp.body[i] == bp_http_byte(i);
  if (!ok) {
    fprintf(stderr, "weft-bench: GET %s: status %d, %zu bytes, not the file\n", fetch_url,
            resp.status, resp.body_len);
    exit(1);
  }
  weft_http_response_free(&resp);
}

static void *fetch_worker(void *arg) {
  (void)arg;
  while (__atomic_fetch_add(&fetch_next, 1, __ATOMIC_RELAXED) < fetch_n)
    fetch_one();
  return NULL;
}

static double fetch_round(long n) {
  weft_co **c = calloc((size_t)fetch_coroutines, sizeof *c);
  fetch_n = n;
  fetch_next = 0;
  double t0 = now_ms();
  for (int i = 0; i < fetch_coroutines; i++) {
    int rc = weft_spawn(&c[i], fetch_worker, NULL);
    if (rc)
      die("spawn", rc);
  }
  weft_gather(c, (size_t)fetch_coroutines, NULL);
  double ms = now_ms() - t0;
  free(c);
  return ms;
}

static void *fetch_main(void *arg) {
  long n = *(long *)((void **)arg)[0];
  double *ms = ((void **)arg)[1];
  fetch_round(n / 10 ? n / 10 : 1); /* warm-up: opens the connections */
  *ms = fetch_round(n);
  return NULL;
}

static void bench_fetch(unsigned w, long n) {
  const char *co = getenv("WEFT_BENCH_FETCH_COROUTINES");
  if (co && atoi(co) > 0)
    fetch_coroutines = atoi(co);
  fetch_setup();
  double ms;
  void *args[2] = {&n, &ms};
  run(w, fetch_main, args);
  weft_http_client_free(fetch_client);
  printf("{\"bench\":\"fetch\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"coroutines\":%d,\"req_per_s\":%.0f}\n",
         w, n, fetch_coroutines, (double)n / (ms / 1e3));
}

static double *fetch_lat_us; /* each GET's time */

static void *fetch_latency_main(void *arg) {
  long n = *(long *)arg;
  for (long i = 0; i < (n / 10 ? n / 10 : 1); i++) /* warm-up */
    fetch_one();
  for (long i = 0; i < n; i++) {
    uint64_t t0 = weft_now_ns();
    fetch_one();
    fetch_lat_us[i] = (double)(weft_now_ns() - t0) / 1e3;
  }
  return NULL;
}

static void bench_fetch_latency(unsigned w, long n) {
  fetch_setup();
  fetch_lat_us = calloc((size_t)n, sizeof *fetch_lat_us);
  run(w, fetch_latency_main, &n);
  weft_http_client_free(fetch_client);
  double sum = 0;
  for (long i = 0; i < n; i++)
    sum += fetch_lat_us[i];
  qsort(fetch_lat_us, (size_t)n, sizeof *fetch_lat_us, cmp_double);
  size_t p50 = (size_t)((n * 50 + 99) / 100), p99 = (size_t)((n * 99 + 99) / 100);
  printf("{\"bench\":\"fetch_latency\",\"impl\":\"weft\",\"workers\":%u,\"n\":%ld,"
         "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,\"max_us\":%.2f}\n",
         w, n, fetch_lat_us[p50 ? p50 - 1 : 0], fetch_lat_us[p99 ? p99 - 1 : 0], sum / (double)n,
         fetch_lat_us[n - 1]);
  free(fetch_lat_us);
}
#endif

#ifdef WEFT_BENCH_WITH_HTTP
/* ---- stress_rps, server_rps ------------------------------------------------------ */

static const char *stress_path(void) {
  static char path[PATH_MAX + 32];
  const char *env = getenv("WEFT_STRESS");
  if (env && *env)
    return env;
  ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
  if (n <= 0)
    bp_fail("cannot read /proc/self/exe%s", "");
  path[n] = 0;
  char *slash = strrchr(path, '/');
  strcpy(slash ? slash + 1 : path, "weft-stress"); /* installed: one bin dir */
  if (access(path, X_OK) == 0)
    return path;
  strcpy(slash ? slash + 1 : path, "../weft-stress"); /* the build tree */
  if (access(path, X_OK))
    bp_fail("weft-stress not found (build it, or set WEFT_STRESS)%s", "");
  return path;
}

static void bench_stress_rps(unsigned w, long n) {
  char base[128], url[192], ws[16], cs[16], ds[16];
  bp_http_start(base, sizeof base);
  snprintf(url, sizeof url, "%s" BP_HTTP_PATH, base);
  snprintf(ws, sizeof ws, "%u", w);
  snprintf(cs, sizeof cs, "%ld", n);
  snprintf(ds, sizeof ds, "%ds", bp_secs());
  char *argv[] = {(char *)stress_path(), "-q", "-w", ws, "-c", cs, "-d", ds,
                  "--json", "-", url, NULL};
  static char out[16384];
  if (bp_run(argv, out, sizeof out))
    bp_fail("weft-stress failed: %s", out);
  double rps = bp_field(out, "requests_per_sec");
  if (bp_field(out, "errors") != 0)
    bp_fail("weft-stress saw errors: %s", out);
  printf("{\"bench\":\"stress_rps\",\"impl\":\"weft\",\"workers\":%u,\"conns\":%ld,"
         "\"req_per_s\":%.0f}\n",
         w, n, rps);
}

static void hello_100(void *arg, const weft_http_server_request *req,
                      weft_http_server_response *resp) {
  (void)arg;
  (void)req;
  static char body[BP_HTTP_LEN];
  if (!body[0])
    for (size_t i = 0; i < BP_HTTP_LEN; i++)
      body[i] = bp_http_byte(i);
  weft_http_server_add_header(resp, "Content-Type", "text/plain");
  weft_http_server_body(resp, body, BP_HTTP_LEN);
}

static weft_http_server *srv_bench;
static void *srv_start(void *arg) {
  (void)arg;
  weft_http_server_config cfg = {.handler = hello_100};
  int rc = weft_http_server_start(&cfg, &srv_bench);
  return (void *)(intptr_t)rc;
}

static void *srv_stop(void *arg) {
  (void)arg;
  return (void *)(intptr_t)weft_http_server_stop(srv_bench, 1000);
}

static void bench_server_rps(unsigned w, long n) {
  w = 1; /* as nginx's one worker process (bench_proc.h), whatever -w says */
  weft_config c = config(w);
  weft_runtime *rt;
  int rc = weft_runtime_start(&c, &rt);
  if (rc)
    die("weft_runtime_start", rc);
  weft_co *co;
  void *res;
  if ((rc = weft_runtime_spawn(rt, &co, srv_start, NULL)) || (rc = weft_join(co, &res)) ||
      (rc = (int)(intptr_t)res))
    die("weft_http_server_start", rc);
  char url[96];
  snprintf(url, sizeof url, "http://127.0.0.1:%u" BP_HTTP_PATH, weft_http_server_port(srv_bench));
  double rps = bp_wrk(url, (int)n, 1, bp_secs());
  if ((rc = weft_runtime_spawn(rt, &co, srv_stop, NULL)) || (rc = weft_join(co, &res)))
    die("weft_http_server_stop", rc);
  weft_runtime_stop(rt);
  printf("{\"bench\":\"server_rps\",\"impl\":\"weft\",\"workers\":%u,\"conns\":%ld,"
         "\"req_per_s\":%.0f}\n",
         w, n, rps);
}
#endif

/* ---- driver ---------------------------------------------------------------- */

static const struct bench {
  const char *name;
  void (*fn)(unsigned workers, long n);
  long default_n;
} benches[] = {
    {"ctxswitch", bench_ctxswitch, 10000000},
    {"yield", bench_yield, 2000000},
    {"spawn", bench_spawn, 1000000},
    {"chained_spawn", bench_chained_spawn, 100000},
    {"spawn_remote", bench_spawn_remote, 10000},
    {"skynet", bench_skynet, 1000000},
    {"fib", bench_fib, 32},
    {"parked", bench_parked, 1000000},
    {"pingpong", bench_pingpong, 1000000},
    {"mutex_contended", bench_mutex_contended, 4000000},
    {"chan_throughput", bench_chan_throughput, 10000000},
    {"offload", bench_offload, 200000},
    {"echo", bench_echo, BP_ECHO_CONNS},
    {"dns", bench_dns, 100000},
    {"sleep_gather", bench_sleep_gather, 100000},
#ifdef WEFT_BENCH_WITH_HTTP
    {"fetch", bench_fetch, 20000},
    {"fetch_latency", bench_fetch_latency, 2000},
    {"stress_rps", bench_stress_rps, 64},
    {"server_rps", bench_server_rps, 64},
#endif
};

static unsigned default_workers(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return (unsigned)CPU_COUNT(&set);
  return 1;
}

static void usage(void) {
  fprintf(stderr, "usage: weft-bench list\n"
                  "       weft-bench NAME [-w WORKERS] [-n N] [-s STACK_BYTES]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  if (strcmp(argv[1], "list") == 0) {
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
      puts(benches[i].name);
    return 0;
  }
  const struct bench *b = NULL;
  for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
    if (strcmp(argv[1], benches[i].name) == 0)
      b = &benches[i];
  if (!b) {
    fprintf(stderr, "weft-bench: no benchmark named %s (weft-bench list)\n", argv[1]);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    char *end;
    if (i + 1 >= argc)
      usage();
    long v = strtol(argv[i + 1], &end, 10);
    if (*end || v <= 0)
      usage();
    if (strcmp(argv[i], "-w") == 0)
      opt_workers = (unsigned)v;
    else if (strcmp(argv[i], "-n") == 0)
      opt_n = v;
    else if (strcmp(argv[i], "-s") == 0)
      opt_stack = (size_t)v;
    else
      usage();
    i++;
  }
  unsigned w = opt_workers ? opt_workers : default_workers();
  b->fn(w, opt_n > 0 ? opt_n : b->default_n);
  fflush(stdout);
  return 0;
}
