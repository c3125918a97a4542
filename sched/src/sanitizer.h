/*
 * sanitizer.h - tell AddressSanitizer and ThreadSanitizer about stack
 * switches, so that they follow a coroutine from stack to stack.
 *
 * ASan keeps a "fake stack" per real stack (for use-after-return) and must
 * know which stack is live: every switch is bracketed by
 * __sanitizer_start_switch_fiber (before, naming the target stack) and
 * __sanitizer_finish_switch_fiber (after, on the target). A context that
 * will never run again passes NULL as its save slot so ASan drops its fake
 * stack.
 *
 * TSan keeps a "fiber" (its own shadow of a thread) per context and must be
 * told the target right before the switch; a coroutine's fiber is created
 * at spawn and destroyed when its record is freed.
 *
 * In builds without sanitizers every hook below is empty and costs nothing.
 */
#ifndef WEFT_SANITIZER_H
#define WEFT_SANITIZER_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#ifndef WEFT_ASAN
#define WEFT_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif
#ifndef WEFT_TSAN
#define WEFT_TSAN 0
#endif

#if WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
#endif
#if WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

#endif
