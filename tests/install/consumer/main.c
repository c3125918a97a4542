/*
 * tests/install/consumer/main.c - a program outside weft's tree that uses
 * only the installed header and library: weft_run runs a coroutine that
 * spawns one joinable child and joins it. Exits 0 when the child's result
 * comes back intact. Built twice by tests/install/check.sh: with CMake
 * (find_package(weft), weft::sched) and with pkg-config.
 */
#include <stdint.h>
#include <stdio.h>

#include <weft/sched.h>

static void *child(void *arg) { return (void *)((uintptr_t)arg * 2); }

/* Returns NULL on success, else a static message. */
static void *first(void *arg) {
  (void)arg;
  weft_co *co = NULL;
  void *res = NULL;
  int rc = weft_spawn(&co, child, (void *)(uintptr_t)21);
  if (rc != 0) {
    fprintf(stderr, "consumer: weft_spawn: %s\n", weft_strerror(rc));
    return "weft_spawn failed";
  }
  rc = weft_join(co, &res);
  if (rc != 0) {
    fprintf(stderr, "consumer: weft_join: %s\n", weft_strerror(rc));
    return "weft_join failed";
  }
  if ((uintptr_t)res != 42)
    return "child returned the wrong result";
  return NULL;
}

int main(void) {
  weft_config cfg = {.workers = 2, .stack_size = 0};
  void *result = "first coroutine did not run";
  int rc = weft_run(&cfg, first, NULL, &result);
  if (rc != 0) {
    fprintf(stderr, "consumer: weft_run: %s\n", weft_strerror(rc));
    return 1;
  }
  if (result != NULL) {
    fprintf(stderr, "consumer: %s\n", (const char *)result);
    return 1;
  }
  printf("consumer: spawned and joined a child on %u workers: ok\n", cfg.workers);
  return 0;
}
