/*
 * hist.c - the log-linear histogram of hist.h.
 *
 * Index of a value v >= 256: m = floor(log2 v) (8..40), then the top
 * 8 bits of v (1xxxxxxx: 128..255) pick the sub-bucket, so the bucket is
 * 256 + (m - 8) * 128 + (v >> (m - 7)) - 128 and spans 2^(m-7) values.
 * Below 256 the index is the value. Both maps are monotonic, so walking
 * the counts in order walks the values in order (percentiles, the dump).
 */
#include "hist.h"

#include <errno.h>
#include <string.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

unsigned hist_index(uint64_t v) {
  if (v < HIST_LINEAR)
    return (unsigned)v;
  unsigned m = 63u - (unsigned)__builtin_clzll(v);
  if (m >= HIST_TOP_BITS)
    return HIST_BUCKETS - 1;
  unsigned shift = m - HIST_SUB_BITS;
  return HIST_LINEAR + (m - HIST_SUB_BITS - 1) * HIST_SUB + (unsigned)(v >> shift) - HIST_SUB;
}

uint64_t hist_lower(unsigned idx) {
  if (idx < HIST_LINEAR)
    return idx;
  unsigned k = (idx - HIST_LINEAR) / HIST_SUB, s = (idx - HIST_LINEAR) % HIST_SUB;
  return (uint64_t)(HIST_SUB + s) << (k + 1);
}

uint64_t hist_width(unsigned idx) {
  return idx < HIST_LINEAR ? 1 : (uint64_t)1 << ((idx - HIST_LINEAR) / HIST_SUB + 1);
}

void hist_reset(hist *h) { memset(h, 0, sizeof *h); }

void hist_record(hist *h, uint64_t ns) {
  unsigned i = hist_index(ns);
  STORE(&h->counts[i], LOAD(&h->counts[i]) + 1);
  uint64_t total = LOAD(&h->total);
  STORE(&h->total, total + 1);
  STORE(&h->sum, LOAD(&h->sum) + ns);
  if (ns > LOAD(&h->max))
    STORE(&h->max, ns);
  if (total == 0 || ns < LOAD(&h->min))
    STORE(&h->min, ns);
}

void hist_add(hist *dst, const hist *src) {
  uint64_t total = LOAD(&src->total);
  if (!total)
    return;
  for (unsigned i = 0; i < HIST_BUCKETS; i++)
    dst->counts[i] += LOAD(&src->counts[i]);
  uint64_t mx = LOAD(&src->max), mn = LOAD(&src->min);
  if (dst->total == 0 || mn < dst->min)
    dst->min = mn;
  if (mx > dst->max)
    dst->max = mx;
  dst->total += total;
  dst->sum += LOAD(&src->sum);
}

void hist_diff(hist *dst, const hist *a, const hist *b) {
  uint64_t total = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    /* The snapshots were taken bucket by bucket while writers ran: a
     * bucket of the later one is never smaller, but guard anyway. */
    uint64_t d = a->counts[i] >= b->counts[i] ? a->counts[i] - b->counts[i] : 0;
    dst->counts[i] = d;
    total += d;
  }
  dst->total = total;
  dst->sum = a->sum >= b->sum ? a->sum - b->sum : 0;
  dst->max = a->max;
  dst->min = a->min;
}

uint64_t hist_percentile(const hist *h, double p) {
  if (!h->total)
    return 0;
  /* The smallest value with at least p % of the samples at or below it. */
  double want = p / 100.0 * (double)h->total;
  uint64_t target = (uint64_t)want;
  if ((double)target < want || target == 0)
    target++;
  if (target > h->total)
    target = h->total;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= target) {
      uint64_t v = hist_lower(i) + hist_width(i) / 2;
      if (h->max && v > h->max)
        v = h->max;
      if (v < h->min)
        v = h->min;
      return v;
    }
  }
  return h->max;
}

double hist_mean(const hist *h) { return h->total ? (double)h->sum / (double)h->total : 0; }

int hist_write(const hist *h, FILE *f) {
  fprintf(f, "# latency_us\tcount\tcumulative_fraction\n");
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    if (!h->counts[i])
      continue;
    seen += h->counts[i];
    fprintf(f, "%.3f\t%llu\t%.6f\n", (double)hist_lower(i) / 1e3,
            (unsigned long long)h->counts[i], (double)seen / (double)h->total);
  }
  return ferror(f) ? -EIO : 0;
}
