/*
 * conn.c - one coroutine per connection: when each request goes out, and
 * what is recorded of it.
 *
 * Startup, with run.c:
 *   C1. connect ahead (the engine's conn_prepare), say so on run.ready,
 *       and wait at run.gate; run.c sets start_ns and end_ns once every
 *       connection is ready and then closes the gate, so connecting is
 *       not part of the measured run and every connection reads the same
 *       start (the close orders the stores before the reads).
 *
 * Closed loop (no -R): each connection sends its next request as soon as
 * the previous answer is in. Latency is from the request's start to the
 * last byte of its response. With -n the requests are taken from one
 * atomic counter, so exactly n are made however fast each connection is.
 *
 * URLs, round-robin: connection j's k-th request goes to URL (j + k) mod
 * the number of URLs, so every connection cycles through all of them
 * (the open loop's run-wide index would pin a connection to the URLs
 * congruent to it, and a slow URL to a few connections). The closed loop
 * with -n uses the counter's value instead, so each URL gets exactly its
 * share of the n.
 *
 * Open loop (-R rate): request i of the whole run is intended at
 *   intended_i = start + i / rate,
 * and connection j of c makes requests j, j + c, j + 2c, ... It sleeps
 * until its next intended time; one that has fallen behind (the server
 * was slow) sends at once, without sleeping, until it has caught up.
 * Latency is always from the intended time, never from the actual send:
 * a server that stalls for a second delays every request meant to go out
 * in that second, and each of them is charged its wait. Measuring from
 * the send instead would record one slow request per connection and hide
 * the rest (coordinated omission). The per-request timeout runs from the
 * actual send, so a connection catching up is not failed for its queue.
 *
 * The end:
 *   C2. no request starts at or after end_ns (closed: its start; open: its
 *       intended time, or its actual send: a connection still behind at
 *       the end does not send its backlog after it, and counts it as
 *       unsent), nor once run.stop is set;
 *   C3. closed loop: run.c sets stop at end_ns and cancels every
 *       connection; a request cut by that (-ECANCELED with stop set) is
 *       not counted, as wrk does. Open loop: the requests in flight at
 *       the end run to their answer (a stalled server's last second is
 *       measured too), up to the drain limit of run.c, which then
 *       cancels;
 *   C4. free the engine's connection and say so on run.done.
 *
 * Errors: counted by (phase, code) in stats.c. A connection whose connect
 * fails backs off (1 ms doubling to 100 ms) before trying again, so a
 * dead server is not hammered with a SYN per microsecond; in the open
 * loop the schedule goes on regardless and the backoff only delays
 * sends.
 */
#include "stress.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static void record_error(run *r, const target *t, int phase, int code) {
  char where[160];
  if (phase == PH_CONNECT)
    snprintf(where, sizeof where, "connect %s", r->origins[t->origin].label);
  else
    snprintf(where, sizeof where, "%s", t->url);
  stats_err(phase, code, where);
}

/* Open loop: how many of connection id's requests, from its k-th on,
 * were due before the end (request i is due at start + i * ns_per_req). */
static uint64_t unsent_from(const run *r, unsigned id, uint64_t k) {
  const options *o = r->opt;
  double span = (double)(r->end_ns - r->start_ns) / r->ns_per_req;
  uint64_t due = (uint64_t)ceil(span); /* requests 0 .. due-1 are due before the end */
  if (o->total && o->total < due)
    due = o->total;
  if (due <= id)
    return 0;
  uint64_t mine = (due - id + o->conns - 1) / o->conns; /* k = 0 .. mine-1 */
  return mine > k ? mine - k : 0;
}

void *conn_main(void *arg) {
  conn_arg *a = arg;
  run *r = a->r;
  const options *o = r->opt;
  const engine *eng = r->eng;
  void *ec = a->ec;
  unsigned id = a->id, conns = o->conns;
  const bool open = o->rate > 0;

  /* C1 */
  if (eng->conn_prepare)
    eng->conn_prepare(ec, &r->targets[id % r->ntargets]);
  weft_waitgroup_done(&r->ready);
  char go;
  weft_chan_recv(r->gate, &go); /* WEFT_ECLOSED: go */
  const uint64_t start = r->start_ns, end = r->end_ns;
  uint64_t backoff_ms = 0;

  for (uint64_t k = 0; !LOAD(&r->stop); k++) {
    uint64_t t0, u = id + k; /* which URL (see the comment at the top) */
    if (open) {
      uint64_t i = id + k * conns;
      if (o->total && i >= o->total)
        break;
      t0 = start + (uint64_t)((double)i * r->ns_per_req);
      if (end && t0 >= end)
        break; /* C2 */
      uint64_t now = weft_now_ns();
      if (end && now >= end) { /* C2: behind at the end */
        stats_unsent(unsent_from(r, id, k));
        break;
      }
      if (now < t0 && weft_sleep_until(t0))
        break; /* cancelled: the run is over */
    } else {
      if (o->total && (u = __atomic_fetch_add(&r->claimed, 1, __ATOMIC_RELAXED)) >= o->total)
        break;
      t0 = weft_now_ns();
      if (end && t0 >= end)
        break; /* C2 */
    }
    if (LOAD(&r->stop))
      break;
    const target *t = &r->targets[u % r->ntargets];
    uint64_t deadline = o->timeout_ns ? (open ? weft_now_ns() : t0) + o->timeout_ns : 0;
    req_result res = {0};
    int rc = eng->request(ec, t, deadline, &res);
    if (rc == -ECANCELED && LOAD(&r->stop))
      break; /* C3: cut at the end, not counted */
    if (rc) {
      record_error(r, t, res.phase, rc);
      if (res.phase == PH_CONNECT) {
        backoff_ms = backoff_ms ? (backoff_ms * 2 > 100 ? 100 : backoff_ms * 2) : 1;
        if (weft_sleep_ms(backoff_ms))
          break;
      }
      continue;
    }
    backoff_ms = 0;
    stats_ok(weft_now_ns() - t0, res.status, res.body_bytes, res.wire_bytes);
  }
  /* C4 */
  eng->conn_free(ec);
  a->ec = NULL;
  weft_waitgroup_done(&r->done);
  return NULL;
}
