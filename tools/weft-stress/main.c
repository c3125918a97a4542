/*
 * weft-stress - an HTTP load generator on weft.
 *
 *   weft-stress [options] [URL...]
 *
 * With no URL it starts weft's embedded HTTP server in-process on a
 * loopback port and stresses that for 5 s: a demo that needs nothing but
 * the build. See usage() for the options, stress.h for the files.
 *
 * Exit status: 0 when responses came back (whatever their status codes),
 * 1 when none did (every request failed, the name did not resolve, the
 * port refused), 2 on bad usage.
 */
#include "stress.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define DEFAULT_CONNS 64
#define DEFAULT_DURATION_NS (10 * NS_PER_S)
#define EMBEDDED_DURATION_NS (5 * NS_PER_S)
#define DEFAULT_TIMEOUT_NS (10 * NS_PER_S)

static void usage(FILE *f) {
  fprintf(f,
"usage: weft-stress [options] [URL...]\n"
"\n"
"Load an HTTP server and report throughput, latency percentiles, status\n"
"codes and errors. With no URL, weft's embedded HTTP server is started on a\n"
"loopback port and stressed for 5 s.\n"
"\n"
"Load:\n"
"  -c N             connections (concurrent requests); default %d\n"
"  -d DURATION      how long: 10s, 500ms, 2m (default 10s; 5s with no URL)\n"
"  -n N             total requests (with no -d, the run ends after them)\n"
"  -R RATE          open loop: RATE requests/s in all, latency measured from\n"
"                   each request's intended send time (no coordinated\n"
"                   omission); without -R, closed loop\n"
"  -w N             worker threads (default: the CPUs)\n"
"  -t TIMEOUT       per request (default 10s; 0: none)\n"
"Requests:\n"
"  -m METHOD        default GET (POST with a body)\n"
"  -H 'Name: value' a header (repeatable)\n"
"  -b BODY          request body\n"
"  -B FILE          request body from FILE ('-': stdin)\n"
"  -f FILE          URLs from FILE, one a line ('#' comments; '-': stdin);\n"
"                   several URLs are taken round-robin\n"
"Engines:\n"
"  --engine native|curl  native HTTP/1.1 on weft sockets (the default for\n"
"                   http://), or libcurl through weft::http (the default for\n"
"                   https:// and --http2)\n"
"  --http2          HTTP/2 (curl engine: ALPN over TLS, prior knowledge on\n"
"                   http://)\n"
"  -k, --insecure   do not verify TLS certificates\n"
"  --cacert FILE    trust these CAs\n"
"Output:\n"
"  -q               no progress line\n"
"  --stats          after the report, the runtime's counters (weft_stats:\n"
"                   per worker runs, steals, parks, sleeps; poller, DNS,\n"
"                   HTTP)\n"
"  --json FILE|-    the report as one JSON object\n"
"  --hist FILE      the latency distribution: bucket lower bound (us), count,\n"
"                   cumulative fraction\n"
"  -h, --help\n"
"\n"
"Exit status: 0 when responses came back, 1 when none did, 2 on bad usage.\n",
          DEFAULT_CONNS);
}

static void bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, STRESS_NAME ": ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(weft-stress --help for the options)\n");
  exit(2);
}

static void oom(void) {
  fprintf(stderr, STRESS_NAME ": out of memory\n");
  exit(1);
}

static void push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof *nv);
  if (!nv || !(nv[*n] = strdup(s)))
    oom();
  *v = nv;
  (*n)++;
}

static unsigned long long parse_count(const char *s, const char *what, unsigned long long max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s == '-' || end == s || *end || errno || v < 1 || v > max)
    bad_usage(what, s);
  return v;
}

static FILE *open_in(const char *path) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    fprintf(stderr, STRESS_NAME ": %s: %s\n", path, strerror(errno));
    exit(2);
  }
  return f;
}

static void read_urls(options *o, const char *path) {
  FILE *f = open_in(path);
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) >= 0) {
    char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    s[strcspn(s, "\r\n")] = 0;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
      s[--n] = 0;
    if (*s && *s != '#')
      push(&o->urls, &o->nurls, s);
  }
  free(line);
  if (f != stdin)
    fclose(f);
}

static void read_body(options *o, const char *path) {
  FILE *f = open_in(path);
  size_t cap = 4096, len = 0;
  char *b = malloc(cap);
  size_t got;
  while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
    len += got;
    if (len == cap) {
      char *nb = realloc(b, cap *= 2);
      if (!nb)
        free(b);
      b = nb;
    }
  }
  if (!b)
    oom();
  if (ferror(f)) {
    fprintf(stderr, STRESS_NAME ": %s: %s\n", path, strerror(errno));
    exit(2);
  }
  if (f != stdin)
    fclose(f);
  free(o->body);
  o->body = b;
  o->body_len = len;
}

enum { OPT_ENGINE = 256, OPT_HTTP2, OPT_CACERT, OPT_JSON, OPT_HIST, OPT_STATS };

static void parse_options(options *o, int argc, char **argv) {
  static const struct option longs[] = {
      {"engine", required_argument, NULL, OPT_ENGINE},
      {"http2", no_argument, NULL, OPT_HTTP2},
      {"insecure", no_argument, NULL, 'k'},
      {"cacert", required_argument, NULL, OPT_CACERT},
      {"json", required_argument, NULL, OPT_JSON},
      {"hist", required_argument, NULL, OPT_HIST},
      {"stats", no_argument, NULL, OPT_STATS},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool have_timeout = false;
  int c;
  while ((c = getopt_long(argc, argv, "c:d:n:R:w:t:m:H:b:B:f:qkh", longs, NULL)) != -1) {
    switch (c) {
    case 'c':
      o->conns = (unsigned)parse_count(optarg, "-c %s: connections are 1 to 1000000", 1000000);
      break;
    case 'd':
      if (parse_duration(optarg, &o->duration_ns))
        bad_usage("-d %s: a duration is like 10s, 500ms, 2m", optarg);
      break;
    case 'n':
      o->total = parse_count(optarg, "-n %s: a count of requests, at least 1", UINT64_MAX / 2);
      break;
    case 'R': {
      char *end;
      errno = 0;
      o->rate = strtod(optarg, &end);
      if (end == optarg || *end || errno || !(o->rate > 0) || isinf(o->rate) || o->rate > 1e9)
        bad_usage("-R %s: a rate in requests per second, above 0", optarg);
      break;
    }
    case 'w':
      o->workers = (unsigned)parse_count(optarg, "-w %s: workers are 1 to 1024", 1024);
      break;
    case 't':
      have_timeout = true;
      if (!strcmp(optarg, "0"))
        o->timeout_ns = 0;
      else if (parse_duration(optarg, &o->timeout_ns))
        bad_usage("-t %s: a timeout is like 2s or 500ms (0: none)", optarg);
      break;
    case 'm':
      if (!*optarg || strpbrk(optarg, " \t\r\n:"))
        bad_usage("-m %s: not a method", optarg);
      o->method = optarg;
      break;
    case 'H': {
      const char *colon = strchr(optarg, ':');
      if (!colon || colon == optarg || strpbrk(optarg, "\r\n") ||
          strcspn(optarg, " \t") < (size_t)(colon - optarg))
        bad_usage("-H %s: a header is 'Name: value'", optarg);
      push(&o->headers, &o->nheaders, optarg);
      break;
    }
    case 'b':
      free(o->body);
      if (!(o->body = strdup(optarg)))
        oom();
      o->body_len = strlen(optarg);
      break;
    case 'B':
      read_body(o, optarg);
      break;
    case 'f':
      read_urls(o, optarg);
      break;
    case 'q':
      o->quiet = true;
      break;
    case 'k':
      o->insecure = true;
      break;
    case OPT_ENGINE:
      if (!strcmp(optarg, "native"))
        o->engine = ENGINE_NATIVE;
      else if (!strcmp(optarg, "curl"))
        o->engine = ENGINE_CURL;
      else
        bad_usage("--engine %s: native or curl", optarg);
      break;
    case OPT_HTTP2:
      o->http2 = true;
      break;
    case OPT_CACERT:
      o->cacert = optarg;
      break;
    case OPT_JSON:
      o->json_path = optarg;
      break;
    case OPT_HIST:
      o->hist_path = optarg;
      break;
    case OPT_STATS:
      o->show_stats = true;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      fprintf(stderr, "(weft-stress --help for the options)\n");
      exit(2);
    }
  }
  for (int i = optind; i < argc; i++)
    push(&o->urls, &o->nurls, argv[i]);
  if (!have_timeout)
    o->timeout_ns = DEFAULT_TIMEOUT_NS;
  if (!o->duration_ns && !o->total)
    o->duration_ns = o->nurls ? DEFAULT_DURATION_NS : EMBEDDED_DURATION_NS;
}

/* --engine, or the default: native unless a URL is https:// or --http2. */
static const engine *choose_engine(const run *r) {
  const options *o = r->opt;
  bool https = false;
  for (size_t i = 0; i < r->ntargets; i++)
    https |= r->targets[i].https;
  int e = o->engine;
  if (e == ENGINE_AUTO)
    e = https || o->http2 ? ENGINE_CURL : ENGINE_NATIVE;
  if (e == ENGINE_NATIVE && https)
    bad_usage("%s: the native engine speaks http:// only; https:// needs the curl engine "
              "(its default)", "--engine native");
  if (e == ENGINE_NATIVE && o->http2)
    bad_usage("%s: the native engine speaks HTTP/1.1 only; HTTP/2 needs the curl engine "
              "(its default)", "--engine native --http2");
  return e == ENGINE_CURL ? &engine_curl : &engine_native;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int write_outputs(const run *r, const shard *total) {
  const options *o = r->opt;
  bool json_stdout = o->json_path && !strcmp(o->json_path, "-");
  report_text(json_stdout ? stderr : stdout, r, total);
  if (r->have_rt_stats)
    weft_stats_print(&r->rt_stats, json_stdout ? stderr : stdout);
  int rc = 0;
  if (o->json_path) {
    FILE *f = json_stdout ? stdout : fopen(o->json_path, "w");
    if (f) {
      report_json(f, r, total);
      if (ferror(f) || (f != stdout && fclose(f)))
        f = NULL;
    }
    if (!f) {
      fprintf(stderr, STRESS_NAME ": --json %s: %s\n", o->json_path, strerror(errno));
      rc = 1;
    }
  }
  if (o->hist_path) {
    FILE *f = strcmp(o->hist_path, "-") ? fopen(o->hist_path, "w") : stdout;
    if (!f || hist_write(&total->lat, f) || (f != stdout && fclose(f))) {
      fprintf(stderr, STRESS_NAME ": --hist %s: %s\n", o->hist_path, strerror(errno));
      rc = 1;
    }
  }
  fflush(stdout);
  return rc;
}

/* When nothing came back: the most frequent error, with where it was
 * first seen ("connect 127.0.0.1:1: connection refused"). */
static void say_why(const shard *t) {
  unsigned nk, best = ERR_KINDS;
  const err_kind *k = stats_err_kinds(&nk);
  for (unsigned i = 0; i < nk; i++)
    if (t->err[i] && (best == ERR_KINDS || t->err[i] > t->err[best]))
      best = i;
  char name[128];
  if (best < nk)
    fprintf(stderr, STRESS_NAME ": %s: %s\n", k[best].where,
            err_name(k[best].code, name, sizeof name));
  else
    fprintf(stderr, STRESS_NAME ": no request was answered\n");
}

static void options_free(options *o, bool embedded) {
  for (size_t i = 0; i < o->nheaders; i++)
    free(o->headers[i]);
  free(o->headers);
  if (!embedded) {
    for (size_t i = 0; i < o->nurls; i++)
      free(o->urls[i]);
    free(o->urls);
  }
  free(o->body);
}

int main(int argc, char **argv) {
  options o = {.conns = DEFAULT_CONNS};
  parse_options(&o, argc, argv);
  run r = {.opt = &o, .embedded = o.nurls == 0, .ready = WEFT_WAITGROUP_INIT,
           .done = WEFT_WAITGROUP_INIT};
  if (!r.embedded) {
    char err[512];
    int rc = targets_parse(&r, err, sizeof err);
    if (rc) {
      fprintf(stderr, STRESS_NAME ": %s\n", err);
      targets_free(&r);
      options_free(&o, false);
      return rc == -ENOMEM ? 1 : 2;
    }
  }
  r.eng = choose_engine(&r);

  /* Signals: a watcher coroutine reads them from a signalfd (run.c), so
   * every thread of the runtime must have them blocked: block them here,
   * before the runtime starts its threads, which inherit the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  raise_nofile();

  weft_config cfg = {.workers = o.workers};
  void *res = NULL;
  int rc = weft_run(&cfg, run_main, &r, &res);
  int status = 0;
  if (rc) {
    char name[128];
    fprintf(stderr, STRESS_NAME ": starting the runtime: %s\n", err_name(rc, name, sizeof name));
    status = 1;
  } else if (res) {
    status = 1; /* run.c said why */
  } else {
    shard *total = calloc(1, sizeof *total);
    if (!total)
      oom();
    stats_snapshot(total);
    status = write_outputs(&r, total);
    if (!total->requests) {
      say_why(total);
      status = 1;
    }
    free(total);
  }
  stats_free();
  weft_stats_free(&r.rt_stats);
  targets_free(&r);
  options_free(&o, r.embedded);
  return status;
}
