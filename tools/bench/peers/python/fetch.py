#!/usr/bin/python3
"""fetch.py - the Python peer of weft-bench's fetch benchmarks: asyncio and
aiohttp (Debian's python3-aiohttp, which tools/deps installs), the usual way
to fetch many URLs at once in Python. Run it with /usr/bin/python3, the
interpreter Debian's package installs into (compare does).

    fetch.py list
    fetch.py NAME [-w WORKERS] [-n N]

Each run prints one JSON line with "impl":"python", like weft-bench and the
other peers. -w is accepted and ignored (asyncio runs one thread);
"workers" reports 1.

  fetch          n GETs (default 20,000) of a 100-byte file from nginx on
                 loopback ($WEFT_BENCH_HTTP, which compare sets so that
                 every side fetches from the same server, else an nginx
                 started here with tools/bench/bench_proc.h's config: one
                 worker, HTTP/1.1 keep-alive) by 100 tasks taking indices
                 from one shared counter, all through one
                 aiohttp.ClientSession whose TCPConnector(limit=100) keeps
                 up to 100 connections alive. Every response is read in full
                 and checked: status 200, exactly the file (byte i =
                 'a' + i % 26). n/10 GETs first, the same way, as the warm-up
                 that opens the connections. "req_per_s" = GETs per second,
                 "tasks". The default asyncio event loop (no uvloop).
  fetch_latency  one task doing n sequential GETs (default 2,000, after n/10
                 as a warm-up) with the same kind of session, each timed
                 from the request to the body read and checked: "p50_us"
                 (the main figure, lower is better), "p99_us", "mean_us",
                 "max_us" (nearest-rank percentiles, as the other sides).
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PATH = "/100b.txt"  # tools/bench/bench_proc.h's BP_HTTP_PATH
LEN = 100  # BP_HTTP_LEN
TASKS = 100
BODY = bytes(ord("a") + i % 26 for i in range(LEN))  # bp_http_byte

BENCHES = {"fetch": 20000, "fetch_latency": 2000}

# bench_proc.h's config (keep them in step).
NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp;
  scgi_temp_path {d}/tmp;
  default_type text/plain;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
  }}
}}
"""


def fail(msg):
    print("fetch.py: " + msg, file=sys.stderr)
    sys.exit(1)


class Server:
    """$WEFT_BENCH_HTTP, else an nginx of our own (stop() ends it)."""

    def __init__(self):
        self.proc = None
        self.dir = None
        env = os.environ.get("WEFT_BENCH_HTTP", "")
        if env:
            if not env.startswith("http://"):
                fail("WEFT_BENCH_HTTP=%s: expected http://127.0.0.1:PORT" % env)
            self.base = env.rstrip("/")
            return
        binary = "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            fail("%s is not installed (tools/deps installs it), and "
                 "WEFT_BENCH_HTTP is not set" % binary)
        self.dir = tempfile.mkdtemp(prefix="weft-bench-nginx-")
        os.mkdir(os.path.join(self.dir, "www"))
        os.mkdir(os.path.join(self.dir, "tmp"))
        with open(os.path.join(self.dir, "www", PATH.lstrip("/")), "wb") as f:
            f.write(BODY)
        conf = os.path.join(self.dir, "nginx.conf")
        for _ in range(8):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(d=self.dir, port=port))
            self.proc = subprocess.Popen(
                [binary, "-p", self.dir, "-c", conf, "-e",
                 os.path.join(self.dir, "error.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            if self._up(port):
                self.base = "http://127.0.0.1:%d" % port
                return
        self.stop()
        fail("%s would not start" % binary)

    def _up(self, port):
        for _ in range(500):  # up to 10 s
            if self.proc.poll() is not None:
                return False  # the port was taken
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class BadResponse(Exception):
    pass


async def fetch_one(session, url):
    async with session.get(url) as resp:
        body = await resp.read()
        if resp.status != 200 or body != BODY:
            raise BadResponse("GET %s: status %d, %d bytes, not the file"
                              % (url, resp.status, len(body)))


def session(aiohttp):
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=TASKS))


async def fetch_main(aiohttp, url, n):
    async with session(aiohttp) as s:
        async def run(n):
            nxt = 0

            async def worker():
                nonlocal nxt
                while nxt < n:  # one thread: no lock needed
                    nxt += 1
                    await fetch_one(s, url)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(TASKS)))
            return time.perf_counter() - t0

        await run(max(n // 10, 1))  # opens the connections
        return await run(n)


async def latency_main(aiohttp, url, n):
    async with session(aiohttp) as s:
        for _ in range(max(n // 10, 1)):
            await fetch_one(s, url)
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            await fetch_one(s, url)
            lat.append((time.perf_counter() - t0) * 1e6)
        return lat


def pct(sorted_vals, p):
    i = (p * len(sorted_vals) + 99) // 100 - 1
    return sorted_vals[max(i, 0)]


def usage():
    print("usage: fetch.py list | fetch.py NAME [-w WORKERS] [-n N]",
          file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) < 2:
        usage()
    name = argv[1]
    if name == "list":
        for b in BENCHES:
            print(b)
        return
    if name not in BENCHES:
        print("fetch.py: no benchmark named %s (fetch.py list)" % name,
              file=sys.stderr)
        sys.exit(2)
    n = BENCHES[name]
    args = argv[2:]
    if len(args) % 2:
        usage()
    for flag, val in zip(args[::2], args[1::2]):
        if flag not in ("-w", "-n") or not val.isdigit() or int(val) <= 0:
            usage()
        if flag == "-n":
            n = int(val)
    try:
        import aiohttp
    except ImportError:
        fail("aiohttp not found for %s: install python3-aiohttp "
             "(tools/deps does) and run it with /usr/bin/python3"
             % sys.executable)
    server = Server()
    try:
        url = server.base + PATH
        if name == "fetch":
            secs = asyncio.run(fetch_main(aiohttp, url, n))
            out = {"bench": name, "impl": "python", "workers": 1, "n": n,
                   "tasks": TASKS, "req_per_s": round(n / secs)}
        else:
            lat = sorted(asyncio.run(latency_main(aiohttp, url, n)))
            out = {"bench": name, "impl": "python", "workers": 1, "n": n,
                   "p50_us": round(pct(lat, 50), 2),
                   "p99_us": round(pct(lat, 99), 2),
                   "mean_us": round(sum(lat) / n, 2),
                   "max_us": round(lat[-1], 2)}
    except BadResponse as e:
        fail(str(e))
    except (aiohttp.ClientError, OSError) as e:
        fail("GET %s: %s" % (url, e or type(e).__name__))
    finally:
        server.stop()
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv)
