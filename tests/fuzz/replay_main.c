/*
 * replay_main.c - runs a fuzz target over files, without libFuzzer: the
 * main of replay_<name>, which CTest runs over tests/fuzz/corpus/<name>
 * in every build (default, asan, tsan), so the inputs that once found a
 * bug, and the hand-written ones that cover each feature, are checked on
 * every run of the suite, with whatever sanitizer that build has.
 *
 * Usage: replay_<name> PATH...; a PATH is a file or a directory whose
 * regular files are all run, in name order (so a failure is
 * reproducible). Each input is handed over in a buffer of exactly its
 * size, as libFuzzer does, so ASan sees a read past its end. It prints
 * how many inputs ran from each PATH; a directory without a single input
 * is an error (a corpus that went missing must not pass quietly). Each
 * input is named on stderr before it runs: a failed property aborts
 * inside the target, and the last name printed is the input's.
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The whole file, in a buffer of its size (malloc(0) may be NULL: then
 * one byte is allocated and size stays 0). */
static uint8_t *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
      len = (size_t)n;
      buf = malloc(len ? len : 1);
      if (buf && fread(buf, 1, len, f) != len) {
        free(buf);
        buf = NULL;
      }
    }
  }
  fclose(f);
  *size = len;
  return buf;
}

static int run_file(const char *path) {
  size_t size;
  uint8_t *buf = slurp(path, &size);
  if (!buf) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    return -1;
  }
  fprintf(stderr, "running %s (%zu bytes)\n", path, size);
  LLVMFuzzerTestOneInput(buf, size);
  free(buf);
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir: the count, or -1. */
static long run_dir(const char *dir) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, by_name);
  if (n < 0) {
    fprintf(stderr, "replay: cannot read directory %s\n", dir);
    return -1;
  }
  long count = 0;
  int rc = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    if (rc == 0 && names[i]->d_name[0] != '.' &&
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) < (int)sizeof path &&
        stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      rc = run_file(path);
      count++;
    }
    free(names[i]);
  }
  free(names);
  return rc ? -1 : count;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  long total = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
    long n;
    if (S_ISDIR(st.st_mode)) {
      n = run_dir(argv[i]);
      if (n == 0) {
        fprintf(stderr, "replay: no inputs in %s\n", argv[i]);
        return 1;
      }
    } else {
      n = run_file(argv[i]) ? -1 : 1;
    }
    if (n < 0)
      return 1;
    printf("replayed %ld input%s from %s\n", n, n == 1 ? "" : "s", argv[i]);
    total += n;
  }
  printf("replayed %ld inputs in all\n", total);
  return 0;
}
