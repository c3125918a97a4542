/*
 * echo_server.c - one coroutine per connection: each reads what its
 * client sends and writes it back. Blocking-style code; the poller wakes
 * a connection's coroutine when its socket is ready.
 *
 *   build/default/examples/echo_server [port]     (default 7777, loopback)
 *   then: nc 127.0.0.1 7777
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft/weft.h>

static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[4096];
  ssize_t n;
  while ((n = weft_read(fd, buf, sizeof buf)) > 0)
    if (weft_write(fd, buf, (size_t)n) < 0)
      break;
  weft_close(fd);
  return NULL;
}

static void *main_co(void *arg) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)(uintptr_t)arg),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int lfd = weft_listen((struct sockaddr *)&a, sizeof a, 1024, 0);
  if (lfd < 0) {
    fprintf(stderr, "echo_server: listen: %s\n", weft_strerror(lfd));
    return (void *)1;
  }
  printf("echo_server: listening on 127.0.0.1:%u\n", (unsigned)ntohs(a.sin_port));
  fflush(stdout);
  for (;;) {
    int fd = weft_accept(lfd, NULL, NULL);
    if (fd == -EMFILE || fd == -ENFILE) { /* out of fds: wait, keep serving */
      weft_sleep_ms(10);
      continue;
    }
    if (fd < 0) {
      fprintf(stderr, "echo_server: accept: %s\n", weft_strerror(fd));
      return (void *)1;
    }
    weft_spawn(NULL, serve, (void *)(intptr_t)fd);
  }
}

int main(int argc, char **argv) {
  long port = argc > 1 ? strtol(argv[1], NULL, 10) : 7777;
  if (port < 1 || port > 65535) {
    fprintf(stderr, "usage: echo_server [port]\n");
    return 2;
  }
  void *r;
  int rc = weft_run(NULL, main_co, (void *)(uintptr_t)port, &r);
  return rc || r ? 1 : 0;
}
