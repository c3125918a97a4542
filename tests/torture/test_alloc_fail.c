/*
 * test_alloc_fail.c - allocation-failure torture (the WEFT_ALLOC_FAIL
 * build, sched/src/alloc_fail.h).
 *
 * A scenario is a short program of steps (spawns and joins, channels,
 * sockets, lookups, files, HTTP). It runs once with nothing failing, to
 * count its allocations (T: the library's records, stacks, plain heap
 * calls, curl's and c-ares's); then once per N in 1..T+1, each time in a
 * fresh child process, with the Nth allocation failing. Each run must:
 *   - not crash, and not hang (the child has an alarm);
 *   - surface the failure as an error code where it cannot be absorbed:
 *     a step either succeeds (its data checked) or returns a negative
 *     code that weft_strerror names;
 *   - recover: a step that failed is run again and must then succeed,
 *     since only one allocation fails (weft_run itself may fail to start,
 *     returning the code);
 *   - leak nothing: the child exits normally, and under ASan LSan checks
 *     its heap at exit (a leak makes the exit status non-zero).
 * A case sweeps one scenario: `test_alloc_fail sched|io|http`. With more
 * than MAX_RUNS allocations the sweep takes every Nth with a stride, plus
 * all of the first and last 100 (start-up and teardown are where
 * half-made state is most likely).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "alloc_fail.h"
#include "weft/http.h"
#include "weft/http_server.h"
#include "weft/io.h"
#include "weft/sched.h"

#define MAX_RUNS 600
#define NOT_RECOVERED 1 /* a scenario's result: a step failed twice */
#define BAD_CODE 2      /* ... or failed with something that is not a code */
#define WRONG_DATA 3    /* ... or succeeded with wrong data */

typedef int (*step_fn)(void);

/* Which step went wrong, and with what (reported by the child). */
static int bad_step = -1, first_rc, second_rc;
/* Where the scenario is (for the report of a hang). */
static volatile int cur_step = -1, cur_attempt;
static volatile const char *cur_what = "";

static void on_alarm(int sig) {
  (void)sig;
  char buf[160];
  int n = snprintf(buf, sizeof buf, "hang: step %d, attempt %d, in %s\n", cur_step, cur_attempt,
                   (const char *)cur_what);
  if (write(2, buf, (size_t)n) < 0)
    _exit(98);
  signal(SIGALRM, SIG_DFL);
  raise(SIGALRM);
}

/* Run each step; a failed one must fail with a named code and then pass. */
static intptr_t run_steps(const step_fn *steps) {
  for (const step_fn *s = steps; *s; s++) {
    bad_step = cur_step = (int)(s - steps);
    cur_attempt = 1;
    int rc = first_rc = (*s)();
    if (rc == WRONG_DATA)
      return WRONG_DATA;
    if (rc == 0)
      continue;
    if (rc > 0 || !strcmp(weft_strerror(rc), "unknown error"))
      return BAD_CODE;
    cur_attempt = 2;
    rc = second_rc = (*s)();
    if (rc)
      return rc == WRONG_DATA ? WRONG_DATA : NOT_RECOVERED;
  }
  bad_step = -1;
  return 0;
}

/* ---- sched: spawns, joins, channels, sync, offload, stats ---- */

static void *twice(void *arg) { return (void *)((intptr_t)arg * 2); }

static int step_spawn(void) {
  weft_co *cos[40];
  int n = 0, rc = 0;
  for (; n < 40; n++)
    if ((rc = weft_spawn(&cos[n], twice, (void *)(intptr_t)n)))
      break;
  for (int i = 0; i < n; i++) {
    void *r;
    int jr = weft_join(cos[i], &r);
    if (jr)
      return WRONG_DATA; /* a spawned coroutine must be joinable */
    if ((intptr_t)r != 2 * i)
      return WRONG_DATA;
  }
  return rc;
}

static void *sender(void *arg) {
  weft_chan *ch = arg;
  for (int i = 0; i < 100; i++)
    if (weft_chan_send(ch, &i))
      break;
  weft_chan_close(ch);
  return NULL;
}

static int step_chan(void) {
  weft_chan *ch;
  int rc = weft_chan_create(&ch, sizeof(int), 4);
  if (rc)
    return rc;
  weft_co *co;
  if ((rc = weft_spawn(&co, sender, ch))) {
    weft_chan_destroy(ch);
    return rc;
  }
  int v, sum = 0, n = 0;
  while (weft_chan_recv(ch, &v) == 0)
    sum += v, n++;
  weft_join(co, NULL);
  weft_chan_destroy(ch);
  return n == 100 && sum == 4950 ? 0 : WRONG_DATA;
}

static void *plus_one(void *arg) { return (void *)((intptr_t)arg + 1); }

static int step_offload(void) {
  for (intptr_t i = 0; i < 3; i++) {
    void *r;
    int rc = weft_offload(plus_one, (void *)i, &r);
    if (rc)
      return rc;
    if ((intptr_t)r != i + 1)
      return WRONG_DATA;
  }
  return 0;
}

static int step_stats(void) {
  weft_stats s;
  int rc = weft_stats_get(NULL, &s);
  if (rc)
    return rc;
  bool ok = s.total.spawned >= 40;
  weft_stats_free(&s);
  return ok ? 0 : WRONG_DATA;
}

static void *sched_main(void *arg) {
  (void)arg;
  static const step_fn steps[] = {step_spawn, step_chan, step_offload, step_stats, NULL};
  return (void *)run_steps(steps);
}

/* ---- io: timers, sockets, lookups, files ---- */

static int step_sleep(void) { return weft_sleep_ms(1); }

/* Accept one connection and echo it. It owns the listener and closes it
 * once accept returns: if accept failed, that resets the client's
 * connection still in the backlog, so the client hears of it at once. */
static void *echo_once(void *arg) {
  int lfd = (int)(intptr_t)arg;
  int fd = weft_accept_until(lfd, NULL, NULL, weft_now_ns() + 10000000000ull);
  weft_close(lfd);
  if (fd < 0)
    return (void *)(intptr_t)fd;
  char buf[4096];
  ssize_t n;
  while ((n = weft_read(fd, buf, sizeof buf)) > 0)
    if (weft_write(fd, buf, (size_t)n) != n)
      break;
  weft_close(fd);
  return NULL;
}

static int step_socket(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int lfd = weft_listen((struct sockaddr *)&sa, sizeof sa, 16, 0);
  if (lfd < 0)
    return lfd;
  socklen_t sl = sizeof sa;
  getsockname(lfd, (struct sockaddr *)&sa, &sl);
  weft_co *srv;
  int rc = weft_spawn(&srv, echo_once, (void *)(intptr_t)lfd);
  if (rc) {
    weft_close(lfd);
    return rc;
  }
  int fd = weft_socket(AF_INET, SOCK_STREAM, 0);
  char out[10000], in[10000];
  for (size_t i = 0; i < sizeof out; i++)
    out[i] = (char)i;
  if (fd < 0) {
    rc = fd;
  } else if (!(rc = weft_connect(fd, (struct sockaddr *)&sa, sizeof sa))) {
    uint64_t deadline = weft_now_ns() + 30000000000ull;
    ssize_t w = weft_write_until(fd, out, sizeof out, deadline);
    ssize_t r = w == (ssize_t)sizeof out ? weft_read_full_until(fd, in, sizeof in, deadline) : w;
    if (w < 0 || r < 0)
      rc = (int)(w < 0 ? w : r);
    else if (r != (ssize_t)sizeof in || memcmp(in, out, sizeof in))
      rc = WRONG_DATA;
  }
  if (fd >= 0)
    weft_close(fd);
  if (rc) /* the echo coroutine may still wait in accept */
    weft_cancel(srv);
  weft_join(srv, NULL);
  return rc;
}

static int step_hosts(void) {
  struct addrinfo *res;
  int rc = weft_resolve("one.torture.test", "80", NULL, &res);
  if (rc)
    return rc;
  const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
  bool ok = res->ai_family == AF_INET && ntohl(sin->sin_addr.s_addr) == 0x7f000007;
  weft_freeaddrinfo(res);
  return ok ? 0 : WRONG_DATA;
}

/* WEFT_DNS_SERVERS points at a loopback port where nothing listens: the
 * lookup goes through c-ares and must end in a DNS error, never hang. */
static int step_cares(void) {
  struct addrinfo *res = NULL;
  int rc = weft_resolve_until("nowhere.torture.test", NULL, NULL, &res,
                              weft_now_ns() + 20000000000ull);
  if (rc == 0) {
    weft_freeaddrinfo(res);
    return WRONG_DATA;
  }
  if (rc == -ENOMEM)
    return rc; /* the injected failure: run it again */
  return rc <= -1100 && rc > -1200 ? 0 : rc; /* a WEFT_EDNS_* answer is the right one */
}

static char file_path[64];
static int step_file(void) {
  int fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return -errno;
  char buf[3000], back[3000];
  memset(buf, 'z', sizeof buf);
  ssize_t w = weft_file_write(fd, buf, sizeof buf, 0);
  ssize_t r = w == (ssize_t)sizeof buf ? weft_file_read(fd, back, sizeof back, 0) : w;
  close(fd);
  if (w < 0 || r < 0)
    return (int)(w < 0 ? w : r);
  return r == (ssize_t)sizeof back && !memcmp(buf, back, sizeof buf) ? 0 : WRONG_DATA;
}

static void *io_main(void *arg) {
  (void)arg;
  static const step_fn steps[] = {step_sleep, step_socket, step_hosts, step_cares, step_file,
                                  NULL};
  return (void *)run_steps(steps);
}

/* ---- http: the server and the client ---- */

static void hello(void *arg, const weft_http_server_request *req,
                  weft_http_server_response *resp) {
  (void)arg;
  (void)req;
  weft_http_server_body(resp, "hello", 5);
}

static weft_http_server *srv;
static char url[64];

static int step_server(void) {
  weft_http_server_config cfg = {.handler = hello};
  int rc = weft_http_server_start(&cfg, &srv);
  if (!rc)
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", weft_http_server_port(srv));
  return rc;
}

static int step_get(void) {
  for (int i = 0; i < 3; i++) {
    weft_http_response r = {0};
    weft_http_request req = {.url = url, .timeout_ms = 3000};
    cur_what = "weft_http_do (GET)";
    int rc = weft_http_do(NULL, &req, &r);
    cur_what = "";
    /* The server answers 500 when building its response ran out of
     * memory (its own failure, said as such): a failed step, retried. */
    if (!rc && r.status == 500)
      rc = WEFT_EHTTP_FAILED;
    else if (!rc && (r.status != 200 || r.body_len != 5 || memcmp(r.body, "hello", 5))) {
      fprintf(stderr, "GET: status %d, %zu bytes\n", r.status, r.body_len);
      rc = WRONG_DATA;
    }
    weft_http_response_free(&r);
    if (rc)
      return rc;
  }
  return 0;
}

static int step_client(void) {
  weft_http_client *c;
  weft_http_client_config cfg = {.max_conns = 2};
  int rc = weft_http_client_new(&cfg, &c);
  if (rc)
    return rc;
  weft_http_request req = {.url = url, .method = "POST", .body = "abc", .body_len = 3,
                           .timeout_ms = 3000};
  weft_http_response r = {0};
  cur_what = "weft_http_do (POST)";
  rc = weft_http_do(c, &req, &r);
  cur_what = "weft_http_client_free";
  if (!rc && r.status == 500) /* as in step_get */
    rc = WEFT_EHTTP_FAILED;
  else if (!rc && r.status != 200)
    rc = WRONG_DATA;
  weft_http_response_free(&r);
  int frc = weft_http_client_free(c);
  return rc ? rc : frc;
}

static int step_stop(void) {
  if (!srv)
    return 0;
  cur_what = "weft_http_server_stop";
  int rc = weft_http_server_stop(srv, 2000);
  cur_what = "";
  srv = NULL; /* stop frees it whatever it returns */
  return rc;
}

static void *http_main(void *arg) {
  (void)arg;
  srv = NULL;
  static const step_fn steps[] = {step_server, step_get, step_client, step_stop, NULL};
  intptr_t rc = run_steps(steps);
  if (srv) /* a later step gave up: the server must still stop */
    weft_http_server_stop(srv, 2000);
  return (void *)rc;
}

/* ---- the sweep ---- */

typedef struct outcome {
  uint64_t count, failures;
  int run_rc;       /* weft_run's */
  intptr_t result;  /* the scenario's */
  int step, rc1, rc2; /* the step that went wrong and its two results */
} outcome;

/* Run main_fn in a child with the Nth allocation failing (0: none).
 * Returns the child's wait status; *o is what it reported. */
static int child(void *(*main_fn)(void *), uint64_t n, outcome *o) {
  int p[2];
  CHECK(pipe(p) == 0);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    signal(SIGALRM, on_alarm);
    alarm(60); /* a hang dies of SIGALRM, saying where */
    weft__alloc_fail_at(n);
    outcome r = {0};
    void *res = NULL;
    r.run_rc = weft_run(NULL, main_fn, NULL, &res);
    r.result = (intptr_t)res;
    r.count = weft__alloc_count();
    r.failures = weft__alloc_failures();
    r.step = bad_step;
    r.rc1 = first_rc;
    r.rc2 = second_rc;
    weft__alloc_fail_at(0);
    if (write(p[1], &r, sizeof r) != sizeof r)
      _exit(99);
    close(p[1]);
    exit(0); /* LSan runs here under ASan */
  }
  close(p[1]);
  memset(o, 0, sizeof *o);
  ssize_t got = read(p[0], o, sizeof *o);
  close(p[0]);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (got != (ssize_t)sizeof *o && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return -1;
  return status;
}

static bool judge(uint64_t n, int status, const outcome *o) {
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status))
      fprintf(stderr, "N=%llu: the child died of signal %d%s\n", (unsigned long long)n,
              WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (a hang)" : "");
    else
      fprintf(stderr, "N=%llu: the child exited %d (a leak, under LSan, or no report)\n",
              (unsigned long long)n, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return false;
  }
  if (o->run_rc) { /* weft_run could not start: it must say why */
    if (o->run_rc > 0 || o->run_rc == WEFT_EDEADLOCK ||
        !strcmp(weft_strerror(o->run_rc), "unknown error")) {
      fprintf(stderr, "N=%llu: weft_run returned %d\n", (unsigned long long)n, o->run_rc);
      return false;
    }
    return true;
  }
  if (o->result) {
    static const char *why[] = {"", "a failed step failed again (no recovery)",
                                "a step failed without an error code", "wrong data"};
    fprintf(stderr, "N=%llu: step %d: %s (%d %s, then %d %s)\n", (unsigned long long)n, o->step,
            o->result >= 1 && o->result <= 3 ? why[o->result] : "?", o->rc1,
            weft_strerror(o->rc1), o->rc2, weft_strerror(o->rc2));
    return false;
  }
  return true;
}

static void sweep(void *(*main_fn)(void *)) {
  const char *only = getenv("WEFT_TORTURE_N"); /* replay one N here, to debug */
  if (only) {
    uint64_t n = strtoull(only, NULL, 10);
    weft__alloc_fail_at(n);
    void *res = NULL;
    int rc = weft_run(NULL, main_fn, NULL, &res);
    printf("N=%llu: weft_run %d, result %d, step %d (%d, %d), %llu allocations\n",
           (unsigned long long)n, rc, (int)(intptr_t)res, bad_step, first_rc, second_rc,
           (unsigned long long)weft__alloc_count());
    return;
  }
  outcome clean;
  int st = child(main_fn, 0, &clean);
  CHECK(judge(0, st, &clean));
  CHECK_EQ(clean.failures, 0);
  uint64_t t = clean.count;
  printf("clean run: %llu allocations\n", (unsigned long long)t);
  CHECK(t > 10);
  uint64_t stride = t + 1 > MAX_RUNS ? (t + 1 - 200) / (MAX_RUNS - 200) + 1 : 1;
  unsigned runs = 0, bad = 0, started = 0, injected = 0;
  /* WEFT_TORTURE_FROM / _TO narrow the sweep, to debug. */
  uint64_t from = getenv("WEFT_TORTURE_FROM") ? strtoull(getenv("WEFT_TORTURE_FROM"), NULL, 10) : 1;
  uint64_t to = getenv("WEFT_TORTURE_TO") ? strtoull(getenv("WEFT_TORTURE_TO"), NULL, 10) : t + 1;
  for (uint64_t n = from; n <= to; n++) {
    if (stride > 1 && n > 100 && n + 100 <= t && n % stride)
      continue;
    outcome o;
    st = child(main_fn, n, &o);
    runs++;
    if (!judge(n, st, &o))
      bad++;
    if (!o.run_rc)
      started++;
    injected += o.failures > 0;
  }
  printf("%u runs (N = 1..%llu, stride %llu): %u failed, weft_run started in %u, "
         "a failure was injected in %u\n",
         runs, (unsigned long long)t + 1, (unsigned long long)stride, bad, started, injected);
  CHECK_EQ(bad, 0);
  CHECK(injected + 2 >= runs); /* the counting is deterministic enough to hit each N */
}

static void sched_case(void) { sweep(sched_main); }

static char hosts_path[64];
static void io_case(void) {
  strcpy(hosts_path, "/tmp/weft-torture-hosts-XXXXXX");
  int fd = mkstemp(hosts_path);
  CHECK(fd >= 0);
  CHECK(write(fd, "127.0.0.7 one.torture.test\n", 27) == 27);
  close(fd);
  strcpy(file_path, "/tmp/weft-torture-file-XXXXXX");
  fd = mkstemp(file_path);
  CHECK(fd >= 0);
  close(fd);
  setenv("WEFT_HOSTS_FILE", hosts_path, 1);
  setenv("WEFT_DNS_SERVERS", "127.0.0.1:1", 1);
  sweep(io_main);
  unlink(hosts_path);
  unlink(file_path);
}

static void http_case(void) { sweep(http_main); }

int main(int argc, char **argv) {
  static const test_case cases[] = {
      {"sched", sched_case}, {"io", io_case}, {"http", http_case}, {NULL, NULL}};
  signal(SIGPIPE, SIG_IGN);
  return test_main(argc, argv, cases);
}
