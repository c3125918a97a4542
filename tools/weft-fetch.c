/*
 * weft-fetch - fetch many URLs concurrently and report each one.
 *
 *   weft-fetch [-c CONCURRENCY] [-f FILE] [-t TIMEOUT_MS] [-q] [URL...]
 *
 * URLs come from the arguments and/or FILE (one per line, '#' comments;
 * "-" reads stdin). CONCURRENCY coroutines (default 100) take URLs from a
 * shared queue, so at most that many requests are in flight. Each result
 * prints as it completes: "STATUS BYTES MS URL", or "ERR <message> URL";
 * -q prints only the summary. The summary (stderr) gives counts by status
 * class, errors, bytes, wall time and requests per second. Exit status: 0
 * if every URL got a response, 1 if any failed, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/weft.h>

typedef struct {
  char **urls;
  size_t n, next;
  weft_mutex mu;
  weft_http_client *client;
  size_t concurrency;
  uint64_t timeout_ms;
  int quiet;
  /* results, under mu */
  size_t by_class[6], errors;
  uint64_t bytes;
} job;

static void *worker(void *arg) {
  job *j = arg;
  for (;;) {
    weft_mutex_lock(&j->mu);
    size_t i = j->next < j->n ? j->next++ : j->n;
    weft_mutex_unlock(&j->mu);
    if (i == j->n)
      return NULL;
    weft_http_request req = {.url = j->urls[i], .timeout_ms = j->timeout_ms};
    weft_http_response r = {0};
    uint64_t t0 = weft_now_ns();
    int rc = weft_http_do(j->client, &req, &r);
    double ms = (double)(weft_now_ns() - t0) / 1e6;
    weft_mutex_lock(&j->mu);
    if (rc) {
      j->errors++;
      if (!j->quiet)
        printf("ERR %s %s\n", weft_strerror(rc), j->urls[i]);
    } else {
      j->by_class[r.status / 100 < 6 ? r.status / 100 : 0]++;
      j->bytes += r.body_len;
      if (!j->quiet)
        printf("%d %zu %.1f %s\n", r.status, r.body_len, ms, j->urls[i]);
    }
    weft_mutex_unlock(&j->mu);
    weft_http_response_free(&r);
  }
}

static void *main_co(void *arg) {
  job *j = arg;
  int rc = weft_http_client_new(NULL, &j->client);
  if (rc) {
    fprintf(stderr, "weft-fetch: %s\n", weft_strerror(rc));
    return (void *)1;
  }
  size_t n = j->concurrency < j->n ? j->concurrency : j->n;
  weft_co **cos = calloc(n ? n : 1, sizeof *cos);
  size_t started = 0;
  for (; started < n; started++)
    if ((rc = weft_spawn(&cos[started], worker, j))) {
      fprintf(stderr, "weft-fetch: spawn: %s\n", weft_strerror(rc));
      break;
    }
  for (size_t i = 0; i < started; i++)
    weft_join(cos[i], NULL);
  free(cos);
  weft_http_client_free(j->client);
  return NULL;
}

static int add_url(job *j, size_t *cap, const char *u) {
  if (j->n == *cap) {
    *cap = *cap ? *cap * 2 : 64;
    char **v = realloc(j->urls, *cap * sizeof *v);
    if (!v)
      return -1;
    j->urls = v;
  }
  j->urls[j->n] = strdup(u);
  return j->urls[j->n++] ? 0 : -1;
}

static int read_file(job *j, size_t *cap, const char *path) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) {
    fprintf(stderr, "weft-fetch: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t len = 0;
  ssize_t got;
  int rc = 0;
  while (!rc && (got = getline(&line, &len, f)) >= 0) {
    char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    s[strcspn(s, "\r\n")] = '\0';
    if (*s && *s != '#')
      rc = add_url(j, cap, s);
  }
  free(line);
  if (f != stdin)
    fclose(f);
  return rc;
}

static void usage(void) {
  fprintf(stderr, "usage: weft-fetch [-c CONCURRENCY] [-f FILE] [-t TIMEOUT_MS] [-q] [URL...]\n");
  exit(2);
}

int main(int argc, char **argv) {
  job j = {.mu = WEFT_MUTEX_INIT};
  size_t cap = 0;
  long conc = 100;
  int opt;
  while ((opt = getopt(argc, argv, "c:f:t:qh")) != -1) {
    char *end;
    switch (opt) {
    case 'c':
      conc = strtol(optarg, &end, 10);
      if (*end || conc < 1 || conc > 1000000)
        usage();
      break;
    case 'f':
      if (read_file(&j, &cap, optarg))
        return 2;
      break;
    case 't':
      j.timeout_ms = strtoull(optarg, &end, 10);
      if (*end)
        usage();
      break;
    case 'q':
      j.quiet = 1;
      break;
    default:
      usage();
    }
  }
  for (int i = optind; i < argc; i++)
    if (add_url(&j, &cap, argv[i]))
      return 2;
  if (!j.n)
    usage();
  j.concurrency = (size_t)conc;
  uint64_t t0 = weft_now_ns();
  void *res = NULL;
  int rc = weft_run(NULL, main_co, &j, &res);
  double secs = (double)(weft_now_ns() - t0) / 1e9;
  if (rc || res) {
    fprintf(stderr, "weft-fetch: %s\n", rc ? weft_strerror(rc) : "failed to start");
    return 1;
  }
  fprintf(stderr,
          "%zu URLs in %.3f s (%.0f req/s): 2xx %zu, 3xx %zu, 4xx %zu, 5xx %zu, errors %zu; "
          "%llu body bytes\n",
          j.n, secs, (double)j.n / secs, j.by_class[2], j.by_class[3], j.by_class[4],
          j.by_class[5], j.errors, (unsigned long long)j.bytes);
  for (size_t i = 0; i < j.n; i++)
    free(j.urls[i]);
  free(j.urls);
  return j.errors ? 1 : 0;
}
