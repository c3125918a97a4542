/*
 * test_file.c - weft_file_read / weft_file_write from many coroutines at
 * once through the offload pool: contents round-trip, errors are -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "../check.h"
#include "weft/io.h"

static int file_fd;

static void *writer_reader(void *arg) {
  uintptr_t i = (uintptr_t)arg;
  char out[512], in[512];
  for (size_t k = 0; k < sizeof out; k++)
    out[k] = (char)(i * 7 + k);
  off_t off = (off_t)(i * sizeof out);
  CHECK_EQ(weft_file_write(file_fd, out, sizeof out, off), sizeof out);
  CHECK_EQ(weft_file_read(file_fd, in, sizeof in, off), sizeof in);
  CHECK(memcmp(in, out, sizeof in) == 0);
  return NULL;
}

static void *files_main(void *arg) {
  (void)arg;
  char path[] = "/tmp/weft-file-XXXXXX";
  file_fd = mkstemp(path);
  CHECK(file_fd >= 0);
  unlink(path);
  enum { N = 64 };
  weft_co *c[N];
  for (uintptr_t i = 0; i < N; i++)
    CHECK_EQ(weft_spawn(&c[i], writer_reader, (void *)i), 0);
  CHECK_EQ(weft_gather(c, N, NULL), 0);
  char b[4];
  CHECK_EQ(weft_file_read(file_fd, b, sizeof b, 1 << 30), 0); /* past the end */
  /* A pending cancel: -ECANCELED, nothing leaked (LSan), next call fine. */
  CHECK_EQ(weft_cancel(weft_self()), 0);
  CHECK_EQ(weft_file_read(file_fd, b, sizeof b, 0), -ECANCELED);
  CHECK_EQ(weft_file_read(file_fd, b, sizeof b, 0), sizeof b);
  close(file_fd);
  CHECK_EQ(weft_file_read(file_fd, b, sizeof b, 0), -EBADF);
  CHECK_EQ(weft_file_read(-1, b, sizeof b, 0), -EBADF);
  return NULL;
}

static void read_write(void) { CHECK_EQ(weft_run(NULL, files_main, NULL, NULL), 0); }

static const test_case cases[] = {{"read_write", read_write}, {NULL, NULL}};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
