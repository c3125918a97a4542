/*
 * hist.h - a fixed-memory log-linear latency histogram (HDR-style).
 *
 * Values are nanoseconds. Below 256 every value has a bucket of its own;
 * from there each power of two [2^m, 2^(m+1)) is split linearly into 128
 * sub-buckets of width 2^(m-7), up to 2^41 ns (36 minutes; larger values
 * land in the last bucket, and max keeps the true largest). A bucket's
 * width is at most 1/128 of its lower bound, and a percentile is reported
 * as its bucket's midpoint, so the relative error is below 0.4 % (1 %
 * promised). 4,480 counters: 35 KiB, whatever the number of samples.
 *
 * One writer per histogram, any number of readers: the writer stores with
 * relaxed atomics (plain moves on x86-64 and arm64, no read-modify-write
 * and no lock), so a reader may sum a histogram that is being written --
 * the live progress line does -- and get a slightly stale but valid
 * count per bucket. Merging is adding bucket by bucket.
 */
#ifndef WEFT_STRESS_HIST_H
#define WEFT_STRESS_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7                       /* 128 sub-buckets per power of two */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB)           /* [0, 256): one bucket per ns */
#define HIST_TOP_BITS 41                      /* values up to 2^41 ns */
#define HIST_BUCKETS (HIST_LINEAR + (HIST_TOP_BITS - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
  uint64_t counts[HIST_BUCKETS];
  uint64_t total;
  uint64_t sum; /* ns, for the mean */
  uint64_t max;
  uint64_t min; /* valid when total > 0 */
} hist;

/* The bucket of v, and a bucket's lower bound and width (ns). */
unsigned hist_index(uint64_t v);
uint64_t hist_lower(unsigned idx);
uint64_t hist_width(unsigned idx);

void hist_reset(hist *h);
/* Single writer: relaxed loads and stores, no read-modify-write. */
void hist_record(hist *h, uint64_t ns);
/* dst += src, reading src with relaxed atomics (src may be live). */
void hist_add(hist *dst, const hist *src);
/* dst = a - b, bucket by bucket (b an earlier snapshot of a); max and min
 * are a's (a window's exact max is not recoverable from two sums). */
void hist_diff(hist *dst, const hist *a, const hist *b);
/* The value at percentile p (0 < p <= 100), in ns; 0 when empty. */
uint64_t hist_percentile(const hist *h, double p);
double hist_mean(const hist *h);
/* "lower_bound_us count cumulative_fraction" per non-empty bucket, with a
 * '#' header line; for plotting. Returns 0 or -errno. */
int hist_write(const hist *h, FILE *f);

#endif
