/*
 * report.c - what weft-stress prints: the live progress line, the final
 * report as text, the same as one JSON object (--json), and the duration
 * syntax of the options.
 *
 * Progress goes to stderr once a second: on a terminal one line rewritten
 * in place ("\r", then erase to the end of the line), otherwise a plain
 * line per second (a log, a CI job). Its p50 and p99 are of the last
 * second's responses: the difference of two snapshots of the running
 * histograms (stats.c), which needs no reset and no lock.
 */
#include "stress.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- formatting -------------------------------------------------------------- */

static void fmt_latency(char *buf, size_t cap, uint64_t ns) {
  double v = (double)ns;
  if (v < 1e3)
    snprintf(buf, cap, "%.0fns", v);
  else if (v < 1e4)
    snprintf(buf, cap, "%.2fus", v / 1e3);
  else if (v < 1e6)
    snprintf(buf, cap, "%.0fus", v / 1e3);
  else if (v < 1e9)
    snprintf(buf, cap, "%.2fms", v / 1e6);
  else
    snprintf(buf, cap, "%.2fs", v / 1e9);
}

void fmt_duration(char *buf, size_t cap, uint64_t ns) {
  if (ns % NS_PER_S == 0)
    snprintf(buf, cap, "%llus", (unsigned long long)(ns / NS_PER_S));
  else if (ns % NS_PER_MS == 0)
    snprintf(buf, cap, "%llums", (unsigned long long)(ns / NS_PER_MS));
  else
    snprintf(buf, cap, "%.3fms", (double)ns / 1e6);
}

static void fmt_bytes(char *buf, size_t cap, double b) {
  if (b < 1e3)
    snprintf(buf, cap, "%.0f B", b);
  else if (b < 1e6)
    snprintf(buf, cap, "%.1f kB", b / 1e3);
  else if (b < 1e9)
    snprintf(buf, cap, "%.1f MB", b / 1e6);
  else
    snprintf(buf, cap, "%.2f GB", b / 1e9);
}

int parse_duration(const char *s, uint64_t *ns) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !(v > 0) || isinf(v))
    return -EINVAL;
  double mul;
  if (!*end || !strcmp(end, "s"))
    mul = 1e9;
  else if (!strcmp(end, "ms"))
    mul = 1e6;
  else if (!strcmp(end, "us"))
    mul = 1e3;
  else if (!strcmp(end, "ns"))
    mul = 1;
  else if (!strcmp(end, "m"))
    mul = 60e9;
  else if (!strcmp(end, "h"))
    mul = 3600e9;
  else
    return -EINVAL;
  double t = v * mul;
  if (t < 1 || t > 1e18)
    return -EINVAL;
  *ns = (uint64_t)t;
  return 0;
}

static double duration_s(const run *r) {
  uint64_t d = r->stop_ns > r->start_ns ? r->stop_ns - r->start_ns : 0;
  return (double)d / 1e9;
}

static const char *mode_name(const run *r) { return r->opt->rate > 0 ? "open" : "closed"; }

/* ---- progress ------------------------------------------------------------------ */

/* What the run will do, as it starts (stderr, unless -q). */
static void banner(const run *r) {
  const options *o = r->opt;
  char d[32] = "";
  if (o->duration_ns)
    fmt_duration(d, sizeof d, o->duration_ns);
  fprintf(stderr, STRESS_NAME ": %s", o->urls[0]);
  if (o->nurls > 1)
    fprintf(stderr, " and %zu more", o->nurls - 1);
  fprintf(stderr, ": %u connections, %u workers, %s engine, ", o->conns, r->workers,
          r->eng->name);
  if (o->rate > 0)
    fprintf(stderr, "open loop at %.0f req/s", o->rate);
  else
    fprintf(stderr, "closed loop");
  if (o->total)
    fprintf(stderr, ", %llu requests", (unsigned long long)o->total);
  if (o->duration_ns)
    fprintf(stderr, "%s %s", o->total ? " or" : ",", d);
  fprintf(stderr, "\n");
}

void progress_start(progress *p, const run *r) {
  memset(&p->prev, 0, sizeof p->prev);
  p->prev_ns = r->start_ns;
  p->tty = isatty(STDERR_FILENO);
  p->printed = false;
  if (!r->opt->quiet)
    banner(r);
}

void progress_tick(progress *p, const run *r, uint64_t now_ns) {
  stats_snapshot(&p->cur);
  double dt = (double)(now_ns - p->prev_ns) / 1e9;
  uint64_t reqs = p->cur.requests - p->prev.requests;
  hist_diff(&p->window, &p->cur.lat, &p->prev.lat);
  char p50[32], p99[32];
  fmt_latency(p50, sizeof p50, hist_percentile(&p->window, 50));
  fmt_latency(p99, sizeof p99, hist_percentile(&p->window, 99));
  if (!p->window.total)
    snprintf(p50, sizeof p50, "-"), snprintf(p99, sizeof p99, "-");
  char line[160];
  int n = snprintf(line, sizeof line, "%6.1fs  %9.0f req/s  errors %-6llu  p50 %-8s  p99 %s",
                   (double)(now_ns - r->start_ns) / 1e9, dt > 0 ? (double)reqs / dt : 0.0,
                   (unsigned long long)p->cur.errors, p50, p99);
  (void)n;
  if (p->tty) /* rewrite the line in place, erasing what the last one left */
    fprintf(stderr, "\r%s\033[K", line);
  else
    fprintf(stderr, "%s\n", line);
  fflush(stderr);
  p->printed = true;
  memcpy(&p->prev, &p->cur, sizeof p->prev);
  p->prev_ns = now_ns;
}

void progress_end(progress *p) {
  if (p->tty && p->printed)
    fputs("\r\033[K", stderr);
  fflush(stderr);
}

/* ---- the final report --------------------------------------------------------------- */

static const double pcts[] = {50, 75, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p75", "p90", "p99", "p99.9"};
static const char *const pct_keys[] = {"p50", "p75", "p90", "p99", "p999"};
#define NPCTS (sizeof pcts / sizeof pcts[0])

static const char *phase_name(int phase) { return phase == PH_CONNECT ? "connect" : "request"; }

void report_text(FILE *f, const run *r, const shard *t) {
  const options *o = r->opt;
  double secs = duration_s(r);
  char buf[64], buf2[64];
  fprintf(f, "Target     %s", o->nurls ? o->urls[0] : "(none)");
  if (o->nurls > 1)
    fprintf(f, " and %zu more, round-robin", o->nurls - 1);
  fprintf(f, "%s\n", r->embedded ? " (embedded server)" : "");
  fprintf(f, "Load       %s engine, %s loop, %u connections, %u workers", r->eng->name,
          mode_name(r), o->conns, r->workers);
  if (o->rate > 0)
    fprintf(f, ", %.0f req/s asked", o->rate);
  fputc('\n', f);
  double rps = secs > 0 ? (double)t->requests / secs : 0.0;
  fprintf(f, "Requests   %llu in %.2f s: %.1f req/s%s\n", (unsigned long long)t->requests, secs,
          rps, r->interrupted ? " (stopped by a signal)" : "");
  /* The open loop could not keep its pace: say so, or the rate misleads. */
  if (t->unsent)
    fprintf(f, "           %llu more were due but not sent by the end: the connections fell"
               " behind (a slow server, or too few connections for %.0f req/s: -c)\n",
            (unsigned long long)t->unsent, o->rate);
  fprintf(f, "Latency   ");
  if (t->lat.total) {
    for (size_t i = 0; i < NPCTS; i++) {
      fmt_latency(buf, sizeof buf, hist_percentile(&t->lat, pcts[i]));
      fprintf(f, " %s %s ", pct_names[i], buf);
    }
    fmt_latency(buf, sizeof buf, t->lat.max);
    fmt_latency(buf2, sizeof buf2, (uint64_t)hist_mean(&t->lat));
    fprintf(f, " max %s  (mean %s)\n", buf, buf2);
  } else {
    fprintf(f, " no response\n");
  }
  if (o->rate > 0)
    fprintf(f, "           (open loop: from each request's intended send time)\n");
  fprintf(f, "Status    ");
  bool any = false;
  for (unsigned s = 0; s < STATUS_SLOTS; s++)
    if (t->status[s]) {
      fprintf(f, "%s %u: %llu", any ? "," : "", s, (unsigned long long)t->status[s]);
      any = true;
    }
  fprintf(f, "%s\n", any ? "" : " none");
  fprintf(f, "Errors     %llu\n", (unsigned long long)t->errors);
  unsigned nk;
  const err_kind *k = stats_err_kinds(&nk);
  for (unsigned i = 0; i < ERR_KINDS; i++) {
    if (!t->err[i])
      continue;
    char name[128];
    if (i < nk)
      fprintf(f, "           %-8s %-44s %llu  (first: %s)\n", phase_name(k[i].phase),
              err_name(k[i].code, name, sizeof name), (unsigned long long)t->err[i],
              k[i].where);
    else
      fprintf(f, "           other kinds %llu\n", (unsigned long long)t->err[i]);
  }
  fmt_bytes(buf, sizeof buf, (double)t->body_bytes);
  fprintf(f, "Bytes      %s of bodies", buf);
  if (t->wire_bytes) {
    fmt_bytes(buf, sizeof buf, (double)t->wire_bytes);
    fmt_bytes(buf2, sizeof buf2, secs > 0 ? (double)t->wire_bytes / secs : 0);
    fprintf(f, ", %s read (%s/s)", buf, buf2);
  }
  fputc('\n', f);
  if (r->embedded)
    fprintf(f, "Server     answered %llu requests\n", (unsigned long long)r->embedded_requests);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static double us(uint64_t ns) { return (double)ns / 1e3; }

void report_json(FILE *f, const run *r, const shard *t) {
  const options *o = r->opt;
  double secs = duration_s(r);
  fprintf(f, "{\"tool\":\"weft-stress\",\"engine\":\"%s\",\"mode\":\"%s\",\"connections\":%u,"
             "\"workers\":%u,",
          r->eng->name, mode_name(r), o->conns, r->workers);
  if (o->rate > 0)
    fprintf(f, "\"rate\":%.3f,", o->rate);
  else
    fprintf(f, "\"rate\":null,");
  fprintf(f, "\"urls\":[");
  for (size_t i = 0; i < o->nurls; i++) {
    if (i)
      fputc(',', f);
    json_str(f, o->urls[i]);
  }
  fprintf(f, "],\"embedded_server\":%s,", r->embedded ? "true" : "false");
  fprintf(f, "\"requests\":%llu,\"errors\":%llu,\"duration_s\":%.6f,\"requests_per_sec\":%.3f,",
          (unsigned long long)t->requests, (unsigned long long)t->errors, secs,
          secs > 0 ? (double)t->requests / secs : 0.0);
  fprintf(f, "\"latency_us\":{");
  for (size_t i = 0; i < NPCTS; i++)
    fprintf(f, "\"%s\":%.3f,", pct_keys[i], us(hist_percentile(&t->lat, pcts[i])));
  fprintf(f, "\"max\":%.3f,\"min\":%.3f,\"mean\":%.3f},", us(t->lat.max),
          us(t->lat.total ? t->lat.min : 0), hist_mean(&t->lat) / 1e3);
  fprintf(f, "\"status\":{");
  bool any = false;
  for (unsigned s = 0; s < STATUS_SLOTS; s++)
    if (t->status[s]) {
      fprintf(f, "%s\"%u\":%llu", any ? "," : "", s, (unsigned long long)t->status[s]);
      any = true;
    }
  fprintf(f, "},\"errors_by_kind\":[");
  unsigned nk;
  const err_kind *k = stats_err_kinds(&nk);
  any = false;
  for (unsigned i = 0; i < ERR_KINDS; i++) {
    if (!t->err[i])
      continue;
    char name[128];
    fprintf(f, "%s{\"phase\":\"%s\",\"code\":%d,\"name\":", any ? "," : "",
            i < nk ? phase_name(k[i].phase) : "other", i < nk ? k[i].code : 0);
    json_str(f, i < nk ? err_name(k[i].code, name, sizeof name) : "other kinds");
    fprintf(f, ",\"first\":");
    json_str(f, i < nk ? k[i].where : "");
    fprintf(f, ",\"count\":%llu}", (unsigned long long)t->err[i]);
    any = true;
  }
  fprintf(f, "],\"unsent\":%llu,\"body_bytes\":%llu,", (unsigned long long)t->unsent,
          (unsigned long long)t->body_bytes);
  if (r->eng == &engine_native)
    fprintf(f, "\"bytes_read\":%llu", (unsigned long long)t->wire_bytes);
  else
    fprintf(f, "\"bytes_read\":null");
  if (r->embedded)
    fprintf(f, ",\"server_requests\":%llu", (unsigned long long)r->embedded_requests);
  fprintf(f, "}\n");
}
