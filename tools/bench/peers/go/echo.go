package main

// echo: Go's side of the echo benchmark (see the comment at the top of
// main.go): a goroutine per connection, driven by the shared load client
// weft-echo-load (tools/bench/echo_load.c), as weft-bench echo and the raw
// C peer are.

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

const echoMsgBytes = 64

// echoLoadPath is $WEFT_ECHO_LOAD (compare sets it), else weft-echo-load
// next to this binary or in ../tools/bench (compare builds this binary
// into BUILD/peers, CMake the client into BUILD/tools/bench).
func echoLoadPath() string {
	if p := os.Getenv("WEFT_ECHO_LOAD"); p != "" {
		return p
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, p := range []string{
			filepath.Join(dir, "weft-echo-load"),
			filepath.Join(dir, "..", "tools", "bench", "weft-echo-load"),
		} {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	fail("echo: weft-echo-load not found; set WEFT_ECHO_LOAD")
	return ""
}

// echoServe reads what comes and writes it back, until the client closes.
func echoServe(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func benchEcho(w, n int) (int, []field) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("echo: %v", err)
	}
	go func() {
		for {
			c, err := ln.Accept() // TCP_NODELAY is Go's default
			if err != nil {
				return
			}
			go echoServe(c)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	args := []string{"-p", strconv.Itoa(port), "-c", strconv.Itoa(n),
		"-m", strconv.Itoa(echoMsgBytes)}
	if s := os.Getenv("WEFT_ECHO_SECS"); s != "" {
		args = append(args, "-d", s)
	}
	if t := os.Getenv("WEFT_ECHO_LOAD_THREADS"); t != "" {
		args = append(args, "-t", t)
	}
	cmd := exec.Command(echoLoadPath(), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fail("echo: weft-echo-load: %v", err)
	}
	ln.Close()
	var r struct {
		Threads    int     `json:"threads"`
		Secs       float64 `json:"secs"`
		RoundTrips int64   `json:"round_trips"`
		ReqPerS    float64 `json:"req_per_s"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.RoundTrips == 0 {
		fail("echo: odd output from weft-echo-load: %q", out)
	}
	return w, []field{
		{"conns", n}, {"msg_bytes", echoMsgBytes}, {"load_threads", r.Threads},
		{"secs", r.Secs}, {"round_trips", r.RoundTrips}, {"req_per_s", r.ReqPerS},
	}
}
