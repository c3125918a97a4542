# The machine context switch on its own (test_ctx.c): callee-saved GPRs,
# FP registers and FP control registers across weft__ctx_switch, and the
# first frame weft__ctx_make lays out. It runs no scheduler, so one worker
# count is enough. Included from tests/sched/CMakeLists.txt.
weft_test(ctx SOURCES test_ctx.c LIBS weft_sched_static
  LABELS unit TIMEOUT 60 WORKERS 1
  CASES callee_saved ring fresh_context)
