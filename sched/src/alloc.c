/*
 * alloc.c - allocation of the library's own records.
 *
 * With WEFT_JEMALLOC (the default) records come from jemalloc's mallocx /
 * sdallocx (sized free skips a size lookup). Coroutine records are not
 * among them: they live at the top of their stacks (stack.c), so spawn
 * allocates nothing here; see CONTRIBUTING.md for the spawn measurement
 * with and without.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the WEFT_ALLOC_FAIL build's counter (alloc_fail.h) ---- */
#ifdef WEFT_ALLOC_FAIL
#include <execinfo.h>
#include <stdio.h>

#include "alloc_fail.h"

static uint64_t fail_at, seq, failures; /* atomics */

void weft__alloc_fail_at(uint64_t n) {
  weft__st_sc(&seq, 0);
  weft__st_sc(&failures, 0);
  weft__st_sc(&fail_at, n);
}
uint64_t weft__alloc_count(void) { return weft__ld_sc(&seq); }
uint64_t weft__alloc_failures(void) { return weft__ld_sc(&failures); }

int weft__alloc_fail_point(void) {
  uint64_t n = weft__add_sc(&seq, 1) + 1;
  if (n != weft__ld_sc(&fail_at))
    return 0;
  weft__add_sc(&failures, 1);
  errno = ENOMEM; /* as a real failed malloc sets it */
  if (getenv("WEFT_ALLOC_FAIL_TRACE")) { /* where it failed, to debug a sweep */
    void *frames[32];
    fprintf(stderr, "weft: allocation %llu made to fail, at:\n", (unsigned long long)n);
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  }
  return 1;
}

void *weft__t_malloc(size_t n) { return weft__alloc_fail_point() ? NULL : malloc(n); }
void *weft__t_calloc(size_t n, size_t size) {
  return weft__alloc_fail_point() ? NULL : calloc(n, size);
}
void *weft__t_realloc(void *p, size_t n) {
  return weft__alloc_fail_point() ? NULL : realloc(p, n);
}
char *weft__t_strdup(const char *s) { return weft__alloc_fail_point() ? NULL : strdup(s); }
char *weft__t_strndup(const char *s, size_t n) {
  return weft__alloc_fail_point() ? NULL : strndup(s, n);
}
int weft__t_asprintf(char **out, const char *fmt, ...) {
  if (weft__alloc_fail_point())
    return -1;
  va_list ap;
  va_start(ap, fmt);
  int rc = vasprintf(out, fmt, ap);
  va_end(ap);
  return rc;
}
#define FAIL_POINT() weft__alloc_fail_point()
#else
#define FAIL_POINT() 0
#endif

#ifdef WEFT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

void *weft__malloc(size_t n) { return FAIL_POINT() ? NULL : mallocx(n ? n : 1, 0); }
void *weft__calloc(size_t n, size_t size) {
  if (FAIL_POINT() || (size && n > (size_t)-1 / size))
    return NULL;
  size_t total = n * size;
  return mallocx(total ? total : 1, MALLOCX_ZERO);
}
void weft__free(void *p, size_t n) {
  if (p)
    sdallocx(p, n ? n : 1, 0);
}
#else
void *weft__malloc(size_t n) { return FAIL_POINT() ? NULL : malloc(n); }
void *weft__calloc(size_t n, size_t size) { return FAIL_POINT() ? NULL : calloc(n, size); }
void weft__free(void *p, size_t n) {
  (void)n;
  free(p);
}
#endif
