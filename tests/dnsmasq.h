/*
 * dnsmasq.h - a dnsmasq of the test's own on a loopback port, for tests
 * that resolve names through a real DNS server (tests/io, tests/http).
 * It serves *.weft.test (unknown names there are NXDOMAIN, answers carry
 * a 60 s TTL) plus whatever records the test passes, logs every query,
 * and WEFT_DNS_SERVERS is pointed at it. Header-only: include it once.
 */
#ifndef WEFT_TESTS_DNSMASQ_H
#define WEFT_TESTS_DNSMASQ_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static pid_t dnsmasq_pid;
static uint16_t dns_port;

/* Can a socket of this type bind 127.0.0.1:port now? */
static bool port_free(int type, uint16_t port) {
  int s = socket(AF_INET, type, 0);
  if (s < 0)
    return false;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

/* A port dnsmasq can listen on, UDP and TCP both. Picked below the
 * ephemeral range (32768 and up on Linux), where a kernel-chosen UDP port
 * would be: with a load test's thousands of TCP connections on the
 * machine, the same number was often taken for TCP, which dnsmasq binds
 * too. */
static uint16_t free_udp_port(void) {
  static unsigned seed;
  if (!seed)
    seed = (unsigned)getpid() * 2654435761u;
  for (int i = 0; i < 1000; i++) {
    seed = seed * 1103515245u + 12345u;
    uint16_t port = (uint16_t)(20000 + (seed >> 8) % 12000);
    if (port_free(SOCK_DGRAM, port) && port_free(SOCK_STREAM, port))
      return port;
  }
  CHECK(!"no free port for dnsmasq in 20000-31999");
  return 0;
}

static bool dnsmasq_up(void) {
  for (int i = 0; i < 200; i++) { /* up to 10 s */
    int st;
    if (waitpid(dnsmasq_pid, &st, WNOHANG) == dnsmasq_pid)
      return false; /* it exited: the port was taken */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(dns_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    if (ok)
      return true;
    usleep(50000);
  }
  kill(dnsmasq_pid, SIGKILL);
  waitpid(dnsmasq_pid, NULL, 0);
  return false;
}

static char log_path[64], log_opt[96];

/* How many queries for `name` reached dnsmasq (from its query log). */
static int queries_for(const char *name) {
  char want[128], line[512];
  snprintf(want, sizeof want, "query[A] %s ", name);
  FILE *f = fopen(log_path, "r");
  int n = 0;
  while (f && fgets(line, sizeof line, f))
    n += strstr(line, want) != NULL;
  if (f)
    fclose(f);
  return n;
}

static bool spawn_dnsmasq(char *const *records, int nrecords) {
  snprintf(log_path, sizeof log_path, "/tmp/weft-dnsmasq-%d.log", (int)getpid());
  snprintf(log_opt, sizeof log_opt, "--log-facility=%s", log_path);
  unlink(log_path);
  const char *bin = "/usr/sbin/dnsmasq";
  if (access(bin, X_OK) != 0) {
    printf("skipped: %s is not installed (tools/deps installs it)\n", bin);
    exit(77); /* CTest: skipped */
  }
  dns_port = free_udp_port();
  char port[32];
  snprintf(port, sizeof port, "--port=%u", dns_port);
  char **argv = calloc((size_t)nrecords + 16, sizeof *argv);
  int n = 0;
  argv[n++] = (char *)bin;
  argv[n++] = "--keep-in-foreground";
  argv[n++] = "--no-resolv";
  argv[n++] = "--no-hosts";
  argv[n++] = "--conf-file=/dev/null";
  argv[n++] = "--listen-address=127.0.0.1";
  argv[n++] = "--bind-interfaces";
  argv[n++] = "--user=root";
  argv[n++] = "--pid-file=";
  argv[n++] = port;
  argv[n++] = "--cache-size=0";
  argv[n++] = "--local=/weft.test/"; /* ours: unknown names are NXDOMAIN */
  argv[n++] = "--local-ttl=60";      /* answers weft may cache */
  argv[n++] = "--log-queries";
  argv[n++] = log_opt;
  for (int i = 0; i < nrecords; i++)
    argv[n++] = records[i];
  argv[n] = NULL;
  dnsmasq_pid = fork();
  CHECK(dnsmasq_pid >= 0);
  if (dnsmasq_pid == 0) {
    execv(bin, argv);
    _exit(127);
  }
  free(argv);
  if (!dnsmasq_up())
    return false;
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", dns_port);
  setenv("WEFT_DNS_SERVERS", servers, 1);
  return true;
}

/* Start dnsmasq on a free port with extra arguments (e.g.
 * "--host-record=a.weft.test,127.0.0.1"); another process may take the
 * port between our probe and dnsmasq's bind (tests run in parallel), so
 * retry on a new port until dnsmasq is up (it listens on TCP too: connect
 * says when). */
static void start_dnsmasq_with(char *const *records, int nrecords) {
  for (int attempt = 0; attempt < 16; attempt++)
    if (spawn_dnsmasq(records, nrecords))
      return;
  CHECK(!"dnsmasq would not start");
}

static void stop_dnsmasq(void) {
  if (dnsmasq_pid > 0) {
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = 0;
  }
  unlink(log_path);
}

#endif
