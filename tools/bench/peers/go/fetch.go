package main

// fetch, fetch_latency: Go's side of the fetch benchmarks (see the comment
// at the top of main.go): net/http's client against the nginx that
// weft-bench fetch and the C and Python peers use.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	fetchPath       = "/100b.txt" // tools/bench/bench_proc.h's BP_HTTP_PATH
	fetchLen        = 100         // BP_HTTP_LEN
	fetchGoroutines = 100
)

// fetchBody is the file: byte i is 'a' + i%26 (bp_http_byte).
func fetchBody() []byte {
	b := make([]byte, fetchLen)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// nginxConf is bench_proc.h's config (keep them in step).
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  default_type text/plain;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:%[2]d;
    root %[1]s/www;
  }
}
`

// httpServer returns the base URL: $WEFT_BENCH_HTTP (compare sets it), else
// an nginx started here, and a function that stops it.
func httpServer() (string, func()) {
	if u := os.Getenv("WEFT_BENCH_HTTP"); u != "" {
		if !strings.HasPrefix(u, "http://") {
			fail("WEFT_BENCH_HTTP=%s: expected http://127.0.0.1:PORT", u)
		}
		return strings.TrimRight(u, "/"), func() {}
	}
	const bin = "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		fail("%s is not installed (tools/deps installs it), and WEFT_BENCH_HTTP is not set", bin)
	}
	dir, err := os.MkdirTemp("", "weft-bench-nginx-")
	if err != nil {
		fail("fetch: %v", err)
	}
	for _, d := range []string{"www", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			fail("fetch: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "www", fetchPath), fetchBody(), 0o644); err != nil {
		fail("fetch: %v", err)
	}
	for attempt := 0; attempt < 8; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail("fetch: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, port)), 0o644); err != nil {
			fail("fetch: %v", err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fail("fetch: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				<-exited
				os.RemoveAll(dir)
			})
		}
	wait:
		for i := 0; i < 500; i++ { // up to 10 s
			select {
			case <-exited: // the port was taken: try another
				break wait
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				atFail = append(atFail, stop) // fail exits without deferred calls
				return fmt.Sprintf("http://127.0.0.1:%d", port), stop
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
	}
	os.RemoveAll(dir)
	fail("%s would not start", bin)
	return "", nil
}

// fetchClient: one client, keep-alive, up to 100 idle connections to the
// one host (the default keeps 2 and would close the rest).
func fetchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        fetchGoroutines,
		MaxIdleConnsPerHost: fetchGoroutines,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// fetchOne GETs url and checks the answer: status 200, exactly the file.
func fetchOne(c *http.Client, url string, want []byte) {
	resp, err := c.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		fail("GET %s: status %d, %d bytes, not the file", url, resp.StatusCode, len(body))
	}
}

func benchFetch(w, n int) (int, []field) {
	base, stop := httpServer()
	defer stop()
	url := base + fetchPath
	want := fetchBody()
	c := fetchClient()
	run := func(n int) time.Duration {
		var next int64
		var wg sync.WaitGroup
		t0 := time.Now()
		wg.Add(fetchGoroutines)
		for g := 0; g < fetchGoroutines; g++ {
			go func() {
				defer wg.Done()
				for atomic.AddInt64(&next, 1) <= int64(n) {
					fetchOne(c, url, want)
				}
			}()
		}
		wg.Wait()
		return time.Since(t0)
	}
	warm := n / 10
	if warm < 1 {
		warm = 1
	}
	run(warm) // opens the connections
	d := run(n)
	return w, []field{{"goroutines", fetchGoroutines}, {"req_per_s", perSecond(d, n)}}
}

func benchFetchLatency(w, n int) (int, []field) {
	base, stop := httpServer()
	defer stop()
	url := base + fetchPath
	want := fetchBody()
	c := fetchClient()
	warm := n / 10
	if warm < 1 {
		warm = 1
	}
	for i := 0; i < warm; i++ {
		fetchOne(c, url, want)
	}
	lat := make([]float64, n)
	sum := 0.0
	for i := range lat {
		t0 := time.Now()
		fetchOne(c, url, want)
		lat[i] = float64(time.Since(t0).Nanoseconds()) / 1e3
		sum += lat[i]
	}
	sort.Float64s(lat)
	return w, []field{
		{"p50_us", round2(percentile(lat, 50))},
		{"p99_us", round2(percentile(lat, 99))},
		{"mean_us", round2(sum / float64(n))},
		{"max_us", round2(lat[n-1])},
	}
}
