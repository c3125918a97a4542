package main

// server_rps, stress_rps: Go's side of the HTTP server and load-generator
// benchmarks (see the comment at the top of main.go).
//
// server_rps: a net/http server on 127.0.0.1:0 under GOMAXPROCS=1 (as weft's
// server runs on one worker and nginx on one worker process), answering every
// request with the 100-byte body weft's bench handler sends, driven by
// `wrk -t1 -c N -d SECS` exactly as weft-bench server_rps drives weft's
// server. The figure is wrk's Requests/sec.
//
// stress_rps: the issue names hey (a Go load generator: N goroutines sharing
// one net/http client, each looping request after request). hey is not in
// Debian and nothing outside Debian's archive is reachable here, so this is
// the same shape written out: N goroutines, one http.Client whose transport
// keeps N idle connections to the host, closed loop for SECS seconds against
// the same nginx the other sides stress. It is labelled "go" in compare, not
// "hey".

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchSecs is bench_proc.h's bp_secs: WEFT_BENCH_SECS, default 5.
func benchSecs() int {
	if s, err := strconv.Atoi(os.Getenv("WEFT_BENCH_SECS")); err == nil && s > 0 {
		return s
	}
	return 5
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s*([0-9.]+)`)

// runWrk is bench_proc.h's bp_wrk: the same arguments, the same checks.
func runWrk(url string, conns, threads, secs int) float64 {
	const bin = "/usr/bin/wrk"
	if _, err := os.Stat(bin); err != nil {
		fail("%s is not installed (tools/deps installs it)", bin)
	}
	out, err := exec.Command(bin, "-c", strconv.Itoa(conns), "-t", strconv.Itoa(threads),
		"-d", strconv.Itoa(secs)+"s", url).CombinedOutput()
	if err != nil {
		fail("wrk failed: %v: %s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") {
		fail("wrk saw errors: %s", s)
	}
	m := wrkRate.FindStringSubmatch(s)
	if m == nil {
		fail("no Requests/sec in wrk's output: %s", s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func benchServerRps(_, n int) (int, []field) {
	body := fetchBody()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("server_rps: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	go srv.Serve(l)
	url := "http://" + l.Addr().String() + fetchPath
	rps := runWrk(url, n, 1, benchSecs())
	srv.Close()
	return 1, []field{{"conns", n}, {"req_per_s", rps}}
}

func benchStressRps(w, n int) (int, []field) {
	base, stop := httpServer()
	defer stop()
	url := base + fetchPath
	want := fetchBody()
	c := &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: 90 * time.Second,
	}}
	var done int64
	var stopFlag int32
	var wg sync.WaitGroup
	deadline := time.Duration(benchSecs()) * time.Second
	t0 := time.Now()
	wg.Add(n)
	for g := 0; g < n; g++ {
		go func() {
			defer wg.Done()
			for atomic.LoadInt32(&stopFlag) == 0 {
				resp, err := c.Get(url)
				if err != nil {
					fail("GET %s: %v", url, err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(got) != len(want) {
					fail("GET %s: status %d, %d bytes, %v", url, resp.StatusCode, len(got), err)
				}
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	time.Sleep(deadline)
	atomic.StoreInt32(&stopFlag, 1)
	wg.Wait()
	d := time.Since(t0)
	return w, []field{{"conns", n}, {"req_per_s", perSecond(d, int(done))}}
}
