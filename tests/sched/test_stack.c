/*
 * test_stack.c - coroutine stacks: the guard page under both mechanisms,
 * the overflow report (a death test, in a child process), and failing
 * cleanly when no stack can be had (address-space limit, mapping limit).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "internal.h"
#include "weft/sched.h"

#define SKIP 77

static void skip(const char *why) {
  printf("skipped: %s\n", why);
  exit(SKIP);
}

/* ---- guard page present ------------------------------------------------------ */

/* write() reads the buffer in the kernel: a guard page makes it EFAULT
 * without a signal, for either mechanism. */
static int readable(const void *p) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  ssize_t r = write(fds[1], p, 1);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  return r == 1 ? 1 : (err == EFAULT ? 0 : -1);
}

static void *guard_probe(void *arg) {
  (void)arg;
  weft_co *self = weft_self();
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  /* The mapping is [guard][stack ... record]: the record is self. */
  char *map = self->map;
  CHECK_EQ(readable(map), 0);            /* the guard page */
  CHECK_EQ(readable(map + page - 1), 0); /* its last byte */
  CHECK_EQ(readable(map + page), 1);     /* the lowest stack page */
  char local;
  CHECK((char *)&local > map + page && (char *)&local < (char *)self);
  return NULL;
}

static void guard_with(const char *mode) {
  setenv("WEFT_STACK_GUARD", mode, 1);
  CHECK_EQ(weft_run(NULL, guard_probe, NULL, NULL), 0);
  CHECK(strcmp(weft__stack_guard_name(), mode) == 0);
}

static void guard_mprotect(void) { guard_with("mprotect"); }

static void guard_madvise(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(m != MAP_FAILED);
  int ok = madvise(m, page, 102 /* MADV_GUARD_INSTALL */) == 0 && !readable(m);
  munmap(m, 2 * page);
  if (!ok)
    skip("this kernel has no MADV_GUARD_INSTALL (Linux < 6.13, or emulated)");
  guard_with("madvise");
}

/* ---- death tests run in a child ------------------------------------------------ */

/* test_run_child (check.h) with WEFT_STACK_GUARD=mode set in the child. */
struct guarded {
  const char *mode;
  void (*body)(void *);
  void *arg;
};

static void guarded_body(void *arg) {
  struct guarded *g = arg;
  setenv("WEFT_STACK_GUARD", g->mode, 1);
  g->body(g->arg);
}

static int run_child(const char *mode, void (*body)(void *), void *arg,
                     char *buf, size_t cap) {
  struct guarded g = {mode, body, arg};
  return test_run_child(guarded_body, &g, buf, cap);
}

/* ---- overflow report ---------------------------------------------------------- */

static volatile uint64_t sink;

static volatile uint64_t depth_limit = UINT64_MAX; /* never reached */

__attribute__((noinline)) static uint64_t recurse(uint64_t n) {
  volatile char pad[512];
  pad[0] = (char)n;
  sink += pad[0];
  if (n >= depth_limit)
    return n;
  return recurse(n + 1) + pad[0];
}

static void *overflow_fn(void *arg) {
  (void)arg;
  return (void *)(uintptr_t)recurse(0);
}

static void *overflow_main(void *arg) {
  (void)arg;
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, overflow_fn, NULL), 0);
  weft_join(c, NULL);
  return NULL;
}

static void overflow_body(void *arg) {
  (void)arg;
  weft_config cfg = {.workers = 2};
  weft_run(&cfg, overflow_main, NULL, NULL);
  _exit(0); /* reaching here is the failure */
}

static void overflow_with(const char *mode) {
  char buf[4096];
  int status = run_child(mode, overflow_body, NULL, buf, sizeof buf);
  CHECK(WIFSIGNALED(status));
  CHECK_EQ(WTERMSIG(status), SIGABRT);
  CHECK(strstr(buf, "weft: stack overflow in coroutine 2 (stack 256 KiB)") != NULL);
}

static void overflow_mprotect(void) { overflow_with("mprotect"); }

static void overflow_madvise(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int ok = madvise(m, page, 102) == 0 && !readable(m);
  munmap(m, 2 * page);
  if (!ok)
    skip("this kernel has no MADV_GUARD_INSTALL (Linux < 6.13, or emulated)");
  overflow_with("madvise");
}

/* ---- no stacks to be had ------------------------------------------------------- */

static weft_co **held;
static uint64_t held_n;

static void *hold(void *arg) {
  (void)arg;
  weft__park(WEFT__PARK_TEST, NULL, NULL);
  return NULL;
}

/* Spawn parked coroutines until spawn fails; return the code. Then let
 * them all finish and check a spawn works again. */
static void *exhaust_main(void *arg) {
  int *rc_out = arg;
  size_t cap = 1 << 20;
  held = calloc(cap, sizeof *held);
  CHECK(held != NULL);
  int rc = 0;
  for (held_n = 0; held_n < cap; held_n++) {
    rc = weft_spawn(&held[held_n], hold, NULL);
    if (rc)
      break;
  }
  *rc_out = rc;
  for (uint64_t i = 0; i < held_n; i++)
    weft__unpark(held[i], 0);
  for (uint64_t i = 0; i < held_n; i++)
    CHECK_EQ(weft_join(held[i], NULL), 0);
  weft_co *c;
  CHECK_EQ(weft_spawn(&c, hold, NULL), 0); /* recovered */
  weft__unpark(c, 0);
  CHECK_EQ(weft_join(c, NULL), 0);
  free(held);
  return NULL;
}

struct exhaust {
  rlim_t as_limit;
  int want;
};

static void exhaust_body(void *arg) {
  struct exhaust *e = arg;
  if (e->as_limit) {
    struct rlimit rl = {e->as_limit, e->as_limit};
    CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
  }
  int rc = 1;
  weft_config cfg = {.workers = 2};
  CHECK_EQ(weft_run(&cfg, exhaust_main, &rc, NULL), 0);
  fprintf(stderr, "spawn failed with %d after %llu\n", rc,
          (unsigned long long)held_n);
  _exit(rc == e->want ? 0 : 3);
}

static void run_exhaust_child(const char *mode, rlim_t as_limit, int want,
                              const char *want_msg) {
  char buf[8192];
  struct exhaust e = {as_limit, want};
  int status = run_child(mode, exhaust_body, &e, buf, sizeof buf);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  if (want_msg)
    CHECK(strstr(buf, want_msg) != NULL);
}

static void skip_if_emulated(void) {
  if (getenv("WEFT_TEST_EMULATED"))
    skip("under an emulator, address-space and mapping limits are the "
         "emulator's, not the kernel's");
}

static void no_memory(void) {
  skip_if_emulated();
  if (TEST_SANITIZED)
    skip("sanitizer runtimes reserve terabytes of address space");
  /* 1 GiB of address space: enough for the runtime, ~4,000 stacks. */
  run_exhaust_child("madvise", (rlim_t)1 << 30, -ENOMEM, NULL);
}

static void map_count_limit(void) {
  skip_if_emulated();
  if (TEST_SANITIZED)
    skip("30,000 live coroutines under a sanitizer measure the sanitizer");
  long max = 0;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  if (!f || fscanf(f, "%ld", &max) != 1)
    skip("no /proc/sys/vm/max_map_count");
  fclose(f);
  if (max > 200000)
    skip("vm.max_map_count raised on this machine: the limit is far away");
  run_exhaust_child("mprotect", 0, -EAGAIN, "vm.max_map_count");
}

/* ---- the address-space limit lowered, then raised, while the runtime runs ------ */

/* The process's address space now (VmSize), in bytes. */
static rlim_t vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  CHECK(f != NULL);
  char line[256];
  unsigned long long kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %llu kB", &kib) == 1)
      break;
  fclose(f);
  CHECK(kib > 0);
  return (rlim_t)kib * 1024;
}

static size_t mappings(weft_runtime *rt);
static uint32_t ticks; /* a coroutine that keeps running through it all */
static uint32_t ticker_stop;

static void *ticker(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&ticker_stop, __ATOMIC_ACQUIRE)) {
    __atomic_fetch_add(&ticks, 1, __ATOMIC_RELAXED);
    weft_yield();
  }
  return NULL;
}

/* Spawn until the limit refuses a stack: -ENOMEM (or -EAGAIN), with
 * nothing half-made (the registry of mappings is what it was before the
 * failed spawn, and a failed spawn leaves no handle); the runtime keeps
 * running (a coroutine still yields, the held ones still finish); a
 * spawn fails again while the limit holds; with the limit raised again,
 * spawns work while every held coroutine is still alive. */
static void *limit_main(void *arg) {
  (void)arg;
  weft_runtime *rt = weft_self()->rt;
  /* Every worker thread past its start-up (its alternate signal stack,
   * and a sanitizer's, mapped) before the limit leaves no room for it. */
  time_t until = time(NULL) + 60;
  for (unsigned i = 0; i < rt->nworkers; i++)
    while (!__atomic_load_n(&rt->workers[i].altstack, __ATOMIC_ACQUIRE) && time(NULL) < until)
      weft_yield();
  weft_co *t;
  CHECK_EQ(weft_spawn(&t, ticker, NULL), 0);
  struct rlimit old;
  CHECK_EQ(getrlimit(RLIMIT_AS, &old), 0);
  /* 32 MiB above what the process has now: ~120 more 256 KiB stacks, and
   * not much else; the spawn loop allocates nothing else. */
  struct rlimit low = {vm_size() + ((rlim_t)32 << 20), old.rlim_max};
  CHECK_EQ(setrlimit(RLIMIT_AS, &low), 0);
  size_t cap = 1 << 16, n;
  int rc = 0;
  size_t reg_before = 0;
  for (n = 0; n < cap; n++) {
    reg_before = mappings(rt);
    weft_co *c = (weft_co *)(uintptr_t)1;
    rc = weft_spawn(&c, hold, NULL);
    if (rc) {
      CHECK(c == (weft_co *)(uintptr_t)1); /* no handle */
      break;
    }
    held[n] = c;
  }
  held_n = n;
  size_t reg_failed = mappings(rt);
  weft_co *c2 = NULL;
  int rc2 = weft_spawn(&c2, hold, NULL); /* still refused while the limit holds */
  /* The runtime runs on: the ticker (here or on another worker, which
   * the OS may not run at once on a loaded machine) ticks within 60 s. */
  uint32_t t0 = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
  time_t end = time(NULL) + 60;
  while (__atomic_load_n(&ticks, __ATOMIC_RELAXED) == t0 && time(NULL) < end)
    weft_yield();
  uint32_t t1 = __atomic_load_n(&ticks, __ATOMIC_RELAXED);
  CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);
  /* Raised: spawns work again with all n still held. */
  weft_co *more[64];
  for (int i = 0; i < 64; i++)
    CHECK_EQ(weft_spawn(&more[i], hold, NULL), 0);
  fprintf(stderr, "spawn failed with %d (%s) after %zu; again: %d; registry %zu -> %zu\n", rc,
          weft_strerror(rc), n, rc2, reg_before, reg_failed);
  CHECK(rc == -ENOMEM || rc == -EAGAIN);
  CHECK(rc2 == -ENOMEM || rc2 == -EAGAIN);
  CHECK(n > 0 && n < cap);
  CHECK(reg_failed <= reg_before); /* no mapping half-made (idle trims may unmap) */
  CHECK(t1 != t0);
  for (int i = 0; i < 64; i++)
    weft__unpark(more[i], 0);
  for (int i = 0; i < 64; i++)
    CHECK_EQ(weft_join(more[i], NULL), 0);
  for (size_t i = 0; i < n; i++)
    weft__unpark(held[i], 0);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ(weft_join(held[i], NULL), 0);
  __atomic_store_n(&ticker_stop, 1, __ATOMIC_RELEASE);
  CHECK_EQ(weft_join(t, NULL), 0);
  return NULL;
}

static void limit_body(void *arg) {
  (void)arg;
  held = calloc(1 << 16, sizeof *held); /* before the limit */
  CHECK(held != NULL);
  CHECK_EQ(weft_run(NULL, limit_main, NULL, NULL), 0);
  free(held);
  _exit(0);
}

static void no_memory_then_limit_raised(void) {
  skip_if_emulated();
#if defined(__SANITIZE_THREAD__)
  /* (ASan is fine: its shadow is reserved up front, inside VmSize.) */
  skip("TSan allocates a fiber per stack from its own allocator, which a "
       "tight address-space limit kills before weft sees the limit");
#endif
  char buf[8192];
  int status = test_run_child(limit_body, NULL, buf, sizeof buf);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ---- pools are trimmed when idle ---------------------------------------------- */

static size_t mappings(weft_runtime *rt);
static weft_runtime *trim_rt;
static size_t trim_busy;

static void *release_all(void *arg) {
  uint64_t n = (uintptr_t)arg;
  held = calloc(n, sizeof *held);
  CHECK(held != NULL);
  for (uint64_t i = 0; i < n; i++)
    CHECK_EQ(weft_spawn(&held[i], hold, NULL), 0);
  trim_busy = mappings(trim_rt); /* all n alive at once */
  for (uint64_t i = 0; i < n; i++)
    weft__unpark(held[i], 0);
  for (uint64_t i = 0; i < n; i++)
    CHECK_EQ(weft_join(held[i], NULL), 0);
  free(held);
  return NULL;
}

static size_t mappings(weft_runtime *rt) {
  weft__spin_lock(&rt->reg_lock);
  size_t n = rt->reg_count;
  weft__spin_unlock(&rt->reg_lock);
  return n;
}

static void trim_when_idle(void) {
  weft_runtime *rt;
  CHECK_EQ(weft_runtime_start(NULL, &rt), 0);
  trim_rt = rt;
  uint64_t n = SCALE_LIVE(4000);
  weft_co *c;
  CHECK_EQ(weft_runtime_spawn(rt, &c, release_all, (void *)(uintptr_t)n), 0);
  CHECK_EQ(weft_join(c, NULL), 0);
  /* Taken while all n were alive: by now a worker that idled for a while
   * (an emulator is slow) may already have trimmed its pool. */
  size_t busy = trim_busy;
  CHECK(busy >= n);
  /* Idle workers give stacks back after a quiet spell (200 ms); allow
   * plenty on a loaded machine. What is left: a few per worker and the
   * shared pool's idle reserve. */
  size_t idle_max = 4 * rt->nworkers + 64;
  for (int i = 0; i < 300 && mappings(rt) > idle_max; i++)
    usleep(20000);
  fprintf(stderr, "mappings: %zu while busy, %zu after idling\n", busy,
          mappings(rt));
  CHECK(mappings(rt) <= idle_max);
  CHECK_EQ(weft_runtime_stop(rt), 0);
}

static const test_case cases[] = {
    {"guard_mprotect", guard_mprotect},
    {"guard_madvise", guard_madvise},
    {"overflow_mprotect", overflow_mprotect},
    {"overflow_madvise", overflow_madvise},
    {"no_memory", no_memory},
    {"map_count_limit", map_count_limit},
    {"trim_when_idle", trim_when_idle},
    {"no_memory_then_limit_raised", no_memory_then_limit_raised},
    {NULL, NULL},
};

int main(int argc, char **argv) { return test_main(argc, argv, cases); }
