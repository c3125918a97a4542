/*
 * fd.h - io's private interface between the poller (poller.c), fd waits
 * (fd.c) and the socket calls (socket.c).
 */
#ifndef WEFT_IO_FD_H
#define WEFT_IO_FD_H

#include <stdbool.h>
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
WEFT_API weft__poller_io *weft__io_current(int *err);
/* Wake the poller (it then runs every extension's poll). */
WEFT_API void weft__io_poke(weft__poller_io *io);

/* Poller extensions: a module above io (http) whose work runs on the
 * poller thread, as DNS's does. Its fds go in io->epfd with event data
 * WEFT__EXT_DATA(slot, payload); the poller hands the payload back to
 * event(). poll() runs once a round, before the poller sleeps, and may
 * lower *sleep_ns; free() runs when the runtime stops, after the poller
 * thread has exited. */
#define WEFT__EXT_TAG (1ull << 62)
#define WEFT__EXT_SLOTS 4u
#define WEFT__EXT_PAYLOAD ((1ull << 58) - 1)
#define WEFT__EXT_DATA(slot, payload) \
  (WEFT__EXT_TAG | (uint64_t)(slot) << 58 | ((payload) & WEFT__EXT_PAYLOAD))
typedef struct weft__io_ext {
  void (*poll)(void *ctx, uint64_t *sleep_ns);
  void (*event)(void *ctx, uint64_t payload, uint32_t events);
  void (*free)(void *ctx);
  /* Add the extension's figures to a snapshot (any thread; may be NULL). */
  void (*stats)(void *ctx, weft_stats *out);
} weft__io_ext;
/* The context of extension `slot` on the calling coroutine's poller,
 * made by make(io, arg) on first use (make returns NULL and sets *err to
 * fail). NULL on a foreign thread or failure, *err says which. */
WEFT_API void *weft__io_ext_get(unsigned slot, const weft__io_ext *ops,
                                void *(*make)(weft__poller_io *io, int *err),
                                int *err);

weft__fdtab *weft__fdtab_new(void);
void weft__fdtab_free(weft__fdtab *t);
uint32_t weft__fd_ready_count(weft__poller_io *io, int fd, int dir);
/* Park until fd may be ready in dir (0 read, 1 write) after `seen` edges;
 * 0: try the syscall again; -EBADF (closed), -ECANCELED, -ETIMEDOUT. */
int weft__fd_wait(weft__poller_io *io, int fd, int dir, uint32_t seen,
                  uint64_t deadline_ns);
/* F4: a short read on fd emptied it at read counter `seen`; is that still
 * so (then a read would say EAGAIN)? */
void weft__fd_note_drained(weft__poller_io *io, int fd, uint32_t seen);
bool weft__fd_drained(weft__poller_io *io, int fd, uint32_t seen);
void weft__fd_event(weft__poller_io *io, uint64_t data, uint32_t events);
int weft__fd_close(weft__poller_io *io, int fd);

#endif
