/*
 * test_sync.c - wait group, gather, cancellation, mutex, condition
 * variable, semaphore: semantics and their races (a cancel that races a
 * wake: outcomes counted, nothing lost or delivered twice). Registered at
 * 1, 2, 4 and 8 workers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h"
#include "weft/sched.h"

/* A coroutine that waits until cancelled, forever otherwise. */
static void *wait_cancel(void *arg) {
  weft_sem *never = arg;
  return (void *)(intptr_t)weft_sem_acquire(never);
}

static void *join_one(void *arg) {
  return (void *)(intptr_t)weft_join(arg, NULL);
}

/* ---- wait group and gather ---------------------------------------------------- */

static weft_waitgroup wg = WEFT_WAITGROUP_INIT;
static uint64_t wg_done_count;

static void *wg_worker(void *arg) {
  (void)arg;
  weft_yield();
  __atomic_fetch_add(&wg_done_count, 1, __ATOMIC_RELAXED);
  CHECK_EQ(weft_waitgroup_done(&wg), 0);
  return NULL;
}

static void *wg_main(void *arg) {
  (void)arg;
  enum { N = 2000 };
  CHECK_EQ(weft_waitgroup_add(&wg, N), 0);
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(NULL, wg_worker, NULL), 0);
  CHECK_EQ(weft_waitgroup_wait(&wg), 0);
  CHECK_EQ(__atomic_load_n(&wg_done_count, __ATOMIC_RELAXED), N);
  CHECK_EQ(weft_waitgroup_wait(&wg), 0); /* zero: returns at once */
  CHECK_EQ(weft_waitgroup_add(&wg, -1), -EINVAL); /* would go negative */
  return NULL;
}

static void waitgroup(void) { CHECK_EQ(weft_run(NULL, wg_main, NULL, NULL), 0); }

static void *times3(void *arg) {
  weft_yield();
  return (void *)((uintptr_t)arg * 3);
}

static void *gather_main(void *arg) {
  (void)arg;
  enum { N = 64 };
  weft_co *c[N];
  void *r[N];
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], times3, (void *)i), 0);
  CHECK_EQ(weft_gather(c, N, r), 0);
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ((uintptr_t)r[i], 3 * i);
  return NULL;
}

static void gather(void) { CHECK_EQ(weft_run(NULL, gather_main, NULL, NULL), 0); }

/* Cancelling a gatherer cancels its children and still joins them all. */
static weft_sem never_sem = WEFT_SEM_INIT(0);

static void *gatherer(void *arg) {
  (void)arg;
  enum { N = 8 };
  weft_co *c[N];
  void *r[N];
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], wait_cancel, &never_sem), 0);
  int rc = weft_gather(c, N, r);
  for (int i = 0; i < N; i++)
    CHECK_EQ((intptr_t)r[i], -ECANCELED); /* each child saw the cancel */
  return (void *)(intptr_t)rc;
}

static void *gather_cancel_main(void *arg) {
  (void)arg;
  weft_co *g;
  CHECK_EQ(weft_spawn(&g, gatherer, NULL), 0);
  weft_yield();
  CHECK_EQ(weft_cancel(g), 0);
  void *r;
  CHECK_EQ(weft_join(g, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  return NULL;
}

static void gather_cancel(void) {
  CHECK_EQ(weft_run(NULL, gather_cancel_main, NULL, NULL), 0);
}

/* ---- cancellation ------------------------------------------------------------- */

static void *cancel_basics_main(void *arg) {
  (void)arg;
  weft_sem sem = WEFT_SEM_INIT(0), hold = WEFT_SEM_INIT(0);
  /* A cancelled wait returns -ECANCELED. */
  weft_co *sleeper, *joiner;
  CHECK_EQ(weft_spawn(&sleeper, wait_cancel, &hold), 0);
  CHECK_EQ(weft_spawn(&joiner, wait_cancel, &hold), 0);
  CHECK_EQ(weft_cancel(joiner), 0);
  void *r;
  CHECK_EQ(weft_join(joiner, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);

  /* Cancel before the wait: the next wait returns -ECANCELED at once. */
  CHECK_EQ(weft_cancel(weft_self()), 0);
  CHECK_EQ(weft_sem_acquire(&sem), -ECANCELED);
  /* Delivered once: the following wait is normal. */
  weft_sem_release(&sem);
  CHECK_EQ(weft_sem_acquire(&sem), 0);

  /* Shielded waits are not cancelled; the cancel waits for the shield. */
  weft_shield_enter();
  CHECK_EQ(weft_cancel(weft_self()), 0);
  weft_sem_release(&sem);
  CHECK_EQ(weft_sem_acquire(&sem), 0);
  weft_shield_leave();
  CHECK_EQ(weft_sem_acquire(&sem), -ECANCELED);

  /* Cancelling a finished (not yet joined) coroutine is harmless. */
  weft_co *quick;
  CHECK_EQ(weft_spawn(&quick, times3, (void *)7), 0);
  while (__atomic_load_n(&quick->joiner, __ATOMIC_ACQUIRE) != WEFT__JOIN_DONE)
    weft_yield();
  CHECK_EQ(weft_cancel(quick), 0);
  CHECK_EQ(weft_join(quick, &r), 0);
  CHECK_EQ((uintptr_t)r, 21);

  /* Cancel a coroutine parked in a join. */
  weft_co *j2;
  CHECK_EQ(weft_spawn(&j2, join_one, sleeper), 0);
  weft_yield();
  CHECK_EQ(weft_cancel(j2), 0);
  CHECK_EQ(weft_join(j2, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  /* ...and the sleeper is still joinable by someone else. */
  CHECK_EQ(weft_cancel(sleeper), 0);
  CHECK_EQ(weft_join(sleeper, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  CHECK_EQ(weft_cancel(NULL), -EINVAL);
  return NULL;
}

static void cancel_basics(void) {
  CHECK_EQ(weft_run(NULL, cancel_basics_main, NULL, NULL), 0);
}

/* A cancel racing a release: every acquire either gets the permit (and it
 * is counted) or -ECANCELED (and the permit stays); never both, never
 * neither. Permits in = permits out + left over. */
static void *race_acquirer(void *arg) {
  weft_sem *s = arg;
  return (void *)(intptr_t)weft_sem_acquire(s);
}

static void *cancel_race_main(void *arg) {
  (void)arg;
  enum { ROUNDS = 2000, N = 8 };
  uint64_t got = 0, cancelled = 0;
  for (int round = 0; round < SCALE(ROUNDS); round++) {
    weft_sem s = WEFT_SEM_INIT(0);
    weft_co *c[N];
    for (int i = 0; i < N; i++)
      CHECK_EQ(weft_spawn(&c[i], race_acquirer, &s), 0);
    /* Release N/2 permits and cancel everyone, interleaved. */
    for (int i = 0; i < N; i++) {
      if (i % 2 == 0)
        weft_sem_release(&s);
      weft_cancel(c[(i * 3) % N]);
      if (i % 3 == 0)
        weft_yield();
    }
    uint64_t round_got = 0;
    for (int i = 0; i < N; i++) {
      void *r;
      CHECK_EQ(weft_join(c[i], &r), 0);
      if ((intptr_t)r == 0)
        round_got++;
      else
        CHECK_EQ((intptr_t)r, -ECANCELED);
    }
    uint64_t left = 0;
    while (weft_sem_tryacquire(&s) == 0)
      left++;
    CHECK_EQ(round_got + left, N / 2);
    got += round_got;
    cancelled += N - round_got;
  }
  CHECK(got + cancelled == (uint64_t)SCALE(ROUNDS) * N);
  fprintf(stderr, "acquired %llu, cancelled %llu\n", (unsigned long long)got,
          (unsigned long long)cancelled);
  return NULL;
}

static void cancel_race(void) { CHECK_EQ(weft_run(NULL, cancel_race_main, NULL, NULL), 0); }

/* A cancel racing a joinee's exit: join returns 0 with the result or
 * -ECANCELED; after -ECANCELED a second join gets the result. */
static void *cancel_join_race_main(void *arg) {
  (void)arg;
  uint64_t outcomes[2] = {0, 0};
  for (int round = 0; round < SCALE(20000); round++) {
    weft_co *target, *joiner;
    CHECK_EQ(weft_spawn(&target, times3, (void *)(uintptr_t)round), 0);
    CHECK_EQ(weft_spawn(&joiner, join_one, target), 0);
    weft_cancel(joiner);
    void *r;
    CHECK_EQ(weft_join(joiner, &r), 0);
    if ((intptr_t)r == -ECANCELED) {
      outcomes[1]++;
      CHECK_EQ(weft_join(target, &r), 0);
      CHECK_EQ((uintptr_t)r, 3u * (unsigned)round);
    } else {
      CHECK_EQ((intptr_t)r, 0);
      outcomes[0]++;
    }
  }
  fprintf(stderr, "joined %llu, cancelled %llu\n", (unsigned long long)outcomes[0],
          (unsigned long long)outcomes[1]);
  return NULL;
}

static void cancel_join_race(void) {
  CHECK_EQ(weft_run(NULL, cancel_join_race_main, NULL, NULL), 0);
}

/* ---- mutex ---------------------------------------------------------------------- */

static weft_mutex mu = WEFT_MUTEX_INIT;
static uint64_t counter; /* protected by mu: plain accesses on purpose */
static uint64_t per_co[8];

static void *incrementer(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  uint64_t n = SCALE(200000);
  for (uint64_t i = 0; i < n; i++) {
    CHECK_EQ(weft_mutex_lock(&mu), 0);
    counter++;
    per_co[id]++;
    if (i % 64 == 0)
      weft_yield(); /* hold the lock across a switch now and then */
    weft_mutex_unlock(&mu);
  }
  return NULL;
}

static void *mutex_main(void *arg) {
  (void)arg;
  weft_co *c[8];
  for (uintptr_t i = 0; i < 8; i++)
    CHECK_EQ(weft_spawn(&c[i], incrementer, (void *)i), 0);
  CHECK_EQ(weft_gather(c, 8, NULL), 0);
  CHECK_EQ(counter, 8 * SCALE(200000));
  for (int i = 0; i < 8; i++)
    CHECK_EQ(per_co[i], SCALE(200000));
  CHECK_EQ(weft_mutex_trylock(&mu), 0);
  CHECK_EQ(weft_mutex_trylock(&mu), -EBUSY);
  weft_mutex_unlock(&mu);
  return NULL;
}

static void mutex_counter(void) { CHECK_EQ(weft_run(NULL, mutex_main, NULL, NULL), 0); }

/* Cancelling a coroutine waiting for a mutex: it returns -ECANCELED
 * without the lock, and the lock still works for everyone else. */
static void *lock_and_return(void *arg) {
  weft_mutex *m = arg;
  int rc = weft_mutex_lock(m);
  if (rc == 0)
    weft_mutex_unlock(m);
  return (void *)(intptr_t)rc;
}

static void *mutex_cancel_main(void *arg) {
  (void)arg;
  weft_mutex m = WEFT_MUTEX_INIT;
  CHECK_EQ(weft_mutex_lock(&m), 0);
  weft_co *c[16];
  for (int i = 0; i < 16; i++)
    CHECK_EQ(weft_spawn(&c[i], lock_and_return, &m), 0);
  for (int i = 0; i < 16; i += 2)
    weft_cancel(c[i]);
  weft_mutex_unlock(&m);
  int ok = 0, cancelled = 0;
  for (int i = 0; i < 16; i++) {
    void *r;
    CHECK_EQ(weft_join(c[i], &r), 0);
    if ((intptr_t)r == 0)
      ok++;
    else {
      CHECK_EQ((intptr_t)r, -ECANCELED);
      CHECK_EQ(i % 2, 0);
      cancelled++;
    }
  }
  CHECK_EQ(ok + cancelled, 16);
  CHECK(ok >= 8);
  CHECK_EQ(weft_mutex_trylock(&m), 0);
  weft_mutex_unlock(&m);
  return NULL;
}

static void mutex_cancel(void) { CHECK_EQ(weft_run(NULL, mutex_cancel_main, NULL, NULL), 0); }

/* ---- condition variable ------------------------------------------------------- */

static weft_mutex qm = WEFT_MUTEX_INIT;
static weft_cond qc = WEFT_COND_INIT;
static uint64_t queue_items;
static int producers_left;

static void *cv_producer(void *arg) {
  (void)arg;
  for (uint64_t i = 1; i <= 1000; i++) {
    CHECK_EQ(weft_mutex_lock(&qm), 0);
    queue_items++;
    weft_cond_signal(&qc);
    weft_mutex_unlock(&qm);
  }
  CHECK_EQ(weft_mutex_lock(&qm), 0);
  producers_left--;
  weft_cond_broadcast(&qc);
  weft_mutex_unlock(&qm);
  return NULL;
}

static void *cv_consumer(void *arg) {
  (void)arg;
  uint64_t taken = 0;
  CHECK_EQ(weft_mutex_lock(&qm), 0);
  for (;;) {
    while (queue_items == 0 && producers_left > 0)
      CHECK_EQ(weft_cond_wait(&qc, &qm), 0);
    if (queue_items == 0)
      break;
    queue_items--;
    taken++;
  }
  weft_mutex_unlock(&qm);
  return (void *)(uintptr_t)taken;
}

static void *cond_main(void *arg) {
  (void)arg;
  enum { P = 4, C = 6 };
  producers_left = P;
  weft_co *c[C], *p[P];
  for (int i = 0; i < C; i++)
    CHECK_EQ(weft_spawn(&c[i], cv_consumer, NULL), 0);
  for (uintptr_t i = 0; i < P; i++)
    CHECK_EQ(weft_spawn(&p[i], cv_producer, (void *)(i * 1000000)), 0);
  CHECK_EQ(weft_gather(p, P, NULL), 0);
  uint64_t taken = 0;
  for (int i = 0; i < C; i++) {
    void *r;
    CHECK_EQ(weft_join(c[i], &r), 0);
    taken += (uintptr_t)r;
  }
  CHECK_EQ(taken, P * 1000);
  return NULL;
}

static void cond_queue(void) { CHECK_EQ(weft_run(NULL, cond_main, NULL, NULL), 0); }

static void *cond_cancel_waiter(void *arg) {
  weft_cond *c = arg;
  CHECK_EQ(weft_mutex_lock(&qm), 0);
  int rc = weft_cond_wait(c, &qm);
  /* Whatever happened, the mutex is ours again. */
  CHECK_EQ(weft_mutex_trylock(&qm), -EBUSY);
  weft_mutex_unlock(&qm);
  return (void *)(intptr_t)rc;
}

static void *cond_cancel_main(void *arg) {
  (void)arg;
  weft_cond c = WEFT_COND_INIT;
  weft_co *w;
  CHECK_EQ(weft_spawn(&w, cond_cancel_waiter, &c), 0);
  weft_yield();
  weft_cancel(w);
  void *r;
  CHECK_EQ(weft_join(w, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  return NULL;
}

static void cond_cancel(void) { CHECK_EQ(weft_run(NULL, cond_cancel_main, NULL, NULL), 0); }

/* ---- semaphore ------------------------------------------------------------------- */

static weft_sem limit = WEFT_SEM_INIT(3);
static int inside, max_inside;

static void *limited(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; i++) {
    CHECK_EQ(weft_sem_acquire(&limit), 0);
    int now = __atomic_add_fetch(&inside, 1, __ATOMIC_ACQ_REL);
    int m = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
    while (now > m && !__atomic_compare_exchange_n(&max_inside, &m, now, 0,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      ;
    weft_yield();
    __atomic_sub_fetch(&inside, 1, __ATOMIC_ACQ_REL);
    weft_sem_release(&limit);
  }
  return NULL;
}

static void *sem_main(void *arg) {
  (void)arg;
  weft_co *c[32];
  for (int i = 0; i < 32; i++)
    CHECK_EQ(weft_spawn(&c[i], limited, NULL), 0);
  CHECK_EQ(weft_gather(c, 32, NULL), 0);
  CHECK(max_inside >= 1 && max_inside <= 3);
  int n = 0;
  while (weft_sem_tryacquire(&limit) == 0)
    n++;
  CHECK_EQ(n, 3); /* every permit came back */
  return NULL;
}

static void semaphore(void) { CHECK_EQ(weft_run(NULL, sem_main, NULL, NULL), 0); }

/* A foreign thread waits on a wait group that coroutines complete. */
static weft_waitgroup fwg = WEFT_WAITGROUP_INIT;

static void *fwg_done(void *arg) {
  (void)arg;
  weft_yield();
  weft_waitgroup_done(&fwg);
  return NULL;
}

static void foreign_waitgroup(void) {
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  CHECK_EQ(weft_waitgroup_add(&fwg, 100), 0);
  for (int i = 0; i < 100; i++)
    CHECK_EQ(weft_runtime_spawn(rt, NULL, fwg_done, NULL), 0);
  CHECK_EQ(weft_waitgroup_wait(&fwg), 0); /* blocks this thread */
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

/* ---- deadlock report ------------------------------------------------------------- */

static void *wait_forever_sem(void *arg) {
  (void)arg;
  weft_sem s = WEFT_SEM_INIT(0);
  return (void *)(intptr_t)weft_sem_acquire(&s);
}

static void *deadlock_main(void *arg) {
  (void)arg;
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, wait_forever_sem, NULL), 0);
  weft_join(c, NULL); /* never returns: weft_run reports the deadlock */
  return NULL;
}

static void deadlock_body(void *arg) {
  (void)arg;
  int rc = weft_run(NULL, deadlock_main, NULL, NULL);
  _exit(rc == WEFT_EDEADLOCK ? 0 : 3);
}

static void deadlock_report(void) {
  char buf[4096];
  int status = test_run_child(deadlock_body, NULL, buf, sizeof buf);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK(strstr(buf, "all coroutines are asleep") != NULL);
  CHECK(strstr(buf, "coroutine 1: parked on join") != NULL);
  CHECK(strstr(buf, "parked on mutex/cond/sem/waitgroup") != NULL);
}

/* A call running on the offload pool can still wake its caller: no
 * deadlock is reported while one runs, however long. */
static void *slow_blocking(void *arg) {
  (void)arg;
  usleep(600000);
  return (void *)1;
}

static void *offload_wait_main(void *arg) {
  (void)arg;
  void *r;
  CHECK_EQ(weft_offload(slow_blocking, NULL, &r), 0);
  CHECK_EQ((uintptr_t)r, 1);
  return NULL;
}

static void no_false_deadlock(void) {
  CHECK_EQ(weft_run(NULL, offload_wait_main, NULL, NULL), 0);
}

static const test_case cases[] = {
    {"waitgroup", waitgroup},
    {"gather", gather},
    {"gather_cancel", gather_cancel},
    {"cancel_basics", cancel_basics},
    {"cancel_race", cancel_race},
    {"cancel_join_race", cancel_join_race},
    {"mutex_counter", mutex_counter},
    {"mutex_cancel", mutex_cancel},
    {"cond_queue", cond_queue},
    {"cond_cancel", cond_cancel},
    {"semaphore", semaphore},
    {"foreign_waitgroup", foreign_waitgroup},
    {"deadlock_report", deadlock_report},
    {"no_false_deadlock", no_false_deadlock},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
