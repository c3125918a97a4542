/*
 * weft-soak - run a mixed weft workload for a given time and check, at the
 * end, that nothing was lost and nothing leaked.
 *
 *   weft-soak [-d DURATION] [-w WORKERS] [-q] [--no-stress]
 *
 * DURATION is like 30s, 2m, 1h (default 60s). tools/soak builds and runs
 * it; CI runs it for 2 minutes, and it is meant to hold for an hour.
 *
 * The workload, every part in one runtime at once, each part a loop of
 * coroutines that runs until the deadline:
 *   storm    bursts of 500 short coroutines: most joined (their results
 *            checked), one in ten detached (counted as they finish), one
 *            in twenty cancelled while it sleeps (must return -ECANCELED);
 *   chan     a three-stage pipeline over bounded channels, closed after
 *            each round of 20,000 values; the sum at the end is checked;
 *   mutex    eight coroutines adding to one counter under a weft_mutex,
 *            with condition-variable hand-offs; the total is checked;
 *   timer    receives with deadlines on a channel nobody sends to (each
 *            must time out), and sleeps of 0-20 ms;
 *   echo     an echo server on 127.0.0.1 and 16 clients, each connecting,
 *            sending 1 B-64 KiB in random pieces, checking every byte
 *            echoed, and sometimes hanging up half-way;
 *   fetch    8 coroutines doing GETs of weft's own HTTP server (100 B,
 *            256 KiB, a 50 ms handler, a 404) and, now and then, of a
 *            port where nothing listens (an expected failure);
 *   dns      lookups of names from a hosts file and of localhost;
 *   stress   weft-stress (next to this program, or $WEFT_STRESS) against
 *            the same server for the whole run, in its own process.
 * Every operation ends as "ok", an expected failure, or an error with its
 * reason (weft_strerror); errors are printed by kind and reason.
 *
 * Invariants checked at the end (exit 1 if one fails, after the report):
 *   - every operation was answered: ok + failed == started, per part;
 *   - the data is right: joins, sums, counters and echoed bytes;
 *   - no unexpected errors;
 *   - the server answered exactly the requests that got a response
 *     (fetch's responses + weft-stress's);
 *   - nothing is left in flight (weft_stats: HTTP transfers, DNS
 *     lookups, timers; coroutines live = the soak's own);
 *   - no leaked fds: the process has the same fds after the runtime has
 *     stopped as before it started;
 *   - memory flat after warm-up: resident memory at the end is within
 *     max(16 MiB, 20 %) of what it was once warmed up (a tenth of the
 *     run, at most 30 s in).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft/http.h"
#include "weft/http_server.h"
#include "weft/io.h"
#include "weft/sched.h"

extern char **environ;

/* ---- options and shared state --------------------------------------------------- */

static uint64_t duration_ns = 60ull * 1000000000u;
static unsigned workers;
static bool quiet, with_stress = true;
static uint64_t start_ns, end_ns;
static atomic_int stopping;

static bool running(void) { return !atomic_load(&stopping) && weft_now_ns() < end_ns; }

enum { P_STORM, P_CHAN, P_MUTEX, P_TIMER, P_ECHO, P_FETCH, P_DNS, P_STRESS, NPARTS };
static const char *part_name[NPARTS] = {"storm", "chan",  "mutex", "timer",
                                        "echo",  "fetch", "dns",   "stress"};
static atomic_ulong started[NPARTS], ok[NPARTS], expected_fail[NPARTS];

/* Errors by part and code: a small table under a pthread mutex (errors
 * are rare; the lock is never held across a park). */
#define MAX_ERRS 64
static struct {
  int part, code;
  unsigned long count;
  char what[64];
} errs[MAX_ERRS];
static int nerrs;
static pthread_mutex_t errs_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong nerrors;

static void op_start(int p) { atomic_fetch_add(&started[p], 1); }
static void op_ok(int p) { atomic_fetch_add(&ok[p], 1); }
static void op_expected(int p) { atomic_fetch_add(&expected_fail[p], 1); }
static void op_error(int p, const char *what, int code) {
  atomic_fetch_add(&nerrors, 1);
  pthread_mutex_lock(&errs_lock);
  int i = 0;
  while (i < nerrs && !(errs[i].part == p && errs[i].code == code && !strcmp(errs[i].what, what)))
    i++;
  if (i == nerrs && nerrs < MAX_ERRS) {
    errs[i].part = p;
    errs[i].code = code;
    snprintf(errs[i].what, sizeof errs[i].what, "%s", what);
    nerrs++;
  }
  if (i < nerrs)
    errs[i].count++;
  pthread_mutex_unlock(&errs_lock);
}

/* A data check failed: the soak's whole point, so it is loud. */
static atomic_ulong corrupt;
static void data_error(int p, const char *fmt, long long a, long long b) {
  atomic_fetch_add(&corrupt, 1);
  fprintf(stderr, "weft-soak: %s: ", part_name[p]);
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ---- storm ------------------------------------------------------------------------ */

static atomic_ulong detached_spawned, detached_done;

static void *storm_child(void *arg) {
  uintptr_t v = (uintptr_t)arg;
  if (v % 7 == 0)
    weft_yield();
  return (void *)(v * 2 + 1);
}
static void *storm_sleeper(void *arg) {
  (void)arg;
  int rc = weft_sleep_ms(10000); /* cancelled long before */
  return (void *)(intptr_t)rc;
}
static void *storm_detached(void *arg) {
  (void)arg;
  weft_yield();
  atomic_fetch_add(&detached_done, 1);
  return NULL;
}

#define BURST 500
static void *storm_loop(void *arg) {
  (void)arg;
  weft_co **cos = calloc(BURST, sizeof *cos);
  uint8_t *kind = calloc(BURST, 1);
  uintptr_t *val = calloc(BURST, sizeof *val);
  while (running()) {
    int n = 0;
    for (int i = 0; i < BURST; i++) {
      op_start(P_STORM);
      int rc;
      if (i % 10 == 9) {
        atomic_fetch_add(&detached_spawned, 1);
        rc = weft_spawn(NULL, storm_detached, NULL);
        if (!rc)
          op_ok(P_STORM);
      } else {
        kind[n] = i % 20 == 4;
        val[n] = (uintptr_t)i;
        rc = weft_spawn(&cos[n], kind[n] ? storm_sleeper : storm_child, (void *)val[n]);
        if (!rc)
          n++;
      }
      if (rc) {
        if (i % 10 == 9)
          atomic_fetch_sub(&detached_spawned, 1);
        op_error(P_STORM, "spawn", rc);
      }
    }
    for (int j = 0; j < n; j++)
      if (kind[j])
        weft_cancel(cos[j]);
    for (int j = 0; j < n; j++) {
      uintptr_t i = val[j];
      void *res;
      int rc = weft_join(cos[j], &res);
      if (rc) {
        op_error(P_STORM, "join", rc);
        continue;
      }
      if (kind[j]) {
        if ((intptr_t)res != -ECANCELED)
          data_error(P_STORM, "cancelled sleeper returned %lld, not %lld", (intptr_t)res,
                     -ECANCELED);
        else
          op_ok(P_STORM);
      } else if ((uintptr_t)res != (uintptr_t)i * 2 + 1) {
        data_error(P_STORM, "child returned %lld, not %lld", (long long)(uintptr_t)res,
                   (long long)i * 2 + 1);
      } else {
        op_ok(P_STORM);
      }
    }
  }
  free(cos);
  free(kind);
  free(val);
  return NULL;
}

/* ---- chan ------------------------------------------------------------------------- */

typedef struct stage {
  weft_chan *in, *out;
} stage;

static void *chan_stage(void *arg) {
  stage *s = arg;
  uint64_t v;
  while (weft_chan_recv(s->in, &v) == 0)
    if (weft_chan_send(s->out, &(uint64_t){v + 1}))
      break;
  weft_chan_close(s->out);
  return NULL;
}

#define ROUND 20000u
static void *chan_loop(void *arg) {
  (void)arg;
  while (running()) {
    op_start(P_CHAN);
    weft_chan *a, *b, *c;
    int rc;
    if ((rc = weft_chan_create(&a, sizeof(uint64_t), 16))) {
      op_error(P_CHAN, "create", rc);
      weft_sleep_ms(10);
      continue;
    }
    weft_chan_create(&b, sizeof(uint64_t), 16);
    weft_chan_create(&c, sizeof(uint64_t), 16);
    stage s1 = {a, b}, s2 = {b, c};
    weft_co *c1, *c2;
    weft_spawn(&c1, chan_stage, &s1);
    weft_spawn(&c2, chan_stage, &s2);
    uint64_t sum = 0, got = 0, v;
    for (uint64_t i = 0; i < ROUND; i++) {
      weft_chan_send(a, &i);
      /* Interleave receiving so the pipeline never fills. */
      while (weft_chan_try_recv(c, &v) == 0)
        sum += v, got++;
    }
    weft_chan_close(a);
    while (weft_chan_recv(c, &v) == 0)
      sum += v, got++;
    weft_join(c1, NULL);
    weft_join(c2, NULL);
    weft_chan_destroy(a);
    weft_chan_destroy(b);
    weft_chan_destroy(c);
    /* Each value went through two stages, +1 each. */
    uint64_t want = (uint64_t)ROUND * (ROUND - 1) / 2 + 2ull * ROUND;
    if (got != ROUND || sum != want)
      data_error(P_CHAN, "round lost values: sum %lld, expected %lld", (long long)sum,
                 (long long)want);
    else
      op_ok(P_CHAN);
  }
  return NULL;
}

/* ---- mutex ------------------------------------------------------------------------ */

static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_cond cv = WEFT_COND_INIT;
static uint64_t shared_count, turn;

static void *mutex_adder(void *arg) {
  uintptr_t me = (uintptr_t)arg;
  for (int i = 0; i < 1000; i++) {
    weft_mutex_lock(&mu);
    shared_count++;
    if (i % 100 == 0) { /* a hand-off: wait for our turn, pass it on */
      while (turn % 8 != me)
        weft_cond_wait(&cv, &mu);
      turn++;
      weft_cond_broadcast(&cv);
    }
    weft_mutex_unlock(&mu);
  }
  return NULL;
}

static void *mutex_loop(void *arg) {
  (void)arg;
  while (running()) {
    op_start(P_MUTEX);
    uint64_t before;
    weft_mutex_lock(&mu);
    before = shared_count;
    turn = 0;
    weft_mutex_unlock(&mu);
    weft_co *c[8];
    for (uintptr_t i = 0; i < 8; i++)
      weft_spawn(&c[i], mutex_adder, (void *)i);
    weft_gather(c, 8, NULL);
    weft_mutex_lock(&mu);
    uint64_t after = shared_count;
    weft_mutex_unlock(&mu);
    if (after - before != 8000)
      data_error(P_MUTEX, "counter moved by %lld, not %lld", (long long)(after - before), 8000);
    else
      op_ok(P_MUTEX);
  }
  return NULL;
}

/* ---- timer ------------------------------------------------------------------------ */

static void *timer_loop(void *arg) {
  uint64_t seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  weft_chan *never;
  weft_chan_create(&never, 1, 1);
  while (running()) {
    op_start(P_TIMER);
    uint64_t r = rng_next(&seed);
    if (r & 1) {
      char x;
      int rc = weft_chan_recv_until(never, &x, weft_now_ns() + (r >> 8) % 5000000u);
      if (rc == -ETIMEDOUT)
        op_ok(P_TIMER);
      else
        op_error(P_TIMER, "recv_until on an empty channel", rc);
    } else {
      int rc = weft_sleep_ms((r >> 8) % 21);
      if (rc)
        op_error(P_TIMER, "sleep", rc);
      else
        op_ok(P_TIMER);
    }
  }
  weft_chan_destroy(never);
  return NULL;
}

/* ---- echo ------------------------------------------------------------------------- */

static int echo_lfd;
static uint16_t echo_port;

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[16384];
  for (;;) {
    ssize_t n = weft_read_until(fd, buf, sizeof buf, weft_now_ns() + 60000000000ull);
    if (n <= 0 || weft_write(fd, buf, (size_t)n) != n)
      break;
  }
  weft_close(fd);
  return NULL;
}

static void *echo_server(void *arg) {
  (void)arg;
  for (;;) {
    int fd = weft_accept(echo_lfd, NULL, NULL);
    if (fd == -ECANCELED || fd == -EBADF)
      break;
    if (fd < 0) {
      op_error(P_ECHO, "accept", fd);
      weft_sleep_ms(10);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (weft_spawn(NULL, echo_conn, (void *)(intptr_t)fd))
      weft_close(fd);
  }
  return NULL;
}

static void *echo_client(void *arg) {
  uint64_t seed = (uintptr_t)arg * 0x2545F4914F6CDD1Dull + 7;
  size_t cap = 65536;
  unsigned char *out = malloc(cap), *in = malloc(cap);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(echo_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  while (running()) {
    op_start(P_ECHO);
    size_t len = 1 + rng_next(&seed) % cap;
    bool hang_up = rng_next(&seed) % 16 == 0;
    for (size_t i = 0; i < len; i++)
      out[i] = (unsigned char)rng_next(&seed);
    int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      op_error(P_ECHO, "socket", fd);
      weft_sleep_ms(10);
      continue;
    }
    uint64_t deadline = weft_now_ns() + 60000000000ull; /* a stall, not slowness */
    int rc = weft_connect_until(fd, (struct sockaddr *)&sa, sizeof sa, deadline);
    size_t sent = 0, got = 0;
    while (!rc && got < len) {
      if (sent < len) {
        size_t piece = 1 + rng_next(&seed) % (len - sent);
        ssize_t w = weft_write_until(fd, out + sent, piece, deadline);
        if (w < 0) {
          rc = (int)w;
          break;
        }
        sent += (size_t)w;
      }
      if (hang_up && sent >= len / 2)
        break; /* leave half-way: the server must cope */
      ssize_t r = weft_read_until(fd, in + got, sent - got, deadline);
      if (r <= 0) {
        rc = r ? (int)r : -ECONNRESET;
        break;
      }
      got += (size_t)r;
    }
    weft_close(fd);
    if (rc)
      op_error(P_ECHO, "round trip", rc);
    else if (hang_up && got < len)
      op_expected(P_ECHO);
    else if (memcmp(in, out, len) != 0)
      data_error(P_ECHO, "echoed bytes differ (%lld of %lld)", (long long)got, (long long)len);
    else
      op_ok(P_ECHO);
  }
  free(out);
  free(in);
  return NULL;
}

/* ---- the HTTP server, fetch --------------------------------------------------------- */

static weft_http_server *srv;
static char base_url[64];
static atomic_ulong fetch_responses;
static char big[256 * 1024];

static void handler(void *arg, const weft_http_server_request *req,
                    weft_http_server_response *resp) {
  (void)arg;
  if (!strcmp(req->path, "/big")) {
    weft_http_server_body(resp, big, sizeof big);
  } else if (!strcmp(req->path, "/slow")) {
    weft_sleep_ms(50);
    weft_http_server_body(resp, "slow", 4);
  } else if (!strcmp(req->path, "/ok")) {
    static char hundred[100];
    if (!hundred[0])
      memset(hundred, 'x', sizeof hundred);
    weft_http_server_body(resp, hundred, sizeof hundred);
  } else {
    weft_http_server_status(resp, 404);
    weft_http_server_body(resp, "no", 2);
  }
}

static void *fetch_loop(void *arg) {
  uint64_t seed = (uintptr_t)arg + 99;
  static const char *paths[] = {"/ok", "/big", "/slow", "/missing"};
  static const int want_status[] = {200, 200, 200, 404};
  static const size_t want_len[] = {100, sizeof big, 4, 2};
  while (running()) {
    op_start(P_FETCH);
    unsigned k = (unsigned)(rng_next(&seed) % 41);
    char url[96];
    weft_http_request req = {.url = url, .timeout_ms = 20000};
    weft_http_response r = {0};
    if (k == 40) { /* nothing listens on port 1: an expected failure */
      req.url = "http://127.0.0.1:1/";
      int rc = weft_http_do(NULL, &req, &r);
      if (rc == WEFT_EHTTP_REFUSED)
        op_expected(P_FETCH);
      else
        op_error(P_FETCH, "GET of a closed port", rc);
      weft_http_response_free(&r);
      continue;
    }
    k %= 4;
    snprintf(url, sizeof url, "%s%s", base_url, paths[k]);
    int rc = weft_http_do(NULL, &req, &r);
    if (rc) {
      op_error(P_FETCH, paths[k], rc);
    } else {
      atomic_fetch_add(&fetch_responses, 1);
      if (r.status != want_status[k] || r.body_len != want_len[k] ||
          (k == 1 && memcmp(r.body, big, sizeof big)))
        data_error(P_FETCH, "wrong response: status %lld, %lld bytes", r.status,
                   (long long)r.body_len);
      else
        op_ok(P_FETCH);
    }
    weft_http_response_free(&r);
  }
  return NULL;
}

/* ---- dns -------------------------------------------------------------------------- */

static char hosts_path[64];

static void *dns_loop(void *arg) {
  uint64_t seed = (uintptr_t)arg + 5;
  while (running()) {
    op_start(P_DNS);
    unsigned k = (unsigned)(rng_next(&seed) % 9);
    char name[32];
    if (k == 8)
      snprintf(name, sizeof name, "localhost");
    else
      snprintf(name, sizeof name, "h%u.soak.test", k);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = weft_resolve(name, "80", &hints, &res);
    if (rc) {
      op_error(P_DNS, name, rc);
      continue;
    }
    const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
    uint32_t want = k == 8 ? INADDR_LOOPBACK : (127u << 24 | 1u << 16 | k);
    if (ntohl(sin->sin_addr.s_addr) != want || ntohs(sin->sin_port) != 80)
      data_error(P_DNS, "wrong address %llx, expected %llx", ntohl(sin->sin_addr.s_addr), want);
    else
      op_ok(P_DNS);
    weft_freeaddrinfo(res);
  }
  return NULL;
}

static int write_hosts(void) {
  strcpy(hosts_path, "/tmp/weft-soak-hosts-XXXXXX");
  int fd = mkstemp(hosts_path);
  if (fd < 0)
    return -errno;
  FILE *f = fdopen(fd, "w");
  for (unsigned k = 0; k < 8; k++)
    fprintf(f, "127.1.0.%u h%u.soak.test\n", k, k);
  fclose(f);
  setenv("WEFT_HOSTS_FILE", hosts_path, 1);
  return 0;
}

/* ---- stress: weft-stress in its own process ------------------------------------------- */

static char stress_bin[4096];
static char stress_json[64];
static uint64_t stress_requests, stress_errors;

static bool find_stress(void) {
  const char *env = getenv("WEFT_STRESS");
  if (env && *env) {
    snprintf(stress_bin, sizeof stress_bin, "%s", env);
    return access(stress_bin, X_OK) == 0;
  }
  ssize_t n = readlink("/proc/self/exe", stress_bin, sizeof stress_bin - 32);
  if (n <= 0)
    return false;
  stress_bin[n] = 0;
  char *slash = strrchr(stress_bin, '/');
  strcpy(slash ? slash + 1 : stress_bin, "weft-stress");
  return access(stress_bin, X_OK) == 0;
}

static void *wait_child(void *arg) {
  int status;
  pid_t pid = (pid_t)(intptr_t)arg;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return (void *)(intptr_t)status;
}

static double json_num(const char *text, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(text, k);
  return p ? strtod(p + strlen(k), NULL) : -1;
}

static void *stress_run(void *arg) {
  (void)arg;
  uint64_t left = end_ns > weft_now_ns() ? end_ns - weft_now_ns() : 0;
  if (left < 2000000000ull)
    return NULL;
  op_start(P_STRESS);
  char dur[32], url[96];
  snprintf(dur, sizeof dur, "%llums", (unsigned long long)(left / 1000000u - 1000));
  snprintf(url, sizeof url, "%s/ok", base_url);
  strcpy(stress_json, "/tmp/weft-soak-stress-XXXXXX");
  int jfd = mkstemp(stress_json);
  if (jfd < 0) {
    op_error(P_STRESS, "mkstemp", -errno);
    return NULL;
  }
  close(jfd);
  /* An open loop at a moderate rate: the soak is about variety and
   * duration, and the other parts need the CPUs too. */
  char *argv[] = {stress_bin, "-q", "-c", "16", "-R", "2000", "-w", "1", "-d", dur,
                  "--json", stress_json, url, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, stress_bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) {
    op_error(P_STRESS, "posix_spawn weft-stress", -rc);
    unlink(stress_json);
    return NULL;
  }
  void *st;
  rc = weft_offload(wait_child, (void *)(intptr_t)pid, &st);
  int status = (int)(intptr_t)st;
  char text[8192] = {0};
  FILE *f = fopen(stress_json, "r");
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
  }
  unlink(stress_json);
  if (rc || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    op_error(P_STRESS, "weft-stress exit status", rc ? rc : -ECHILD);
    return NULL;
  }
  double req = json_num(text, "requests"), err = json_num(text, "errors");
  if (req < 0 || err < 0) {
    op_error(P_STRESS, "weft-stress JSON", -EPROTO);
    return NULL;
  }
  stress_requests = (uint64_t)req;
  stress_errors = (uint64_t)err;
  if (err > 0)
    op_error(P_STRESS, "weft-stress reported errors", WEFT_EHTTP_FAILED);
  else
    op_ok(P_STRESS);
  return NULL;
}

/* ---- memory and fds --------------------------------------------------------------------- */

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d)
    return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n - 3; /* ".", ".." and the directory's own fd */
}

/* ---- the run ---------------------------------------------------------------------------- */

static long rss_warm, rss_end, rss_max;
static long stacks_warm = -1, stacks_max = -1; /* mapped stacks (weft_stats) */
static weft_stats final_stats;
static bool have_stats;
static uint64_t server_requests;
static int server_rc;

static unsigned long total_ok(void) {
  unsigned long t = 0;
  for (int p = 0; p < NPARTS; p++)
    t += atomic_load(&ok[p]);
  return t;
}

static void *soak_main(void *arg) {
  (void)arg;
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 26);
  weft_http_server_config cfg = {.handler = handler};
  int rc = weft_http_server_start(&cfg, &srv);
  if (rc) {
    fprintf(stderr, "weft-soak: starting the HTTP server: %s\n", weft_strerror(rc));
    return (void *)1;
  }
  snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", weft_http_server_port(srv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  echo_lfd = weft_listen((struct sockaddr *)&sa, sizeof sa, 1024, 0);
  if (echo_lfd < 0) {
    fprintf(stderr, "weft-soak: echo listener: %s\n", weft_strerror(echo_lfd));
    return (void *)1;
  }
  socklen_t sl = sizeof sa;
  getsockname(echo_lfd, (struct sockaddr *)&sa, &sl);
  echo_port = ntohs(sa.sin_port);
  weft_co *echo_srv;
  weft_spawn(&echo_srv, echo_server, NULL);

  start_ns = weft_now_ns();
  end_ns = start_ns + duration_ns;
  weft_co *cos[64];
  int n = 0;
  weft_spawn(&cos[n++], storm_loop, NULL);
  weft_spawn(&cos[n++], storm_loop, NULL);
  weft_spawn(&cos[n++], chan_loop, NULL);
  weft_spawn(&cos[n++], mutex_loop, NULL);
  for (uintptr_t i = 0; i < 8; i++)
    weft_spawn(&cos[n++], timer_loop, (void *)i);
  for (uintptr_t i = 0; i < 16; i++)
    weft_spawn(&cos[n++], echo_client, (void *)i);
  for (uintptr_t i = 0; i < 8; i++)
    weft_spawn(&cos[n++], fetch_loop, (void *)i);
  for (uintptr_t i = 0; i < 4; i++)
    weft_spawn(&cos[n++], dns_loop, (void *)i);
  if (with_stress)
    weft_spawn(&cos[n++], stress_run, NULL);

  /* Progress once a second; resident memory sampled for the checks. */
  uint64_t warm_at = start_ns + duration_ns / 10;
  if (warm_at > start_ns + 30000000000ull)
    warm_at = start_ns + 30000000000ull;
  unsigned long last_ok = 0;
  uint64_t last_ns = start_ns;
  while (running()) {
    weft_sleep_ms(1000);
    uint64_t now = weft_now_ns();
    long rss = rss_kib();
    if (rss > rss_max)
      rss_max = rss;
    /* Stack mappings: the part of resident memory that follows the spawn
     * storms' peaks (pooled stacks keep their touched pages until the
     * pool decays: sched/src/stack.c). */
    weft_stats st;
    long stacks = -1;
    if (weft_stats_get(NULL, &st) == 0) {
      stacks = (long)st.stacks.mapped;
      weft_stats_free(&st);
      if (stacks > stacks_max)
        stacks_max = stacks;
    }
    if (!rss_warm && now >= warm_at) {
      rss_warm = rss;
      stacks_warm = stacks;
    }
    unsigned long t = total_ok();
    if (!quiet) {
      fprintf(stderr, "[%5.0fs] %8.0f ops/s  errors %lu  rss %ld MiB  stacks %ld  fds %d\n",
              (double)(now - start_ns) / 1e9, (double)(t - last_ok) * 1e9 / (double)(now - last_ns),
              atomic_load(&nerrors), rss / 1024, stacks, count_fds());
    }
    last_ok = t;
    last_ns = now;
  }
  for (int i = 0; i < n; i++)
    weft_join(cos[i], NULL);
  /* Detached storm children finish on their own: wait for the last. */
  for (int i = 0; i < 1000 && atomic_load(&detached_done) < atomic_load(&detached_spawned); i++)
    weft_sleep_ms(10);
  rss_end = rss_kib();
  if (!rss_warm)
    rss_warm = rss_end;
  weft_close(echo_lfd);
  weft_cancel(echo_srv);
  weft_join(echo_srv, NULL);
  weft_http_server_stats ss;
  weft_http_server_get_stats(srv, &ss);
  server_requests = ss.requests;
  server_rc = weft_http_server_stop(srv, 5000);
  /* Echo connections still open time out on their own read deadline;
   * give them a moment so the coroutine count below is the soak's. */
  weft_sleep_ms(200);
  have_stats = weft_stats_get(NULL, &final_stats) == 0;
  return NULL;
}

static uint64_t parse_duration(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0)
    return 0;
  double mult = !strcmp(end, "ms") ? 1e6 : !strcmp(end, "s") || !*end ? 1e9
              : !strcmp(end, "m")  ? 60e9 : !strcmp(end, "h") ? 3600e9 : 0;
  return (uint64_t)(v * mult);
}

static int failures;
static void check(bool good, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool good, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("  %s ", good ? "ok  " : "FAIL");
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
  if (!good)
    failures++;
}

int main(int argc, char **argv) {
  static const struct option longs[] = {{"no-stress", no_argument, NULL, 'S'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "d:w:qh", longs, NULL)) != -1) {
    switch (c) {
    case 'd':
      if (!(duration_ns = parse_duration(optarg))) {
        fprintf(stderr, "weft-soak: -d %s: a duration is like 30s, 2m, 1h\n", optarg);
        return 2;
      }
      break;
    case 'w':
      workers = (unsigned)atoi(optarg);
      break;
    case 'q':
      quiet = true;
      break;
    case 'S':
      with_stress = false;
      break;
    case 'h':
      printf("usage: weft-soak [-d DURATION] [-w WORKERS] [-q] [--no-stress]\n");
      return 0;
    default:
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  if (with_stress && !find_stress()) {
    fprintf(stderr, "weft-soak: weft-stress not found next to this program (or $WEFT_STRESS): "
                    "running without it\n");
    with_stress = false;
  }
  if (write_hosts()) {
    perror("weft-soak: hosts file");
    return 1;
  }
  int fds_before = count_fds();
  long rss_start = rss_kib();
  weft_config cfg = {.workers = workers};
  void *res = NULL;
  int rc = weft_run(&cfg, soak_main, NULL, &res);
  int fds_after = count_fds();
  unlink(hosts_path);
  if (rc || res) {
    fprintf(stderr, "weft-soak: %s\n", rc ? weft_strerror(rc) : "the soak could not start");
    return 1;
  }

  double secs = (double)duration_ns / 1e9;
  printf("weft-soak: %.0f s, %u workers\n", secs, have_stats ? final_stats.nworkers : 0);
  printf("  %-7s %12s %12s %10s %10s\n", "part", "started", "ok", "expected", "errors");
  unsigned long all_started = 0, all_ok = 0;
  bool answered = true;
  for (int p = 0; p < NPARTS; p++) {
    unsigned long s = atomic_load(&started[p]), o = atomic_load(&ok[p]),
                  x = atomic_load(&expected_fail[p]);
    unsigned long e = 0;
    for (int i = 0; i < nerrs; i++)
      if (errs[i].part == p)
        e += errs[i].count;
    printf("  %-7s %12lu %12lu %10lu %10lu\n", part_name[p], s, o, x, e);
    all_started += s;
    all_ok += o;
    /* Spawn and join errors of one storm op may both be counted. */
    if (o + x + e < s)
      answered = false;
  }
  for (int i = 0; i < nerrs; i++)
    printf("  error: %s %s: %lu x %s (%d)\n", part_name[errs[i].part], errs[i].what,
           errs[i].count, weft_strerror(errs[i].code), errs[i].code);
  printf("  operations %lu (%.0f/s), ok %lu; weft-stress %llu requests, %llu errors\n",
         all_started, (double)all_started / secs, all_ok, (unsigned long long)stress_requests,
         (unsigned long long)stress_errors);
  printf("  rss: start %ld KiB, warmed up %ld KiB, end %ld KiB, max %ld KiB; fds %d before, %d "
         "after\n",
         rss_start, rss_warm, rss_end, rss_max, fds_before, fds_after);
  if (have_stats) {
    printf("  stacks: warmed up %ld, end %llu (%llu pooled), max %ld\n", stacks_warm,
           (unsigned long long)final_stats.stacks.mapped,
           (unsigned long long)final_stats.stacks.pooled, stacks_max);
    weft_stats_print(&final_stats, stdout);
  }

  printf("invariants:\n");
  check(answered, "every operation answered: ok, an expected failure or an error with a reason");
  check(atomic_load(&corrupt) == 0, "data checks: %lu failed", atomic_load(&corrupt));
  check(atomic_load(&nerrors) == 0, "no unexpected errors (%lu)", atomic_load(&nerrors));
  check(atomic_load(&detached_done) == atomic_load(&detached_spawned),
        "detached coroutines finished: %lu of %lu", atomic_load(&detached_done),
        atomic_load(&detached_spawned));
  uint64_t answered_requests = atomic_load(&fetch_responses) + stress_requests;
  check(server_requests == answered_requests,
        "server answered %llu requests = %llu fetched + %llu by weft-stress",
        (unsigned long long)server_requests,
        (unsigned long long)atomic_load(&fetch_responses), (unsigned long long)stress_requests);
  check(server_rc == 0, "server stopped cleanly (%d)", server_rc);
  if (have_stats) {
    check(final_stats.http.in_flight == 0 && final_stats.dns.in_flight == 0 &&
              final_stats.poller.timers_armed == 0,
          "nothing in flight at the end: http %llu, dns %llu, timers %llu",
          (unsigned long long)final_stats.http.in_flight,
          (unsigned long long)final_stats.dns.in_flight,
          (unsigned long long)final_stats.poller.timers_armed);
    check(final_stats.live == 1, "coroutines live at the end: %llu (the soak's own: 1)",
          (unsigned long long)final_stats.live);
  }
  check(fds_after == fds_before, "no leaked fds: %d before the runtime, %d after", fds_before,
        fds_after);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  /* ThreadSanitizer's shadow memory and history, and AddressSanitizer's
   * quarantine of freed blocks (256 MiB by default), grow with the run by
   * design: the figure is printed, not judged (LSan checks for leaks at
   * exit instead). */
  printf("  (memory not judged under a sanitizer: %ld KiB -> %ld KiB)\n", rss_warm, rss_end);
#else
  long slack = rss_warm / 5 > 16384 ? rss_warm / 5 : 16384;
  check(rss_end <= rss_warm + slack, "memory flat after warm-up: %ld KiB -> %ld KiB (allowed +%ld)",
        rss_warm, rss_end, slack);
#endif
  weft_stats_free(&final_stats);
  printf("weft-soak: %s\n", failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
