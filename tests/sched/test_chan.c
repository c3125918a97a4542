/*
 * test_chan.c - channels and select: Go's semantics, close and cancel
 * races (outcomes counted: every value received exactly once or reported
 * not sent), many producers and consumers with checksums, select over many
 * channels. Registered at 1, 2, 4 and 8 workers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "weft/sched.h"

/* ---- basics -------------------------------------------------------------------- */

static void *basics_main(void *arg) {
  (void)arg;
  weft_chan *ch;
  CHECK_EQ(weft_chan_create(&ch, sizeof(int), 4), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_chan_send(ch, &i), 0);
  int v = 99;
  CHECK_EQ(weft_chan_try_send(ch, &v), -EAGAIN);
  CHECK_EQ(weft_chan_len(ch), 4);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_chan_recv(ch, &v), 0);
    CHECK_EQ(v, i); /* FIFO */
  }
  CHECK_EQ(weft_chan_try_recv(ch, &v), -EAGAIN);
  /* Close: buffered values drain first, then WEFT_ECLOSED. */
  v = 7;
  CHECK_EQ(weft_chan_send(ch, &v), 0);
  CHECK_EQ(weft_chan_close(ch), 0);
  CHECK_EQ(weft_chan_close(ch), WEFT_ECLOSED);
  CHECK_EQ(weft_chan_send(ch, &v), WEFT_ECLOSED);
  CHECK_EQ(weft_chan_try_send(ch, &v), WEFT_ECLOSED);
  v = 0;
  CHECK_EQ(weft_chan_recv(ch, &v), 0);
  CHECK_EQ(v, 7);
  CHECK_EQ(weft_chan_recv(ch, &v), WEFT_ECLOSED);
  CHECK_EQ(weft_chan_try_recv(ch, &v), WEFT_ECLOSED);
  CHECK_EQ(weft_chan_destroy(ch), 0);
  /* Bad input. */
  CHECK_EQ(weft_chan_create(&ch, 0, 1), -EINVAL);
  CHECK_EQ(weft_chan_create(NULL, 4, 1), -EINVAL);
  CHECK_EQ(weft_chan_send(NULL, &v), -EINVAL);
  CHECK_EQ(weft_chan_recv(NULL, &v), -EINVAL);
  CHECK_EQ(weft_chan_close(NULL), -EINVAL);
  CHECK(strcmp(weft_strerror(WEFT_ECLOSED), "channel closed") == 0);
  return NULL;
}

static void basics(void) { CHECK_EQ(weft_run(NULL, basics_main, NULL, NULL), 0); }

/* ---- rendezvous ping-pong ------------------------------------------------------- */

static weft_chan *ab, *ba;

static void *ponger(void *arg) {
  (void)arg;
  uint64_t v;
  while (weft_chan_recv(ab, &v) == 0) {
    v++;
    CHECK_EQ(weft_chan_send(ba, &v), 0);
  }
  return NULL;
}

static void *pingpong_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_chan_create(&ab, sizeof(uint64_t), 0), 0);
  CHECK_EQ(weft_chan_create(&ba, sizeof(uint64_t), 0), 0);
  weft_co *p;
  CHECK_EQ(weft_spawn(&p, ponger, NULL), 0);
  uint64_t v = 0;
  for (int i = 0; i < SCALE(100000); i++) {
    CHECK_EQ(weft_chan_send(ab, &v), 0);
    CHECK_EQ(weft_chan_recv(ba, &v), 0);
  }
  CHECK_EQ(v, SCALE(100000));
  CHECK_EQ(weft_chan_close(ab), 0);
  CHECK_EQ(weft_join(p, NULL), 0);
  CHECK_EQ(weft_chan_destroy(ab), 0);
  CHECK_EQ(weft_chan_destroy(ba), 0);
  return NULL;
}

static void pingpong(void) { CHECK_EQ(weft_run(NULL, pingpong_main, NULL, NULL), 0); }

/* Message passing keeps the pair on one worker: the receiver waits in the
 * sender's LIFO slot, which no other worker can steal. */
static void *stays_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_chan_create(&ab, sizeof(uint64_t), 0), 0);
  CHECK_EQ(weft_chan_create(&ba, sizeof(uint64_t), 0), 0);
  weft_co *p;
  CHECK_EQ(weft_spawn(&p, ponger, NULL), 0);
  uint64_t v = 0, moves = 0, rounds = SCALE(100000);
  pthread_t last = pthread_self();
  for (uint64_t i = 0; i < rounds; i++) {
    CHECK_EQ(weft_chan_send(ab, &v), 0);
    CHECK_EQ(weft_chan_recv(ba, &v), 0);
    pthread_t now = pthread_self();
    moves += !pthread_equal(now, last);
    last = now;
  }
  fprintf(stderr, "%llu rounds, %llu moves between workers\n",
          (unsigned long long)rounds, (unsigned long long)moves);
  CHECK(moves <= rounds / 100);
  CHECK_EQ(weft_chan_close(ab), 0);
  CHECK_EQ(weft_join(p, NULL), 0);
  CHECK_EQ(weft_chan_destroy(ab), 0);
  CHECK_EQ(weft_chan_destroy(ba), 0);
  return NULL;
}

static void pair_stays_on_one_worker(void) {
  CHECK_EQ(weft_run(NULL, stays_main, NULL, NULL), 0);
}

/* ---- close wakes everyone --------------------------------------------------------- */

static void *blocked_recv(void *arg) {
  int v;
  return (void *)(intptr_t)weft_chan_recv(arg, &v);
}

static void *blocked_send(void *arg) {
  int v = 1;
  return (void *)(intptr_t)weft_chan_send(arg, &v);
}

static void *close_wakes_main(void *arg) {
  (void)arg;
  weft_chan *empty, *full;
  CHECK_EQ(weft_chan_create(&empty, sizeof(int), 0), 0);
  CHECK_EQ(weft_chan_create(&full, sizeof(int), 1), 0);
  int one = 1;
  CHECK_EQ(weft_chan_send(full, &one), 0);
  weft_co *r[8], *s[8];
  for (int i = 0; i < 8; i++) {
    CHECK_EQ(weft_spawn(&r[i], blocked_recv, empty), 0);
    CHECK_EQ(weft_spawn(&s[i], blocked_send, full), 0);
  }
  CHECK_EQ(weft_chan_destroy(empty), -EBUSY); /* waiters: not freed */
  CHECK_EQ(weft_chan_close(empty), 0);
  CHECK_EQ(weft_chan_close(full), 0);
  for (int i = 0; i < 8; i++) {
    void *rc;
    CHECK_EQ(weft_join(r[i], &rc), 0);
    CHECK_EQ((intptr_t)rc, WEFT_ECLOSED);
    CHECK_EQ(weft_join(s[i], &rc), 0);
    CHECK_EQ((intptr_t)rc, WEFT_ECLOSED);
  }
  int v;
  CHECK_EQ(weft_chan_recv(full, &v), 0); /* the buffered one survives close */
  CHECK_EQ(weft_chan_recv(full, &v), WEFT_ECLOSED);
  CHECK_EQ(weft_chan_destroy(empty), 0);
  CHECK_EQ(weft_chan_destroy(full), 0);
  return NULL;
}

static void close_wakes(void) { CHECK_EQ(weft_run(NULL, close_wakes_main, NULL, NULL), 0); }

/* ---- many producers and consumers, with a close racing the sends ------------------ */

enum { PRODUCERS = 8, CONSUMERS = 8 };
static weft_chan *mp;
static uint64_t sent_sum, sent_count, recv_sum, recv_count;
static uint64_t per_producer;

static void *producer(void *arg) {
  uint64_t base = (uintptr_t)arg << 32;
  uint64_t sum = 0, count = 0;
  for (uint64_t i = 1; i <= per_producer; i++) {
    uint64_t v = base | i;
    int rc = weft_chan_send(mp, &v);
    if (rc == WEFT_ECLOSED)
      break;
    CHECK_EQ(rc, 0);
    sum += v;
    count++;
  }
  __atomic_fetch_add(&sent_sum, sum, __ATOMIC_RELAXED);
  __atomic_fetch_add(&sent_count, count, __ATOMIC_RELAXED);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  uint64_t sum = 0, count = 0, v;
  int rc;
  while ((rc = weft_chan_recv(mp, &v)) == 0) {
    sum += v;
    count++;
  }
  CHECK_EQ(rc, WEFT_ECLOSED);
  __atomic_fetch_add(&recv_sum, sum, __ATOMIC_RELAXED);
  __atomic_fetch_add(&recv_count, count, __ATOMIC_RELAXED);
  return NULL;
}

static void *mpmc_main(void *arg) {
  uintptr_t close_early = (uintptr_t)arg;
  size_t caps[] = {0, 1, 64};
  for (size_t k = 0; k < 3; k++) {
    sent_sum = sent_count = recv_sum = recv_count = 0;
    CHECK_EQ(weft_chan_create(&mp, sizeof(uint64_t), caps[k]), 0);
    weft_co *p[PRODUCERS], *c[CONSUMERS];
    for (uintptr_t i = 0; i < CONSUMERS; i++)
      CHECK_EQ(weft_spawn(&c[i], consumer, NULL), 0);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
      CHECK_EQ(weft_spawn(&p[i], producer, (void *)(i + 1)), 0);
    if (close_early) {
      /* Close while producers are mid-stream: each send is either
       * delivered (and counted) or refused with WEFT_ECLOSED. */
      for (int i = 0; i < 50; i++)
        weft_yield();
      CHECK_EQ(weft_chan_close(mp), 0);
      CHECK_EQ(weft_gather(p, PRODUCERS, NULL), 0);
    } else {
      CHECK_EQ(weft_gather(p, PRODUCERS, NULL), 0);
      CHECK_EQ(weft_chan_close(mp), 0);
    }
    CHECK_EQ(weft_gather(c, CONSUMERS, NULL), 0);
    CHECK_EQ(recv_count, sent_count);
    CHECK_EQ(recv_sum, sent_sum);
    if (!close_early)
      CHECK_EQ(sent_count, PRODUCERS * per_producer);
    CHECK_EQ(weft_chan_destroy(mp), 0);
  }
  return NULL;
}

static void mpmc_checksum(void) {
  per_producer = SCALE(50000);
  CHECK_EQ(weft_run(NULL, mpmc_main, (void *)0, NULL), 0);
}

static void close_races_send(void) {
  per_producer = SCALE(1000000);
  CHECK_EQ(weft_run(NULL, mpmc_main, (void *)1, NULL), 0);
}

/* ---- cancel racing a send: a value goes to exactly one receiver ----------------- */

static void *cancel_recv_main(void *arg) {
  (void)arg;
  enum { N = 8 };
  uint64_t delivered = 0, cancelled = 0;
  for (int round = 0; round < SCALE(2000); round++) {
    weft_chan *ch;
    CHECK_EQ(weft_chan_create(&ch, sizeof(int), 0), 0);
    weft_co *r[N];
    for (int i = 0; i < N; i++)
      CHECK_EQ(weft_spawn(&r[i], blocked_recv, ch), 0);
    int sent = 0;
    for (int i = 0; i < N; i++) {
      weft_cancel(r[i]);
      int one = 1;
      if (i % 2 == 0 && weft_chan_try_send(ch, &one) == 0)
        sent++;
    }
    int got = 0;
    for (int i = 0; i < N; i++) {
      void *rc;
      CHECK_EQ(weft_join(r[i], &rc), 0);
      if ((intptr_t)rc == 0)
        got++;
      else
        CHECK_EQ((intptr_t)rc, -ECANCELED);
    }
    CHECK_EQ(got, sent); /* a try_send succeeds only into a live receiver */
    delivered += (uint64_t)got;
    cancelled += (uint64_t)(N - got);
    CHECK_EQ(weft_chan_destroy(ch), 0);
  }
  fprintf(stderr, "delivered %llu, cancelled %llu\n", (unsigned long long)delivered,
          (unsigned long long)cancelled);
  return NULL;
}

static void cancel_races_send(void) {
  CHECK_EQ(weft_run(NULL, cancel_recv_main, NULL, NULL), 0);
}

/* ---- select ------------------------------------------------------------------------ */

static void *select_basics_main(void *arg) {
  (void)arg;
  weft_chan *a, *b;
  CHECK_EQ(weft_chan_create(&a, sizeof(int), 1), 0);
  CHECK_EQ(weft_chan_create(&b, sizeof(int), 1), 0);
  int x = 0, y = 0, z = 5;
  weft_select_case cs[2] = {{a, WEFT_SELECT_RECV, &x, -1}, {b, WEFT_SELECT_RECV, &y, -1}};
  CHECK_EQ(weft_select(cs, 2, WEFT_SELECT_NONBLOCK), -EAGAIN); /* default */
  CHECK_EQ(weft_chan_send(b, &z), 0);
  CHECK_EQ(weft_select(cs, 2, 0), 1);
  CHECK_EQ(cs[1].result, 0);
  CHECK_EQ(y, 5);
  /* A send case on a channel with room. */
  weft_select_case snd[2] = {{a, WEFT_SELECT_SEND, &z, -1}, {b, WEFT_SELECT_RECV, &y, -1}};
  CHECK_EQ(weft_select(snd, 2, 0), 0);
  CHECK_EQ(weft_chan_recv(a, &x), 0);
  CHECK_EQ(x, 5);
  /* A closed channel is ready, with WEFT_ECLOSED. */
  CHECK_EQ(weft_chan_close(a), 0);
  CHECK_EQ(weft_select(cs, 2, 0), 0);
  CHECK_EQ(cs[0].result, WEFT_ECLOSED);
  /* Bad input. */
  CHECK_EQ(weft_select(NULL, 1, 0), -EINVAL);
  CHECK_EQ(weft_select(cs, 0, 0), -EINVAL);
  weft_select_case bad = {b, 3, &x, 0};
  CHECK_EQ(weft_select(&bad, 1, 0), -EINVAL);
  CHECK_EQ(weft_chan_destroy(a), 0);
  CHECK_EQ(weft_chan_destroy(b), 0);
  return NULL;
}

static void select_basics(void) {
  CHECK_EQ(weft_run(NULL, select_basics_main, NULL, NULL), 0);
}

/* Many senders over many channels; one selector per few channels; every
 * value arrives exactly once. */
enum { SEL_CHANS = 32, SEL_SELECTORS = 4 };
static weft_chan *sel_ch[SEL_CHANS];
static uint64_t sel_per_chan;

static void *sel_sender(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  for (uint64_t k = 1; k <= sel_per_chan; k++) {
    uint64_t v = (i << 32) | k;
    CHECK_EQ(weft_chan_send(sel_ch[i], &v), 0);
  }
  CHECK_EQ(weft_chan_close(sel_ch[i]), 0);
  return NULL;
}

static void *selector(void *arg) {
  uintptr_t first = (uintptr_t)arg * (SEL_CHANS / SEL_SELECTORS);
  enum { K = SEL_CHANS / SEL_SELECTORS };
  uint64_t vals[K], sum = 0, count = 0;
  weft_select_case cs[K];
  size_t open = K;
  for (size_t i = 0; i < K; i++)
    cs[i] = (weft_select_case){sel_ch[first + i], WEFT_SELECT_RECV, &vals[i], 0};
  while (open) {
    int i = weft_select(cs, open, 0);
    CHECK(i >= 0 && (size_t)i < open);
    if (cs[i].result == WEFT_ECLOSED) { /* drop the closed case */
      cs[i] = cs[open - 1];
      cs[i].elem = &vals[i];
      open--;
      continue;
    }
    CHECK_EQ(cs[i].result, 0);
    sum += vals[i];
    count++;
  }
  uint64_t *out = malloc(2 * sizeof *out);
  out[0] = sum;
  out[1] = count;
  return out;
}

static void *select_many_main(void *arg) {
  (void)arg;
  sel_per_chan = SCALE(20000);
  for (int i = 0; i < SEL_CHANS; i++)
    CHECK_EQ(weft_chan_create(&sel_ch[i], sizeof(uint64_t), (size_t)(i % 3)), 0);
  weft_co *sel[SEL_SELECTORS], *snd[SEL_CHANS];
  for (uintptr_t i = 0; i < SEL_SELECTORS; i++)
    CHECK_EQ(weft_spawn(&sel[i], selector, (void *)i), 0);
  for (uintptr_t i = 0; i < SEL_CHANS; i++)
    CHECK_EQ(weft_spawn(&snd[i], sel_sender, (void *)i), 0);
  CHECK_EQ(weft_gather(snd, SEL_CHANS, NULL), 0);
  uint64_t sum = 0, count = 0, want = 0;
  for (int i = 0; i < SEL_SELECTORS; i++) {
    void *r;
    CHECK_EQ(weft_join(sel[i], &r), 0);
    uint64_t *out = r;
    sum += out[0];
    count += out[1];
    free(out);
  }
  for (uint64_t i = 0; i < SEL_CHANS; i++)
    want += sel_per_chan * (i << 32) + sel_per_chan * (sel_per_chan + 1) / 2;
  CHECK_EQ(count, SEL_CHANS * sel_per_chan);
  CHECK_EQ(sum, want);
  for (int i = 0; i < SEL_CHANS; i++)
    CHECK_EQ(weft_chan_destroy(sel_ch[i]), 0);
  return NULL;
}

static void select_many(void) { CHECK_EQ(weft_run(NULL, select_many_main, NULL, NULL), 0); }

static void *select_waiter(void *arg) {
  weft_chan **chs = arg;
  int x, y;
  weft_select_case cs[2] = {{chs[0], WEFT_SELECT_RECV, &x, 0}, {chs[1], WEFT_SELECT_RECV, &y, 0}};
  return (void *)(intptr_t)weft_select(cs, 2, 0);
}

static void *select_cancel_main(void *arg) {
  (void)arg;
  weft_chan *chs[2];
  CHECK_EQ(weft_chan_create(&chs[0], sizeof(int), 0), 0);
  CHECK_EQ(weft_chan_create(&chs[1], sizeof(int), 0), 0);
  weft_co *w;
  CHECK_EQ(weft_spawn(&w, select_waiter, chs), 0);
  weft_yield();
  CHECK_EQ(weft_cancel(w), 0);
  void *r;
  CHECK_EQ(weft_join(w, &r), 0);
  CHECK_EQ((intptr_t)r, -ECANCELED);
  /* Its waiters are gone from both channels. */
  CHECK_EQ(weft_chan_destroy(chs[0]), 0);
  CHECK_EQ(weft_chan_destroy(chs[1]), 0);
  return NULL;
}

static void select_cancel(void) {
  CHECK_EQ(weft_run(NULL, select_cancel_main, NULL, NULL), 0);
}

/* ---- a foreign thread on a channel ---------------------------------------------- */

static void *co_sender(void *arg) {
  for (int i = 0; i < 1000; i++)
    CHECK_EQ(weft_chan_send(arg, &i), 0);
  CHECK_EQ(weft_chan_close(arg), 0);
  return NULL;
}

static void foreign_recv(void) {
  weft_runtime *rt;
  weft_chan *ch;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  CHECK_EQ(weft_chan_create(&ch, sizeof(int), 0), 0);
  weft_co *c;
  CHECK_EQ(weft_runtime_spawn(rt, &c, co_sender, ch), 0);
  int v, expect = 0;
  while (weft_chan_recv(ch, &v) == 0) /* blocks this thread */
    CHECK_EQ(v, expect++);
  CHECK_EQ(expect, 1000);
  CHECK_EQ(weft_join(c, NULL), 0);
  CHECK_EQ(weft_chan_destroy(ch), 0);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

static const test_case cases[] = {
    {"basics", basics},
    {"pingpong", pingpong},
    {"pair_stays_on_one_worker", pair_stays_on_one_worker},
    {"close_wakes", close_wakes},
    {"mpmc_checksum", mpmc_checksum},
    {"close_races_send", close_races_send},
    {"cancel_races_send", cancel_races_send},
    {"select_basics", select_basics},
    {"select_many", select_many},
    {"select_cancel", select_cancel},
    {"foreign_recv", foreign_recv},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
