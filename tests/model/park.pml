/*
 * park.pml - the park/unpark protocol and the wait claim (sched/src/park.c),
 * for the Spin model checker. Run by tests/model (model.park.*); by hand:
 *   spin -a park.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 *
 * What is modelled. One coroutine C makes NWAITS waits in a row on a
 * primitive with a lock and a wait list (sync.c's wait_on, chan.c). Each
 * wait is contended by three claimers, as in the code:
 *   - a waker that finds C on the wait list under the primitive's lock
 *     (weft__wq_claim: unlink, then weft__wait_claim, any generation);
 *   - a canceller (weft_cancel, W4), once, at any moment of the run;
 *   - a timer per wait (weft__wait_park_until arms it; poller.c claims with
 *     weft__wait_claim_gen(gen)); it may fire late, after its wait ended
 *     and the next began (as join's E2 and an offload completion may: they
 *     learn the generation without a lock).
 * The after-switch half of a park runs on NWORKERS worker processes; a
 * coroutine made runnable goes to one run queue all workers take from.
 *
 * Labels name the code's steps (park.c's design comment; line numbers as
 * of this writing):
 *   W1, W1c  weft__wait_begin, park.c:224-237 (store the token seq_cst,
 *            then read cancel_pending seq_cst; a pending cancel claims
 *            the wait itself)
 *   P1       weft__park step 1, park.c:135-137 (CAS RUNNING -> PARKING;
 *            finding NOTIFIED: consume_permit, park.c:90-96)
 *   P2       step 2, park.c:138-139 (record AFTER_PARK, switch away)
 *   P3u, P3  step 3, weft__finish_park, park.c:144-154 (unlock, then CAS
 *            PARKING -> PARKED; on NOTIFIED: RUNNABLE and queue)
 *   U0-U2    unpark_state + weft__unpark, park.c:166-195
 *   W3       weft__wait_claim / _gen, park.c:245-263 (via wq_claim,
 *            internal.h, and poller.c's timer)
 *   W4       weft_cancel, park.c:327-338
 *   W5       wait_on's unlink after a cancel or timeout, sync.c:61-65
 *   RUN      weft__switch, worker.c:136-153: resuming takes C off a queue;
 *            the WEFT_CHECKS build asserts it was RUNNABLE, as RUN does.
 *
 * What is abstracted: the run queues, the LIFO slot, the inject queue and
 * the wake rule are one queue any worker takes from (runq.pml and
 * wake.pml check those); the foreign-thread park (futex, no switch) and
 * shielded waits are left out; wake_result's values are the three
 * outcomes; the primitive's lock is a test-and-set bit. How a claimer
 * that learns of the wait without a lock gets the generation it claims
 * (join: co.c J1/E2, joiner_gen; offload, DNS) is given here (the timer
 * reads it from C's arming); co.c's handshake for it is not modelled
 * (the chaos-tsan runs found a bug there: E2 read joiner_gen after
 * letting the record go, see co.c).
 *
 * Properties (a safety run, pan -DSAFETY, checks the assertions and the
 * end states; pan -DNP -l -f, with no progress label, finds any cycle a
 * weakly fair scheduler could run forever):
 *   - no double run: C is never queued while queued (len(runq) == 0 at
 *     every push) and never resumed while its stack is in use (RUN);
 *     every resume finds RUNNABLE; an unpark never finds RUNNABLE or
 *     NOTIFIED (double_unpark);
 *   - exactly one claimer per wait generation (claims[g] <= 1 at every
 *     claim, == 1 when the wait returns), the wait returns the claimer's
 *     result (a permit is consumed by the park it was meant for), and a
 *     timer completes only the wait it was armed for;
 *   - no lost wakeup: every run ends with C past all its waits and every
 *     process finished. A C parked forever is a process blocked at the end:
 *     pan reports "invalid end state";
 *   - no livelock: no such cycle (-DNP -l -f).
 *
 * Memory model. Promela is sequentially consistent: every statement below
 * is one indivisible step and all processes see one order. The code needs
 * less than SC only where this model does not look, and says which order
 * it relies on (atomics.h): the state CASes are acq_rel, so U0's plain
 * store of wake_result is published by U1/U2's CAS and read after step 1's
 * failed CAS (acquire) or after the resume; step 3's unlock happens before
 * its CAS; W1 and W4 are store-then-load pairs on two words (token,
 * cancel_pending) and need seq_cst on both sides (a Dekker pair: under
 * weaker orders both loads may miss both stores, which SC cannot show).
 * Those orders are checked by the TSan build and the chaos-tsan stress
 * runs (.ci/chaos), not here.
 *
 * Mutants (compile with -DMUTANT_<name>; tests/model registers each as a
 * test that passes only if pan finds the error named):
 *   NO_NOTIFY   U1 does nothing on RUNNING/PARKING (no permit): C parks
 *               after the unpark and sleeps forever: "invalid end state".
 *   NO_PARKING  step 1 goes RUNNING -> PARKED before the switch (no
 *               PARKING): an unpark queues C while it is still on its
 *               stack and another worker resumes it: "assertion violated"
 *               (RUN: !on_stack).
 *   NO_REQUEUE  step 3 ignores a NOTIFIED it finds: "invalid end state".
 *   ANY_GEN     the timer claims with weft__wait_claim (any generation)
 *               instead of _gen: a late timer completes a later wait:
 *               "assertion violated".
 *   NO_CLAIM    the canceller unparks without claiming the token: two
 *               unparks of one wait: "assertion violated".
 *   W1_LOAD_FIRST  (with CANCEL_ONLY) W1 reads cancel_pending before it
 *               opens the wait: a cancel in between sees no open wait and
 *               is not seen by W1 either, and the wait, which only the
 *               cancel could end, never ends: "invalid end state".
 *
 * Configurations (-D): NWAITS (2), NWORKERS (2); NO_WAKER and NO_TIMER
 * leave those claimers out. With both and NWAITS=1 (tests/model's
 * cancel_only) the cancel is the only way out of the wait, so the model
 * also checks the W1/W4 rule: a cancel is either seen at W1 or claims the
 * wait (here under SC; the seq_cst orders that give it are not checked).
 */

#ifndef NWAITS
#define NWAITS 2
#endif
#ifndef NWORKERS
#define NWORKERS 2
#endif

/* weft_co.state (internal.h) */
#define RUNNING  0
#define PARKING  1
#define PARKED   2
#define NOTIFIED 3
#define RUNNABLE 4

/* wait_token = gen << 2 | state (internal.h WEFT__WAIT_*) */
#define W_NONE 0
#define W_OPEN 1
#define GEN(t) ((t) >> 2)
#define WST(t) ((t) & 3)

/* wake results */
#define R_WOKEN    1
#define R_CANCELED 2
#define R_TIMEDOUT 3

#define AFTER_NONE 0
#define AFTER_PARK 1

byte state = RUNNING;    /* weft_co.state */
byte wake_result;        /* weft_co.wake_result (U0) */
byte token;              /* weft_co.wait_token */
bit cancel_pending;      /* weft_co.cancel_pending */
bit reg;                 /* C is linked on the primitive's wait list */
bit lk;                  /* the primitive's lock */
byte after[NWORKERS];    /* weft__worker.after.op */
chan runq = [2] of { bit }; /* room for two, so a double queue is visible */
bit on_stack = 1;        /* something runs on C's stack (C starts running) */
byte cur;                /* the worker C runs on */
bit armed;               /* C's timer for timer_gen is armed */
byte timer_gen;
bit done;                /* C finished its waits */

/* ghosts: what the properties talk about */
byte claims[NWAITS + 1];    /* successful claims per generation */
byte claim_res[NWAITS + 1]; /* the result its claimer will unpark with */

/* Strong CAS (atomics.h WEFT__CAS): on failure exp receives the value. */
inline cas(var, exp, val, ok) {
  atomic {
    if
    :: var == exp -> var = val; ok = true
    :: else -> exp = var; ok = false
    fi
  }
}

/* U0-U2 (park.c:166-195), with the queueing of weft__make_runnable.
 * Callers label the call U0 (an inline cannot begin with a label). */
inline unpark(res, s, ok) {
    wake_result = res;          /* U0 */
    s = state;
    do
    :: s == RUNNING || s == PARKING ->
#ifdef MUTANT_NO_NOTIFY
        break;
#else
U1:     cas(state, s, NOTIFIED, ok);
        if
        :: ok -> break
        :: else
        fi
#endif
    :: s == PARKED ->
U2:     cas(state, s, RUNNABLE, ok);
        if
        :: ok -> atomic { assert(len(runq) == 0); runq!1 }; break
        :: else
        fi
    :: else -> assert(false) /* double_unpark: RUNNABLE or NOTIFIED */
    od
}

/* A successful claim of generation g: the ghost bookkeeping of W3/W4. */
inline claimed(g, res) {
  assert(claims[g] == 0);
  claims[g]++;
  claim_res[g] = res
}

proctype Co() {
  byte gen, s, e, rc, i = 1;
  bool ok, pend;
  do
  :: i > NWAITS -> break
  :: else ->
      atomic { lk == 0 -> lk = 1 }; /* the primitive's lock */
      reg = 1;                       /* W1: linked where wakers look */
      gen = GEN(token) + 1;
#ifdef MUTANT_W1_LOAD_FIRST
      pend = cancel_pending;
W1:   token = gen << 2 | W_OPEN;
W1c:  if
      :: pend ->
#else
W1:   token = gen << 2 | W_OPEN;     /* seq_cst store */
W1c:  if
      :: cancel_pending ->           /* seq_cst load */
#endif
          e = gen << 2 | W_OPEN;
          atomic {
            cas(token, e, gen << 2, ok);
            if :: ok -> claimed(gen, R_CANCELED) :: else fi
          }
          if
          :: ok ->                   /* cancelled before parking */
              cancel_pending = 0;
              reg = 0;
              lk = 0;
              rc = R_CANCELED;
              goto waited
          :: else                    /* claimed meanwhile: park to take it */
          fi
      :: else
      fi;
      atomic { timer_gen = gen; armed = 1 };   /* wait_park_until: arm */
#ifdef MUTANT_NO_PARKING
P1:   s = RUNNING;
      cas(state, s, PARKED, ok);
      if
      :: ok -> atomic { after[cur] = AFTER_PARK; on_stack = 0 }
      :: else
      fi;
#else
P1:   s = RUNNING;
      cas(state, s, PARKING, ok);
      if
      :: ok ->
P2:       atomic { after[cur] = AFTER_PARK; on_stack = 0 } /* switch */
      :: else
      fi;
#endif
      if
      :: !ok ->                      /* consume_permit */
          assert(s == NOTIFIED);
          lk = 0;
          state = RUNNING;
          rc = wake_result
      :: ok ->
          on_stack;                  /* resumed by some worker (RUN) */
          rc = wake_result
      fi;
      armed = 0;                     /* timer_disarm */
      if                             /* wait_park: a cancel was delivered */
      :: rc == R_CANCELED -> cancel_pending = 0
      :: else
      fi;
W5:   if
      :: rc != R_WOKEN ->
          atomic { lk == 0 -> lk = 1 };
          reg = 0;
          lk = 0
      :: else
      fi;
waited:
      assert(claims[gen] == 1);
      assert(rc == claim_res[gen]);
      i++
  od;
  done = 1
}

proctype Worker(byte w) {
  byte s;
  bool ok;
  do
  :: after[w] == AFTER_PARK ->
#ifdef MUTANT_NO_PARKING
      after[w] = AFTER_NONE;
      lk = 0
#else
P3u:  lk = 0;                        /* unlock(arg): C's stack is frozen */
      s = PARKING;
P3:   cas(state, s, PARKED, ok);
      if
      :: ok
      :: else ->
          assert(s == NOTIFIED);
#ifndef MUTANT_NO_REQUEUE
          state = RUNNABLE;
          atomic { assert(len(runq) == 0); runq!1 }
#endif
      fi;
      after[w] = AFTER_NONE
#endif
  :: atomic {
       after[w] == AFTER_NONE && !(on_stack && cur == w) && nempty(runq) ->
       runq?_;
RUN:   assert(!on_stack);
       assert(state == RUNNABLE);
       state = RUNNING;
       cur = w;
       on_stack = 1
     }
  :: atomic { done && after[w] == AFTER_NONE && empty(runq) -> break }
  od
}

/* The waker: pops C off the wait list under the lock, claims whatever
 * wait is open (it is this one: the lock keeps the list current), and
 * unparks after unlocking; a waiter it cannot claim is only popped. */
proctype Waker() {
  byte t, s;
  bool ok;
  do
  :: atomic { lk == 0 && reg -> lk = 1 };
      reg = 0;
      t = token;
W3:   do
      :: WST(t) != W_NONE ->
          atomic {
            cas(token, t, t & ~3, ok);
            if :: ok -> claimed(GEN(t), R_WOKEN) :: else fi
          }
          if :: ok -> break :: else fi
      :: else -> ok = false; break
      od;
      lk = 0;
      if
      :: ok -> U0: unpark(R_WOKEN, s, ok)
      :: else
      fi
  :: done -> break
  od
}

/* W4, once, at any moment. */
proctype Canceller() {
  byte t, s;
  bool ok;
W4: cancel_pending = 1;
    t = token;
    do
    :: WST(t) == W_OPEN ->
#ifdef MUTANT_NO_CLAIM
        U0: unpark(R_CANCELED, s, ok);
        break
#else
        atomic {
          cas(token, t, t & ~3, ok);
          if :: ok -> claimed(GEN(t), R_CANCELED) :: else fi
        }
        if
        :: ok -> U0: unpark(R_CANCELED, s, ok); break
        :: else
        fi
#endif
    :: else -> break
    od
}

/* The poller's timer: fires at most once per armed wait, possibly late. */
proctype Timer() {
  byte g, fired, t, s;
  bool ok;
  do
  :: atomic { armed && timer_gen != fired -> g = timer_gen; fired = g };
      t = token;
W3g:  do
#ifdef MUTANT_ANY_GEN
      :: WST(t) != W_NONE ->
#else
      :: GEN(t) == g && WST(t) != W_NONE ->
#endif
          atomic {
            cas(token, t, t & ~3, ok);
            if
            :: ok ->
                assert(GEN(t) == g); /* only the wait it was armed for */
                claimed(GEN(t), R_TIMEDOUT)
            :: else
            fi
          }
          if :: ok -> break :: else fi
      :: else -> ok = false; break
      od;
      if
      :: ok -> U0: unpark(R_TIMEDOUT, s, ok)
      :: else
      fi
  :: done -> break
  od
}

init {
  byte w;
  atomic {
    for (w : 0 .. NWORKERS - 1) {
      run Worker(w)
    }
    run Co();
#ifndef NO_WAKER
    run Waker();
#endif
    run Canceller();
#ifndef NO_TIMER
    run Timer()
#endif
  }
}
