/*
 * fd.h - io's private interface between the poller (poller.c), fd waits
 * (fd.c) and the socket calls (socket.c).
 */
#ifndef WEFT_IO_FD_H
#define WEFT_IO_FD_H

#include <stdint.h>

#include "internal.h"

typedef struct weft__fdtab weft__fdtab;

/* What fd.c and socket.c need of a runtime's poller. */
typedef struct weft__poller_io {
  struct weft_runtime *rt;
  int epfd;
  weft__fdtab *tab;
} weft__poller_io;

/* The calling coroutine's poller, started on first use; NULL on a foreign
 * thread or failure (*err says which). */
weft__poller_io *weft__io_current(int *err);

weft__fdtab *weft__fdtab_new(void);
void weft__fdtab_free(weft__fdtab *t);
uint32_t weft__fd_ready_count(weft__poller_io *io, int fd, int dir);
/* Park until fd may be ready in dir (0 read, 1 write) after `seen` edges;
 * 0: try the syscall again; -EBADF (closed), -ECANCELED, -ETIMEDOUT. */
int weft__fd_wait(weft__poller_io *io, int fd, int dir, uint32_t seen,
                  uint64_t deadline_ns);
void weft__fd_event(weft__poller_io *io, uint64_t data, uint32_t events);
int weft__fd_close(weft__poller_io *io, int fd);

#endif
