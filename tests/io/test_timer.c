/*
 * test_timer.c - sleeps and deadlines through the poller's timers: never
 * early, ordered, cancellable, many with one deadline, armed and cancelled
 * from many workers at once, and -ETIMEDOUT on every sched primitive.
 * Upper bounds on lateness are the benchmark's business (sleep_gather),
 * not the tests': CI machines are loaded.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "weft/io.h"

#define MS 1000000ull

static void *sleep_main(void *arg) {
  (void)arg;
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_sleep_ms(30), 0);
  CHECK(weft_now_ns() - t0 >= 30 * MS); /* never early */
  CHECK_EQ(weft_sleep_ns(0), 0);
  CHECK_EQ(weft_sleep_until(t0), 0); /* in the past: at once */
  return NULL;
}

static void sleep_basics(void) {
  CHECK_EQ(weft_run(NULL, sleep_main, NULL, NULL), 0);
  uint64_t t0 = weft_now_ns(); /* a foreign thread sleeps the thread */
  CHECK_EQ(weft_sleep_ms(10), 0);
  CHECK(weft_now_ns() - t0 >= 10 * MS);
}

/* Sleepers with deadlines 25 ms apart: none wakes early, and the poller
 * fires them in deadline order. Order of *running* is only defined with one
 * worker (woken coroutines queue FIFO); with more, a worker preempted by
 * the host (qemu, a loaded CI machine) can run an earlier one later. */
static weft_mutex order_mu = WEFT_MUTEX_INIT;
static int order[16], order_len;
static uint64_t order_t0;

static void *ordered_sleeper(void *arg) {
  int i = (int)(intptr_t)arg;
  uint64_t deadline = order_t0 + 25u * MS * (unsigned)i;
  CHECK_EQ(weft_sleep_until(deadline), 0);
  CHECK(weft_now_ns() >= deadline);
  CHECK_EQ(weft_mutex_lock(&order_mu), 0);
  order[order_len++] = i;
  weft_mutex_unlock(&order_mu);
  return NULL;
}

static void *ordering_main(void *arg) {
  (void)arg;
  weft_co *c[16];
  /* The first deadline is 200 ms ahead, so that all sixteen are asleep
   * before any is due even where spawning is slow (TSan): a deadline
   * already past when its sleeper starts returns at once, out of turn. */
  order_t0 = weft_now_ns() + 200 * MS;
  for (int i = 15; i >= 0; i--) /* spawned in reverse */
    CHECK_EQ(weft_spawn(&c[i], ordered_sleeper, (void *)(intptr_t)i), 0);
  CHECK_EQ(weft_gather(c, 16, NULL), 0);
  CHECK_EQ(order_len, 16);
  if (weft_workers() == 1)
    for (int i = 0; i < 16; i++)
      CHECK_EQ(order[i], i);
  return NULL;
}

static void ordering(void) { CHECK_EQ(weft_run(NULL, ordering_main, NULL, NULL), 0); }

/* Many timers with one deadline: all fire, none early. */
static uint64_t same_deadline, woke;

static void *same_sleeper(void *arg) {
  (void)arg;
  CHECK_EQ(weft_sleep_until(same_deadline), 0);
  CHECK(weft_now_ns() >= same_deadline);
  __atomic_fetch_add(&woke, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void *same_main(void *arg) {
  (void)arg;
  uint64_t n = SCALE_LIVE(20000);
  same_deadline = weft_now_ns() + 200 * MS;
  for (uint64_t i = 0; i < n; i++)
    CHECK_EQ(weft_spawn(NULL, same_sleeper, NULL), 0);
  while (__atomic_load_n(&woke, __ATOMIC_RELAXED) < n)
    CHECK_EQ(weft_sleep_ms(5), 0);
  CHECK_EQ(__atomic_load_n(&woke, __ATOMIC_RELAXED), n);
  return NULL;
}

static void same_deadline_many(void) { CHECK_EQ(weft_run(NULL, same_main, NULL, NULL), 0); }

/* Cancel sleepers from other coroutines, many at once: every cancelled
 * long sleep returns -ECANCELED; every short one returns 0. */
static void *long_sleep(void *arg) {
  (void)arg;
  return (void *)(intptr_t)weft_sleep_ms(60000);
}

static void *short_sleep(void *arg) {
  (void)arg;
  return (void *)(intptr_t)weft_sleep_ms(1);
}

static void *canceller(void *arg) {
  weft_co **cs = arg;
  for (int i = 0; i < 64; i++) {
    CHECK_EQ(weft_cancel(cs[i]), 0);
    if (i % 8 == 0)
      weft_yield();
  }
  return NULL;
}

static void *cancel_main(void *arg) {
  (void)arg;
  enum { GROUPS = 16 };
  static weft_co *longs[GROUPS][64];
  weft_co *shorts[GROUPS * 8], *cancellers[GROUPS];
  for (int g = 0; g < GROUPS; g++)
    for (int i = 0; i < 64; i++)
      CHECK_EQ(weft_spawn(&longs[g][i], long_sleep, NULL), 0);
  for (int i = 0; i < GROUPS * 8; i++)
    CHECK_EQ(weft_spawn(&shorts[i], short_sleep, NULL), 0);
  for (int g = 0; g < GROUPS; g++)
    CHECK_EQ(weft_spawn(&cancellers[g], canceller, longs[g]), 0);
  CHECK_EQ(weft_gather(cancellers, GROUPS, NULL), 0);
  for (int g = 0; g < GROUPS; g++)
    for (int i = 0; i < 64; i++) {
      void *r;
      CHECK_EQ(weft_join(longs[g][i], &r), 0);
      CHECK_EQ((intptr_t)r, -ECANCELED);
    }
  for (int i = 0; i < GROUPS * 8; i++) {
    void *r;
    CHECK_EQ(weft_join(shorts[i], &r), 0);
    CHECK_EQ((intptr_t)r, 0);
  }
  return NULL;
}

static void cancel_many(void) { CHECK_EQ(weft_run(NULL, cancel_main, NULL, NULL), 0); }

/* ---- deadlines on sched's primitives ------------------------------------------ */

static uint64_t locker_deadline;

static void *timed_locker(void *arg) {
  return (void *)(intptr_t)weft_mutex_lock_until(arg, locker_deadline);
}

static void *deadlines_main(void *arg) {
  (void)arg;
  uint64_t soon;
#define SOON() (soon = weft_now_ns() + 20 * MS)
  weft_sem s = WEFT_SEM_INIT(0);
  CHECK_EQ(weft_sem_acquire_until(&s, SOON()), -ETIMEDOUT);
  CHECK(weft_now_ns() >= soon);
  weft_sem_release(&s); /* the timed-out waiter left the queue: count is 1 */
  CHECK_EQ(weft_sem_tryacquire(&s), 0);

  weft_mutex m = WEFT_MUTEX_INIT;
  CHECK_EQ(weft_mutex_lock(&m), 0);
  weft_co *c;
  /* Another coroutine cannot get the lock before the deadline. */
  locker_deadline = SOON();
  CHECK_EQ(weft_spawn(&c, timed_locker, &m), 0);
  void *lr;
  CHECK_EQ(weft_join(c, &lr), 0);
  CHECK_EQ((intptr_t)lr, -ETIMEDOUT);
  weft_mutex_unlock(&m);
  CHECK_EQ(weft_mutex_trylock(&m), 0); /* the lock still works */
  weft_mutex_unlock(&m);

  weft_cond cv = WEFT_COND_INIT;
  CHECK_EQ(weft_mutex_lock(&m), 0);
  CHECK_EQ(weft_cond_wait_until(&cv, &m, SOON()), -ETIMEDOUT);
  CHECK_EQ(weft_mutex_trylock(&m), -EBUSY); /* re-acquired */
  weft_mutex_unlock(&m);

  weft_chan *ch;
  CHECK_EQ(weft_chan_create(&ch, sizeof(int), 0), 0);
  int v = 1;
  CHECK_EQ(weft_chan_send_until(ch, &v, SOON()), -ETIMEDOUT);
  CHECK_EQ(weft_chan_recv_until(ch, &v, SOON()), -ETIMEDOUT);
  weft_select_case cs[1] = {{ch, WEFT_SELECT_RECV, &v, 0}};
  CHECK_EQ(weft_select_until(cs, 1, 0, SOON()), -ETIMEDOUT);
  CHECK_EQ(weft_chan_destroy(ch), 0); /* no waiter left behind */

  weft_waitgroup wg = WEFT_WAITGROUP_INIT;
  CHECK_EQ(weft_waitgroup_add(&wg, 1), 0);
  CHECK_EQ(weft_waitgroup_wait_until(&wg, SOON()), -ETIMEDOUT);

  CHECK_EQ(weft_spawn(&c, long_sleep, NULL), 0);
  CHECK_EQ(weft_join_until(c, NULL, SOON()), -ETIMEDOUT);
  CHECK_EQ(weft_cancel(c), 0); /* the handle is still joinable */
  void *r;
  CHECK_EQ(weft_join(c, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  return NULL;
}

static void deadlines(void) { CHECK_EQ(weft_run(NULL, deadlines_main, NULL, NULL), 0); }

/* A deadline racing a wake: each acquire either gets a permit or times
 * out, and permits are conserved. */
static void *timed_acquirer(void *arg) {
  weft_sem *s = arg;
  return (void *)(intptr_t)weft_sem_acquire_until(s, weft_now_ns() + 1 * MS);
}

static void *deadline_race_main(void *arg) {
  (void)arg;
  uint64_t got = 0, timed_out = 0;
  for (int round = 0; round < SCALE(400); round++) {
    weft_sem s = WEFT_SEM_INIT(0);
    weft_co *c[8];
    for (int i = 0; i < 8; i++)
      CHECK_EQ(weft_spawn(&c[i], timed_acquirer, &s), 0);
    CHECK_EQ(weft_sleep_ns((uint64_t)(round % 5) * 300000u), 0);
    for (int i = 0; i < 4; i++)
      weft_sem_release(&s);
    uint64_t g = 0;
    for (int i = 0; i < 8; i++) {
      void *r;
      CHECK_EQ(weft_join(c[i], &r), 0);
      if ((intptr_t)r == 0)
        g++;
      else
        CHECK_EQ((intptr_t)r, -ETIMEDOUT);
    }
    uint64_t left = 0;
    while (weft_sem_tryacquire(&s) == 0)
      left++;
    CHECK_EQ(g + left, 4);
    got += g;
    timed_out += 8 - g;
  }
  fprintf(stderr, "acquired %llu, timed out %llu\n", (unsigned long long)got,
          (unsigned long long)timed_out);
  return NULL;
}

static void deadline_races_wake(void) {
  CHECK_EQ(weft_run(NULL, deadline_race_main, NULL, NULL), 0);
}

/* A foreign thread's deadline needs no poller. */
static void foreign_deadline(void) {
  weft_sem s = WEFT_SEM_INIT(0);
  uint64_t t0 = weft_now_ns();
  CHECK_EQ(weft_sem_acquire_until(&s, t0 + 20 * MS), -ETIMEDOUT);
  CHECK(weft_now_ns() - t0 >= 20 * MS);
}

static const test_case cases[] = {
    {"sleep_basics", sleep_basics},
    {"ordering", ordering},
    {"same_deadline_many", same_deadline_many},
    {"cancel_many", cancel_many},
    {"deadlines", deadlines},
    {"deadline_races_wake", deadline_races_wake},
    {"foreign_deadline", foreign_deadline},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
