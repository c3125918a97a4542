/*
 * offload.c - a pool of threads for blocking calls (file I/O, blocking
 * libraries): weft_offload(fn, arg) runs fn on a pool thread and parks the
 * calling coroutine until it returns. Pool threads never run coroutines.
 *
 * The pool (one per runtime) is a locked FIFO of jobs and up to `max`
 * threads named weft-blk-N. It grows lazily: a submit wakes an idle thread
 * or, if the idle threads are fewer than the queued jobs and the pool is
 * below max, starts one (if that fails, the job waits for a busy thread;
 * with no thread at all the call is -EAGAIN). A thread that
 * finds no job for OFFLOAD_IDLE_MS exits, so an idle pool shrinks to zero.
 * Pool threads block every signal, so process signals land elsewhere.
 *
 * A job outlives a cancelled caller (fn cannot be interrupted), so it is
 * on the heap and its `state` decides who frees it:
 *   O1. the caller opens its wait (park.c W1), queues the job and parks;
 *   O2. the thread runs fn, then CASes state WAITING -> DONE; on success it
 *       claims the caller's wait by generation, unparks it, and finally
 *       sets `released`: from then on it never touches the job or caller;
 *   O3. a caller woken normally waits for `released` (a few instructions
 *       away), takes the result and frees the job;
 *   O4. a caller woken by a cancel CASes WAITING -> CANCELLED: on success
 *       it returns -ECANCELED at once and the thread frees the job when
 *       fn returns; if the CAS finds DONE, the thread is in O2, so the
 *       caller waits for `released`, frees the job, and still returns
 *       -ECANCELED (the cancel is what it was woken for).
 * Without the state word, a thread finishing after its caller was
 * cancelled would unpark a coroutine that has moved on, or whose stack is
 * gone. rt->offload_busy counts jobs queued or running (the deadlock check
 * must not report coroutines that a pool thread will wake). Every submitted
 * job is also on the pool's `all` list until freed, so stopping the
 * runtime frees the jobs of callers it will never resume.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "probe.h"

#define OFFLOAD_IDLE_MS 2000
#define OFFLOAD_DEFAULT_MAX 64u

enum { JOB_WAITING = 0, JOB_DONE = 1, JOB_CANCELLED = 2 };

typedef struct weft__job {
  void *(*fn)(void *);
  void *arg;
  void *ret;
  weft_co *co;
  uint32_t gen;      /* the caller's wait generation */
  uint32_t state;    /* JOB_* (atomic) */
  uint32_t released; /* the thread is done with job and caller (atomic) */
  struct weft__job *next;         /* the queue */
  struct weft__job *aprev, *anext; /* every job not yet freed */
} weft__job;

struct weft__offload {
  pthread_mutex_t lock;
  pthread_cond_t work;    /* a job was queued, or stop */
  pthread_cond_t gone;    /* a thread exited */
  weft__job *head, *tail;
  weft__job *all; /* jobs not yet freed: stop frees what callers cannot */
  unsigned nthreads, nidle, max, next_name;
  unsigned nqueued; /* jobs on the queue, not yet taken by a thread */
  bool stopping;
};

int weft__offload_init(struct weft_runtime *rt, unsigned max) {
  struct weft__offload *p = weft__calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->gone, NULL);
  p->max = max ? max : OFFLOAD_DEFAULT_MAX;
  rt->offload = p;
  return 0;
}

/* Free a job that was submitted (it is on the `all` list). */
static void job_free(struct weft__offload *p, weft__job *j) {
  pthread_mutex_lock(&p->lock);
  if (j->aprev)
    j->aprev->anext = j->anext;
  else
    p->all = j->anext;
  if (j->anext)
    j->anext->aprev = j->aprev;
  pthread_mutex_unlock(&p->lock);
  weft__free(j, sizeof *j);
}

static void finish(struct weft_runtime *rt, weft__job *j) { /* O2 */
  weft__stat_add_shared(&rt->offload_done, 1);
  uint32_t s = JOB_WAITING;
  if (weft__cas_ar(&j->state, &s, JOB_DONE)) {
    weft_co *co = j->co;
    if (weft__wait_claim_gen(co, j->gen))
      weft__unpark(co, 0);
    weft__add_ar(&rt->offload_busy, (uint32_t)-1);
    weft__st_rel(&j->released, 1);
  } else { /* the caller was cancelled and left: the job is ours */
    weft__add_ar(&rt->offload_busy, (uint32_t)-1);
    job_free(rt->offload, j);
  }
}

static void *pool_thread(void *arg) {
  struct weft_runtime *rt = arg;
  struct weft__offload *p = rt->offload;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&p->lock);
  char name[16];
  snprintf(name, sizeof name, "weft-blk-%u", p->next_name++ % 100000u);
  pthread_setname_np(pthread_self(), name);
  weft__set_thread_role(WEFT__WAKER_OFFLOAD);
  for (;;) {
    while (!p->head && !p->stopping) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += OFFLOAD_IDLE_MS / 1000;
      p->nidle++;
      int rc = pthread_cond_timedwait(&p->work, &p->lock, &ts);
      p->nidle--;
      if (rc == ETIMEDOUT && !p->head)
        goto out; /* idle long enough: shrink */
    }
    if (p->stopping)
      break;
    weft__job *j = p->head;
    p->head = j->next;
    if (!p->head)
      p->tail = NULL;
    p->nqueued--;
    pthread_mutex_unlock(&p->lock);
    j->ret = j->fn(j->arg);
    finish(rt, j);
    pthread_mutex_lock(&p->lock);
  }
out:
  p->nthreads--;
  pthread_cond_broadcast(&p->gone);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* Queue j; start a thread if the idle ones are fewer than the queued jobs
 * (j included) and the pool has room. Counting the queued jobs, not just
 * "is any thread idle": an idle thread that was signalled for an earlier
 * job still counts in nidle until it wakes, and a burst of blocking calls
 * would otherwise queue behind it while the pool stayed small. If no
 * thread can be started, j still runs on the threads there are (once they
 * are free); only with none at all is it -EAGAIN. */
static int submit(struct weft_runtime *rt, weft__job *j) {
  struct weft__offload *p = rt->offload;
  int rc = 0;
  pthread_mutex_lock(&p->lock);
  if (p->nqueued + 1 > p->nidle && p->nthreads < p->max) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &a, pool_thread, rt);
    pthread_attr_destroy(&a);
    if (err == 0)
      p->nthreads++;
    else if (p->nthreads == 0)
      rc = -EAGAIN;
  }
  if (rc == 0) {
    j->aprev = NULL;
    j->anext = p->all;
    if (p->all)
      p->all->aprev = j;
    p->all = j;
    j->next = NULL;
    if (p->tail)
      p->tail->next = j;
    else
      p->head = j;
    p->tail = j;
    p->nqueued++;
    weft__add_ar(&rt->offload_busy, 1);
    pthread_cond_signal(&p->work);
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

int weft_offload(void *(*fn)(void *), void *arg, void **result) {
  return weft__offload_ex(fn, arg, result, NULL);
}

/* weft_offload that also says whether fn was handed to the pool (and so
 * runs, or ran, even if the caller got -ECANCELED): io's file calls need
 * to know who frees their job. */
int weft__offload_ex(void *(*fn)(void *), void *arg, void **result,
                     bool *submitted) {
  if (submitted)
    *submitted = false;
  if (!fn)
    return -EINVAL;
  weft__worker *w = weft__current_worker();
  weft_co *self = w ? w->current : NULL;
  if (!self) { /* a foreign thread may block: just call it */
    if (submitted)
      *submitted = true;
    void *r = fn(arg);
    if (result)
      *result = r;
    return 0;
  }
  struct weft_runtime *rt = w->rt;
  weft__job *j = weft__calloc(1, sizeof *j);
  if (!j)
    return -ENOMEM;
  j->fn = fn;
  j->arg = arg;
  j->co = self;
  int rc = weft__wait_begin(self); /* O1 */
  if (rc) {
    weft__free(j, sizeof *j);
    return rc;
  }
  j->gen = weft__wait_gen(self);
  rc = submit(rt, j);
  if (rc) { /* not submitted: not on the `all` list */
    if (!weft__wait_claim(self)) /* a cancel claimed it meanwhile */
      rc = weft__wait_park(self, WEFT__PARK_OFFLOAD, NULL, NULL);
    weft__free(j, sizeof *j);
    return rc;
  }
  if (submitted)
    *submitted = true;
  rc = weft__wait_park(self, WEFT__PARK_OFFLOAD, NULL, NULL);
  if (rc) { /* O4 */
    uint32_t s = JOB_WAITING;
    if (weft__cas_ar(&j->state, &s, JOB_CANCELLED))
      return rc; /* the pool thread frees the job */
  }
  while (!weft__ld_acq(&j->released)) /* O3: the thread is finishing O2 */
    weft__cpu_relax();
  if (rc == 0 && result)
    *result = j->ret;
  job_free(rt->offload, j);
  return rc;
}

/* Stop the pool: wake every thread, wait until each has finished its
 * current job and exited, free queued jobs (their callers are coroutines
 * that the stopping runtime will never resume). */
void weft__offload_stop(struct weft_runtime *rt) {
  struct weft__offload *p = rt->offload;
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->stopping = true;
  pthread_cond_broadcast(&p->work);
  while (p->nthreads)
    pthread_cond_wait(&p->gone, &p->lock);
  /* What is left: queued calls, and finished ones whose callers the
   * stopping runtime will never resume to free them. */
  weft__job *j = p->all;
  while (j) {
    weft__job *next = j->anext;
    weft__free(j, sizeof *j);
    j = next;
  }
  p->all = NULL;
  pthread_mutex_unlock(&p->lock);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->gone);
  weft__free(p, sizeof *p);
  rt->offload = NULL;
}

unsigned weft__offload_threads(struct weft_runtime *rt) {
  struct weft__offload *p = rt->offload;
  pthread_mutex_lock(&p->lock);
  unsigned n = p->nthreads;
  pthread_mutex_unlock(&p->lock);
  return n;
}
