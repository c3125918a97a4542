/*
 * ctx.c - the first frame of a new coroutine; the layouts match the frames
 * that ctx_x86_64.S and ctx_aarch64.S save and restore.
 */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void weft__ctx_entry(void);

void *weft__ctx_make(void *stack_top, void (*fn)(void *), void *arg) {
  uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
#if defined(__x86_64__)
  /* 8 slots: control words, r15 r14 r13 r12 rbx rbp, return address. After
   * the switch's ret, rsp == top (16-aligned), as a call site requires. */
  uint64_t *f = (uint64_t *)(top - 8 * sizeof(uint64_t));
  memset(f, 0, 8 * sizeof(uint64_t));
  uint32_t mxcsr = 0x1F80; /* all exceptions masked, round to nearest */
  uint16_t fpucw = 0x037F; /* x87 default: extended precision, masked */
  memcpy((char *)f, &mxcsr, sizeof mxcsr);
  memcpy((char *)f + 4, &fpucw, sizeof fpucw);
  f[4] = (uint64_t)(uintptr_t)fn;  /* r12 */
  f[3] = (uint64_t)(uintptr_t)arg; /* r13 */
  f[6] = 0;                        /* rbp: ends frame-pointer chains */
  f[7] = (uint64_t)(uintptr_t)weft__ctx_entry;
  return f;
#elif defined(__aarch64__)
  uint64_t *f = (uint64_t *)(top - 176);
  memset(f, 0, 176);
  f[0] = (uint64_t)(uintptr_t)fn;  /* x19 */
  f[1] = (uint64_t)(uintptr_t)arg; /* x20 */
  f[10] = 0;                       /* x29 */
  f[11] = (uint64_t)(uintptr_t)weft__ctx_entry; /* x30 */
  f[20] = 0;                       /* FPCR: IEEE defaults */
  return f;
#else
#error "weft: no context switch for this architecture (x86-64 and aarch64)"
#endif
}
