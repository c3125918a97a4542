/*
 * test_ctx.c - the machine context switch on its own (ctx.h), without the
 * scheduler: weft__ctx_make and weft__ctx_switch driven directly.
 *
 * C code cannot pin values in callee-saved registers across a call, so the
 * check goes through a small assembly probe per architecture
 * (test_ctx_probe below). The probe saves its own caller's callee-saved
 * state, loads every callee-saved register and the floating-point control
 * register(s) from a `regs` record, calls weft__ctx_switch, and on return
 * writes what the registers then hold to another record, before restoring
 * its caller's state. Each context that is switched to runs the same probe
 * with different values, so anything the switch fails to save and restore
 * shows up as a mismatch.
 *
 *   x86-64:  rbx rbp r12 r13 r14 r15, MXCSR, x87 control word, rsp
 *   aarch64: x19-x28, x29, x30 (must be the probe's own return address),
 *            d8-d15, FPCR, sp
 *
 * Cases:
 *   callee_saved   main and one coroutine ping-pong many times
 *   ring           main and three coroutines switch around a ring
 *   fresh_context  a new context starts with the default FP environment
 *                  (MXCSR 0x1F80 and x87 CW 0x037F; FPCR 0) even when its
 *                  creator runs with another one, returns into
 *                  weft__ctx_entry, has a zero frame pointer above it, an
 *                  aligned stack, and gets its argument
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "ctx.h"

void weft__ctx_entry(void);

#define HIDDEN __attribute__((visibility("hidden")))

/* ---- the per-architecture probe ------------------------------------------ */

#if defined(__x86_64__)

typedef struct regs {
  uint64_t gpr[6];    /*  0: rbx rbp r12 r13 r14 r15 */
  uint32_t mxcsr;     /* 48 */
  uint16_t fpucw;     /* 52 */
  uint16_t pad;       /* 54 */
  uint64_t sp_before; /* 56: rsp just before the call (out only) */
  uint64_t sp_after;  /* 64: rsp just after it returned (out only) */
} regs;
_Static_assert(offsetof(regs, mxcsr) == 48, "probe layout");
_Static_assert(offsetof(regs, fpucw) == 52, "probe layout");
_Static_assert(offsetof(regs, sp_before) == 56, "probe layout");
_Static_assert(offsetof(regs, sp_after) == 64, "probe layout");

static const char *const gpr_name[] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
#define NGPR 6
#define NFPR 0

/* test_ctx_probe(save = rdi, new_sp = rsi, in = rdx, out = rcx) */
__asm__(
    "        .text\n"
    "        .globl  test_ctx_probe\n"
    "        .hidden test_ctx_probe\n"
    "        .type   test_ctx_probe, @function\n"
    "        .p2align 4\n"
    "test_ctx_probe:\n"
    "        pushq   %rbp\n"
    "        pushq   %rbx\n"
    "        pushq   %r12\n"
    "        pushq   %r13\n"
    "        pushq   %r14\n"
    "        pushq   %r15\n"
    "        subq    $24, %rsp\n" /* rsp is 16-aligned again */
    "        stmxcsr (%rsp)\n"
    "        fnstcw  4(%rsp)\n"
    "        movq    %rcx, 8(%rsp)\n"
    "        movq    %rsp, 56(%rcx)\n"
    "        movq    0(%rdx), %rbx\n"
    "        movq    8(%rdx), %rbp\n"
    "        movq    16(%rdx), %r12\n"
    "        movq    24(%rdx), %r13\n"
    "        movq    32(%rdx), %r14\n"
    "        movq    40(%rdx), %r15\n"
    "        ldmxcsr 48(%rdx)\n"
    "        fldcw   52(%rdx)\n"
    "        call    weft__ctx_switch\n"
    "        movq    8(%rsp), %rax\n"
    "        movq    %rbx, 0(%rax)\n"
    "        movq    %rbp, 8(%rax)\n"
    "        movq    %r12, 16(%rax)\n"
    "        movq    %r13, 24(%rax)\n"
    "        movq    %r14, 32(%rax)\n"
    "        movq    %r15, 40(%rax)\n"
    "        stmxcsr 48(%rax)\n"
    "        fnstcw  52(%rax)\n"
    "        movq    %rsp, 64(%rax)\n"
    "        ldmxcsr (%rsp)\n"
    "        fldcw   4(%rsp)\n"
    "        addq    $24, %rsp\n"
    "        popq    %r15\n"
    "        popq    %r14\n"
    "        popq    %r13\n"
    "        popq    %r12\n"
    "        popq    %rbx\n"
    "        popq    %rbp\n"
    "        ret\n"
    "        .size   test_ctx_probe, .-test_ctx_probe\n");

static uint32_t read_mxcsr(void) {
  uint32_t v;
  __asm__ __volatile__("stmxcsr %0" : "=m"(v));
  return v;
}
static uint16_t read_fpucw(void) {
  uint16_t v;
  __asm__ __volatile__("fnstcw %0" : "=m"(v));
  return v;
}

/* Control settings that differ between neighbours (idx and idx + 1 always
 * differ in rounding control). Exception masks stay set: no traps. */
static void set_fpenv(regs *r, unsigned idx) {
  r->mxcsr = 0x1F80u | ((idx & 3u) << 13) | (((idx >> 2) & 1u) << 15);
  r->fpucw = (uint16_t)(0x007Fu | ((idx & 1u) ? 0x0200u : 0x0300u) |
                        (((idx >> 1) & 3u) << 10));
  r->pad = 0;
}

static void check_fpenv(const regs *in, const regs *out, const char *who) {
  if (in->mxcsr != out->mxcsr || in->fpucw != out->fpucw) {
    fprintf(stderr, "%s: FP control not preserved: MXCSR %#x -> %#x, x87 CW %#x -> %#x\n",
            who, in->mxcsr, out->mxcsr, in->fpucw, out->fpucw);
    exit(1);
  }
}

static void check_extra(const regs *out, const char *who) {
  if (out->sp_before != out->sp_after) {
    fprintf(stderr, "%s: rsp not preserved: %#llx -> %#llx\n", who,
            (unsigned long long)out->sp_before, (unsigned long long)out->sp_after);
    exit(1);
  }
}

#elif defined(__aarch64__)

typedef struct regs {
  uint64_t gpr[11];    /*   0: x19 ... x28, x29 */
  uint64_t fpr[8];     /*  88: d8 ... d15 (bit patterns) */
  uint64_t fpcr;       /* 152 */
  uint64_t x30;        /* 160: x30 after the call returned (out only) */
  uint64_t x30_expect; /* 168: the probe's own return address (out only) */
  uint64_t sp_before;  /* 176 (out only) */
  uint64_t sp_after;   /* 184 (out only) */
} regs;
_Static_assert(offsetof(regs, fpr) == 88, "probe layout");
_Static_assert(offsetof(regs, fpcr) == 152, "probe layout");
_Static_assert(offsetof(regs, x30) == 160, "probe layout");
_Static_assert(offsetof(regs, sp_before) == 176, "probe layout");
_Static_assert(offsetof(regs, sp_after) == 184, "probe layout");

static const char *const gpr_name[] = {"x19", "x20", "x21", "x22", "x23", "x24",
                                       "x25", "x26", "x27", "x28", "x29"};
static const char *const fpr_name[] = {"d8",  "d9",  "d10", "d11",
                                       "d12", "d13", "d14", "d15"};
#define NGPR 11
#define NFPR 8

/* test_ctx_probe(save = x0, new_sp = x1, in = x2, out = x3). Own frame
 * (176 bytes): x29 x30 | x19-x28 | d8-d15 | caller's FPCR | out. */
__asm__(
    "        .text\n"
    "        .globl  test_ctx_probe\n"
    "        .hidden test_ctx_probe\n"
    "        .type   test_ctx_probe, %function\n"
    "        .p2align 4\n"
    "test_ctx_probe:\n"
    "        stp     x29, x30, [sp, #-176]!\n"
    "        mov     x29, sp\n"
    "        stp     x19, x20, [sp, #16]\n"
    "        stp     x21, x22, [sp, #32]\n"
    "        stp     x23, x24, [sp, #48]\n"
    "        stp     x25, x26, [sp, #64]\n"
    "        stp     x27, x28, [sp, #80]\n"
    "        stp     d8, d9, [sp, #96]\n"
    "        stp     d10, d11, [sp, #112]\n"
    "        stp     d12, d13, [sp, #128]\n"
    "        stp     d14, d15, [sp, #144]\n"
    "        mrs     x9, fpcr\n"
    "        stp     x9, x3, [sp, #160]\n"
    "        mov     x9, sp\n"
    "        str     x9, [x3, #176]\n"
    "        ldp     x19, x20, [x2, #0]\n"
    "        ldp     x21, x22, [x2, #16]\n"
    "        ldp     x23, x24, [x2, #32]\n"
    "        ldp     x25, x26, [x2, #48]\n"
    "        ldp     x27, x28, [x2, #64]\n"
    "        ldr     x29, [x2, #80]\n"
    "        ldp     d8, d9, [x2, #88]\n"
    "        ldp     d10, d11, [x2, #104]\n"
    "        ldp     d12, d13, [x2, #120]\n"
    "        ldp     d14, d15, [x2, #136]\n"
    "        ldr     x9, [x2, #152]\n"
    "        msr     fpcr, x9\n"
    "        bl      weft__ctx_switch\n"
    "1:      ldr     x9, [sp, #168]\n"
    "        stp     x19, x20, [x9, #0]\n"
    "        stp     x21, x22, [x9, #16]\n"
    "        stp     x23, x24, [x9, #32]\n"
    "        stp     x25, x26, [x9, #48]\n"
    "        stp     x27, x28, [x9, #64]\n"
    "        str     x29, [x9, #80]\n"
    "        stp     d8, d9, [x9, #88]\n"
    "        stp     d10, d11, [x9, #104]\n"
    "        stp     d12, d13, [x9, #120]\n"
    "        stp     d14, d15, [x9, #136]\n"
    "        mrs     x10, fpcr\n"
    "        str     x10, [x9, #152]\n"
    "        adr     x10, 1b\n"
    "        stp     x30, x10, [x9, #160]\n"
    "        mov     x10, sp\n"
    "        str     x10, [x9, #184]\n"
    "        ldr     x10, [sp, #160]\n"
    "        msr     fpcr, x10\n"
    "        ldp     x19, x20, [sp, #16]\n"
    "        ldp     x21, x22, [sp, #32]\n"
    "        ldp     x23, x24, [sp, #48]\n"
    "        ldp     x25, x26, [sp, #64]\n"
    "        ldp     x27, x28, [sp, #80]\n"
    "        ldp     d8, d9, [sp, #96]\n"
    "        ldp     d10, d11, [sp, #112]\n"
    "        ldp     d12, d13, [sp, #128]\n"
    "        ldp     d14, d15, [sp, #144]\n"
    "        ldp     x29, x30, [sp], #176\n"
    "        ret\n"
    "        .size   test_ctx_probe, .-test_ctx_probe\n");

static uint64_t read_fpcr(void) {
  uint64_t v;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
  return v;
}

/* FPCR fields every AArch64 FPU implements: RMode [23:22], FZ [24],
 * DN [25], AHP [26]. idx and idx + 1 always differ in RMode. Trap enables
 * stay clear (and are RAZ/WI on most cores). */
static void set_fpenv(regs *r, unsigned idx) {
  r->fpcr = ((uint64_t)(idx & 3u) << 22) | ((uint64_t)((idx >> 2) & 7u) << 24);
}

static void check_fpenv(const regs *in, const regs *out, const char *who) {
  if (in->fpcr != out->fpcr) {
    fprintf(stderr, "%s: FPCR not preserved: %#llx -> %#llx\n", who,
            (unsigned long long)in->fpcr, (unsigned long long)out->fpcr);
    exit(1);
  }
}

static void check_extra(const regs *out, const char *who) {
  if (out->x30 != out->x30_expect) {
    fprintf(stderr, "%s: x30 after the switch is %#llx, not the return address %#llx\n",
            who, (unsigned long long)out->x30, (unsigned long long)out->x30_expect);
    exit(1);
  }
  if (out->sp_before != out->sp_after) {
    fprintf(stderr, "%s: sp not preserved: %#llx -> %#llx\n", who,
            (unsigned long long)out->sp_before, (unsigned long long)out->sp_after);
    exit(1);
  }
}

#else
#error "test_ctx: no probe for this architecture (x86-64 and aarch64)"
#endif

HIDDEN void test_ctx_probe(void **save, void *new_sp, const regs *in, regs *out);

/* ---- shared checking ------------------------------------------------------ */

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Values for context `who` in round `round`: every register distinct from
 * every other context's, and the FP control different from the
 * neighbours' in the ring. */
static void fill(regs *r, unsigned who, unsigned round) {
  memset(r, 0, sizeof *r);
  uint64_t seed = ((uint64_t)who << 32) ^ round;
  for (int i = 0; i < NGPR; i++)
    r->gpr[i] = mix(seed * 64 + (uint64_t)i);
#if NFPR
  for (int i = 0; i < NFPR; i++)
    r->fpr[i] = mix(seed * 64 + 32 + (uint64_t)i);
#endif
  set_fpenv(r, who + round);
}

static void check_same(const regs *in, const regs *out, unsigned who, unsigned round) {
  char tag[64];
  snprintf(tag, sizeof tag, "context %u round %u", who, round);
  for (int i = 0; i < NGPR; i++) {
    if (in->gpr[i] != out->gpr[i]) {
      fprintf(stderr, "%s: %s not preserved: %#llx -> %#llx\n", tag, gpr_name[i],
              (unsigned long long)in->gpr[i], (unsigned long long)out->gpr[i]);
      exit(1);
    }
  }
#if NFPR
  for (int i = 0; i < NFPR; i++) {
    if (in->fpr[i] != out->fpr[i]) {
      fprintf(stderr, "%s: %s not preserved: %#llx -> %#llx\n", tag, fpr_name[i],
              (unsigned long long)in->fpr[i], (unsigned long long)out->fpr[i]);
      exit(1);
    }
  }
#endif
  check_fpenv(in, out, tag);
  check_extra(out, tag);
}

/* ---- contexts ------------------------------------------------------------- */

#define MAXCTX 4
#define STACK_SIZE (128 * 1024)

static _Alignas(64) unsigned char stacks[MAXCTX][STACK_SIZE];
static void *sp_of[MAXCTX]; /* saved stack pointers; [0] is main */
static unsigned nctx;        /* contexts in the ring, main included */
static unsigned checks[MAXCTX];
static void *dead_sp;

/* A coroutine in the ring: switch to the next context with its own values,
 * and check them when it is switched back to. Never returns; main simply
 * stops resuming it. */
static void ring_member(void *arg) {
  unsigned me = (unsigned)(uintptr_t)arg;
  for (unsigned round = 0;; round++) {
    regs in, out;
    fill(&in, me, round);
    test_ctx_probe(&sp_of[me], sp_of[(me + 1) % nctx], &in, &out);
    check_same(&in, &out, me, round);
    checks[me]++;
  }
}

static void run_ring(unsigned n, unsigned rounds) {
  nctx = n;
  memset(checks, 0, sizeof checks);
  for (unsigned i = 1; i < n; i++)
    sp_of[i] = weft__ctx_make(stacks[i] + STACK_SIZE, ring_member, (void *)(uintptr_t)i);
  for (unsigned round = 0; round < rounds; round++) {
    regs in, out;
    fill(&in, 0, round);
    test_ctx_probe(&sp_of[0], sp_of[1], &in, &out);
    check_same(&in, &out, 0, round);
    checks[0]++;
  }
  /* Every coroutine was resumed (and checked) once per round but the first. */
  CHECK_EQ(checks[0], rounds);
  for (unsigned i = 1; i < n; i++)
    CHECK_EQ(checks[i], rounds - 1);
}

static void callee_saved(void) { run_ring(2, 10000); }

static void ring(void) { run_ring(MAXCTX, 2000); }

/* ---- fresh_context -------------------------------------------------------- */

static struct {
  void *arg;
  void *ret_addr;
  void *saved_fp;
  uintptr_t frame;
#if defined(__x86_64__)
  uint32_t mxcsr;
  uint16_t fpucw;
#else
  uint64_t fpcr;
#endif
} seen;
static int fresh_token;

__attribute__((noinline)) static void fresh_entry(void *arg) {
#if defined(__x86_64__)
  seen.mxcsr = read_mxcsr();
  seen.fpucw = read_fpucw();
#else
  seen.fpcr = read_fpcr();
#endif
  seen.arg = arg;
  seen.ret_addr = __builtin_extract_return_addr(__builtin_return_address(0));
  seen.frame = (uintptr_t)__builtin_frame_address(0);
  seen.saved_fp = *(void **)__builtin_frame_address(0);
  weft__ctx_switch(&dead_sp, sp_of[0]);
  abort(); /* never resumed */
}

static void fresh_context(void) {
  unsigned char *top = stacks[1] + STACK_SIZE - 8; /* unaligned on purpose */
  void *sp = weft__ctx_make(top, fresh_entry, &fresh_token);
  CHECK(sp != NULL);
  CHECK((uintptr_t)sp % 16 == 0);
  CHECK((unsigned char *)sp < top && (unsigned char *)sp >= top - 512);

  /* The creator runs with a non-default FP environment; the new context
   * must not inherit it. */
  regs in, out;
  fill(&in, 0, 1);
#if defined(__x86_64__)
  CHECK(in.mxcsr != 0x1F80 && in.fpucw != 0x037F);
#else
  CHECK(in.fpcr != 0);
#endif
  test_ctx_probe(&sp_of[0], sp, &in, &out);
  check_same(&in, &out, 0, 1);

  CHECK(seen.arg == &fresh_token);
#if defined(__x86_64__)
  CHECK_EQ(seen.mxcsr, 0x1F80);
  CHECK_EQ(seen.fpucw, 0x037F);
#else
  CHECK_EQ(seen.fpcr, 0);
#endif
  /* fn was called from weft__ctx_entry, whose frame pointer is zero. */
  uintptr_t entry = (uintptr_t)(void *)weft__ctx_entry;
  CHECK((uintptr_t)seen.ret_addr > entry && (uintptr_t)seen.ret_addr < entry + 64);
  CHECK(seen.saved_fp == NULL);
  CHECK(seen.frame % 16 == 0);
  CHECK(seen.frame < (uintptr_t)top && seen.frame > (uintptr_t)stacks[1]);
}

int main(int argc, char **argv) {
  static const test_case cases[] = {
      {"callee_saved", callee_saved},
      {"ring", ring},
      {"fresh_context", fresh_context},
      {NULL, NULL},
  };
  return test_main(argc, argv, cases);
}
