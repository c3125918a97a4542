/*
 * test_hist.c - weft-stress's latency histogram (tools/weft-stress/hist.c):
 * the bucket map is monotonic and contiguous, every value lands in the
 * bucket whose range holds it, a reported percentile is within 1 % of
 * the exact one, and merging and differencing add up.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "hist.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

/* Buckets tile [0, 2^41) in order, without gaps or overlaps. */
static void buckets(void) {
  uint64_t expect = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    CHECK_EQ(hist_lower(i), expect);
    CHECK_EQ(hist_index(hist_lower(i)), i);
    CHECK_EQ(hist_index(hist_lower(i) + hist_width(i) - 1), i);
    /* Width at most 1/128 of the lower bound: < 1 % relative error. */
    CHECK(hist_lower(i) < 256 || hist_width(i) * 128 <= hist_lower(i));
    expect += hist_width(i);
  }
  CHECK_EQ(expect, 1ull << HIST_TOP_BITS);
  CHECK_EQ(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
  for (int k = 0; k < 1000000; k++) {
    uint64_t v = next_rand() >> (next_rand() % 64);
    unsigned i = hist_index(v);
    if (i < HIST_BUCKETS - 1)
      CHECK(v >= hist_lower(i) && v < hist_lower(i) + hist_width(i));
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Percentiles of a spread-out sample against the exact order statistics. */
static void percentiles(void) {
  enum { N = 200000 };
  uint64_t *v = malloc(N * sizeof *v);
  CHECK(v != NULL);
  hist *h = calloc(1, sizeof *h);
  CHECK(h != NULL);
  for (int i = 0; i < N; i++) {
    /* log-uniform from 1 us to 10 s, as latencies spread */
    double e = 3.0 + 7.0 * (double)(next_rand() >> 11) / 9007199254740992.0;
    v[i] = (uint64_t)pow(10.0, e);
    hist_record(h, v[i]);
  }
  qsort(v, N, sizeof *v, cmp_u64);
  const double ps[] = {1, 10, 50, 75, 90, 99, 99.9, 99.99, 100};
  for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
    size_t rank = (size_t)ceil(ps[k] / 100.0 * N);
    uint64_t exact = v[rank - 1], got = hist_percentile(h, ps[k]);
    double err = fabs((double)got - (double)exact) / (double)exact;
    fprintf(stderr, "p%g: exact %llu, histogram %llu, error %.4f%%\n", ps[k],
            (unsigned long long)exact, (unsigned long long)got, err * 100);
    CHECK(err < 0.01);
  }
  CHECK_EQ(h->max, v[N - 1]);
  CHECK_EQ(h->min, v[0]);
  CHECK_EQ(h->total, N);
  free(v);
  free(h);
}

/* Sum of parts == the whole; a later snapshot minus an earlier one is
 * what was recorded in between. */
static void merge_and_diff(void) {
  hist *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *all = calloc(1, sizeof *all);
  hist *sum = calloc(1, sizeof *sum), *snap = calloc(1, sizeof *snap),
       *win = calloc(1, sizeof *win);
  CHECK(a && b && all && sum && snap && win);
  for (int i = 0; i < 50000; i++) {
    uint64_t x = next_rand() % 5000000;
    hist_record(i % 3 ? a : b, x);
    hist_record(all, x);
  }
  hist_add(sum, a);
  hist_add(sum, b);
  CHECK_EQ(sum->total, all->total);
  CHECK_EQ(sum->sum, all->sum);
  CHECK_EQ(sum->max, all->max);
  CHECK_EQ(sum->min, all->min);
  for (unsigned i = 0; i < HIST_BUCKETS; i++)
    CHECK_EQ(sum->counts[i], all->counts[i]);
  *snap = *all;
  for (int i = 0; i < 1000; i++)
    hist_record(all, 7000000);
  hist_diff(win, all, snap);
  CHECK_EQ(win->total, 1000);
  CHECK(fabs((double)hist_percentile(win, 50) - 7e6) / 7e6 < 0.01);
  hist empty_h = {0};
  CHECK_EQ(hist_percentile(&empty_h, 99), 0);
  free(a), free(b), free(all), free(sum), free(snap), free(win);
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      {"buckets", buckets},
      {"percentiles", percentiles},
      {"merge_and_diff", merge_and_diff},
      {NULL, NULL},
  };
  return test_main(argc, argv, cases);
}
