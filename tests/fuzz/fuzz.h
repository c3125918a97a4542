/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry points and
 * FUZZ_CHECK, the assertion a target states its properties with.
 *
 * A target is built twice (tests/fuzz/CMakeLists.txt): as fuzz_<name>,
 * linked with libFuzzer (WEFT_FUZZ, clang), which calls
 * LLVMFuzzerTestOneInput with inputs it makes up; and as replay_<name>,
 * linked with replay_main.c, which calls it with every file of the
 * committed corpus (the CTest test fuzz.<name>, in every build). So a
 * target must not depend on libFuzzer, and a failed property must end
 * the process in a way both notice: FUZZ_CHECK prints what failed and
 * aborts (libFuzzer then saves the input as a crash; the replay's test
 * fails).
 */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional (weak in replay_main.c): once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond);                \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* A heap copy of n bytes, so ASan catches a read past them (a target
 * hands the code under test exactly what it may read). */
static inline char *dup_exact(const void *p, size_t n) {
  char *b = malloc(n ? n : 1);
  FUZZ_CHECK(b);
  if (n)
    memcpy(b, p, n);
  return b;
}

#endif
