/*
 * test_file.c - weft_file_read / weft_file_write from many coroutines at
 * once through the offload pool: contents round-trip, errors are -errno;
 * a full disk (/dev/full, a small tmpfs) is -ENOSPC, the runtime goes on,
 * and writes work again once space returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
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

/* ---- a full disk: -ENOSPC, the runtime goes on, writes work once space returns ---- */

static uint32_t ticks; /* a coroutine that keeps running meanwhile */
static uint32_t ticker_stop;

static void *ticker(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&ticker_stop, __ATOMIC_ACQUIRE)) {
    __atomic_fetch_add(&ticks, 1, __ATOMIC_RELAXED);
    weft_sleep_ms(1);
  }
  return NULL;
}

/* The ticker ticks (the runtime is not stuck behind the failed write). */
static void check_ticking(void) {
  uint32_t t0 = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
  for (int i = 0; i < 60000 && __atomic_load_n(&ticks, __ATOMIC_RELAXED) == t0; i++)
    weft_sleep_ms(1);
  CHECK(__atomic_load_n(&ticks, __ATOMIC_RELAXED) != t0);
}

/* /dev/full: every write is ENOSPC (reads give zeros). */
static void *dev_full_main(void *arg) {
  (void)arg;
  int fd = open("/dev/full", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    printf("skipped: no /dev/full\n");
    exit(77);
  }
  weft_co *t;
  CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
  char buf[4096];
  memset(buf, 'f', sizeof buf);
  for (int i = 0; i < 100; i++)
    CHECK_EQ(weft_file_write(fd, buf, sizeof buf, 0), -ENOSPC);
  CHECK_EQ(weft_file_read(fd, buf, sizeof buf, 0), sizeof buf);
  CHECK_EQ(buf[0], 0);
  check_ticking();
  close(fd);
  /* Another file takes the same writes. */
  char path[] = "/tmp/weft-file-XXXXXX";
  int ok = mkstemp(path);
  CHECK(ok >= 0);
  unlink(path);
  CHECK_EQ(weft_file_write(ok, buf, sizeof buf, 0), sizeof buf);
  close(ok);
  __atomic_store_n(&ticker_stop, 1, __ATOMIC_RELEASE);
  CHECK_EQ(weft_join(t, NULL), 0);
  return NULL;
}

static void dev_full_gives_ENOSPC(void) { CHECK_EQ(weft_run(NULL, dev_full_main, NULL, NULL), 0); }

/* A 64 KiB tmpfs, in a mount namespace of the child's own (so the mount
 * goes with the child however it ends): fill it until a write says
 * -ENOSPC (a short write first, maybe), check the runtime goes on, free
 * the space (delete another file) and write again. */
static char *tmpfs_dir;

static void *tmpfs_main(void *arg) {
  (void)arg;
  weft_co *t;
  CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
  char ballast_path[256], path[256];
  snprintf(ballast_path, sizeof ballast_path, "%s/ballast", tmpfs_dir);
  snprintf(path, sizeof path, "%s/data", tmpfs_dir);
  char buf[4096];
  memset(buf, 'b', sizeof buf);
  /* The ballast takes 16 KiB, then the data file the rest. */
  int ballast = open(ballast_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  CHECK(ballast >= 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_file_write(ballast, buf, sizeof buf, (off_t)i * 4096), sizeof buf);
  close(ballast);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  off_t off = 0;
  ssize_t w;
  int shorts = 0;
  while ((w = weft_file_write(fd, buf, sizeof buf, off)) > 0) {
    shorts += w < (ssize_t)sizeof buf;
    off += w;
    CHECK(off <= 64 * 1024);
  }
  fprintf(stderr, "tmpfs full after %lld bytes (%d short writes): %zd\n", (long long)off, shorts,
          w);
  CHECK_EQ(w, -ENOSPC);
  CHECK(off >= 16 * 1024); /* it did hold something */
  CHECK_EQ(weft_file_write(fd, buf, sizeof buf, off), -ENOSPC); /* still full */
  check_ticking();
  /* Space returns: the next writes go through. */
  CHECK_EQ(unlink(ballast_path), 0);
  CHECK_EQ(weft_file_write(fd, buf, sizeof buf, off), sizeof buf);
  CHECK_EQ(weft_file_write(fd, buf, sizeof buf, off + 4096), sizeof buf);
  char back[4096];
  CHECK_EQ(weft_file_read(fd, back, sizeof back, off), sizeof back);
  CHECK(memcmp(back, buf, sizeof back) == 0);
  close(fd);
  __atomic_store_n(&ticker_stop, 1, __ATOMIC_RELEASE);
  CHECK_EQ(weft_join(t, NULL), 0);
  return NULL;
}

static void tmpfs_body(void *arg) {
  (void)arg;
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    fprintf(stderr, "skipped: no mount namespace here (%s)\n", strerror(errno));
    _exit(77);
  }
  if (mount("weft-test", tmpfs_dir, "tmpfs", 0, "size=64k") != 0) {
    fprintf(stderr, "skipped: cannot mount a tmpfs (%s)\n", strerror(errno));
    _exit(77);
  }
  _exit(weft_run(NULL, tmpfs_main, NULL, NULL) == 0 ? 0 : 3);
}

static void tmpfs_full_gives_ENOSPC_then_recovers(void) {
  char dir[] = "/tmp/weft-tmpfs-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  tmpfs_dir = dir;
  char out[8192];
  int status = test_run_child(tmpfs_body, NULL, out, sizeof out);
  rmdir(dir); /* the mount went with the child's namespace */
  CHECK(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    printf("skipped: %s", strstr(out, "skipped: ") ? strstr(out, "skipped: ") + 9 : "\n");
    exit(77);
  }
  CHECK_EQ(WEXITSTATUS(status), 0);
}

static const test_case cases[] = {{"read_write", read_write},
                                  {"dev_full_gives_ENOSPC", dev_full_gives_ENOSPC},
                                  {"tmpfs_full_gives_ENOSPC_then_recovers",
                                   tmpfs_full_gives_ENOSPC_then_recovers},
                                  {NULL, NULL}};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
