/*
 * fetch.c - the seed's aiohttp example in C: fetch a list of URLs at once,
 * one coroutine each, and print each status and size as it completes.
 * Each weft_http_get parks its coroutine until the response is in; no
 * thread is started per request.
 *
 *   build/default/examples/fetch http://127.0.0.1:8080/ https://example.org/
 */
#include <stdio.h>
#include <weft/weft.h>

static void *fetch(void *url) {
  weft_http_response r = {0};
  int rc = weft_http_get(url, &r);
  if (rc)
    printf("%s: %s\n", (char *)url, weft_strerror(rc));
  else
    printf("%s: %d, %zu bytes\n", (char *)url, r.status, r.body_len);
  weft_http_response_free(&r);
  return (void *)(intptr_t)(rc != 0);
}

static void *main_co(void *arg) {
  char **urls = arg;
  int n = 0;
  while (urls[n])
    n++;
  weft_co *c[n > 0 ? n : 1];
  for (int i = 0; i < n; i++)
    weft_spawn(&c[i], fetch, urls[i]);
  intptr_t failed = 0;
  for (int i = 0; i < n; i++) {
    void *res;
    weft_join(c[i], &res); /* gather */
    failed += (intptr_t)res;
  }
  return (void *)failed;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL...\n", argv[0]);
    return 2;
  }
  void *failed;
  int rc = weft_run(NULL, main_co, argv + 1, &failed);
  if (rc) {
    fprintf(stderr, "fetch: %s\n", weft_strerror(rc));
    return 1;
  }
  return failed ? 1 : 0;
}
