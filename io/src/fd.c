/*
 * fd.c - waiting for file descriptors: per-fd records, edge-triggered
 * epoll registration, and closing safely.
 *
 * Every fd a coroutine waits on has a record (a table indexed by fd
 * number, grown on demand, records never freed while the runtime lives):
 * a spinlock, a sequence number, a readiness counter per direction and a
 * queue of parked waiters per direction. The fd is registered once, on
 * its first wait, edge-triggered, with (fd, seq) as the event's data.
 *
 * Waiting to read (writing is the same with the other direction):
 *   F1. try the syscall first; park only on EAGAIN;
 *   F2. before the syscall, note the record's read counter; on EAGAIN,
 *       lock the record: if the counter moved (an edge arrived meanwhile),
 *       unlock and try again; otherwise link a waiter, open the wait
 *       (park.c W1) and park, releasing the lock after the switch;
 *   F3. the poller, on an event for (fd, seq) whose seq is still the
 *       record's, bumps the counters under the lock and claims every
 *       waiter of that direction (W3), then wakes them in one batch; they
 *       go back to F1. An event for an older seq is dropped.
 * Without the counter, an edge arriving between EAGAIN and the park would
 * be lost for good (edge-triggered epoll reports it once).
 *   F4. a read on a stream socket that returned fewer bytes than asked
 *       (but not 0) emptied its receive queue: the record notes the read
 *       counter it was made at. The next read, if the counter has not
 *       moved, parks at once instead of making a read(2) that would only
 *       say EAGAIN (a request/response server saves a syscall per
 *       message). Any arrival after the note moves the counter (F3), so
 *       nothing waits on data that is there. Not for datagram sockets or
 *       pipes, where a short read says nothing about what is queued; not
 *       after a read of 0; and not once an event has said the peer hung up
 *       (the end of stream may wait behind the data, with no edge to come).
 *
 * Closing (weft_close): lock, bump seq (late events now miss), claim every
 * waiter and wake it with -EBADF, unlock, remove from epoll, and only then
 * close(2): nobody is parked on the number when the kernel can hand it out
 * again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd.h"

/* The top bit of the epoll data is dns.c's tag. */
#define SEQ_MASK 0x3fffffffu /* bits 32-61 of the event data: 62 and 63 tag others */
#define DIR_READ 0
#define DIR_WRITE 1

typedef struct fdrec {
  uint32_t lock;
  uint32_t seq;
  bool registered;
  uint32_t ready[2]; /* edges seen, per direction (F2) */
  uint32_t drained;  /* atomic: read counter + 1 when a short read emptied it (F4) */
  uint32_t kind;     /* atomic: 0 not known yet, KIND_STREAM, KIND_OTHER */
  bool hup;          /* atomic: an event said the peer hung up or an error */
  weft__waitq waiters[2];
} fdrec;

enum { KIND_STREAM = 1, KIND_OTHER = 2 };

/* The table: chunks of 1024 records, allocated on first use of a range,
 * so a record's address never changes (the poller may hold it). */
#define CHUNK 1024
#define MAX_CHUNKS 4096 /* fds up to 4M */

struct weft__fdtab {
  fdrec *chunks[MAX_CHUNKS];
  pthread_mutex_t grow;
};

weft__fdtab *weft__fdtab_new(void) {
  weft__fdtab *t = weft__calloc(1, sizeof *t);
  if (t)
    pthread_mutex_init(&t->grow, NULL);
  return t;
}

void weft__fdtab_free(weft__fdtab *t) {
  if (!t)
    return;
  for (size_t i = 0; i < MAX_CHUNKS; i++)
    if (t->chunks[i])
      weft__free(t->chunks[i], CHUNK * sizeof(fdrec));
  pthread_mutex_destroy(&t->grow);
  weft__free(t, sizeof *t);
}

static fdrec *rec_get(weft__fdtab *t, int fd, bool create) {
  if (fd < 0 || (size_t)fd >= (size_t)CHUNK * MAX_CHUNKS)
    return NULL;
  size_t c = (size_t)fd / CHUNK;
  fdrec *chunk = __atomic_load_n(&t->chunks[c], __ATOMIC_ACQUIRE);
  if (!chunk && create) {
    pthread_mutex_lock(&t->grow);
    chunk = t->chunks[c];
    if (!chunk) {
      chunk = weft__calloc(CHUNK, sizeof(fdrec));
      if (chunk)
        __atomic_store_n(&t->chunks[c], chunk, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&t->grow);
  }
  return chunk ? &chunk[(size_t)fd % CHUNK] : NULL;
}

static void rec_unlock_cb(void *lock) { weft__spin_unlock_word(lock); }

uint32_t weft__fd_ready_count(weft__poller_io *io, int fd, int dir) {
  fdrec *r = rec_get(io->tab, fd, false);
  return r ? weft__ld_acq(&r->ready[dir]) : 0;
}

void weft__fd_note_drained(weft__poller_io *io, int fd, uint32_t seen) { /* F4 */
  fdrec *r = rec_get(io->tab, fd, false);
  if (!r || !weft__ld_rlx(&r->registered))
    return;
  uint32_t kind = weft__ld_rlx(&r->kind);
  if (!kind) {
    int type = 0;
    socklen_t len = sizeof type;
    kind = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM
               ? KIND_STREAM
               : KIND_OTHER;
    weft__st_rlx(&r->kind, kind);
  }
  if (kind == KIND_STREAM)
    weft__st_rlx(&r->drained, seen + 1);
}

bool weft__fd_drained(weft__poller_io *io, int fd, uint32_t seen) { /* F4 */
  fdrec *r = rec_get(io->tab, fd, false);
  return r && weft__ld_rlx(&r->drained) == seen + 1 && weft__ld_rlx(&r->registered) &&
         !weft__ld_rlx(&r->hup);
}

int weft__fd_wait(weft__poller_io *io, int fd, int dir, uint32_t seen,
                  uint64_t deadline_ns) { /* F2 */
  fdrec *r = rec_get(io->tab, fd, true);
  if (!r)
    return fd < 0 ? -EBADF : -ENOMEM;
  weft__spin_lock_word(&r->lock);
  if (weft__ld_rlx(&r->ready[dir]) != seen) { /* an edge came: try again */
    weft__spin_unlock_word(&r->lock);
    return 0;
  }
  if (!r->registered) {
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)(r->seq & SEQ_MASK) << 32};
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) && errno != EEXIST) {
      int err = -errno;
      weft__spin_unlock_word(&r->lock);
      return err;
    }
    weft__st_rlx(&r->registered, true);
    /* Registering reports the current state as a first edge: try again
     * rather than park, or an fd that was ready all along waits forever. */
    weft__spin_unlock_word(&r->lock);
    return 0;
  }
  weft__waiter w = {.co = weft__self_or_foreign()};
  weft__wq_push(&r->waiters[dir], &w);
  int rc = weft__wait_begin(w.co);
  if (rc) {
    weft__wq_remove(&r->waiters[dir], &w);
    weft__spin_unlock_word(&r->lock);
    return rc;
  }
  weft__add_ar(&io->rt->driver_pending, 1);
  rc = weft__wait_park_until(w.co, WEFT__PARK_FD, rec_unlock_cb, &r->lock,
                             deadline_ns);
  weft__add_ar(&io->rt->driver_pending, (uint32_t)-1);
  if (rc) { /* cancelled / timed out: unlink (park.c W5) */
    weft__spin_lock_word(&r->lock);
    weft__wq_remove(&r->waiters[dir], &w);
    weft__spin_unlock_word(&r->lock);
    return rc;
  }
  return w.result; /* 0: try again; -EBADF: closed */
}

/* Claim every waiter of the given directions into cos[] (at most max). */
static size_t claim_dir(fdrec *r, int dir, weft_co **cos, int *res, size_t n,
                        size_t max, int result) {
  weft__waiter *w;
  while (n < max && (w = weft__wq_claim(&r->waiters[dir]))) {
    w->result = result;
    cos[n] = w->co;
    res[n++] = result;
  }
  return n;
}

void weft__fd_event(weft__poller_io *io, uint64_t data, uint32_t events) { /* F3 */
  int fd = (int)(uint32_t)data;
  uint32_t seq = (uint32_t)(data >> 32) & SEQ_MASK;
  fdrec *r = rec_get(io->tab, fd, false);
  if (!r)
    return;
  weft_co *cos[128];
  int res[128];
  size_t n = 0;
  weft__spin_lock_word(&r->lock);
  if ((r->seq & SEQ_MASK) == seq) {
    bool rd = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
      weft__st_rlx(&r->hup, true); /* an end of stream may wait behind the data */
    bool wr = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    if (rd) {
      weft__add_ar(&r->ready[DIR_READ], 1);
      n = claim_dir(r, DIR_READ, cos, res, n, 64, 0);
    }
    if (wr) {
      weft__add_ar(&r->ready[DIR_WRITE], 1);
      n = claim_dir(r, DIR_WRITE, cos, res, n, 128, 0);
    }
  }
  weft__spin_unlock_word(&r->lock);
  if (n)
    weft__unpark_batch(io->rt, cos, res, n);
}

int weft__fd_close(weft__poller_io *io, int fd) {
  fdrec *r = io ? rec_get(io->tab, fd, false) : NULL;
  if (r) {
    weft_co *cos[128];
    int res[128];
    for (;;) {
      size_t n = 0;
      weft__spin_lock_word(&r->lock);
      if (r->registered) { /* the first round: later events miss from here */
        r->seq++;
        weft__st_rlx(&r->registered, false);
        weft__st_rlx(&r->drained, 0);
        weft__st_rlx(&r->kind, 0); /* the number may come back as another kind */
        weft__st_rlx(&r->hup, false);
        epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
      }
      n = claim_dir(r, DIR_READ, cos, res, n, 64, -EBADF);
      n = claim_dir(r, DIR_WRITE, cos, res, n, 128, -EBADF);
      bool more = r->waiters[DIR_READ].head || r->waiters[DIR_WRITE].head;
      weft__spin_unlock_word(&r->lock);
      if (n)
        weft__unpark_batch(io->rt, cos, res, n);
      if (!more)
        break;
    }
  }
  return close(fd) ? -errno : 0;
}
