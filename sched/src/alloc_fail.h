/*
 * alloc_fail.h - allocation-failure torture (the WEFT_ALLOC_FAIL build).
 *
 * In that build every source file of sched, io and http is compiled with
 * this header forced in first (CMake: -include), so each plain
 * malloc/calloc/realloc/strdup/strndup/asprintf in the library goes
 * through alloc.c's counter, beside weft__malloc (the records), stack
 * mappings (stack.c), and curl's and c-ares's allocators (installed
 * through their hooks, driver.c and dns.c). weft__alloc_fail_at(N) makes
 * the Nth counted allocation from then on fail (one failure, then they
 * succeed again), which tests/torture sweeps over N. free() is not
 * wrapped: everything still comes from the one heap.
 *
 * The system headers are included first so their declarations are left
 * as they are; the macros then rename the calls in the file's own code.
 * alloc.c, which implements the wrappers, is compiled without them.
 */
#ifndef WEFT_ALLOC_FAIL_H
#define WEFT_ALLOC_FAIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEFT__AF_API __attribute__((visibility("default")))
WEFT__AF_API void *weft__t_malloc(size_t n);
WEFT__AF_API void *weft__t_calloc(size_t n, size_t size);
WEFT__AF_API void *weft__t_realloc(void *p, size_t n);
WEFT__AF_API char *weft__t_strdup(const char *s);
WEFT__AF_API char *weft__t_strndup(const char *s, size_t n);
WEFT__AF_API int weft__t_asprintf(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when this allocation is the one that must fail (counts it). */
WEFT__AF_API int weft__alloc_fail_point(void);
/* From now on, let the Nth counted allocation fail (0: none); resets the
 * count. Tests call it (tests/torture). */
WEFT__AF_API void weft__alloc_fail_at(uint64_t n);
WEFT__AF_API uint64_t weft__alloc_count(void);    /* counted since the last fail_at */
WEFT__AF_API uint64_t weft__alloc_failures(void); /* failures injected since then */

#ifndef WEFT_ALLOC_IMPL
#define malloc(n) weft__t_malloc(n)
#define calloc(n, s) weft__t_calloc(n, s)
#define realloc(p, n) weft__t_realloc(p, n)
#define strdup(s) weft__t_strdup(s)
#define strndup(s, n) weft__t_strndup(s, n)
#define asprintf(...) weft__t_asprintf(__VA_ARGS__)
#endif

#endif
