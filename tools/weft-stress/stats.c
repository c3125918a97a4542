/*
 * stats.c - what the connections record, without a lock on the hot path.
 *
 * Each OS thread that records gets a shard of its own (stress.h) on its
 * first record, linked into a global list under a mutex (once per thread).
 * A coroutine finds its thread's shard through shard_here(), a function
 * the compiler may not inline or fold: a coroutine may resume on another
 * worker after any park, and a thread-local address cached across the
 * park would be the old thread's. Between finding the shard and the last
 * store nothing parks, so the coroutine stays on that thread and the
 * shard keeps its single writer. Readers (the progress line once a
 * second, the final report) sum the shards with relaxed loads.
 *
 * Error kinds are (phase, code) pairs in a small global table: looked up
 * without a lock (entries are published with a release store of the
 * count), added under the mutex, at most ERR_KINDS - 1 of them, the rest
 * counted as the last "other" slot. The first occurrence of each keeps
 * its context ("connect 127.0.0.1:1") for the messages.
 */
#include "stress.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define BUMP(p, d) STORE((p), LOAD(p) + (d))

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static shard *shards;         /* under stats_lock */
static __thread shard *tl_shard;

static err_kind kinds[ERR_KINDS];
static unsigned nkinds;       /* atomic: entries [0, nkinds) are complete */

__attribute__((noinline)) static shard *shard_here(void) {
  __asm__ volatile("" ::: "memory"); /* not pure: never merged across a park */
  shard *s = tl_shard;
  if (__builtin_expect(s != NULL, 1))
    return s;
  s = calloc(1, sizeof *s);
  if (!s) {
    fprintf(stderr, STRESS_NAME ": out of memory\n");
    abort();
  }
  pthread_mutex_lock(&stats_lock);
  s->next = shards;
  shards = s;
  pthread_mutex_unlock(&stats_lock);
  tl_shard = s;
  return s;
}

void stats_ok(uint64_t latency_ns, int status, uint64_t body_bytes, uint64_t wire_bytes) {
  shard *s = shard_here();
  hist_record(&s->lat, latency_ns);
  BUMP(&s->requests, 1);
  BUMP(&s->body_bytes, body_bytes);
  BUMP(&s->wire_bytes, wire_bytes);
  unsigned slot = status > 0 && status < STATUS_SLOTS ? (unsigned)status : 0;
  BUMP(&s->status[slot], 1);
}

static unsigned kind_of(int phase, int code, const char *where) {
  unsigned n = __atomic_load_n(&nkinds, __ATOMIC_ACQUIRE);
  for (unsigned i = 0; i < n; i++)
    if (kinds[i].phase == phase && kinds[i].code == code)
      return i;
  pthread_mutex_lock(&stats_lock);
  n = __atomic_load_n(&nkinds, __ATOMIC_RELAXED);
  unsigned i = 0;
  while (i < n && !(kinds[i].phase == phase && kinds[i].code == code))
    i++;
  if (i == n) {
    if (n < ERR_KINDS - 1) {
      kinds[n].phase = phase;
      kinds[n].code = code;
      snprintf(kinds[n].where, sizeof kinds[n].where, "%s", where ? where : "");
      __atomic_store_n(&nkinds, n + 1, __ATOMIC_RELEASE);
    } else {
      i = ERR_KINDS - 1; /* "other" */
    }
  }
  pthread_mutex_unlock(&stats_lock);
  return i;
}

void stats_err(int phase, int code, const char *where) {
  unsigned k = kind_of(phase, code, where);
  shard *s = shard_here(); /* after kind_of, which may block on the mutex */
  BUMP(&s->errors, 1);
  BUMP(&s->err[k], 1);
}

void stats_unsent(uint64_t n) {
  shard *s = shard_here();
  BUMP(&s->unsent, n);
}

void stats_snapshot(shard *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&stats_lock);
  for (shard *s = shards; s; s = s->next) {
    hist_add(&out->lat, &s->lat);
    out->requests += LOAD(&s->requests);
    out->errors += LOAD(&s->errors);
    out->body_bytes += LOAD(&s->body_bytes);
    out->wire_bytes += LOAD(&s->wire_bytes);
    out->unsent += LOAD(&s->unsent);
    for (unsigned i = 0; i < STATUS_SLOTS; i++)
      out->status[i] += LOAD(&s->status[i]);
    for (unsigned i = 0; i < ERR_KINDS; i++)
      out->err[i] += LOAD(&s->err[i]);
  }
  pthread_mutex_unlock(&stats_lock);
}

const err_kind *stats_err_kinds(unsigned *n) {
  *n = __atomic_load_n(&nkinds, __ATOMIC_ACQUIRE);
  return kinds;
}

void stats_free(void) {
  pthread_mutex_lock(&stats_lock);
  while (shards) {
    shard *s = shards;
    shards = s->next;
    free(s);
  }
  pthread_mutex_unlock(&stats_lock);
}

const char *err_name(int code, char *buf, size_t cap) {
  const char *s = weft_strerror(code);
  snprintf(buf, cap, "%s", s);
  if (isupper((unsigned char)buf[0]) && islower((unsigned char)buf[1]))
    buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}
