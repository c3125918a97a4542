/*
 * alloc.c - allocation of the library's own records.
 *
 * With WEFT_JEMALLOC (the default) records come from jemalloc's mallocx /
 * sdallocx (sized free skips a size lookup). Coroutine records are not
 * among them: they live at the top of their stacks (stack.c), so spawn
 * allocates nothing here; see CONTRIBUTING.md for the spawn measurement
 * with and without.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef WEFT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

void *weft__malloc(size_t n) { return mallocx(n ? n : 1, 0); }
void *weft__calloc(size_t n, size_t size) {
  if (size && n > (size_t)-1 / size)
    return NULL;
  size_t total = n * size;
  return mallocx(total ? total : 1, MALLOCX_ZERO);
}
void weft__free(void *p, size_t n) {
  if (p)
    sdallocx(p, n ? n : 1, 0);
}
#else
void *weft__malloc(size_t n) { return malloc(n); }
void *weft__calloc(size_t n, size_t size) { return calloc(n, size); }
void weft__free(void *p, size_t n) {
  (void)n;
  free(p);
}
#endif
