/*
 * stress.h - what the files of weft-stress share.
 *
 *   main.c           options, signals, weft_run, the exit status
 *   run.c            the first coroutine: resolve, spawn the connections,
 *                    the once-a-second progress, the end of the run
 *   conn.c           one coroutine per connection: the request schedule
 *                    (closed or open loop) and what is recorded
 *   target.c         URLs: parsing, the request bytes, resolving, the
 *                    connect check before the run
 *   engine_native.c  HTTP/1.1 on weft sockets (http://, the fast path)
 *   resp_parse.c     its response grammar: status line, framing, chunk sizes
 *   engine_curl.c    weft_http_do (https://, HTTP/2)
 *   embedded.c       the in-process server stressed when no URL is given
 *   stats.c          per-thread counters and histograms, merged on demand
 *   hist.c           the log-linear latency histogram
 *   report.c         progress lines, the final report, --json, --hist
 */
#ifndef WEFT_STRESS_H
#define WEFT_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <weft/weft.h>

#include "hist.h"

#define STRESS_NAME "weft-stress"
#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull

/* ---- options (main.c) ------------------------------------------------------ */

enum engine_kind { ENGINE_AUTO, ENGINE_NATIVE, ENGINE_CURL };

typedef struct options {
  unsigned conns;        /* -c */
  unsigned workers;      /* -w; 0: the CPUs */
  uint64_t duration_ns;  /* -d; 0: none (then -n ends the run) */
  uint64_t total;        /* -n; 0: none */
  double rate;           /* -R, requests/s in all; 0: closed loop */
  uint64_t timeout_ns;   /* -t, per request; 0: none */
  const char *method;    /* -m; NULL: GET, or POST with a body */
  char **headers;        /* -H "Name: value", nheaders of them */
  size_t nheaders;
  char *body;            /* -b or -B; NULL: none */
  size_t body_len;
  char **urls;           /* arguments and -f; none: the embedded server */
  size_t nurls;
  int engine;            /* enum engine_kind; resolved by main */
  bool http2;            /* --http2 */
  bool insecure;         /* -k */
  const char *cacert;    /* --cacert */
  bool quiet;            /* -q */
  bool show_stats;       /* --stats: the runtime's counters after the report */
  const char *json_path; /* --json FILE or "-" */
  const char *hist_path; /* --hist FILE */
} options;

/* ---- targets (target.c) ------------------------------------------------------ */

typedef struct origin {
  char *host;  /* as in the URL, without IPv6 brackets */
  char port[8];
  char *label; /* "host:port" or "[v6]:port", for messages */
  struct sockaddr_storage addr;
  socklen_t addr_len;
} origin;

typedef struct target {
  const char *url;
  bool https;
  bool head;       /* HEAD: responses have no body */
  unsigned origin; /* index into run.origins */
  char *req;       /* native engine: the whole request, built once */
  size_t req_len;
} target;

/* ---- stats (stats.c) ------------------------------------------------------------ */

enum phase { PH_CONNECT, PH_REQUEST };
#define STATUS_SLOTS 1000 /* status codes 0..999; others count in slot 0 */
#define ERR_KINDS 32      /* distinct (phase, code) pairs; the last is "other" */

/* One per thread that records (hist.h's single-writer rule: a coroutine
 * runs on one thread between two parks, and recording never parks). Every
 * field is written with relaxed atomic stores by its thread only, and may
 * be read by anyone at any time. Also used as a merged snapshot. */
typedef struct shard {
  hist lat;
  uint64_t requests; /* responses received, any status */
  uint64_t errors;
  uint64_t body_bytes;
  uint64_t wire_bytes; /* native engine: every byte read */
  uint64_t unsent;     /* open loop: due before the end, not sent by then */
  uint64_t status[STATUS_SLOTS];
  uint64_t err[ERR_KINDS];
  struct shard *next;
} shard;

typedef struct err_kind {
  int phase, code;
  char where[160]; /* the first occurrence: "connect 127.0.0.1:1" */
} err_kind;

void stats_ok(uint64_t latency_ns, int status, uint64_t body_bytes, uint64_t wire_bytes);
void stats_err(int phase, int code, const char *where);
void stats_unsent(uint64_t n);
/* *out = the sum of every thread's shard now (out is zeroed first). */
void stats_snapshot(shard *out);
/* The kinds seen so far; *n of them. Entries never change once listed. */
const err_kind *stats_err_kinds(unsigned *n);
void stats_free(void);

/* weft_strerror's name, with strerror's capital lowered ("connection
 * refused"), so every message reads the same. Into buf. */
const char *err_name(int code, char *buf, size_t cap);

/* ---- the run (run.c, conn.c) ------------------------------------------------------ */

typedef struct req_result {
  int status;
  uint64_t body_bytes, wire_bytes;
  int phase; /* on error: enum phase */
} req_result;

struct run;
typedef struct engine {
  const char *name;
  int (*init)(struct run *r);           /* in the first coroutine; says why it failed */
  void (*fini)(struct run *r);
  void *(*conn_new)(struct run *r, unsigned id);
  /* Connect ahead of the start (may be NULL); errors are left for the
   * first request to meet and count. */
  void (*conn_prepare)(void *c, const target *first);
  /* One request and its whole response; 0 or a negative code. */
  int (*request)(void *c, const target *t, uint64_t deadline_ns, req_result *res);
  void (*conn_free)(void *c);
} engine;

extern const engine engine_native, engine_curl;

typedef struct run {
  options *opt;
  target *targets;
  size_t ntargets;
  origin *origins;
  size_t norigins;
  const engine *eng;
  void *eng_ctx;
  bool embedded;          /* no URL: our own server */
  bool embedded_up;
  char embedded_url[96];  /* "http://127.0.0.1:PORT/" */
  char *embedded_urls[1]; /* opt->urls then points here */
  uint64_t embedded_requests; /* what it answered, for the report */

  /* The schedule, fixed before the gate opens (conn.c). */
  uint64_t start_ns;
  uint64_t end_ns;        /* requests intended at or after it are not made; 0: none */
  double ns_per_req;      /* open loop: 1e9 / rate */
  weft_waitgroup ready;   /* each connection, once connected */
  weft_chan *gate;        /* closed by run.c: go */
  weft_waitgroup done;    /* each connection, at its end */

  int started;            /* atomic: the gate is open */
  int stop;               /* atomic: stop making requests (end, ^C) */
  int interrupted;        /* atomic: ^C or SIGTERM */
  uint64_t claimed;       /* atomic: closed loop with -n, requests taken */

  unsigned workers;        /* weft_workers(), for the report */

  /* Results, for report.c. */
  uint64_t stop_ns;       /* when the last request ended or was cut */
  char first_error[256];  /* "connect 127.0.0.1:1: connection refused" */
  weft_stats rt_stats;    /* --stats: taken as the run ends (still running) */
  bool have_rt_stats;
  int exit_code;
} run;

void *conn_main(void *arg);
typedef struct conn_arg {
  run *r;
  unsigned id;
  void *ec; /* the engine's connection */
} conn_arg;

/* The first coroutine; arg is a run. Returns (void *)1 on a failure it has
 * already reported. */
void *run_main(void *arg);
/* Stop the run from a signal watcher. */
void run_interrupt(run *r);

/* ---- targets (target.c) ---------------------------------------------------------- */

/* Parse every URL into r->targets and r->origins and build the request
 * bytes. On a bad URL: a message into err, -EINVAL. */
int targets_parse(run *r, char *err, size_t cap);
/* -m, else POST with a body, else GET. */
const char *request_method(const options *o);
/* Resolve every origin (weft_resolve) and try one TCP connection to each,
 * so a refused port ends the run at once with a clear message. */
int targets_check(run *r);
void targets_free(run *r);
/* Connect a new socket to o: the fd, or a negative code. */
int origin_connect(const origin *o, uint64_t deadline_ns);

/* ---- embedded server (embedded.c) ---------------------------------------------------- */

/* Start the in-process server on a loopback port; its URL into url. */
int embedded_start(char *url, size_t cap, char *err, size_t errcap);
/* Stop it; returns the requests it answered. */
uint64_t embedded_stop(void);

/* ---- reports (report.c) ------------------------------------------------------------- */

typedef struct progress {
  shard prev, cur; /* snapshots: the last tick's, this tick's */
  hist window;     /* cur - prev: the last second's latencies */
  uint64_t prev_ns;
  bool tty, printed;
} progress;

void progress_start(progress *p, const run *r);
void progress_tick(progress *p, const run *r, uint64_t now_ns);
void progress_end(progress *p);
/* The final report as text (to f), and the same as one JSON object. */
void report_text(FILE *f, const run *r, const shard *total);
void report_json(FILE *f, const run *r, const shard *total);

/* Durations: "10s", "500ms", "2m", "1.5s", "250us", "1h"; bare: seconds. */
int parse_duration(const char *s, uint64_t *ns);
void fmt_duration(char *buf, size_t cap, uint64_t ns);

#endif
