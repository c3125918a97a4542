/*
 * weft/sched.h - coroutines (green threads) run M:N over worker threads.
 *
 * Errors: every call that can fail returns 0 (or a count) on success and a
 * negative code on failure: -errno where an errno fits, WEFT_E* codes below
 * -1000 where none does. weft_strerror() names every code. weft calls never
 * leave a meaning in errno.
 *
 * Scheduling points: weft_spawn, weft_yield, weft_join and every call that
 * can park. A coroutine may resume on a different worker thread after any
 * of them, so thread-local state (including errno) read before a scheduling
 * point must be read again after it.
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Codes for failures no errno describes. All are below -1000. */
enum {
  WEFT_EBASE = -1000,
  WEFT_ENOTCO = -1002, /* called outside a coroutine where one is required */
};

typedef struct weft_co weft_co;           /* a coroutine handle */
typedef struct weft_runtime weft_runtime; /* workers, queues, pools */

typedef struct weft_config {
  /* Worker threads. 0: the WEFT_WORKERS environment variable if set, else
   * the number of CPUs in the process's affinity mask. */
  unsigned workers;
  /* Virtual size of each coroutine stack in bytes, rounded up to pages.
   * 0: 256 KiB. Pages are committed only when touched. */
  size_t stack_size;
} weft_config;

/* Start a runtime, run fn(arg) as its first coroutine, and return when that
 * coroutine returns, storing its return value in *result (if result is not
 * NULL). Then stop the runtime: coroutines still alive are cancelled and
 * freed (see weft_runtime_stop). Returns 0, or a negative code if the
 * runtime could not start (bad configuration, no memory, no threads). */
WEFT_API int weft_run(const weft_config *cfg, void *(*fn)(void *), void *arg,
                      void **result);

/* Create a coroutine running fn(arg) in the calling coroutine's runtime.
 * With co non-NULL the coroutine is joinable and *co receives its handle,
 * which must be joined exactly once; with co NULL it is detached and frees
 * itself when fn returns.
 *
 * The new coroutine runs at once on this worker and the caller waits in
 * the worker's LIFO slot, resuming as soon as the child finishes or parks
 * ("work first": a spawn loop keeps one hot stack; an older waiting parent
 * moves to the ring, where idle workers steal it, which is how fork-join
 * code spreads over the cores).
 *
 * Returns 0; -ENOMEM when no stack can be had; -EAGAIN when the process
 * reached vm.max_map_count (only with the mprotect guard fallback, and a
 * one-time message on stderr says so); -EINVAL for a NULL fn; WEFT_ENOTCO
 * outside a coroutine (use weft_runtime_spawn from foreign threads). */
WEFT_API int weft_spawn(weft_co **co, void *(*fn)(void *), void *arg);

/* Wait until co finishes, store its return value in *result (if not NULL)
 * and release the handle. Callable from a coroutine (which parks) or from a
 * foreign thread (which blocks). Returns 0, or -EINVAL for NULL, -EDEADLK
 * for joining oneself, -ECANCELED if the runtime was stopped first (the
 * handle is then gone with it). */
WEFT_API int weft_join(weft_co *co, void **result);

/* Let other runnable coroutines run; the caller goes to the back of its
 * worker's queue. Returns at once if nothing else is runnable. A no-op
 * outside a coroutine. */
WEFT_API void weft_yield(void);

/* The calling coroutine, or NULL on a thread that is not running one. */
WEFT_API weft_co *weft_self(void);

/* A coroutine's id: unique within its runtime, 1 for weft_run's first
 * coroutine, in creation order per worker. 0 for NULL. */
WEFT_API uint64_t weft_co_id(const weft_co *co);

/* Number of worker threads of the calling coroutine's runtime (0 outside
 * one). */
WEFT_API unsigned weft_workers(void);

/* The name of a code returned by any weft call (a static string). */
WEFT_API const char *weft_strerror(int code);

/* ---- Embedding: for programs that own their threads ----------------------
 *
 * weft_runtime_start starts the workers and returns at once. Any thread may
 * then spawn into the runtime with weft_runtime_spawn and wait for a
 * coroutine with weft_join. weft_runtime_stop stops it: workers finish the
 * slice they are running (a coroutine that never reaches a scheduling point
 * delays the stop), coroutines still alive are never resumed again, foreign
 * threads blocked in weft_join on them return -ECANCELED, and every stack
 * and record is freed. A stopped coroutine's own cleanup code does not run:
 * to shut down in order, have coroutines return and join them first. */
WEFT_API int weft_runtime_start(const weft_config *cfg, weft_runtime **rt);
WEFT_API int weft_runtime_spawn(weft_runtime *rt, weft_co **co,
                                void *(*fn)(void *), void *arg);
/* Returns 0, -EINVAL for NULL, -EDEADLK when called from one of rt's own
 * coroutines. */
WEFT_API int weft_runtime_stop(weft_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif
