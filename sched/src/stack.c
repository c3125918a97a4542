/*
 * stack.c - coroutine stacks: mappings, guard pages, pools, and the
 * overflow report.
 *
 * One mapping per coroutine, laid out low to high as
 *     [guard page][stack, growing down ............][weft_co record]
 * mmap'd MAP_NORESERVE, so only touched pages cost memory: a parked
 * coroutine whose frames fit in the top page costs that one page, record
 * included.
 *
 * Guard page. Preferred: madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which
 * marks the page inside the same mapping, so adjacent stacks merge into
 * one kernel VMA and vm.max_map_count (65530 by default) never limits the
 * number of stacks. Fallback: mprotect(PROT_NONE), which splits every stack
 * into two VMAs and so caps live stacks near 32k; when that cap is hit,
 * stack allocation fails with -EAGAIN and a one-time message that names
 * vm.max_map_count. WEFT_STACK_GUARD=mprotect|madvise forces a mechanism
 * (tests use it to check both); otherwise a probe at start-up checks that
 * madvise really guards (an emulator may accept it and do nothing).
 *
 * Pools. Each worker keeps up to POOL_MAX free stacks (owner only, no
 * locks); beyond that it moves POOL_BATCH to the runtime's shared pool,
 * and refills from there before mapping new ones, so stacks flow from the
 * workers that finish coroutines to those that spawn them. A worker idle
 * for IDLE_TRIM_MS (worker.c) trims its pool to POOL_IDLE and the shared
 * pool to GPOOL_IDLE, unmapping the rest. Every mapping, live or pooled,
 * is on the runtime's registry, so stopping the runtime frees stacks of
 * coroutines that never finished.
 *
 * Decay. The idle trim alone is not enough: a server that took a burst of
 * 100,000 connections and then serves a steady trickle never idles for
 * IDLE_TRIM_MS, and would keep the burst's stacks (a page or two of
 * resident memory each) for its whole life; the soak saw resident memory
 * climb with every new peak of its spawn storms. So the shared pool also
 * decays: under reg_lock,
 *   D1. every take from the shared pool lowers gpool_low, the fewest
 *       stacks it held since the period began;
 *   D2. at least DECAY_NS after the period began, the next put batch,
 *       refill or worker about to sleep ends the period: the pool's bottom
 *       gpool_low - GPOOL_IDLE stacks were not needed for a whole period,
 *       and are unmapped (after the lock is dropped);
 *   D3. the new period starts with gpool_low = what the pool now holds.
 * A burst's stacks go back a period or two after the burst; a load that
 * keeps using them keeps them. Worker pools are capped at POOL_MAX and
 * are left alone. The clock is read once per batch, refill or sleep, not
 * per spawn.
 *
 * Overflow. A SIGSEGV handler, running on a per-worker alternate signal
 * stack (the faulting stack has no room left), checks whether the fault
 * address is in the running coroutine's guard page (or just below it); if
 * so it writes "weft: stack overflow in coroutine N (stack 256 KiB)" and
 * aborts. Any other fault is handed back to the previous disposition.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define POOL_MAX 64u
#define POOL_BATCH 32u
#define POOL_IDLE 4u
#if WEFT_TSAN
/* Every mapping keeps a TSan fiber, and TSan dies past 8128 threads and
 * fibers alive at once: keep the pools small enough under TSan. */
#define GPOOL_MAX 1024u
#else
/* Large: unmapping a stack costs a TLB shootdown on every core (measured:
 * 35,000 munmaps made sleep_gather's wake-up phase 450 ms longer); the
 * idle trim gives them back once the burst is over. */
#define GPOOL_MAX (1u << 20)
#endif
#define GPOOL_IDLE 64u
#define DECAY_NS 1000000000ull /* D2: a second unused, then unmapped */
#define ALTSTACK_SIZE (64u * 1024u)

enum { GUARD_UNKNOWN = 0, GUARD_MADVISE, GUARD_MPROTECT };
static int guard_mode;
static size_t page_size;
static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static int handler_installed;
static struct sigaction old_segv;

size_t weft__page_size(void) { return page_size; }

static size_t record_size(void) {
  return (sizeof(weft_co) + WEFT__CACHELINE - 1) & ~(size_t)(WEFT__CACHELINE - 1);
}

/* ---- mapping -------------------------------------------------------------- */

/* Read a small file into buf without allocating (at the mapping limit,
 * fopen's buffer may itself be unobtainable). */
static long read_long_file(const char *path, long fallback) {
  char buf[32];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fallback;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return fallback;
  buf[n] = 0;
  return strtol(buf, NULL, 10);
}

static long count_mappings(void) {
  char buf[4096];
  long lines = 0;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
  close(fd);
  return lines;
}

/* ENOMEM from mmap/mprotect is the mapping limit when the count is near
 * it; otherwise it is memory. */
static int near_map_limit(void) {
  long max = read_long_file("/proc/sys/vm/max_map_count", 65530);
  long n = count_mappings();
  return n >= 0 && n + 16 >= max;
}

static void map_limit_message(void) {
  static int said;
  if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
    return;
  char msg[400];
  int len = snprintf(
      msg, sizeof msg,
      "weft: cannot map another coroutine stack: the process has reached "
      "vm.max_map_count (%ld). Guard pages by mprotect cost two mappings per "
      "stack; raise the limit (sysctl vm.max_map_count=262144) or run on "
      "Linux 6.13+ where MADV_GUARD_INSTALL needs none.\n",
      read_long_file("/proc/sys/vm/max_map_count", -1));
  if (len > 0) {
    ssize_t r = write(STDERR_FILENO, msg, (size_t)len < sizeof msg ? (size_t)len : sizeof msg - 1);
    (void)r;
  }
}

static int map_error(int err) {
  if (err == ENOMEM && near_map_limit()) {
    map_limit_message();
    return -EAGAIN;
  }
  return err == ENOMEM || err == EAGAIN ? -ENOMEM : -err;
}

static int install_guard(char *map) {
  if (guard_mode == GUARD_MADVISE) {
    if (madvise(map, page_size, MADV_GUARD_INSTALL) == 0)
      return 0;
    return -errno;
  }
  if (mprotect(map, page_size, PROT_NONE) == 0)
    return 0;
  return -errno;
}

static void reg_add(struct weft_runtime *rt, weft_co *co) {
  weft__spin_lock(&rt->reg_lock);
  co->reg_prev = NULL;
  co->reg_next = rt->reg_head;
  if (rt->reg_head)
    rt->reg_head->reg_prev = co;
  rt->reg_head = co;
  weft__stat_inc(&rt->reg_count);
  weft__spin_unlock(&rt->reg_lock);
}

/* Called with reg_lock held. */
static void reg_remove_locked(struct weft_runtime *rt, weft_co *co) {
  if (co->reg_prev)
    co->reg_prev->reg_next = co->reg_next;
  else
    rt->reg_head = co->reg_next;
  if (co->reg_next)
    co->reg_next->reg_prev = co->reg_prev;
  weft__stat_add(&rt->reg_count, (size_t)-1);
}

static void unmap(weft_co *co) {
#if WEFT_TSAN
  __tsan_destroy_fiber(co->tsan_fiber);
#endif
  munmap(co->map, co->map_size);
}

static int map_new(struct weft_runtime *rt, weft_co **out) {
  size_t map_size = page_size + rt->stack_size;
#ifdef WEFT_ALLOC_FAIL
  if (weft__alloc_fail_point()) /* as a refused mapping would */
    return map_error(ENOMEM);
#endif
  char *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1,
                   0);
  if (map == MAP_FAILED)
    return map_error(errno);
  int rc = install_guard(map);
  if (rc) {
    munmap(map, map_size);
    return map_error(-rc);
  }
  weft_co *co = (weft_co *)(map + map_size - record_size());
  memset(co, 0, sizeof *co);
  co->map = map;
  co->map_size = map_size;
  co->rt = rt;
#if WEFT_TSAN
  /* One TSan fiber per mapping, reused by each coroutine that gets the
   * stack from a pool: creating one per spawn made TSan runs 10x slower.
   * Successive owners are ordered through the pool anyway. */
  co->tsan_fiber = __tsan_create_fiber(0);
#endif
  reg_add(rt, co);
  *out = co;
  return 0;
}

/* ---- pools ---------------------------------------------------------------- */

/* Take a stack from the shared pool (D1). Called with reg_lock held. */
static weft_co *gpool_pop_locked(struct weft_runtime *rt) {
  weft_co *co = rt->gpool;
  if (!co)
    return NULL;
  rt->gpool = co->next;
  weft__st_rlx(&rt->gpool_len, rt->gpool_len - 1);
  if (rt->gpool_len < rt->gpool_low)
    rt->gpool_low = rt->gpool_len;
  return co;
}

/* D2, D3: if the period is over, move the stacks the shared pool did not
 * need during it onto *drop. Called with reg_lock held. */
/* Signed: `now` is read before the lock, so another thread may have begun
 * a period after it (unsigned, that would look like a period long over). */
static bool period_over(uint64_t now, uint64_t start) {
  return (int64_t)(now - start) >= (int64_t)DECAY_NS;
}

static void decay_locked(struct weft_runtime *rt, uint64_t now, weft_co **drop) {
  if (!period_over(now, rt->decay_start_ns))
    return;
  /* gpool_low <= gpool_len always (D1, D3); the test is belt and braces. */
  unsigned n = rt->gpool_low > GPOOL_IDLE ? rt->gpool_low - GPOOL_IDLE : 0;
  while (n-- && rt->gpool) {
    weft_co *c = gpool_pop_locked(rt);
    reg_remove_locked(rt, c);
    c->next = *drop;
    *drop = c;
  }
  rt->gpool_low = rt->gpool_len;
  weft__st_rlx(&rt->decay_start_ns, now);
}

static void unmap_list(weft_co *co);

void weft__stack_decay(struct weft_runtime *rt) {
  uint64_t now = weft__now_ns();
  if (!period_over(now, weft__ld_rlx(&rt->decay_start_ns)))
    return; /* the usual case: no lock */
  weft_co *drop = NULL;
  weft__spin_lock(&rt->reg_lock);
  decay_locked(rt, now, &drop);
  weft__spin_unlock(&rt->reg_lock);
  unmap_list(drop);
}

/* Move up to n stacks from the shared pool to w's pool. */
static void refill(struct weft_runtime *rt, weft__worker *w, unsigned n) {
  weft_co *drop = NULL;
  uint64_t now = weft__now_ns();
  weft__spin_lock(&rt->reg_lock);
  weft_co *co;
  while (n-- && (co = gpool_pop_locked(rt))) {
    co->next = w->pool;
    w->pool = co;
    weft__stat_inc(&w->pool_len);
  }
  decay_locked(rt, now, &drop);
  weft__spin_unlock(&rt->reg_lock);
  unmap_list(drop);
}

int weft__stack_alloc(struct weft_runtime *rt, weft__worker *w, weft_co **out) {
  weft_co *co = NULL;
  if (w && w->rt == rt) {
    if (!w->pool && weft__ld_rlx(&rt->gpool_len))
      refill(rt, w, POOL_BATCH);
    co = w->pool;
    if (co) {
      w->pool = co->next;
      weft__stat_add(&w->pool_len, -1u);
    }
  } else if (weft__ld_rlx(&rt->gpool_len)) {
    weft__spin_lock(&rt->reg_lock);
    co = gpool_pop_locked(rt);
    weft__spin_unlock(&rt->reg_lock);
  }
  if (!co)
    return map_new(rt, out);
  *out = co;
  return 0;
}

/* Give a stack to the shared pool or, past GPOOL_MAX, take it off the
 * registry and onto *drop, to be unmapped once the lock is released (a
 * syscall does not belong inside a spinlock). Called with reg_lock held. */
static void gpool_put_locked(struct weft_runtime *rt, weft_co *co,
                             weft_co **drop) {
  if (rt->gpool_len < GPOOL_MAX) {
    co->next = rt->gpool;
    rt->gpool = co;
    weft__st_rlx(&rt->gpool_len, rt->gpool_len + 1);
  } else {
    reg_remove_locked(rt, co);
    co->next = *drop;
    *drop = co;
  }
}

static void unmap_list(weft_co *co) {
  while (co) {
    weft_co *next = co->next;
    unmap(co);
    co = next;
  }
}

static void retire(weft_co *co) { co->flags = 0; }

void weft__stack_free(struct weft_runtime *rt, weft__worker *w, weft_co *co) {
  retire(co);
  if (w && w->rt == rt) {
    co->next = w->pool;
    w->pool = co;
    weft__stat_inc(&w->pool_len);
    if (w->pool_len <= POOL_MAX)
      return;
    weft_co *drop = NULL;
    uint64_t now = weft__now_ns();
    weft__spin_lock(&rt->reg_lock);
    for (unsigned i = 0; i < POOL_BATCH; i++) {
      weft_co *c = w->pool;
      w->pool = c->next;
      weft__stat_add(&w->pool_len, -1u);
      gpool_put_locked(rt, c, &drop);
    }
    decay_locked(rt, now, &drop);
    weft__spin_unlock(&rt->reg_lock);
    unmap_list(drop);
    return;
  }
  weft_co *drop = NULL;
  weft__spin_lock(&rt->reg_lock);
  gpool_put_locked(rt, co, &drop);
  weft__spin_unlock(&rt->reg_lock);
  unmap_list(drop);
}

void weft__stack_trim(struct weft_runtime *rt, weft__worker *w) {
  if (w->pool_len <= POOL_IDLE && weft__ld_rlx(&rt->gpool_len) <= GPOOL_IDLE)
    return;
  weft_co *drop = NULL;
  weft__spin_lock(&rt->reg_lock);
  while (w->pool_len > POOL_IDLE) {
    weft_co *c = w->pool;
    w->pool = c->next;
    weft__stat_add(&w->pool_len, -1u);
    reg_remove_locked(rt, c);
    c->next = drop;
    drop = c;
  }
  while (rt->gpool_len > GPOOL_IDLE) {
    weft_co *c = gpool_pop_locked(rt);
    reg_remove_locked(rt, c);
    c->next = drop;
    drop = c;
  }
  weft__spin_unlock(&rt->reg_lock);
  unmap_list(drop);
}

void weft__stack_release_all(struct weft_runtime *rt) {
  /* No thread runs in the runtime any more (runtime.c, stop step 2). */
  weft__spin_lock(&rt->reg_lock);
  weft_co *co = rt->reg_head;
  while (co) {
    weft_co *next = co->reg_next;
    unmap(co);
    co = next;
  }
  rt->reg_head = NULL;
  weft__st_rlx(&rt->reg_count, 0);
  rt->gpool = NULL;
  weft__st_rlx(&rt->gpool_len, 0);
  rt->gpool_low = 0;
  weft__spin_unlock(&rt->reg_lock);
}

/* ---- overflow report ------------------------------------------------------ */

static void put_u64(char **p, unsigned long long v) {
  char tmp[24];
  int n = 0;
  do
    tmp[n++] = (char)('0' + v % 10);
  while (v /= 10);
  while (n)
    *(*p)++ = tmp[--n];
}

static void put_str(char **p, const char *s) {
  while (*s)
    *(*p)++ = *s++;
}

static void segv_handler(int sig, siginfo_t *si, void *uc) {
  weft__worker *w = weft__current_worker();
  weft_co *co = w ? w->current : NULL;
  char *addr = si->si_addr;
  if (co && addr >= co->map - 64 * 1024 && addr < co->map + page_size) {
    char buf[160], *p = buf;
    put_str(&p, "weft: stack overflow in coroutine ");
    put_u64(&p, co->id);
    put_str(&p, " (stack ");
    put_u64(&p, (co->map_size - page_size) / 1024);
    put_str(&p, " KiB)\n");
    ssize_t r = write(STDERR_FILENO, buf, (size_t)(p - buf));
    (void)r;
    abort();
  }
  /* Not ours: restore what was there and let the fault happen again. */
  (void)uc;
  sigaction(sig, &old_segv, NULL);
}

/* Does touching p fault? write() reads the buffer in the kernel, which
 * answers EFAULT for a guard page without raising a signal. qemu-user
 * accepts MADV_GUARD_INSTALL but installs nothing, hence the check. */
static bool guard_works(const char *p) {
  int fds[2];
  if (pipe(fds))
    return false;
  ssize_t r = write(fds[1], p, 1);
  int err = errno;
  close(fds[0]);
  close(fds[1]);
  return r < 0 && err == EFAULT;
}

int weft__stack_global_init(void) {
  pthread_mutex_lock(&global_lock);
  if (!page_size)
    page_size = (size_t)sysconf(_SC_PAGESIZE);
  if (guard_mode == GUARD_UNKNOWN) {
    const char *g = getenv("WEFT_STACK_GUARD");
    if (g && strcmp(g, "mprotect") == 0) {
      guard_mode = GUARD_MPROTECT;
    } else if (g && strcmp(g, "madvise") == 0) {
      guard_mode = GUARD_MADVISE;
    } else {
      /* Probe once: Linux before 6.13 answers EINVAL. */
      char *m = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      guard_mode = GUARD_MPROTECT;
      if (m != MAP_FAILED) {
        if (madvise(m, page_size, MADV_GUARD_INSTALL) == 0 && guard_works(m))
          guard_mode = GUARD_MADVISE;
        munmap(m, 2 * page_size);
      }
    }
  }
  if (!handler_installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    handler_installed = 1;
  }
  pthread_mutex_unlock(&global_lock);
  return 0;
}

const char *weft__stack_guard_name(void) {
  return guard_mode == GUARD_MADVISE ? "madvise" : "mprotect";
}

int weft__altstack_install(weft__worker *w) {
  w->altstack_size = ALTSTACK_SIZE;
  w->altstack = mmap(NULL, w->altstack_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (w->altstack == MAP_FAILED) {
    w->altstack = NULL;
    return -ENOMEM;
  }
  stack_t ss = {.ss_sp = w->altstack, .ss_size = w->altstack_size};
  sigaltstack(&ss, NULL);
  return 0;
}

void weft__altstack_remove(weft__worker *w) {
  if (!w->altstack)
    return;
  stack_t ss = {.ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  munmap(w->altstack, w->altstack_size);
  w->altstack = NULL;
}
