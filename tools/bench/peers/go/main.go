// Command weft-bench-go is the Go peer of weft-bench: the same benchmarks,
// written with goroutines and channels, printing the same JSON lines, so that
// tools/bench/compare can set weft beside Go's runtime.
//
//	weft-bench-go list
//	weft-bench-go NAME [-w WORKERS] [-n N]
//
// -w is GOMAXPROCS (default: the number of CPUs). -n overrides the size; it is
// the denominator of ns_per_op where there is one (total switches, yields,
// spawns, round trips or lock operations), the number of messages or round
// trips behind req_per_s, the number of leaves for skynet (a power of 10), the
// argument of fib, and the number of goroutines for parked and sleep_gather.
// Each run prints one JSON line:
//
//	{"bench":"skynet","impl":"go","workers":2,"n":1000000,"ms":83.1,"sum":499999500000}
//
// The benchmarks, so that readers can check them against the C side:
//
//	ctxswitch      Two goroutines that each call runtime.Gosched() n/2 times,
//	               under GOMAXPROCS=1 whatever -w says (Go has no raw switch;
//	               with one P and two runnable goroutines every Gosched is one
//	               one-way switch to the other). ns_per_op = wall / n.
//	               Default n = 10,000,000. "workers" reports 1.
//	yield          200 goroutines, released together by closing a channel,
//	               each calling runtime.Gosched() n/200 times.
//	               ns_per_op = wall / total yields. Default n = 2,000,000.
//	spawn          One spawner (the main goroutine) starts n trivial goroutines
//	               that each only call wg.Done(); timed until wg.Wait() returns.
//	               ns_per_op = wall / n. Default n = 1,000,000.
//	chained_spawn  A chain 1,000 deep: each goroutine spawns the next and exits,
//	               the last one signals a channel; n/1000 chains one after the
//	               other. ns_per_op = wall / n. Default n = 100,000 (100 chains).
//	spawn_remote   As spawn, but the spawner is a goroutine locked to its OS
//	               thread with runtime.LockOSThread (the closest Go analogue of
//	               spawning from a foreign thread); it also waits for completion.
//	               ns_per_op = wall / n. Default n = 10,000.
//	skynet         The skynet benchmark: a root goroutine, each node spawning 10
//	               children and summing their results received on its own
//	               unbuffered channel; the n leaves send their numbers 0..n-1.
//	               Default n = 1,000,000 (1,111,111 goroutines). Fields "ms" and
//	               "sum"; exits 1 unless sum = n(n-1)/2 (499999500000).
//	fib            Fork-join fib(n): a call with n >= 2 spawns fib(n-1) as a
//	               goroutine (result on a 1-buffered channel), computes fib(n-2)
//	               inline, then joins; n < 2 returns n. No other cutoff: fib(32)
//	               spawns 3,524,577 goroutines. Timed once at GOMAXPROCS=1 and
//	               once at GOMAXPROCS=W. Fields "ms_1", "ms_n",
//	               "speedup" = ms_1/ms_n, "result" (exits 1 if wrong).
//	               Default n = 32.
//	parked         n goroutines all blocked at once receiving from one channel.
//	               RSS (/proc/self/statm) is read after runtime.GC() before they
//	               are spawned and again once all have started and GC has run;
//	               "bytes_per_coroutine" = delta RSS / n. Then the channel is
//	               closed and all of them exit. Default n = 1,000,000.
//	               (No "ms" field: compare takes the first of ns_per_op, ms,
//	               bytes_per_coroutine, speedup as the main figure.)
//	pingpong       Two goroutines round-tripping a value over two unbuffered
//	               (rendezvous) channels, n round trips: A sends on ab, B
//	               receives and sends on ba, A receives; that is one op. B
//	               replies with the value plus one and A sends the reply on,
//	               so A ends holding n (exits 1 otherwise). ns_per_op =
//	               wall / n. Default n = 1,000,000.
//	mutex_contended
//	               8 goroutines, released together by closing a channel, each
//	               doing n/8 lock/increment/unlock on one sync.Mutex (the
//	               first n%8 of them one more, so n in all); exits 1 unless
//	               the counter ends at n. ns_per_op = wall / n.
//	               Default n = 4,000,000.
//	chan_throughput
//	               1 producer, 1 consumer, one channel of capacity 1024; the
//	               producer sends 0..n-1, the consumer sums them (exits 1
//	               unless the sum is n(n-1)/2). "req_per_s" = messages per
//	               second (so that compare picks it up, higher is better),
//	               "msgs_per_s" the same value, "sum". Default n = 10,000,000.
//	offload        Round trips through a blocking-call pool, mirroring
//	               weft_offload (a separate bounded thread pool that runs
//	               blocking functions and wakes the caller): a pool of 4
//	               worker goroutines, each locked to its OS thread with
//	               runtime.LockOSThread, takes jobs from one channel (capacity
//	               8, so a send never blocks), runs a trivial function (x+1,
//	               called through a func value) and replies on the job's own
//	               reply channel (a new 1-buffered channel per request, so
//	               the worker never waits for the caller). 8 goroutines each
//	               do n/8 round trips (the first n%8 one more), each waiting
//	               for its reply before sending its next job; a wrong reply
//	               exits 1. The pool is started before the clock and stopped
//	               after it. "req_per_s" = round trips per second (higher is
//	               better). Default n = 200,000.
//	echo           An echo server on 127.0.0.1:0 (echo.go), a goroutine per
//	               connection reading up to 4 KiB and writing it back (Go sets
//	               TCP_NODELAY), driven by weft-echo-load, the load client
//	               weft-bench echo and the raw C peer (tools/bench/peers/c)
//	               use too: n connections (default 64), one 64-byte message
//	               in flight on each, every byte checked, 0.5 s warm-up and
//	               3 s measured. The client is $WEFT_ECHO_LOAD (compare sets
//	               it), else found next to this binary or in
//	               ../tools/bench; $WEFT_ECHO_SECS and
//	               $WEFT_ECHO_LOAD_THREADS pass -d and -t on. "req_per_s" =
//	               round trips per second as the client measured them,
//	               "round_trips", "secs".
//	sleep_gather   n goroutines, all created first and then released
//	               together by closing a channel; once all exist, runtime.GC()
//	               runs (so that a collection set off by creating them does
//	               not fall in the timed window), then t0 is taken right
//	               before the release. Each takes began = time.Now(), calls
//	               time.Sleep(time.Second) and, on waking, stores its
//	               lateness = (time.Now() on waking) - (began + 1 s) in
//	               microseconds in its own slot of a slice; a
//	               sync.WaitGroup waits for all. "release_ms" = the latest
//	               began - t0. "ms" = wall time from t0 until wg.Wait()
//	               returns (ideally just over 1000), "late_p50_us", "late_p99_us",
//	               "late_max_us" from the n sorted latenesses (the p-th
//	               percentile is the nearest-rank one: element ceil(p*n/100)
//	               of the sorted values, counting from 1). No warm-up run:
//	               each run takes a second. Default n = 100,000.
//	fetch          n GETs (default 20,000) of a 100-byte file from nginx on
//	               loopback (fetch.go: $WEFT_BENCH_HTTP, which compare sets
//	               so that every side fetches from the same server, else an
//	               nginx started here with tools/bench/bench_proc.h's config:
//	               one worker, HTTP/1.1 keep-alive) by 100 goroutines taking
//	               indices from one atomic counter, all through one
//	               http.Client whose Transport keeps up to 100 idle
//	               connections to the host (MaxIdleConnsPerHost = 100; the
//	               default of 2 would close most of them after each burst).
//	               Every response is read in full and checked: status 200,
//	               exactly the file (byte i = 'a' + i%26). n/10 GETs first,
//	               the same way, as the warm-up that opens the connections.
//	               "req_per_s" = GETs per second, "goroutines".
//	fetch_latency  One goroutine doing n sequential GETs (default 2,000,
//	               after n/10 as a warm-up) with the same client, each timed
//	               from Get to the body read and checked: "p50_us" (the
//	               main figure, lower is better), "p99_us", "mean_us",
//	               "max_us" (nearest-rank, as sleep_gather).
//	server_rps     serve.go: a net/http server under GOMAXPROCS=1 sending
//	               the same 100 bytes, under `wrk -t1 -c n` for
//	               WEFT_BENCH_SECS (default 5) seconds. Default n = 64.
//	stress_rps     serve.go: n goroutines (default 64) sharing one
//	               http.Client, closed loop for WEFT_BENCH_SECS against the
//	               nginx of fetch: the shape of hey, which is not packaged.
//
// None of the req_per_s benchmarks print ns_per_op, ms, bytes_per_coroutine
// or speedup: compare takes the first of those names in that order, not the
// first field of the line.
//
// Timed benchmarks other than sleep_gather do one smaller warm-up run first;
// times use time.Now() (monotonic).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// field is one key of the output line; lines keep their keys in order.
type field struct {
	key string
	val interface{}
}

type bench struct {
	name string
	defN int
	// run returns the number of workers it really used and its fields.
	run func(w, n int) (int, []field)
}

var benches = []bench{
	{"ctxswitch", 10_000_000, benchCtxswitch},
	{"yield", 2_000_000, benchYield},
	{"spawn", 1_000_000, benchSpawn},
	{"chained_spawn", 100_000, benchChainedSpawn},
	{"spawn_remote", 10_000, benchSpawnRemote},
	{"skynet", 1_000_000, benchSkynet},
	{"fib", 32, benchFib},
	{"parked", 1_000_000, benchParked},
	{"pingpong", 1_000_000, benchPingpong},
	{"mutex_contended", 4_000_000, benchMutexContended},
	{"chan_throughput", 10_000_000, benchChanThroughput},
	{"offload", 200_000, benchOffload},
	{"echo", 64, benchEcho},
	{"sleep_gather", 100_000, benchSleepGather},
	{"fetch", 20_000, benchFetch},
	{"fetch_latency", 2_000, benchFetchLatency},
	{"stress_rps", 64, benchStressRps},
	{"server_rps", 64, benchServerRps},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: weft-bench-go list | weft-bench-go NAME [-w WORKERS] [-n N]")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	name := os.Args[1]
	if name == "list" {
		for _, b := range benches {
			fmt.Println(b.name)
		}
		return
	}
	var b *bench
	for i := range benches {
		if benches[i].name == name {
			b = &benches[i]
		}
	}
	if b == nil {
		fmt.Fprintf(os.Stderr, "weft-bench-go: unknown benchmark %q (try: weft-bench-go list)\n", name)
		os.Exit(2)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	w := fs.Int("w", runtime.NumCPU(), "worker threads (GOMAXPROCS)")
	n := fs.Int("n", b.defN, "size")
	if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() != 0 || *w < 1 || *n < 1 {
		usage()
	}
	runtime.GOMAXPROCS(*w)
	used, fields := b.run(*w, *n)
	emit(append([]field{{"bench", name}, {"impl", "go"}, {"workers", used}, {"n", *n}}, fields...))
}

func emit(fields []field) {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			sb.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		v, _ := json.Marshal(f.val)
		sb.Write(k)
		sb.WriteByte(':')
		sb.Write(v)
	}
	sb.WriteByte('}')
	fmt.Println(sb.String())
}

// atFail runs in fail before the exit (fetch stops its nginx there).
var atFail []func()

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "weft-bench-go: "+format+"\n", args...)
	for _, f := range atFail {
		f()
	}
	os.Exit(1)
}

// round2 keeps two decimals, which is plenty for ns and ms.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

func nsPerOp(d time.Duration, ops int) float64 {
	return round2(float64(d.Nanoseconds()) / float64(ops))
}

func ms(d time.Duration) float64 { return round2(float64(d.Nanoseconds()) / 1e6) }

// perSecond is ops per second over d, to the nearest whole op.
func perSecond(d time.Duration, ops int) float64 {
	return math.Round(float64(ops) / d.Seconds())
}

// share is how many of n ops the i-th of k goroutines does: n/k, and one
// more for the first n%k, so that the shares add up to n.
func share(n, k, i int) int {
	if i < n%k {
		return n/k + 1
	}
	return n / k
}

// --- ctxswitch -------------------------------------------------------------

func benchCtxswitch(_, n int) (int, []field) {
	// Gosched at GOMAXPROCS=1: the only way to make goroutines switch
	// directly without a channel in between.
	runtime.GOMAXPROCS(1)
	run := func(n int) time.Duration {
		per := n / 2
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		for i := 0; i < 2; i++ {
			go func() {
				defer wg.Done()
				<-start
				for j := 0; j < per; j++ {
					runtime.Gosched()
				}
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		return time.Since(t0)
	}
	run(n / 10)
	d := run(n)
	return 1, []field{{"ns_per_op", nsPerOp(d, n/2*2)}}
}

// --- yield -----------------------------------------------------------------

func benchYield(w, n int) (int, []field) {
	const tasks = 200
	run := func(n int) (time.Duration, int) {
		per := n / tasks
		if per < 1 {
			per = 1
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(tasks)
		for i := 0; i < tasks; i++ {
			go func() {
				defer wg.Done()
				<-start
				for j := 0; j < per; j++ {
					runtime.Gosched()
				}
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		return time.Since(t0), per * tasks
	}
	run(n / 10)
	d, total := run(n)
	return w, []field{{"ns_per_op", nsPerOp(d, total)}}
}

// --- spawn -----------------------------------------------------------------

func spawnN(n int) time.Duration {
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(t0)
}

func benchSpawn(w, n int) (int, []field) {
	spawnN(n / 10)
	return w, []field{{"ns_per_op", nsPerOp(spawnN(n), n)}}
}

// --- chained_spawn ---------------------------------------------------------

const chainDepth = 1000

// chain is one link: it spawns the next link, or signals done if it is last.
func chain(left int, done chan<- struct{}) {
	if left == 1 {
		done <- struct{}{}
		return
	}
	go chain(left-1, done)
}

func benchChainedSpawn(w, n int) (int, []field) {
	run := func(chains int) time.Duration {
		done := make(chan struct{})
		t0 := time.Now()
		for c := 0; c < chains; c++ {
			go chain(chainDepth, done)
			<-done
		}
		return time.Since(t0)
	}
	chains := n / chainDepth
	if chains < 1 {
		chains = 1
	}
	run(chains/10 + 1)
	d := run(chains)
	return w, []field{{"ns_per_op", nsPerOp(d, chains*chainDepth)}}
}

// --- spawn_remote ----------------------------------------------------------

func benchSpawnRemote(w, n int) (int, []field) {
	run := func(n int) time.Duration {
		res := make(chan time.Duration)
		go func() {
			// A goroutine pinned to its own OS thread stands in for a
			// thread that is not one of the runtime's workers.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			res <- spawnN(n)
		}()
		return <-res
	}
	run(n/10 + 1)
	return w, []field{{"ns_per_op", nsPerOp(run(n), n)}}
}

// --- skynet ----------------------------------------------------------------

func skynet(c chan<- int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sub := size / div
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*sub, sub, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func benchSkynet(w, n int) (int, []field) {
	for p := n; p > 1; p /= 10 {
		if p%10 != 0 {
			fail("skynet: -n must be a power of 10, got %d", n)
		}
	}
	run := func(n int) (time.Duration, int) {
		c := make(chan int)
		t0 := time.Now()
		go skynet(c, 0, n, 10)
		sum := <-c
		return time.Since(t0), sum
	}
	if n >= 100 {
		run(n / 100)
	}
	d, sum := run(n)
	want := n * (n - 1) / 2
	if sum != want {
		fail("skynet: sum %d, want %d", sum, want)
	}
	return w, []field{{"ms", ms(d)}, {"sum", sum}}
}

// --- fib -------------------------------------------------------------------

func fib(n int) int {
	if n < 2 {
		return n
	}
	c := make(chan int, 1)
	go func() { c <- fib(n - 1) }()
	b := fib(n - 2)
	return <-c + b
}

func fibSerial(n int) int {
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func benchFib(w, n int) (int, []field) {
	want := fibSerial(n)
	run := func(procs int) float64 {
		runtime.GOMAXPROCS(procs)
		if n > 20 {
			fib(20) // warm-up
		}
		t0 := time.Now()
		got := fib(n)
		d := time.Since(t0)
		if got != want {
			fail("fib(%d) = %d, want %d", n, got, want)
		}
		return ms(d)
	}
	ms1 := run(1)
	msn := run(w)
	return w, []field{
		{"ms_1", ms1}, {"ms_n", msn},
		{"speedup", math.Round(ms1/msn*1000) / 1000}, {"result", want},
	}
}

// --- parked ----------------------------------------------------------------

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("parked: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		fail("parked: odd /proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		fail("parked: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

func benchParked(w, n int) (int, []field) {
	runtime.GC()
	debug.FreeOSMemory()
	before := rss()

	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
			finished.Done()
		}()
	}
	started.Wait()
	// Let the last ones reach their receive, then collect the garbage.
	for i := 0; i < 10; i++ {
		runtime.Gosched()
	}
	runtime.GC()
	after := rss()

	close(release)
	finished.Wait()
	return w, []field{
		{"bytes_per_coroutine", math.Round(float64(after-before) / float64(n))},
		{"rss_before", before}, {"rss_after", after},
	}
}

// --- pingpong --------------------------------------------------------------

func benchPingpong(w, n int) (int, []field) {
	run := func(n int) (time.Duration, int) {
		ab := make(chan int)
		ba := make(chan int)
		start := make(chan struct{})
		done := make(chan int)
		go func() { // B
			for v := range ab {
				ba <- v + 1
			}
		}()
		go func() { // A
			<-start
			v := 0
			for i := 0; i < n; i++ {
				ab <- v
				v = <-ba
			}
			close(ab)
			done <- v
		}()
		t0 := time.Now()
		close(start)
		v := <-done
		return time.Since(t0), v
	}
	run(n/10 + 1)
	d, v := run(n)
	if v != n {
		fail("pingpong: value %d after %d round trips", v, n)
	}
	return w, []field{{"ns_per_op", nsPerOp(d, n)}}
}

// --- mutex_contended -------------------------------------------------------

func benchMutexContended(w, n int) (int, []field) {
	const tasks = 8
	run := func(n int) (time.Duration, int) {
		var mu sync.Mutex
		counter := 0
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(tasks)
		for i := 0; i < tasks; i++ {
			go func(per int) {
				defer wg.Done()
				<-start
				for j := 0; j < per; j++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
			}(share(n, tasks, i))
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		return time.Since(t0), counter
	}
	run(n / 10)
	d, counter := run(n)
	if counter != n {
		fail("mutex_contended: counter %d, want %d", counter, n)
	}
	return w, []field{{"ns_per_op", nsPerOp(d, n)}}
}

// --- chan_throughput -------------------------------------------------------

func benchChanThroughput(w, n int) (int, []field) {
	run := func(n int) (time.Duration, int) {
		c := make(chan int, 1024)
		start := make(chan struct{})
		done := make(chan int)
		go func() { // producer
			<-start
			for i := 0; i < n; i++ {
				c <- i
			}
			close(c)
		}()
		go func() { // consumer
			sum := 0
			for v := range c {
				sum += v
			}
			done <- sum
		}()
		t0 := time.Now()
		close(start)
		sum := <-done
		return time.Since(t0), sum
	}
	run(n / 10)
	d, sum := run(n)
	if want := n * (n - 1) / 2; sum != want {
		fail("chan_throughput: sum %d, want %d", sum, want)
	}
	rate := perSecond(d, n)
	return w, []field{{"req_per_s", rate}, {"msgs_per_s", rate}, {"sum", sum}}
}

// --- offload ---------------------------------------------------------------

type offloadJob struct {
	fn    func(int) int
	arg   int
	reply chan int
}

// offloadFn is the trivial "blocking" function the pool runs.
func offloadFn(x int) int { return x + 1 }

func benchOffload(w, n int) (int, []field) {
	const (
		poolSize = 4
		clients  = 8
	)
	run := func(n int) time.Duration {
		jobs := make(chan offloadJob, clients)
		var ready, stopped sync.WaitGroup
		ready.Add(poolSize)
		stopped.Add(poolSize)
		for i := 0; i < poolSize; i++ {
			go func() {
				// Each pool worker has an OS thread to itself, as a
				// thread of weft_offload's pool does.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				defer stopped.Done()
				ready.Done()
				for j := range jobs {
					j.reply <- j.fn(j.arg)
				}
			}()
		}
		ready.Wait()

		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(clients)
		for i := 0; i < clients; i++ {
			go func(per int) {
				defer wg.Done()
				<-start
				for j := 0; j < per; j++ {
					reply := make(chan int, 1)
					jobs <- offloadJob{offloadFn, j, reply}
					if got := <-reply; got != j+1 {
						fail("offload: job %d returned %d", j, got)
					}
				}
			}(share(n, clients, i))
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		d := time.Since(t0)
		close(jobs)
		stopped.Wait()
		return d
	}
	run(n / 10)
	return w, []field{{"req_per_s", perSecond(run(n), n)}}
}

// --- sleep_gather ----------------------------------------------------------

// percentile is the nearest-rank p-th percentile of sorted (ascending):
// element ceil(p*n/100), counting from 1.
func percentile(sorted []float64, p int) float64 {
	i := (p*len(sorted)+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func benchSleepGather(w, n int) (int, []field) {
	// No warm-up: every run sleeps a full second.
	late := make([]float64, n)          // microseconds, one slot per goroutine
	started := make([]time.Duration, n) // when each called Sleep, after t0
	start := make(chan struct{})
	var t0 time.Time // written before close(start), so read safely after it
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			<-start
			began := time.Now()
			started[i] = began.Sub(t0)
			time.Sleep(time.Second)
			woke := time.Now()
			late[i] = float64(woke.Sub(began.Add(time.Second)).Nanoseconds()) / 1e3
		}(i)
	}
	// Collect the garbage of creating them now rather than in the window.
	runtime.GC()
	t0 = time.Now()
	close(start)
	wg.Wait()
	d := time.Since(t0)
	sort.Float64s(late)
	var release time.Duration
	for _, s := range started {
		if s > release {
			release = s
		}
	}
	return w, []field{
		{"ms", ms(d)},
		{"late_p50_us", round2(percentile(late, 50))},
		{"late_p99_us", round2(percentile(late, 99))},
		{"late_max_us", round2(late[n-1])},
		{"release_ms", ms(release)},
	}
}
