/*
 * wake.pml - the wake rule (sched/src/worker.c: publish, fence, wake one
 * idle worker only if nobody is searching) against workers going to sleep,
 * for the Spin model checker. Run by tests/model (model.wake.*); by hand:
 *   spin -a wake.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan -m1000000
 *
 * What is modelled: NWORKERS workers running find_work's loop, a producer
 * outside the workers (a foreign thread or the poller: make_runnable into
 * the inject queue) that publishes NEXT coroutines, and the coroutines the
 * workers run, each of which may spawn one more (up to NSPAWN in all:
 * make_runnable from a worker, onto its ring) and may then run forever (a
 * long computation: its worker never looks for work again). At most
 * NWORKERS - 1 of them run forever, so some worker is always free, and
 * every published coroutine must eventually start.
 *
 * Labels name the code's steps (worker.c's design comment; line numbers
 * as of this writing):
 *   P1        publish: a ring's tail store-release or the inject queue
 *             under its lock (runq.c weft__ring_push, weft__inject_push)
 *   P2-P5     weft__wake_one, worker.c:273-288 (P2 the full fence; P3
 *             skip if nsearching != 0 or nidle == 0; P4 CAS nsearching
 *             0 -> 1, idle_pop, bump the worker's wake_seq and futex-wake;
 *             P5 if the idle list was empty by then, give the slot back
 *             and start again at P2). Callers label their call: Pw (the
 *             producer), Pws (a spawning coroutine), SS.
 *   FW, SR    find_work, worker.c:445-470: local work (next_local, the
 *             inject queue), else become a searcher if fewer than half the
 *             busy workers search, search (steal; gives up after 50 us:
 *             here, at any moment), else go_idle
 *   SS        stop_searching, worker.c:301-307 (the last searcher to find
 *             work applies P2-P4 itself)
 *   S1-S4     go_idle, worker.c:399-442 (S1 on the idle list under the
 *             idle lock; S2 stop searching; S3 fence and look everywhere
 *             once more; S4 futex-wait on wake_seq, read before S1)
 *   LI        leave_idle, worker.c:377-397 (a worker a waker popped takes
 *             over the search slot the waker's P4 counted for it; one
 *             that was searching before S2 and whose S3 found work takes
 *             a slot again)
 *   STOP      weft_run's end: stopping, then weft__wake_all.
 *
 * What is abstracted: all the rings and the inject queue are one count of
 * queued coroutines (any worker may take any: stealing is runq.pml's
 * subject); the LIFO slot, which only its owner runs and which needs no
 * wake, is left out; the 200 ms trim timeout and the deadlock check in S4
 * are left out (the worker waits again after them); the idle lock is a
 * test-and-set bit; the search spin is "gives up at any moment".
 *
 * Properties (pan -DSAFETY: assertions and end states):
 *   - no lost wakeup: every run ends with every published coroutine
 *     started and every worker either stopped or running a coroutine
 *     forever. Work left queued while the free workers sleep blocks the
 *     stopper and the sleepers for ever: "invalid end state". That
 *     includes the slow version of the bug (a CPU idles while work waits
 *     for a busy worker): with the busy worker running forever, the work
 *     would never start;
 *   - the counters stay sane: nsearching never goes below zero;
 *   - no livelock (pan -DNP -l -f, no progress label: no cycle a weakly
 *     fair scheduler could run forever, e.g. P5 retrying for ever).
 *
 * Memory model. Promela is sequentially consistent, so P2 and S3's full
 * fences are no-ops here, and removing one is NOT caught by this model:
 * P1-P2-P3 and S1/S2-S3 are a store-buffer (Dekker) pattern, and only
 * the fences (atomics.h weft__fence_sc: a locked RMW on x86, a seq_cst
 * RMW on one shared word under TSan) stop both sides' loads from missing
 * both sides' stores. What this model checks is the logic around them:
 * which counters are looked at, in which order, and who wakes whom.
 *
 * Mutants (-DMUTANT_<name>; tests/model runs each and passes only if pan
 * finds the error named):
 *   NO_RECHECK     S3 does not look for work again: a producer that read
 *                  nidle == 0 before S1 woke nobody, and the worker sleeps
 *                  with the work queued: "invalid end state".
 *   NO_LAST_WAKE   stop_searching does not apply P2-P4 when the last
 *                  searcher finds work: producers that saw it searching
 *                  woke nobody, it runs forever, the others sleep:
 *                  "invalid end state".
 *   NO_HANDOFF     a worker popped by P4 does not take over the search
 *                  slot: nsearching stays 1 with nobody searching, P3
 *                  skips every later wake: "invalid end state".
 * and two that are worker.c as it was before this model found them
 * (tests/sched stress.spinner_pairs hangs on either, plain build too):
 *   NO_RETRY       no P5: a waker that won P4 but found the idle list
 *                  empty (its worker left it after S3) gave the slot back
 *                  and returned. While it held the slot, other producers'
 *                  P3 saw nsearching != 0 and skipped their wake; the
 *                  worker went idle again meanwhile and sleeps while their
 *                  work waits behind a busy worker: "invalid end state".
 *   NO_RESEARCH    a searcher whose S3 finds work leaves the idle list as
 *                  a non-searcher: producers that saw it searching before
 *                  its S2 skipped their wakes, it takes one coroutine (not
 *                  as a searcher, so no last-searcher wake) and runs it
 *                  for long; a second coroutine waits while the other
 *                  worker sleeps: "invalid end state".
 *
 * Configurations (-D): NWORKERS (2), NEXT (2), NSPAWN (1). tests/model
 * runs NEXT=2 NSPAWN=0 (all the mutants are caught there; 6 M states,
 * ~0.4 GB) and NEXT=1 NSPAWN=1; the default (NEXT=2 NSPAWN=1) is ~17 M
 * states and ~0.9 GB with -DCOLLAPSE: by hand.
 */

#ifndef NWORKERS
#define NWORKERS 2
#endif
#ifndef NEXT
#define NEXT 2
#endif
#ifndef NSPAWN
#define NSPAWN 1
#endif

byte work;                   /* coroutines queued (rings + inject queue) */
byte nsearching;             /* rt->nsearching */
byte nidle;                  /* rt->nidle */
bit ilk;                     /* rt->idle_lock */
byte idle_len;               /* rt->idle_len */
byte idle_stack[NWORKERS];   /* rt->idle_stack */
bit idle[NWORKERS];          /* w->idle */
/* w->wake_seq, abstracted: S4 waits until wake_seq differs from the value
 * read before S1, i.e. until it was bumped since; kick[w] is set by a bump
 * and cleared by that read (fewer states than a counter). */
bit kick[NWORKERS];
bit stopping;                /* rt->stopping */

/* ghosts */
bit prod_done;               /* the producer published all it will */
byte spawned;                /* coroutines spawned by coroutines */
byte running;                 /* coroutines taken, running, that may still spawn */
byte forever;                /* coroutines running forever */

inline lock() { atomic { ilk == 0 -> ilk = 1 } }
inline unlock() { ilk = 0 }

/* weft__wake_one: P2-P4, and P5 (see the header). Callers label the call
 * (an inline cannot begin with a label). */
inline wake_one(v, ok) {
  do
  :: skip;                      /* P2: full fence (a no-op under SC) */
     if
     :: nsearching != 0 || nidle == 0 -> break   /* P3 */
     :: else
     fi;
     atomic {                   /* P4 */
       if
       :: nsearching == 0 -> nsearching = 1; ok = true
       :: else -> ok = false
       fi
     };
     if
     :: !ok -> break
     :: else
     fi;
     lock();                    /* idle_pop */
     if
     :: idle_len > 0 ->
         idle_len--;
         v = idle_stack[idle_len];
         idle[v] = 0;
         nidle = idle_len;
         ok = true
     :: else -> ok = false
     fi;
     unlock();
     if
     :: ok -> d_step { kick[v] = 1; v = 0 }; break   /* futex wake */
     :: else ->                 /* P5: nobody to hand the slot to */
         atomic { assert(nsearching > 0); nsearching-- };
#ifdef MUTANT_NO_RETRY
         break
#else
         skip                   /* and apply the rule again */
#endif
     fi
  od
}

proctype Producer() {
  byte i, v;
  bool ok;
  do
  :: i < NEXT ->
P1: work++;
Pw: wake_one(v, ok);
    i++
  :: else -> break
  od;
  prod_done = 1
}

proctype Worker(byte w) {
  bit searching, was, got, found, pass;
  byte v, i, busy;
  bool ok;
FW:
  do
  :: stopping -> break
  :: else ->
      got = 0;
      atomic { if :: work > 0 -> work--; got = 1; running++ :: else fi };  /* next_local, inject */
      if
      :: !got && NWORKERS > 1 ->
          if
          :: !searching ->
              busy = NWORKERS - nidle;
              if
              :: 2 * nsearching < busy -> searching = 1; nsearching++
              :: else
              fi;
              busy = 0
          :: else
          fi;
          if
          :: searching ->
SR:           if                              /* search: steal, or give up */
              :: atomic { work > 0 -> work--; got = 1; running++ }
              :: true
              fi
          :: else
          fi
      :: else
      fi;
      if
      :: got ->
          if                                  /* stop_searching */
          :: searching ->
              searching = 0;
              atomic { assert(nsearching > 0); nsearching--; ok = (nsearching == 0) };
#ifdef MUTANT_NO_LAST_WAKE
              skip
#else
              if
              :: ok -> SS: wake_one(v, ok)
              :: else
              fi
#endif
          :: else
          fi;
          /* run the coroutine (counted in running since it was taken) */
          if
          :: spawned < NSPAWN ->              /* it spawns one (make_runnable) */
              spawned++;
P1s:          work++;
Pws:          wake_one(v, ok)
          :: true
          fi;
          if
          :: atomic { forever < NWORKERS - 1 -> running--; forever++ };
end_forever:  false                           /* it computes forever */
          :: true -> running--
          fi
      :: else ->                              /* go_idle */
          kick[w] = 0;                        /* seq = wake_seq */
S1:       lock();
          if
          :: stopping -> unlock(); goto next
          :: else
          fi;
          idle_stack[idle_len] = w;
          idle_len++;
          idle[w] = 1;
          nidle = idle_len;
          unlock();
S2:       was = searching;
          if
          :: searching ->
              searching = 0;
              atomic { assert(nsearching > 0); nsearching-- }
          :: else
          fi;
S3:       skip;                               /* full fence */
#ifdef MUTANT_NO_RECHECK
          found = 0;
#else
          found = (work > 0);                 /* work_anywhere */
#endif
          pass = (!found && !stopping);
          if
          :: pass ->
S4:           kick[w]                         /* futex wait */
          :: else
          fi;
LI:       lock();                             /* leave_idle */
          if
          :: idle[w] ->
              i = 0;
              do
              :: idle_stack[i] == w ->
                  idle_len--;
                  idle_stack[i] = idle_stack[idle_len];
                  break
              :: else -> i++
              od;
              idle[w] = 0;
              i = 0;
              nidle = idle_len;
#ifndef MUTANT_NO_RESEARCH
              if                              /* S3 found work: search again */
              :: was && found -> searching = 1; nsearching++
              :: else
              fi
#else
              skip
#endif
          :: else ->
#ifndef MUTANT_NO_HANDOFF
              searching = 1                   /* the waker's search slot */
#else
              skip
#endif
          fi;
          unlock()
      fi;
next: skip
  od
}

/* weft_run's end: once nothing is queued or running that could add more,
 * stop and wake everyone. */
proctype Stopper() {
  byte i;
STOP:
  atomic { prod_done && work == 0 && running == 0 -> stopping = 1 };
  lock();                                    /* weft__wake_all */
  for (i : 0 .. NWORKERS - 1) {
    kick[i] = 1
  }
  unlock()
}

init {
  byte w;
  atomic {
    for (w : 0 .. NWORKERS - 1) {
      run Worker(w)
    }
    run Producer();
    run Stopper()
  }
}
