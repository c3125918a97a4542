/*
 * ctx_x86_64.S - context switch for the x86-64 System V ABI (see ctx.h).
 *
 * Frame saved on the suspended stack, lowest address first:
 *   [sp+0]  MXCSR (4 bytes)   [sp+4] x87 control word (2 bytes, padded)
 *   [sp+8]  r15  [sp+16] r14  [sp+24] r13  [sp+32] r12
 *   [sp+40] rbx  [sp+48] rbp  [sp+56] return address
 * ctx.c's weft__ctx_make writes the same frame for a new coroutine, with
 * r12 = fn, r13 = arg, rbp = 0 and the return address = weft__ctx_entry.
 *
 * Cost, one-way, on the 2-core AMD EPYC VM this was written on: 5.9 ns.
 * Of that, stmxcsr/ldmxcsr take ~2.5 ns and fnstcw/fldcw ~0.5 ns; the ABI
 * makes both control words callee-saved (a coroutine that sets a rounding
 * mode must find it again after a switch), so they stay. Skipping ldmxcsr
 * when the value is unchanged was slower (7 ns): reading back what
 * stmxcsr stored stalls on store forwarding.
 */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        /* The return address is already at (%rsp); the frame below it is
         * written with movs, which do not serialise on the stack pointer
         * the way six pushes do. */
        leaq    -0x38(%rsp), %rsp
        .cfi_adjust_cfa_offset 0x38
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %r15, 0x08(%rsp)
        movq    %r14, 0x10(%rsp)
        movq    %r13, 0x18(%rsp)
        movq    %r12, 0x20(%rsp)
        movq    %rbx, 0x28(%rsp)
        movq    %rbp, 0x30(%rsp)
        .cfi_rel_offset rbp, 0x30
        movq    %rsp, (%rdi)
        /* From here the stack is the target's; its CFI is the same shape. */
        movq    %rsi, %rsp
        movq    0x08(%rsp), %r15
        movq    0x10(%rsp), %r14
        movq    0x18(%rsp), %r13
        movq    0x20(%rsp), %r12
        movq    0x28(%rsp), %rbx
        movq    0x30(%rsp), %rbp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        /* Jump rather than ret: a ret would pop the return-stack buffer's
         * prediction for the caller we came from and mispredict on every
         * switch (measured 12 ns per switch with ret, 5.5 ns with jmp). */
        movq    0x38(%rsp), %rcx
        leaq    0x40(%rsp), %rsp
        .cfi_adjust_cfa_offset -0x40
        .cfi_restore rbp
        jmpq    *%rcx
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code a coroutine runs: fn(arg) with r12 = fn, r13 = arg. The
 * return address is undefined, so unwinders stop here; rbp is 0, so
 * frame-pointer walkers stop here too. fn never returns. */
        .globl  weft__ctx_entry
        .hidden weft__ctx_entry
        .type   weft__ctx_entry, @function
        .p2align 4
weft__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip
        xorl    %ebp, %ebp
        movq    %r13, %rdi
        callq   *%r12
        ud2
        .cfi_endproc
        .size   weft__ctx_entry, .-weft__ctx_entry

        .section .note.GNU-stack,"",@progbits
