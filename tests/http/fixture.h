/*
 * fixture.h - HTTP servers for the http tests, on loopback ports of their
 * own: weft-test-httpd (tests/http/httpd.c, the project's HTTP/1.1 test
 * server, every endpoint listed there) and nginx (HTTP/1.1, h2 over TLS
 * with a self-signed certificate, h2c with prior knowledge).
 * Header-only, static functions, for tests built with tests/check.h: a
 * failure CHECKs (exit 1); a missing nginx or openssl skips (exit 77).
 *
 *   httpd_fixture h = {0};          // h.workers = 4; for --workers 4
 *   httpd_start(&h);                // h.port, h.url "http://127.0.0.1:N"
 *   ... weft_run(...) fetching h.url + "/bytes/100" ...
 *   httpd_stop(&h);                 // CHECKs that it exited 0
 *
 *   nginx_fixture n = {0};
 *   nginx_start(&n, true);          // n.port, n.url "https://127.0.0.1:N",
 *                                   // n.ca_path (CA file for verification)
 *   nginx_start(&n, false);         // n.url "http://...", n.h2c_port/h2c_url
 *   nginx_stop(&n);                 // stops it and removes its directory
 *
 * Call them outside coroutines (before or after weft_run) or, if you
 * must, inside one: they block the calling thread for the moment a server
 * takes to start or stop. Children are started with fork + exec only
 * (async-signal-safe in a threaded process), and every descriptor the
 * fixture keeps is close-on-exec, so one server never holds another's
 * pipe.
 *
 * Lifetime when a test dies: the httpd reads its stdin, a pipe whose
 * write end only the test holds, and exits when it closes, however the
 * test ends. nginx cannot do that, so it is killed from an atexit handler
 * (a failed CHECK exits), and, when started from the main thread, by
 * PR_SET_PDEATHSIG as well (which fires when the *thread* that forked
 * exits, hence main thread only).
 *
 * Sizes: weft-test-httpd serves thousands of connections at once (it
 * raises its RLIMIT_NOFILE; call fixture_raise_nofile() for the test's
 * side). Under TSan keep the connections alive at once below ~8000: TSan
 * dies past 8128 threads and fibers, and each connection is a coroutine.
 *
 * Body patterns, for checking what arrives: weft-test-httpd's generated
 * bodies and nginx's small.txt are byte i = 'a' + i % 26
 * (httpd_pattern_byte); nginx's big.bin (8 MiB) is nginx_big_byte(i),
 * whose period is the whole file, so a lost or repeated piece shows.
 */
#ifndef WEFT_TESTS_HTTP_FIXTURE_H
#define WEFT_TESTS_HTTP_FIXTURE_H

#ifndef _GNU_SOURCE
#error "fixture.h needs _GNU_SOURCE (pipe2, mkdtemp; weft_test() defines it)"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"

#ifndef WEFT_TEST_HTTPD
#error "WEFT_TEST_HTTPD must name the weft-test-httpd executable (set in tests/http/CMakeLists.txt)"
#endif

#define FIXTURE_SKIP 77
#define NGINX_BIN "/usr/sbin/nginx"
#define OPENSSL_BIN "/usr/bin/openssl"
#define NGINX_SMALL_LEN 100u
#define NGINX_BIG_LEN (8u << 20)

static inline char httpd_pattern_byte(uint64_t i) { return (char)('a' + i % 26); }

static inline unsigned char nginx_big_byte(uint64_t i) {
  return (unsigned char)(((uint32_t)i * 2654435761u) >> 24 ^ (uint32_t)i);
}

/* ---- shared helpers ------------------------------------------------------------ */

static inline uint64_t fixture_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Raise this process's RLIMIT_NOFILE to its hard limit (tests that open
 * thousands of connections need it too, not only the server). */
static inline void fixture_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* A TCP port free on 127.0.0.1 now (someone may take it before we use
 * it: callers retry). */
static inline uint16_t fixture_free_tcp_port(void) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(s >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &l), 0);
  close(s);
  return ntohs(a.sin_port);
}

static inline bool fixture_port_accepts(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* waitpid with a deadline: true when pid exited (status stored). */
static inline bool fixture_wait_pid(pid_t pid, int *status, uint64_t timeout_ms) {
  uint64_t end = fixture_now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return true;
    if (r < 0 && errno != EINTR)
      return true; /* not our child any more: nothing to wait for */
    if (fixture_now_ms() >= end)
      return false;
    usleep(5000);
  }
}

/* Run argv (full path in argv[0]) to its end with stdout and stderr
 * appended to log (if not NULL); its exit status, or -1. */
static inline int fixture_run(char *const argv[], const char *log) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, 0);
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void fixture_dump(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  char line[512];
  fprintf(stderr, "---- %s\n", path);
  while (fgets(line, sizeof line, f))
    fputs(line, stderr);
  fclose(f);
}

/* ---- weft-test-httpd -------------------------------------------------------------- */

typedef struct httpd_fixture {
  unsigned workers; /* in: --workers (0: WEFT_WORKERS, else the CPUs) */
  pid_t pid;
  int stdin_fd;     /* write end of the server's stdin: closing it stops it */
  uint16_t port;
  char url[64];     /* "http://127.0.0.1:PORT", no trailing slash */
} httpd_fixture;

/* The weft-test-httpd to run: $WEFT_TEST_HTTPD, else the build's. */
static inline const char *httpd_path(void) {
  const char *p = getenv("WEFT_TEST_HTTPD");
  return p && *p ? p : WEFT_TEST_HTTPD;
}

/* Start weft-test-httpd on an ephemeral port and wait for its "port N"
 * line (it listens before it prints). */
static inline void httpd_start(httpd_fixture *f) {
  int in[2], out[2];
  CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
  CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
  char workers[16];
  snprintf(workers, sizeof workers, "%u", f->workers);
  char *argv[] = {(char *)httpd_path(), "--port", "0", "--workers", workers, NULL};
  f->pid = fork();
  CHECK(f->pid >= 0);
  if (f->pid == 0) {
    /* dup2 leaves the copies without close-on-exec; the originals go. */
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
      _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  f->stdin_fd = in[1];
  /* Read the first line; sanitizer builds start slowly, hence 60 s. */
  char line[64];
  size_t len = 0;
  uint64_t end = fixture_now_ms() + 60000;
  while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
    uint64_t now = fixture_now_ms();
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    int pr = now < end ? poll(&p, 1, (int)(end - now)) : 0;
    if (pr < 0 && errno == EINTR)
      continue;
    ssize_t n = pr > 0 ? read(out[0], line + len, sizeof line - 1 - len) : -1;
    if (n <= 0) {
      fprintf(stderr, "fixture: %s did not print its port\n", argv[0]);
      kill(f->pid, SIGKILL);
      waitpid(f->pid, NULL, 0);
      CHECK(!"weft-test-httpd did not start");
    }
    len += (size_t)n;
  }
  line[len] = 0;
  close(out[0]);
  unsigned port = 0;
  CHECK(sscanf(line, "port %u", &port) == 1 && port > 0 && port < 65536);
  f->port = (uint16_t)port;
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", port);
}

/* Stop it: close its stdin, wait for a clean exit (status 0: it closed
 * every connection and, in sanitizer builds, leaked nothing and raced
 * nowhere), else kill it and fail. */
static inline void httpd_stop(httpd_fixture *f) {
  if (f->pid <= 0)
    return;
  close(f->stdin_fd);
  int st = 0;
  if (!fixture_wait_pid(f->pid, &st, 60000)) {
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    f->pid = 0;
    CHECK(!"weft-test-httpd did not exit within 60 s of its stdin closing");
  }
  f->pid = 0;
  if (WIFSIGNALED(st))
    fprintf(stderr, "fixture: weft-test-httpd killed by signal %d\n", WTERMSIG(st));
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
}

/* ---- nginx ------------------------------------------------------------------------- */

typedef struct nginx_fixture {
  bool tls;
  pid_t pid;
  uint16_t port;     /* tls: HTTPS, ALPN h2 or http/1.1; else HTTP/1.1 */
  uint16_t h2c_port; /* without tls: HTTP/2 prior knowledge only; else 0 */
  char dir[64];      /* its prefix: config, logs, temp, docroot, cert */
  char docroot[96];  /* small.txt (100 bytes), big.bin (8 MiB) */
  char ca_path[96];  /* tls: the self-signed certificate (CN=localhost,
                        SAN localhost, *.weft.test, 127.0.0.1): a CA file */
  char key_path[96];
  char error_log[96];
  char url[64];      /* "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT" */
  char h2c_url[64];  /* "http://127.0.0.1:H2C_PORT", or "" */
} nginx_fixture;

/* Servers to kill if the test exits without stopping them. */
enum { NGINX_MAX_LIVE = 8 };
static struct {
  pid_t pid;
  char dir[64];
} nginx_live[NGINX_MAX_LIVE];

static inline int nginx_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static inline void nginx_rm_dir(const char *dir) {
  if (dir[0])
    nftw(dir, nginx_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void nginx_atexit(void) {
  for (int i = 0; i < NGINX_MAX_LIVE; i++)
    if (nginx_live[i].pid > 0) {
      kill(nginx_live[i].pid, SIGKILL);
      waitpid(nginx_live[i].pid, NULL, 0);
      nginx_rm_dir(nginx_live[i].dir);
      nginx_live[i].pid = 0;
    }
}

static inline void nginx_track(pid_t pid, const char *dir) {
  static bool registered;
  if (!registered) {
    atexit(nginx_atexit);
    registered = true;
  }
  for (int i = 0; i < NGINX_MAX_LIVE; i++)
    if (nginx_live[i].pid <= 0) {
      nginx_live[i].pid = pid;
      snprintf(nginx_live[i].dir, sizeof nginx_live[i].dir, "%s", dir);
      return;
    }
}

static inline void nginx_untrack(pid_t pid) {
  for (int i = 0; i < NGINX_MAX_LIVE; i++)
    if (nginx_live[i].pid == pid)
      nginx_live[i].pid = 0;
}

static inline void nginx_write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  CHECK_EQ(fwrite(data, 1, len, f), len);
  CHECK_EQ(fclose(f), 0);
}

/* The docroot's files and, for tls, the certificate. */
static inline void nginx_prepare(nginx_fixture *f) {
  char path[160];
  snprintf(f->docroot, sizeof f->docroot, "%s/www", f->dir);
  CHECK_EQ(mkdir(f->docroot, 0755), 0);
  char small[NGINX_SMALL_LEN];
  for (size_t i = 0; i < sizeof small; i++)
    small[i] = httpd_pattern_byte(i);
  snprintf(path, sizeof path, "%s/small.txt", f->docroot);
  nginx_write_file(path, small, sizeof small);
  unsigned char *big = malloc(NGINX_BIG_LEN);
  CHECK(big != NULL);
  for (size_t i = 0; i < NGINX_BIG_LEN; i++)
    big[i] = nginx_big_byte(i);
  snprintf(path, sizeof path, "%s/big.bin", f->docroot);
  nginx_write_file(path, big, NGINX_BIG_LEN);
  free(big);
  f->ca_path[0] = f->key_path[0] = 0;
  if (!f->tls)
    return;
  snprintf(f->ca_path, sizeof f->ca_path, "%s/cert.pem", f->dir);
  snprintf(f->key_path, sizeof f->key_path, "%s/key.pem", f->dir);
  char log[128];
  snprintf(log, sizeof log, "%s/openssl.log", f->dir);
  char *argv[] = {OPENSSL_BIN, "req", "-x509", "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", f->key_path, "-out", f->ca_path, "-days", "3650",
                  "-subj", "/CN=localhost",
                  "-addext", "subjectAltName=DNS:localhost,DNS:*.weft.test,IP:127.0.0.1",
                  NULL};
  if (fixture_run(argv, log) != 0) {
    fixture_dump(log);
    CHECK(!"openssl could not make the certificate");
  }
}

static inline void nginx_write_config(nginx_fixture *f) {
  char path[128];
  snprintf(path, sizeof path, "%s/nginx.conf", f->dir);
  FILE *c = fopen(path, "w");
  CHECK(c != NULL);
  const char *d = f->dir;
  fprintf(c,
          "daemon off;\n"
          "master_process off;\n"
          "worker_processes 1;\n"
          "worker_rlimit_nofile 16384;\n"
          "error_log %s/error.log warn;\n"
          "pid %s/nginx.pid;\n"
          "events { worker_connections 8192; }\n"
          "http {\n"
          "  access_log off;\n"
          "  client_body_temp_path %s/client_temp;\n"
          "  proxy_temp_path %s/proxy_temp;\n"
          "  fastcgi_temp_path %s/fastcgi_temp;\n"
          "  uwsgi_temp_path %s/uwsgi_temp;\n"
          "  scgi_temp_path %s/scgi_temp;\n"
          "  types { text/plain txt; application/octet-stream bin; }\n"
          "  default_type application/octet-stream;\n"
          "  keepalive_requests 100000;\n"
          "  sendfile on;\n"
          "  server {\n"
          "    server_name localhost;\n"
          "    root %s;\n",
          d, d, d, d, d, d, d, f->docroot);
  if (f->tls)
    fprintf(c,
            "    listen 127.0.0.1:%u ssl http2;\n"
            "    ssl_certificate %s;\n"
            "    ssl_certificate_key %s;\n",
            f->port, f->ca_path, f->key_path);
  else
    fprintf(c,
            "    listen 127.0.0.1:%u;\n"
            "    listen 127.0.0.1:%u http2;\n",
            f->port, f->h2c_port);
  fprintf(c, "  }\n}\n");
  CHECK_EQ(fclose(c), 0);
}

/* One attempt on fresh ports: false if nginx exited (a port was taken
 * between our probe and its bind). */
static inline bool nginx_spawn(nginx_fixture *f) {
  f->port = fixture_free_tcp_port();
  f->h2c_port = f->tls ? 0 : fixture_free_tcp_port();
  if (f->h2c_port == f->port)
    return false;
  nginx_write_config(f);
  char conf[128];
  snprintf(conf, sizeof conf, "%s/nginx.conf", f->dir);
  char *argv[] = {NGINX_BIN, "-p", f->dir, "-c", conf, "-e", f->error_log, NULL};
  pid_t parent = getpid();
  bool main_thread = syscall(SYS_gettid) == parent;
  f->pid = fork();
  CHECK(f->pid >= 0);
  if (f->pid == 0) {
    if (main_thread) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(126);
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  nginx_track(f->pid, f->dir);
  uint64_t end = fixture_now_ms() + 10000;
  while (fixture_now_ms() < end) {
    int st;
    if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
      nginx_untrack(f->pid);
      f->pid = 0;
      return false;
    }
    if (fixture_port_accepts(f->port) && (!f->h2c_port || fixture_port_accepts(f->h2c_port)))
      return true;
    usleep(20000);
  }
  kill(f->pid, SIGKILL);
  waitpid(f->pid, NULL, 0);
  nginx_untrack(f->pid);
  f->pid = 0;
  return false;
}

/* Start nginx on a fresh directory under /tmp: with tls, HTTPS (h2 or
 * http/1.1 by ALPN) on f->port with a new self-signed certificate
 * (f->ca_path); without, HTTP/1.1 on f->port and h2c (prior knowledge)
 * on f->h2c_port. Skips the test (exit 77) if nginx or, for tls, openssl
 * is not installed. */
static inline void nginx_start(nginx_fixture *f, bool tls) {
  if (access(NGINX_BIN, X_OK) != 0 || (tls && access(OPENSSL_BIN, X_OK) != 0)) {
    printf("skipped: %s is not installed (tools/deps installs it)\n",
           access(NGINX_BIN, X_OK) != 0 ? NGINX_BIN : OPENSSL_BIN);
    exit(FIXTURE_SKIP);
  }
  memset(f, 0, sizeof *f);
  f->tls = tls;
  snprintf(f->dir, sizeof f->dir, "/tmp/weft-nginx-XXXXXX");
  CHECK(mkdtemp(f->dir) != NULL);
  snprintf(f->error_log, sizeof f->error_log, "%s/error.log", f->dir);
  nginx_prepare(f);
  for (int attempt = 0; attempt < 8; attempt++) {
    if (nginx_spawn(f)) {
      snprintf(f->url, sizeof f->url, "%s://127.0.0.1:%u", tls ? "https" : "http", f->port);
      if (f->h2c_port)
        snprintf(f->h2c_url, sizeof f->h2c_url, "http://127.0.0.1:%u", f->h2c_port);
      return;
    }
  }
  fixture_dump(f->error_log);
  nginx_rm_dir(f->dir);
  CHECK(!"nginx would not start");
}

/* Stop nginx (SIGQUIT: graceful; then SIGTERM, SIGKILL if it lingers)
 * and remove its directory. Harmless on a stopped or zeroed fixture. */
static inline void nginx_stop(nginx_fixture *f) {
  if (f->pid > 0) {
    int st;
    kill(f->pid, SIGQUIT);
    if (!fixture_wait_pid(f->pid, &st, 5000)) {
      kill(f->pid, SIGTERM);
      if (!fixture_wait_pid(f->pid, &st, 5000)) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &st, 0);
      }
    }
    nginx_untrack(f->pid);
    f->pid = 0;
  }
  nginx_rm_dir(f->dir);
  f->dir[0] = 0;
}

#endif
