/*
 * runq.pml - a worker's run-queue ring and the thieves that steal from it
 * (sched/src/runq.c), for the Spin model checker. Run by tests/model
 * (model.runq.*); by hand:
 *   spin -a runq.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan -m1000000
 *
 * What is modelled: one ring of SIZE slots (the code has 256; 4 here, so
 * that wrap-around, a full ring and the overflow all happen within a few
 * steps). The owner makes NOPS operations, each chosen freely: push the
 * next of NITEMS coroutines, pop the head, pop the tail. NTHIEVES thieves
 * each make NSTEALS steal attempts at any moment. Every coroutine taken
 * (by a pop, a steal or the overflow's move to the inject queue) is
 * counted.
 *
 * Labels name the code's steps and functions (runq.c; line numbers as of
 * this writing):
 *   PH        weft__ring_pop_head, runq.c:110-120 (read head, the slot,
 *             CAS head index + 1)
 *   T0,T1,T2  weft__ring_pop_tail, runq.c:122-134: T0 reads head and tail
 *             and the last slot, T1 lowers tail (relaxed store), T2 CASes
 *             head's version + 1 (index unchanged); if T2 fails a thief
 *             won: restore tail (TR) and look again
 *   PU, OV    weft__ring_push_tagged, runq.c:75-88: room: store the slot,
 *             then tail + 1 (release); full: ring_overflow, runq.c:61-73,
 *             reads the older half and CASes head past it (OV)
 *   ST        weft__ring_steal, runq.c:136-153: read head (acquire) and
 *             tail (acquire), n = half rounded up, retry when n is larger
 *             than half a ring (h and t read at different moments: t may be
 *             below h while an owner's T1 is undone), read n slots (relaxed),
 *             CAS head index + n with the version read
 * head is one word (version << 8 | index here, << 32 in the code), read,
 * CASed and stored whole.
 *
 * What is abstracted: the slot tag WEFT__RING_CONT (it only decides which
 * end the owner pops, which the owner here chooses freely); the LIFO slot
 * (owner-only); the inject queue (taking into it is the end of the story
 * here: it is a locked FIFO); the thief's own ring (what a thief takes is
 * counted as taken; its ring is another instance of this one). Indices
 * do not wrap at 2^32 (the code relies on unsigned arithmetic there).
 *
 * Properties (pan -DSAFETY: assertions and end states):
 *   - no double run: every coroutine is taken at most once (taken[c] <= 1
 *     at every take);
 *   - nothing lost: when everyone is done, every pushed coroutine was
 *     taken exactly once or is still in the ring between head and tail
 *     (exactly once), and nothing else is there;
 *   - no process is stuck (valid end states);
 *   - no livelock (pan -DNP -l -f, no progress label: no cycle a weakly
 *     fair scheduler could run forever; a thief retrying while the owner
 *     is between T1 and TR is such a cycle only if the owner never runs).
 *
 * Memory model. Promela is sequentially consistent. The code relies on:
 * the owner's slot store before its tail store-release (PU), read by a
 * thief's tail load-acquire before its relaxed slot loads; head's CASes
 * acq_rel, so a thief that reads a head written by T2 (acquire) also sees
 * T1's lowered tail (T1 is before T2's release); slot loads may see a slot
 * the owner is rewriting, harmless because the CAS on head then fails
 * (the version makes a head value never repeat after a T2). The weak-
 * memory side is the TSan build's and the chaos-tsan runs' (.ci/chaos).
 *
 * Mutants (-DMUTANT_<name>; tests/model runs each and passes only if pan
 * finds the error named):
 *   NO_VERSION    T2 CASes head to itself (no version bump): a thief that
 *                 read head and tail before T1 still wins its CAS, and the
 *                 owner and the thief both take the last coroutine:
 *                 "assertion violated".
 *   THIEF_STORE   the thief's CAS is a plain store: two takers of one
 *                 range: "assertion violated".
 *   T2_BEFORE_T1  pop_tail CASes head before lowering tail: a thief that
 *                 reads the new head and the old tail steals the slot
 *                 being popped: "assertion violated".
 *   NO_RESTORE    a failed T2 does not restore tail: a coroutine is lost
 *                 (the final check): "assertion violated".
 *
 * Configurations (-D): SIZE (4), NITEMS (6), NOPS (7), NTHIEVES (2),
 * NSTEALS (1). tests/model runs NOPS=5 with two thieves (1 M states) and
 * NOPS=7 with one thief stealing twice (0.6 M states); the default is
 * ~17 M states and ~0.8 GB with -DCOLLAPSE: by hand.
 */

#ifndef SIZE
#define SIZE 4
#endif
#define MASK (SIZE - 1)
#ifndef NITEMS
#define NITEMS 6
#endif
#ifndef NOPS
#define NOPS 7
#endif
#ifndef NTHIEVES
#define NTHIEVES 2
#endif
#ifndef NSTEALS
#define NSTEALS 1
#endif

#define IDX(hw) ((hw) & 255)
#define VER(hw) ((hw) >> 8)
#define MAKE(v, i) (((v) << 8) | (i))

short head;              /* version << 8 | index; changed only by CAS */
byte tail;               /* written by the owner only */
byte ring[SIZE];         /* coroutines 1..NITEMS; 0 never pushed */
byte pushed;             /* coroutines pushed so far */
byte taken[NITEMS + 1];  /* ghost: takes per coroutine */

inline cas(var, exp, val, ok) {
  atomic {
    if
    :: var == exp -> var = val; ok = true
    :: else -> exp = var; ok = false
    fi
  }
}

inline take(c) {
  assert(c >= 1 && c <= NITEMS);
  assert(taken[c] == 0); /* nobody took it before: no double run */
  taken[c]++
}

proctype Owner() {
  short hw;
  byte h, t, n, i, c, op;
  bool ok;
  byte batch[SIZE / 2];
  do
  :: op >= NOPS -> break
  :: else ->
      op++;
      if
      :: pushed < NITEMS ->              /* weft__ring_push */
          pushed++;
          c = pushed;
          do
          :: hw = head;                  /* acquire */
             t = tail;
             if
             :: t - IDX(hw) < SIZE ->
PU:              ring[t & MASK] = c;     /* relaxed */
                 tail = t + 1;           /* release */
                 break
             :: else ->                  /* ring_overflow */
                 h = IDX(hw);
                 n = (t - h) / 2;
                 i = 0;
                 do
                 :: i < n -> batch[i] = ring[(h + i) & MASK]; i++
                 :: else -> break
                 od;
OV:              atomic {
                   cas(head, hw, MAKE(VER(hw), h + n), ok);
                   if
                   :: ok ->              /* the batch and c to the inject queue */
                       i = 0;
                       do
                       :: i < n -> take(batch[i]); i++
                       :: else -> break
                       od;
                       take(c)
                   :: else
                   fi
                 }
                 if :: ok -> break :: else fi
             fi
          od
      :: true ->                         /* weft__ring_pop_head */
          hw = head;
          do
          :: h = IDX(hw);
             if
             :: h == tail -> break       /* empty */
             :: else
             fi;
             c = ring[h & MASK];
PH:          atomic {
               cas(head, hw, MAKE(VER(hw), h + 1), ok);
               if :: ok -> take(c) :: else fi
             }
             if :: ok -> break :: else fi
          od
      :: true ->                         /* weft__ring_pop_tail */
          do
          :: hw = head;
T0:          t = tail;
             if
             :: t == IDX(hw) -> break    /* empty */
             :: else
             fi;
             c = ring[(t - 1) & MASK];
#ifdef MUTANT_T2_BEFORE_T1
T2:          atomic {
               cas(head, hw, MAKE(VER(hw) + 1, IDX(hw)), ok);
               if :: ok -> take(c) :: else fi
             }
T1:          tail = t - 1;
#else
T1:          tail = t - 1;               /* relaxed */
T2:          atomic {
#ifdef MUTANT_NO_VERSION
               cas(head, hw, MAKE(VER(hw), IDX(hw)), ok);
#else
               cas(head, hw, MAKE(VER(hw) + 1, IDX(hw)), ok);
#endif
               if :: ok -> take(c) :: else fi
             }
#endif
             if
             :: ok -> break
             :: else ->
#ifndef MUTANT_NO_RESTORE
TR:              tail = t                /* a thief moved head: look again */
#else
                 skip
#endif
             fi
          od
      fi
  od
}

proctype Thief() {
  short hw;
  byte h, t, i, k;
  int n;
  bool ok;
  byte batch[SIZE / 2];
  do
  :: k >= NSTEALS -> break
  :: else ->
      k++;
      do
      :: hw = head;                      /* acquire */
         h = IDX(hw);
         t = tail;                       /* acquire */
         n = t - h;
         if
         :: n < 0 -> goto again          /* unsigned: huge, > SIZE / 2 */
         :: else
         fi;
         n = n - n / 2;
         if
         :: n == 0 -> break              /* empty */
         :: n > SIZE / 2 -> goto again   /* h and t from different moments */
         :: else
         fi;
         i = 0;
         do
         :: i < n -> batch[i] = ring[(h + i) & MASK]; i++  /* relaxed */
         :: else -> break
         od;
ST:      atomic {
#ifdef MUTANT_THIEF_STORE
           head = MAKE(VER(hw), h + n); ok = true;
#else
           cas(head, hw, MAKE(VER(hw), h + n), ok);
#endif
           if
           :: ok ->
               i = 0;
               do
               :: i < n -> take(batch[i]); i++
               :: else -> break
               od
           :: else
           fi
         }
         if :: ok -> break :: else fi;
again:   skip
      od
  od
}

init {
  byte i, c, h, cnt;
  atomic {
    run Owner();
    for (i : 1 .. NTHIEVES) {
      run Thief()
    }
  }
  _nr_pr == 1; /* everyone else has finished */
  /* Nothing lost, nothing twice: each pushed coroutine was taken once or
   * sits between head and tail once. */
  assert(IDX(head) <= tail && tail - IDX(head) <= SIZE);
  for (c : 1 .. NITEMS) {
    cnt = taken[c];
    h = IDX(head);
    do
    :: h < tail -> if :: ring[h & MASK] == c -> cnt++ :: else fi; h++
    :: else -> break
    od;
    if
    :: c <= pushed -> assert(cnt == 1)
    :: else -> assert(cnt == 0)
    fi
  }
}
