/*
 * ctx.h - the machine context switch (ctx_x86_64.S, ctx_aarch64.S).
 *
 * A suspended context is nothing but a stack pointer: weft__ctx_switch
 * pushes the callee-saved registers (and the floating-point control words,
 * x87 CW + MXCSR on x86-64, FPCR on aarch64, which the ABIs make
 * callee-saved too) onto the current stack, stores the stack pointer in
 * *save, loads new_sp and pops the same frame from there. Caller-saved
 * registers need no saving: the switch is an ordinary call to the compiler.
 *
 * weft__ctx_make lays out a first frame on a fresh stack so that the first
 * switch to it "returns" into weft__ctx_entry, which calls fn(arg) with a
 * zeroed frame pointer and CFI that marks the return address undefined:
 * perf, gdb and libunwind stop cleanly at a coroutine's entry instead of
 * walking into garbage. fn must never return (a coroutine ends by switching
 * away for good).
 */
#ifndef WEFT_CTX_H
#define WEFT_CTX_H

#include <stddef.h>

void weft__ctx_switch(void **save, void *new_sp);
void *weft__ctx_make(void *stack_top, void (*fn)(void *), void *arg);

#endif
