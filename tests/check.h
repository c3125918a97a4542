/*
 * check.h - the test suite's assertions and case dispatch.
 *
 * A test program holds several cases; `prog CASE` runs one, and CTest
 * registers each case separately (one test per behaviour). A failed CHECK
 * prints where and what, then exits 1.
 */
#ifndef WEFT_TEST_CHECK_H
#define WEFT_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
    if (check_a_ != check_b_) {                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",        \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_);                 \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

typedef struct test_case {
  const char *name;
  void (*fn)(void);
} test_case;

static inline int test_main(int argc, char **argv, const test_case *cases) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE\ncases:", argv[0]);
    for (const test_case *c = cases; c->name; c++)
      fprintf(stderr, " %s", c->name);
    fprintf(stderr, "\n");
    return 2;
  }
  for (const test_case *c = cases; c->name; c++) {
    if (strcmp(c->name, argv[1]) == 0) {
      c->fn();
      printf("ok %s\n", c->name);
      return 0;
    }
  }
  fprintf(stderr, "no case named %s\n", argv[1]);
  return 2;
}

/* Death tests: fork, send the child's stderr to buf (NUL-terminated and
 * echoed for the log), run body(arg) there (it must end the process), and
 * return the child's wait status. */
#include <sys/wait.h>
#include <unistd.h>
static inline int test_run_child(void (*body)(void *), void *arg, char *buf,
                                 size_t cap) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    body(arg);
    _exit(99); /* body must not return */
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t r;
  while ((r = read(fds[0], buf + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  buf[len] = 0;
  close(fds[0]);
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  fprintf(stderr, "child stderr: %s", buf);
  if (WIFSIGNALED(status))
    fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
  return status;
}

/* Sanitizer builds run scaled-down sizes: TSan keeps a fiber per coroutine
 * (and dies past 8128 threads and fibers alive at once) and ASan poisons
 * every frame, so full sizes would measure the sanitizer. SCALE shrinks a
 * count of operations; SCALE_LIVE a count of coroutines alive at once. */
#if defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#define SCALE(n) ((n) / 50)
#define SCALE_LIVE(n) ((n) / 50 < 4000 ? (n) / 50 : 4000)
#elif defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#define SCALE(n) ((n) / 20)
#define SCALE_LIVE(n) ((n) / 20)
#else
#define TEST_SANITIZED 0
#define SCALE(n) (n)
#define SCALE_LIVE(n) (n)
#endif
#endif
