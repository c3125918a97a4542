/*
 * bench_proc.h - the outside processes that weft-bench (weft-bench.c) and
 * its raw C peer (peers/c/weft-bench-c.c) share, so both sides of a
 * comparison set them up the same way:
 *
 *   - weft-echo-load (echo_load.c), the load client of the echo benchmark:
 *     bp_echo_load() finds it (env WEFT_ECHO_LOAD, else next to the running
 *     binary, from /proc/self/exe), runs it against 127.0.0.1:PORT and
 *     reads back its JSON line. WEFT_ECHO_SECS (default 3) and
 *     WEFT_ECHO_LOAD_THREADS (default 1) pass -d and -t on to it.
 *   - dnsmasq, the server of the dns benchmark: bp_dns_start() uses the
 *     server named by env WEFT_BENCH_DNS ("127.0.0.1:PORT"; compare starts
 *     one for all sides) or starts /usr/sbin/dnsmasq on a free loopback
 *     port itself, as tests/io/test_dns.c does, answering every name under
 *     bench.test with BP_DNS_ANSWER (A only; AAAA is NODATA).
 *   - nginx, the server of the fetch benchmarks: bp_http_start() uses the
 *     server named by env WEFT_BENCH_HTTP ("http://127.0.0.1:PORT"; compare
 *     starts one for all sides) or starts /usr/sbin/nginx itself on a free
 *     loopback port, from a config it writes into a fresh /tmp/weft-bench-
 *     nginx-XXXXXX (removed at exit): one worker process, no master,
 *     HTTP/1.1, keep-alive (keepalive_requests 1,000,000, 75 s), no access
 *     log, serving BP_HTTP_PATH, BP_HTTP_LEN bytes of bp_http_byte(i) =
 *     'a' + i % 26. compare, the Go peer and the Python peer write the same
 *     config and file when they start one (keep the four in step).
 *
 * Plain C and POSIX only (the C peer links no weft). Header-only: each
 * program includes it once.
 */
#ifndef WEFT_BENCH_PROC_H
#define WEFT_BENCH_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- the echo load client ------------------------------------------------- */

enum { BP_ECHO_CONNS = 64, BP_ECHO_MSG = 64 };

typedef struct bp_load {
  double req_per_s, secs;
  long long round_trips;
  int threads;
} bp_load;

static void bp_fail(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", program_invocation_short_name);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(1);
}

static const char *bp_echo_load_path(void) {
  static char path[PATH_MAX + 32];
  const char *env = getenv("WEFT_ECHO_LOAD");
  if (env && *env) {
    if (access(env, X_OK))
      bp_fail("WEFT_ECHO_LOAD=%s is not executable", env);
    return env;
  }
  ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
  if (n <= 0)
    bp_fail("cannot read /proc/self/exe%s", "");
  path[n] = 0;
  char *slash = strrchr(path, '/');
  strcpy(slash ? slash + 1 : path, "weft-echo-load");
  if (access(path, X_OK))
    bp_fail("%s not found (build it, or set WEFT_ECHO_LOAD)", path);
  return path;
}

static double bp_field(const char *line, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(line, pat);
  if (!p)
    bp_fail("no %s in weft-echo-load's output", key);
  return strtod(p + strlen(pat), NULL);
}

/* A loopback port free at this moment for type (SOCK_DGRAM, SOCK_STREAM):
 * another process may take it before the server binds, so callers retry. */
static uint16_t bp_free_port(int type) {
  int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
      getsockname(s, (struct sockaddr *)&a, &l))
    bp_fail("probing for a free port: %s", strerror(errno));
  close(s);
  return ntohs(a.sin_port);
}

/* Run argv[0] (a path) with argv, its standard output into out (at most
 * cap - 1 bytes, NUL-terminated); 0 if it exited 0, else -1. Exits the
 * program if it cannot be started. */
static int bp_run(char *const argv[], char *out, size_t cap) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC))
    bp_fail("pipe: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (rc)
    bp_fail("cannot run %s", argv[0]);
  size_t len = 0;
  ssize_t r;
  while ((r = read(pfd[0], out + len, cap - 1 - len)) > 0 || (r < 0 && errno == EINTR)) {
    if (r > 0)
      len += (size_t)r;
    if (len == cap - 1) { /* keep the end: drain the rest */
      char sink[4096];
      while (read(pfd[0], sink, sizeof sink) > 0)
        ;
      break;
    }
  }
  out[len] = 0;
  close(pfd[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* wrk (Debian's) against url with conns connections and threads threads
 * for secs seconds: its Requests/sec, or the program exits. */
static double bp_wrk(const char *url, int conns, int threads, int secs) {
  const char *bin = "/usr/bin/wrk";
  if (access(bin, X_OK))
    bp_fail("%s is not installed (tools/deps installs it)", bin);
  char c[16], t[16], d[16];
  snprintf(c, sizeof c, "%d", conns);
  snprintf(t, sizeof t, "%d", threads);
  snprintf(d, sizeof d, "%ds", secs);
  char *argv[] = {(char *)bin, "-c", c, "-t", t, "-d", d, (char *)url, NULL};
  static char out[8192];
  if (bp_run(argv, out, sizeof out))
    bp_fail("wrk failed: %s", out);
  const char *p = strstr(out, "Requests/sec:");
  if (!p)
    bp_fail("no Requests/sec in wrk's output: %s", out);
  if (strstr(out, "Non-2xx") || strstr(out, "Socket errors"))
    bp_fail("wrk saw errors: %s", out);
  return strtod(p + 13, NULL);
}

/* Seconds for stress_rps and server_rps: WEFT_BENCH_SECS, default 5. */
static int bp_secs(void) {
  const char *e = getenv("WEFT_BENCH_SECS");
  int s = e ? atoi(e) : 0;
  return s > 0 ? s : 5;
}

/* Run the load client against 127.0.0.1:port with conns connections of
 * msg-byte messages; exits the program if it fails. */
static bp_load bp_echo_load(int port, int conns, int msg) {
  const char *bin = bp_echo_load_path();
  const char *secs = getenv("WEFT_ECHO_SECS");
  const char *threads = getenv("WEFT_ECHO_LOAD_THREADS");
  char p[16], c[16], m[16];
  snprintf(p, sizeof p, "%d", port);
  snprintf(c, sizeof c, "%d", conns);
  snprintf(m, sizeof m, "%d", msg);
  char *argv[16];
  int n = 0;
  argv[n++] = (char *)bin;
  argv[n++] = "-p", argv[n++] = p;
  argv[n++] = "-c", argv[n++] = c;
  argv[n++] = "-m", argv[n++] = m;
  if (secs && *secs)
    argv[n++] = "-d", argv[n++] = (char *)secs;
  if (threads && *threads)
    argv[n++] = "-t", argv[n++] = (char *)threads;
  argv[n] = NULL;

  char line[1024];
  if (bp_run(argv, line, sizeof line))
    bp_fail("weft-echo-load failed%s", line[0] ? "" : " (no output)");
  bp_load l = {.req_per_s = bp_field(line, "req_per_s"),
               .secs = bp_field(line, "secs"),
               .round_trips = (long long)bp_field(line, "round_trips"),
               .threads = (int)bp_field(line, "threads")};
  return l;
}

/* ---- dnsmasq -------------------------------------------------------------------- */

#define BP_DNS_DOMAIN "bench.test"
#define BP_DNS_ANSWER "127.0.0.9" /* not in any /etc/hosts: proof it came from dnsmasq */

static pid_t bp_dns_pid;

static bool bp_dns_up(uint16_t port) {
  for (int i = 0; i < 200; i++) { /* up to 10 s */
    int st;
    if (waitpid(bp_dns_pid, &st, WNOHANG) == bp_dns_pid)
      return false; /* it exited: the port was taken */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    if (ok) {
      usleep(20000); /* a port another process holds makes dnsmasq exit */
      if (waitpid(bp_dns_pid, &st, WNOHANG) == bp_dns_pid)
        return false;
      return true;
    }
    usleep(50000);
  }
  kill(bp_dns_pid, SIGKILL);
  waitpid(bp_dns_pid, NULL, 0);
  return false;
}

static void bp_dns_stop(void) {
  if (bp_dns_pid > 0) {
    kill(bp_dns_pid, SIGTERM);
    waitpid(bp_dns_pid, NULL, 0);
    bp_dns_pid = 0;
  }
}

/* The server's address into *sa: WEFT_BENCH_DNS, or a dnsmasq of our own
 * (stopped at exit). Its text form ("127.0.0.1:PORT") into text. */
static void bp_dns_start(struct sockaddr_in *sa, char *text, size_t text_len) {
  const char *env = getenv("WEFT_BENCH_DNS");
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  if (env && *env) {
    char host[64];
    unsigned port;
    const char *colon = strrchr(env, ':');
    if (!colon || (size_t)(colon - env) >= sizeof host ||
        sscanf(colon + 1, "%u", &port) != 1 || port < 1 || port > 65535)
      bp_fail("WEFT_BENCH_DNS=%s: expected 127.0.0.1:PORT", env);
    memcpy(host, env, (size_t)(colon - env));
    host[colon - env] = 0;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
      bp_fail("WEFT_BENCH_DNS=%s: expected an IPv4 address", env);
    sa->sin_port = htons((uint16_t)port);
    snprintf(text, text_len, "%s", env);
    return;
  }
  const char *bin = "/usr/sbin/dnsmasq";
  if (access(bin, X_OK))
    bp_fail("%s is not installed (tools/deps installs it), and WEFT_BENCH_DNS is not set", bin);
  for (int attempt = 0; attempt < 8; attempt++) {
    uint16_t port = bp_free_port(SOCK_DGRAM);
    char port_opt[32];
    snprintf(port_opt, sizeof port_opt, "--port=%u", port);
    char *argv[] = {(char *)bin, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                    "--conf-file=/dev/null", "--listen-address=127.0.0.1",
                    "--bind-interfaces", "--user=root", "--pid-file=", port_opt,
                    "--cache-size=0", "--address=/" BP_DNS_DOMAIN "/" BP_DNS_ANSWER,
                    NULL};
    posix_spawn_file_actions_t fa; /* not our stdout: it may be a pipe */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&bp_dns_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
      bp_fail("cannot run %s", bin);
    if (bp_dns_up(port)) {
      atexit(bp_dns_stop);
      sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa->sin_port = htons(port);
      snprintf(text, text_len, "127.0.0.1:%u", port);
      return;
    }
  }
  bp_fail("%s would not start", bin);
}

/* ---- nginx ------------------------------------------------------------------------ */

#define BP_HTTP_PATH "/100b.txt"
enum { BP_HTTP_LEN = 100 };

static inline char bp_http_byte(size_t i) { return (char)('a' + i % 26); }

static pid_t bp_http_pid;
static char bp_http_dir[64];

static int bp_http_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static void bp_http_stop(void) {
  if (bp_http_pid > 0) {
    kill(bp_http_pid, SIGTERM);
    waitpid(bp_http_pid, NULL, 0);
    bp_http_pid = 0;
  }
  if (bp_http_dir[0])
    nftw(bp_http_dir, bp_http_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  bp_http_dir[0] = 0;
}

static void bp_http_write_config(uint16_t port) {
  char path[128];
  snprintf(path, sizeof path, "%s/nginx.conf", bp_http_dir);
  FILE *c = fopen(path, "w");
  if (!c)
    bp_fail("cannot write %s", path);
  const char *d = bp_http_dir;
  fprintf(c,
          "daemon off;\n"
          "master_process off;\n"
          "worker_processes 1;\n"
          "error_log %s/error.log warn;\n"
          "pid %s/nginx.pid;\n"
          "events { worker_connections 4096; }\n"
          "http {\n"
          "  access_log off;\n"
          "  client_body_temp_path %s/tmp;\n"
          "  proxy_temp_path %s/tmp;\n"
          "  fastcgi_temp_path %s/tmp;\n"
          "  uwsgi_temp_path %s/tmp;\n"
          "  scgi_temp_path %s/tmp;\n"
          "  default_type text/plain;\n"
          "  keepalive_requests 1000000;\n"
          "  keepalive_timeout 75s;\n"
          "  server {\n"
          "    listen 127.0.0.1:%u;\n"
          "    root %s/www;\n"
          "  }\n"
          "}\n",
          d, d, d, d, d, d, d, port, d);
  if (fclose(c))
    bp_fail("cannot write %s", path);
}

/* Wait until nginx accepts on port: false if it exited first (the port
 * was taken) or took more than 10 s. */
static bool bp_http_up(uint16_t port) {
  for (int i = 0; i < 500; i++) {
    int st;
    if (waitpid(bp_http_pid, &st, WNOHANG) == bp_http_pid) {
      bp_http_pid = 0;
      return false;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    if (ok)
      return true;
    usleep(20000);
  }
  kill(bp_http_pid, SIGKILL);
  waitpid(bp_http_pid, NULL, 0);
  bp_http_pid = 0;
  return false;
}

/* The base URL ("http://127.0.0.1:PORT", no slash) into url: WEFT_BENCH_HTTP,
 * or an nginx of our own (stopped at exit). Fetch url + BP_HTTP_PATH. */
static void bp_http_start(char *url, size_t url_len) {
  const char *env = getenv("WEFT_BENCH_HTTP");
  if (env && *env) {
    size_t n = strlen(env);
    while (n && env[n - 1] == '/')
      n--;
    if (strncmp(env, "http://", 7) || n >= url_len)
      bp_fail("WEFT_BENCH_HTTP=%s: expected http://127.0.0.1:PORT", env);
    memcpy(url, env, n);
    url[n] = 0;
    return;
  }
  const char *bin = "/usr/sbin/nginx";
  if (access(bin, X_OK))
    bp_fail("%s is not installed (tools/deps installs it), and WEFT_BENCH_HTTP is not set", bin);
  snprintf(bp_http_dir, sizeof bp_http_dir, "/tmp/weft-bench-nginx-XXXXXX");
  if (!mkdtemp(bp_http_dir))
    bp_fail("mkdtemp: %s", strerror(errno));
  atexit(bp_http_stop);
  char path[128];
  snprintf(path, sizeof path, "%s/www", bp_http_dir);
  if (mkdir(path, 0755))
    bp_fail("mkdir: %s", strerror(errno));
  snprintf(path, sizeof path, "%s/www" BP_HTTP_PATH, bp_http_dir);
  FILE *f = fopen(path, "wb");
  if (!f)
    bp_fail("cannot write %s", path);
  for (size_t i = 0; i < BP_HTTP_LEN; i++)
    fputc(bp_http_byte(i), f);
  if (fclose(f))
    bp_fail("cannot write %s", path);
  snprintf(path, sizeof path, "%s/tmp", bp_http_dir);
  if (mkdir(path, 0755))
    bp_fail("mkdir: %s", strerror(errno));
  char conf[128], log[128];
  snprintf(conf, sizeof conf, "%s/nginx.conf", bp_http_dir);
  snprintf(log, sizeof log, "%s/error.log", bp_http_dir);
  bool main_thread = syscall(SYS_gettid) == getpid();
  for (int attempt = 0; attempt < 8; attempt++) {
    uint16_t port = bp_free_port(SOCK_STREAM);
    bp_http_write_config(port);
    char *argv[] = {(char *)bin, "-p", bp_http_dir, "-c", conf, "-e", log, NULL};
    pid_t parent = getpid();
    bp_http_pid = fork(); /* fork + exec: PR_SET_PDEATHSIG must be set in the child */
    if (bp_http_pid < 0)
      bp_fail("fork: %s", strerror(errno));
    if (bp_http_pid == 0) {
      if (main_thread) { /* killed if we die without running atexit */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
          _exit(126);
      }
      int null = open("/dev/null", O_RDWR);
      if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
      }
      execv(bin, argv);
      _exit(127);
    }
    if (bp_http_up(port)) {
      snprintf(url, url_len, "http://127.0.0.1:%u", port);
      return;
    }
  }
  FILE *e = fopen(log, "r"); /* why, before atexit removes it */
  if (e) {
    char line[512];
    while (fgets(line, sizeof line, e))
      fputs(line, stderr);
    fclose(e);
  }
  bp_fail("%s would not start", bin);
}

#endif
