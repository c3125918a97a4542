/*
 * file.c - file access from coroutines: pread/pwrite-style calls run on
 * the offload pool (sched's weft_offload), because regular files never
 * report "would block" to epoll and a read from a slow disk would stop a
 * worker. A cancelled caller returns -ECANCELED at once; the call itself
 * finishes on the pool, so the job (buffer pointer, count, result) lives
 * on the heap and the pool frees it (see offload.c: fn owns its argument
 * after a cancel).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "weft/io.h"

typedef struct file_job {
  int fd;
  bool write;
  void *buf;
  size_t n;
  off_t off;
  ssize_t result;
  uint32_t refs; /* caller + pool: the last one frees */
} file_job;

static void job_unref(file_job *j) {
  if (weft__add_ar(&j->refs, (uint32_t)-1) == 1)
    weft__free(j, sizeof *j);
}

static void *file_call(void *arg) {
  file_job *j = arg;
  ssize_t r;
  do
    r = j->write ? pwrite(j->fd, j->buf, j->n, j->off) : pread(j->fd, j->buf, j->n, j->off);
  while (r < 0 && errno == EINTR);
  j->result = r < 0 ? -errno : r;
  job_unref(j);
  return NULL;
}

static ssize_t file_io(int fd, void *buf, size_t n, off_t off, bool write) {
  if (fd < 0)
    return -EBADF;
  file_job *j = weft__calloc(1, sizeof *j);
  if (!j)
    return -ENOMEM;
  *j = (file_job){.fd = fd, .write = write, .buf = buf, .n = n, .off = off, .refs = 2};
  bool submitted;
  int rc = weft__offload_ex(file_call, j, NULL, &submitted);
  if (rc) {
    if (!submitted) /* never handed over: the pool's reference is ours */
      job_unref(j);
    job_unref(j);
    return rc;
  }
  ssize_t r = j->result;
  job_unref(j);
  return r;
}

ssize_t weft_file_read(int fd, void *buf, size_t n, off_t offset) {
  return file_io(fd, buf, n, offset, false);
}

ssize_t weft_file_write(int fd, const void *buf, size_t n, off_t offset) {
  return file_io(fd, (void *)buf, n, offset, true);
}
