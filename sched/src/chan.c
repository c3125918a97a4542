/*
 * chan.c - bounded channels with Go's semantics, and select.
 *
 * A channel is a spinlock over a ring buffer of `cap` elements (cap 0: a
 * rendezvous, no buffer), a queue of parked receivers and one of parked
 * senders. Invariants, under the lock:
 *   - receivers wait only while the buffer is empty (and no sender waits);
 *   - senders wait only while the buffer is full (and no receiver waits);
 *   - after close, nobody starts waiting; the buffer drains, then every
 *     receive returns WEFT_ECLOSED; every send returns WEFT_ECLOSED.
 * Hand-over is direct: a sender that finds a parked receiver copies into
 * the receiver's destination and unparks it (the receiver then runs next
 * on the sender's worker: the LIFO slot, so a ping-pong pair stays on one
 * core); a receiver that takes from a full buffer refills it from the
 * first parked sender. Waiters are claimed before they are served (park.c
 * W3), so a cancelled or already-served waiter (a select waits on several
 * queues at once) is skipped, never served twice.
 *
 * Select: lock every channel of the cases in address order (no deadlock
 * between two selects), poll the cases from a random start (fairness),
 * and if none is ready either return -EAGAIN (non-blocking) or enqueue one
 * waiter per case, all sharing the coroutine's wait token: the first
 * channel operation that claims it completes that case and records its
 * index; the other waiters are unlinked when the select resumes.
 *
 * Deadlines (the *_until calls) arm a timer through sched's driver hook
 * (io's poller): it claims the wait like a canceller, with -ETIMEDOUT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct weft_chan {
  uint32_t lock;
  bool closed;
  size_t elem_size, cap;
  size_t head, len; /* ring buffer: len elements from head */
  weft__waitq recvq, sendq;
  char *buf;
};

typedef struct weft__select {
  unsigned fired; /* the case that completed, set by its claimer */
} weft__select;

static void chan_unlock_cb(void *ch) { weft__spin_unlock_word(&((weft_chan *)ch)->lock); }

int weft_chan_create(weft_chan **out, size_t elem_size, size_t capacity) {
  if (!out || elem_size == 0 || elem_size > (1u << 20) ||
      capacity > ((size_t)1 << 40) / elem_size)
    return -EINVAL;
  weft_chan *ch = weft__calloc(1, sizeof *ch);
  if (!ch)
    return -ENOMEM;
  ch->elem_size = elem_size;
  ch->cap = capacity;
  if (capacity) {
    ch->buf = weft__malloc(capacity * elem_size);
    if (!ch->buf) {
      weft__free(ch, sizeof *ch);
      return -ENOMEM;
    }
  }
  *out = ch;
  return 0;
}

int weft_chan_destroy(weft_chan *ch) {
  if (!ch)
    return 0;
  weft__spin_lock_word(&ch->lock);
  bool busy = ch->recvq.head || ch->sendq.head;
  weft__spin_unlock_word(&ch->lock);
  if (busy)
    return -EBUSY;
  if (ch->cap)
    weft__free(ch->buf, ch->cap * ch->elem_size);
  weft__free(ch, sizeof *ch);
  return 0;
}

size_t weft_chan_len(weft_chan *ch) {
  weft__spin_lock_word(&ch->lock);
  size_t n = ch->len;
  weft__spin_unlock_word(&ch->lock);
  return n;
}

static char *slot(weft_chan *ch, size_t i) {
  return ch->buf + ((ch->head + i) % ch->cap) * ch->elem_size;
}

/* Serve a claimed waiter w: record which select case fired. */
static void served(weft__waiter *w, int result) {
  w->result = result;
  if (w->sel)
    w->sel->fired = w->sel_case;
}

/* ---- the operations, under the lock ------------------------------------------
 * Each returns 1 if done (with *rc the result and *wake a waiter to unpark
 * once the lock is released), 0 if it would block. */

static int try_send_locked(weft_chan *ch, const void *elem, int *rc,
                           weft__waiter **wake) {
  *wake = NULL;
  if (ch->closed) {
    *rc = WEFT_ECLOSED;
    return 1;
  }
  weft__waiter *r = weft__wq_claim(&ch->recvq);
  if (r) {
    memcpy(r->data, elem, ch->elem_size);
    served(r, 0);
    *wake = r;
    *rc = 0;
    return 1;
  }
  if (ch->len < ch->cap) {
    memcpy(slot(ch, ch->len), elem, ch->elem_size);
    ch->len++;
    *rc = 0;
    return 1;
  }
  return 0;
}

static int try_recv_locked(weft_chan *ch, void *out, int *rc,
                           weft__waiter **wake) {
  *wake = NULL;
  if (ch->len) {
    memcpy(out, slot(ch, 0), ch->elem_size);
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
    weft__waiter *s = weft__wq_claim(&ch->sendq); /* refill from a sender */
    if (s) {
      memcpy(slot(ch, ch->len), s->data, ch->elem_size);
      ch->len++;
      served(s, 0);
      *wake = s;
    }
    *rc = 0;
    return 1;
  }
  weft__waiter *s = weft__wq_claim(&ch->sendq);
  if (s) {
    memcpy(out, s->data, ch->elem_size);
    served(s, 0);
    *wake = s;
    *rc = 0;
    return 1;
  }
  if (ch->closed) {
    *rc = WEFT_ECLOSED;
    return 1;
  }
  return 0;
}

/* ---- send / receive ----------------------------------------------------------- */

static int chan_wait(weft_chan *ch, weft__waitq *q, void *data,
                     uint64_t deadline_ns) {
  weft__waiter w = {.co = weft__self_or_foreign(), .data = data};
  weft__wq_push(q, &w);
  int rc = weft__wait_begin(w.co);
  if (rc) {
    weft__wq_remove(q, &w);
    weft__spin_unlock_word(&ch->lock);
    return rc;
  }
  rc = weft__wait_park_until(w.co, WEFT__PARK_CHANNEL, chan_unlock_cb, ch,
                             deadline_ns);
  if (rc) { /* cancelled or timed out: nobody served us; unlink (park.c W5) */
    weft__spin_lock_word(&ch->lock);
    weft__wq_remove(q, &w);
    weft__spin_unlock_word(&ch->lock);
    return rc;
  }
  return w.result;
}

/* A send (buf is read) or a receive (buf is written), waiting or not. */
static int chan_op(weft_chan *ch, void *buf, bool is_send, bool block,
                   uint64_t deadline_ns) {
  if (!ch || !buf)
    return -EINVAL;
  int rc;
  weft__waiter *wake;
  weft__spin_lock_word(&ch->lock);
  int done = is_send ? try_send_locked(ch, buf, &rc, &wake)
                     : try_recv_locked(ch, buf, &rc, &wake);
  if (done) {
    weft__spin_unlock_word(&ch->lock);
    if (wake)
      weft__unpark(wake->co, 0);
    return rc;
  }
  if (!block) {
    weft__spin_unlock_word(&ch->lock);
    return -EAGAIN;
  }
  return chan_wait(ch, is_send ? &ch->sendq : &ch->recvq, buf, deadline_ns);
}

int weft_chan_send(weft_chan *ch, const void *elem) {
  return chan_op(ch, (void *)elem, true, true, 0);
}
int weft_chan_send_until(weft_chan *ch, const void *elem, uint64_t deadline_ns) {
  return chan_op(ch, (void *)elem, true, true, deadline_ns);
}
int weft_chan_try_send(weft_chan *ch, const void *elem) {
  return chan_op(ch, (void *)elem, true, false, 0);
}
int weft_chan_recv(weft_chan *ch, void *out) { return chan_op(ch, out, false, true, 0); }
int weft_chan_recv_until(weft_chan *ch, void *out, uint64_t deadline_ns) {
  return chan_op(ch, out, false, true, deadline_ns);
}
int weft_chan_try_recv(weft_chan *ch, void *out) { return chan_op(ch, out, false, false, 0); }

int weft_chan_close(weft_chan *ch) {
  if (!ch)
    return -EINVAL;
  weft__spin_lock_word(&ch->lock);
  if (ch->closed) {
    weft__spin_unlock_word(&ch->lock);
    return WEFT_ECLOSED;
  }
  ch->closed = true;
  /* Receivers wait only on an empty buffer, senders only on a full one:
   * all of them now get WEFT_ECLOSED. */
  weft__waiter *list = NULL, *w;
  while ((w = weft__wq_claim(&ch->recvq)) || (w = weft__wq_claim(&ch->sendq))) {
    served(w, WEFT_ECLOSED);
    w->next = list;
    list = w;
  }
  weft__spin_unlock_word(&ch->lock);
  while (list) {
    w = list;
    list = w->next; /* read before the waiter can return */
    weft__unpark(w->co, 0);
  }
  return 0;
}

/* ---- select -------------------------------------------------------------------- */

typedef struct lockset {
  weft_chan **chans; /* distinct channels, in address order */
  size_t n;
} lockset;

static void lock_all(const lockset *ls) {
  for (size_t i = 0; i < ls->n; i++)
    weft__spin_lock_word(&ls->chans[i]->lock);
}

static void unlock_all(void *arg) {
  const lockset *ls = arg;
  for (size_t i = ls->n; i-- > 0;)
    weft__spin_unlock_word(&ls->chans[i]->lock);
}

static uint64_t select_rand(void) {
  static __thread uint64_t x;
  if (!x)
    x = (uint64_t)(uintptr_t)&x | 1;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

#define SELECT_STACK_CASES 16

int weft_select(weft_select_case *cases, size_t n, int flags) {
  return weft_select_until(cases, n, flags, 0);
}

int weft_select_until(weft_select_case *cases, size_t n, int flags,
                      uint64_t deadline_ns) {
  if (!cases || n == 0 || n > 4096 || (flags & ~WEFT_SELECT_NONBLOCK))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!cases[i].ch || !cases[i].elem ||
        (cases[i].op != WEFT_SELECT_SEND && cases[i].op != WEFT_SELECT_RECV))
      return -EINVAL;
  weft_chan *chans_stack[SELECT_STACK_CASES];
  weft__waiter waiters_stack[SELECT_STACK_CASES];
  weft_chan **chans = chans_stack;
  weft__waiter *ws = waiters_stack;
  if (n > SELECT_STACK_CASES) {
    chans = weft__malloc(n * sizeof *chans);
    ws = weft__calloc(n, sizeof *ws);
    if (!chans || !ws) {
      weft__free(chans, n * sizeof *chans);
      weft__free(ws, n * sizeof *ws);
      return -ENOMEM;
    }
  }
  /* Distinct channels in address order: insertion sort, n is small. */
  size_t nch = 0;
  for (size_t i = 0; i < n; i++) {
    weft_chan *c = cases[i].ch;
    size_t j = 0;
    while (j < nch && chans[j] < c)
      j++;
    if (j < nch && chans[j] == c)
      continue;
    memmove(&chans[j + 1], &chans[j], (nch - j) * sizeof *chans);
    chans[j] = c;
    nch++;
  }
  lockset ls = {chans, nch};
  int ret;
  lock_all(&ls);

  /* Poll from a random start, so no case is always preferred. */
  size_t start = (size_t)(select_rand() % n);
  for (size_t k = 0; k < n; k++) {
    size_t i = (start + k) % n;
    weft_select_case *c = &cases[i];
    int rc;
    weft__waiter *wake;
    int done = c->op == WEFT_SELECT_SEND ? try_send_locked(c->ch, c->elem, &rc, &wake)
                                         : try_recv_locked(c->ch, c->elem, &rc, &wake);
    if (done) {
      unlock_all(&ls);
      if (wake)
        weft__unpark(wake->co, 0);
      c->result = rc;
      ret = (int)i;
      goto out;
    }
  }
  if (flags & WEFT_SELECT_NONBLOCK) {
    unlock_all(&ls);
    ret = -EAGAIN;
    goto out;
  }

  weft__select sel = {0};
  weft_co *self = weft__self_or_foreign();
  for (size_t i = 0; i < n; i++) {
    ws[i] = (weft__waiter){.co = self, .data = cases[i].elem, .sel = &sel,
                           .sel_case = (unsigned)i};
    weft__wq_push(cases[i].op == WEFT_SELECT_SEND ? &cases[i].ch->sendq
                                                  : &cases[i].ch->recvq,
                  &ws[i]);
  }
  int rc = weft__wait_begin(self);
  if (rc == 0)
    rc = weft__wait_park_until(self, WEFT__PARK_CHANNEL, unlock_all, &ls,
                               deadline_ns);
  else
    unlock_all(&ls);
  /* Unlink what is still linked: every case but the one that fired. */
  lock_all(&ls);
  for (size_t i = 0; i < n; i++)
    weft__wq_remove(cases[i].op == WEFT_SELECT_SEND ? &cases[i].ch->sendq
                                                    : &cases[i].ch->recvq,
                    &ws[i]);
  unlock_all(&ls);
  if (rc) {
    ret = rc;
  } else {
    cases[sel.fired].result = ws[sel.fired].result;
    ret = (int)sel.fired;
  }
out:
  if (n > SELECT_STACK_CASES) {
    weft__free(chans, n * sizeof *chans);
    weft__free(ws, n * sizeof *ws);
  }
  return ret;
}
