/*
 * atomics.h - every atomic operation in weft goes through this header.
 *
 * Why one header: the memory orders of the scheduler are its correctness
 * argument, so they are spelled out here, by name, in one place. A stress
 * build (WEFT_ATOMIC_CHAOS) makes every operation below a point where the
 * thread may yield or spin for a random while, which shakes out orderings
 * that a quiet machine never produces; a model checker can hook the same
 * points.
 *
 * Names: weft__ld_<order>, weft__st_<order>, weft__cas_<order> (strong),
 * weft__xchg_<order>, weft__add_<order> (returns the old value). Orders:
 * rlx (relaxed), acq (acquire), rel (release), ar (acq_rel), sc (seq_cst).
 * The operand may be any integer or pointer lvalue; they are GCC/Clang
 * __atomic builtins, so plain fields (not _Atomic) are used throughout.
 */
#ifndef WEFT_ATOMICS_H
#define WEFT_ATOMICS_H

#include <stdint.h>

#include "sanitizer.h"

#ifdef WEFT_ATOMIC_CHAOS
void weft__chaos_point(void);
#define WEFT__HOOK() weft__chaos_point()
#else
#define WEFT__HOOK() ((void)0)
#endif

#define WEFT__LD(p, o) (WEFT__HOOK(), __atomic_load_n((p), (o)))
#define WEFT__ST(p, v, o) (WEFT__HOOK(), __atomic_store_n((p), (v), (o)))
#define WEFT__XCHG(p, v, o) (WEFT__HOOK(), __atomic_exchange_n((p), (v), (o)))
#define WEFT__ADD(p, v, o) (WEFT__HOOK(), __atomic_fetch_add((p), (v), (o)))
/* Strong CAS; on failure *(e) receives the value found. */
#define WEFT__CAS(p, e, v, o)                                                  \
  (WEFT__HOOK(),                                                               \
   __atomic_compare_exchange_n((p), (e), (v), 0, (o), __ATOMIC_ACQUIRE))

/* Statistics counters (stats.c) order nothing, so they skip the chaos
 * hook. An owner-only counter has one writer: a relaxed load and store
 * bump it with no locked instruction; readers on other threads load it
 * relaxed (weft__stat_ld). */
#define weft__stat_ld(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define weft__stat_inc(p) __atomic_store_n((p), weft__stat_ld(p) + 1, __ATOMIC_RELAXED)
#define weft__stat_add(p, v) __atomic_store_n((p), weft__stat_ld(p) + (v), __ATOMIC_RELAXED)
#define weft__stat_max(p, v)                                                   \
  do {                                                                         \
    if ((v) > weft__stat_ld(p))                                                \
      __atomic_store_n((p), (v), __ATOMIC_RELAXED);                            \
  } while (0)
#define weft__stat_set(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* A counter several threads bump (a thief on its victim's). */
#define weft__stat_add_shared(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

#define weft__ld_rlx(p) WEFT__LD(p, __ATOMIC_RELAXED)
#define weft__ld_acq(p) WEFT__LD(p, __ATOMIC_ACQUIRE)
#define weft__ld_sc(p) WEFT__LD(p, __ATOMIC_SEQ_CST)
#define weft__st_rlx(p, v) WEFT__ST(p, v, __ATOMIC_RELAXED)
#define weft__st_rel(p, v) WEFT__ST(p, v, __ATOMIC_RELEASE)
#define weft__st_sc(p, v) WEFT__ST(p, v, __ATOMIC_SEQ_CST)
#define weft__xchg_ar(p, v) WEFT__XCHG(p, v, __ATOMIC_ACQ_REL)
#define weft__add_rlx(p, v) WEFT__ADD(p, v, __ATOMIC_RELAXED)
#define weft__add_ar(p, v) WEFT__ADD(p, v, __ATOMIC_ACQ_REL)
#define weft__add_sc(p, v) WEFT__ADD(p, v, __ATOMIC_SEQ_CST)
#define weft__cas_rel(p, e, v) WEFT__CAS(p, e, v, __ATOMIC_RELEASE)
#define weft__cas_ar(p, e, v) WEFT__CAS(p, e, v, __ATOMIC_ACQ_REL)
#define weft__cas_sc(p, e, v)                                                  \
  (WEFT__HOOK(),                                                               \
   __atomic_compare_exchange_n((p), (e), (v), 0, __ATOMIC_SEQ_CST,             \
                               __ATOMIC_SEQ_CST))

/* Full fence: orders every earlier store before every later load (the
 * store-load ordering that the wake rule needs). On x86 a locked RMW on the
 * stack is cheaper than mfence and just as strong for ordinary memory.
 * ThreadSanitizer models neither fences nor that idiom, so its builds use a
 * seq_cst RMW on one shared word: both sides of a Dekker pair then
 * synchronise through that word, which is what the fence promises. */
#if WEFT_TSAN
extern uint32_t weft__tsan_fence_word;
static inline void weft__fence_sc(void) {
  WEFT__HOOK();
  __atomic_fetch_add(&weft__tsan_fence_word, 0, __ATOMIC_SEQ_CST);
}
#elif defined(__x86_64__)
static inline void weft__fence_sc(void) {
  WEFT__HOOK();
  __asm__ __volatile__("lock orq $0, -8(%%rsp)" ::: "memory", "cc");
}
#else
static inline void weft__fence_sc(void) {
  WEFT__HOOK();
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
#endif

/* A hint inside spin loops. */
static inline void weft__cpu_relax(void) {
#if defined(__x86_64__)
  __asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A spinlock for critical sections of a few dozen instructions (the inject
 * queue, the shared stack pool), where a pthread mutex measured worse: its
 * futex syscalls under contention cost more than the section. After a
 * short spin the waiter yields the CPU, so a preempted holder is not
 * spun against for a whole time slice. */
typedef struct weft__spinlock {
  uint32_t held;
} weft__spinlock;

/* worker.c: the slow path (exported for io and http's own spinlocks). */
__attribute__((visibility("default"))) void weft__spin_wait(uint32_t *held);

/* On a bare word, for public structs that embed the lock as a uint32_t. */
static inline void weft__spin_lock_word(uint32_t *held) {
  if (__builtin_expect(WEFT__XCHG(held, 1, __ATOMIC_ACQUIRE) == 0, 1))
    return;
  weft__spin_wait(held);
}

static inline void weft__spin_unlock_word(uint32_t *held) {
  weft__st_rel(held, 0);
}

static inline void weft__spin_lock(weft__spinlock *l) {
  weft__spin_lock_word(&l->held);
}

static inline void weft__spin_unlock(weft__spinlock *l) {
  weft__spin_unlock_word(&l->held);
}

#endif
