#!/usr/bin/env python3
"""tests/fuzz/seeds.py - writes the hand-made seeds of each fuzz corpus.

The seeds are the inputs a person would write to cover each feature of a
target (a valid request, a chunked one, pipelining, each limit, each kind
of malformed input); libFuzzer starts from them and tools/fuzz merges what
it finds next to them under hash names. Seeds are named seed-<what>, so
rerunning this script rewrites them and leaves the found inputs (and the
regression inputs, named crash-... or regress-...) alone.

Each corpus's input format is its target's (tests/fuzz/fuzz_<name>.c).
Usage: tests/fuzz/seeds.py [CORPUS_DIR]  (default: tests/fuzz/corpus)
"""
import os
import struct
import sys

CORPUS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- http_request: a control byte (bits 0-2 the read size, bit 3 small
# limits), then the client's bytes -------------------------------------------
WHOLE, BYTE, SMALL = b"\x00", b"\x01", b"\x08"
get = "GET /index.html?q=1&r=2 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: seed\r\n\r\n"
reqs = {
    "get": WHOLE + get.encode(),
    "get-bytewise": BYTE + get.encode(),
    "get-http10-keepalive": WHOLE + b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    "post-length": WHOLE + b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    "post-chunked": b"\x03" + b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\nA \r\n0123456789\r\n0\r\nTrailer-A: x\r\n\r\n",
    "chunked-bad-crlf": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    "chunked-too-many-digits": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
    "pipelined": b"\x05" + (get + "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"
                            "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n").encode(),
    "blank-lines-first": WHOLE + ("\r\n\r\n" + get).encode(),
    "absolute-form": WHOLE + b"GET http://example.test:8080/a/b?c HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "absolute-no-path": WHOLE + b"GET https://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "expect-continue": WHOLE + b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    # Byte by byte, the body comes after the head: the server sends 100 Continue first.
    "expect-continue-bytewise": BYTE + b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "bare-lf": WHOLE + b"GET / HTTP/1.1\nHost: h\n\n",
    "obs-fold": WHOLE + b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n",
    "space-before-colon": WHOLE + b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "cl-and-te": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-gzip": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "cl-disagree": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "cl-too-big": WHOLE + b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n",
    "two-hosts": WHOLE + b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no-host": WHOLE + b"GET / HTTP/1.1\r\n\r\n",
    "http2-version": WHOLE + b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "fragment": WHOLE + b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
    "ctl-in-value": WHOLE + b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
    "obs-text-value": WHOLE + b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xe9\t \r\n\r\n",
    "small-limits-headers": SMALL + b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
    "small-limits-body": SMALL + b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n" + b"x" * 65,
    "small-limits-chunked": b"\x0a" + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"y" * 64
    + b"\r\n1\r\nz\r\n0\r\n\r\n",
    "small-limits-trailers": SMALL + b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    + b"".join(b"T%d: v\r\n" % i for i in range(6)) + b"\r\n",
    "long-head": WHOLE + b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 300 + b"\r\n\r\n",
}
# A bare LF past the small header limit, sent in 2-byte pieces: the server
# answers 431 or 400 depending on how its reads fall (http_model.h).
reqs["lf-past-limit"] = b"\x0a" + b"GET / HTTP/1.1\r\nX: " + b"v" * 250 + b"\nHost: h\r\n\r\n"
reqs["stream"] = WHOLE + b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\nPOST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
reqs["stream-head"] = WHOLE + b"HEAD /s HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
for k, v in reqs.items():
    write("http_request", k, v)
    write("http_server", k, v)  # the same input format

# ---- stress_response: a control byte (bit 0: HEAD requests), then the
# server's bytes ---------------------------------------------------------------
resps = {
    "ok-length": b"\x00HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
    "ok-chunked": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    "keepalive-pipeline": b"\x00HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "continue-then-ok": b"\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "switching": b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    "http10-eof": b"\x00HTTP/1.0 200 OK\r\n\r\nbody until the end",
    "http10-keepalive": b"\x00HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxHTTP/1.0 404 NF\r\nContent-Length: 0\r\n\r\n",
    "close": b"\x00HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 3\r\n\r\nerr",
    "head": b"\x01HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    "no-reason": b"\x00HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    "bad-status": b"\x00HTTP/1.1 20x OK\r\n\r\n",
    "cl-disagree": b"\x00HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "te-gzip": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    "te-list": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "chunk-long-size": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
    "chunk-bad-crlf": b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    "no-colon": b"\x00HTTP/1.1 200 OK\r\nBroken\r\n\r\n",
    "bare-lf-field": b"\x00HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
    "cl-20-digits": b"\x00HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
}
for k, v in resps.items():
    write("stress_response", k, v)

# ---- http_url: a URL, then NUL and the "resolved" addresses --------------------------
def v4(a, b, c, d):
    return bytes([0, a, b, c, d])


def v6(*groups):
    return bytes([1]) + struct.pack(">8H", *groups)


urls = {
    "plain": b"http://example.test/\x00" + v4(192, 0, 2, 1),
    "port-path-query": b"https://example.test:8443/a/b?c=d#frag\x00" + v4(10, 0, 0, 1) + v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    "ipv4-literal": b"http://127.0.0.1:8080/x",
    "ipv6-literal": b"http://[::1]:80/",
    "ipv6-zone": b"http://[fe80::1%25eth0]/",
    "userinfo": b"http://user:pw@example.test/\x00" + v4(1, 2, 3, 4),
    "ftp": b"ftp://example.test/",
    "no-scheme": b"example.test/path",
    "empty-host": b"http:///path",
    "idn": "http://b\u00fccher.example/".encode("utf-8") + b"\x00" + v4(1, 1, 1, 1),
    "punycode": b"http://xn--bcher-kva.example/\x00" + v4(1, 1, 1, 1),
    "upper": b"HTTP://EXAMPLE.TEST:80/\x00" + v4(1, 1, 1, 1),
    "port-zero": b"http://example.test:0/",
    "port-big": b"http://example.test:65536/",
    "percent-host": b"http://ex%61mple.test/\x00" + v4(1, 1, 1, 1),
    "long-host": b"http://" + b"a" * 1000 + b".test/\x00" + v4(1, 1, 1, 1),
    "many-addresses": b"http://many.test/\x00" + b"".join(v6(0x2001, 0xdb8, i, i, i, i, i, i) for i in range(30)),
    "underscore": b"http://_srv.example.test/\x00" + v4(9, 9, 9, 9),
}
for k, v in urls.items():
    write("http_url", k, v)

# ---- hosts_file: the file's text -------------------------------------------------------
hosts = {
    "debian": "127.0.0.1\tlocalhost\n127.0.1.1\tbox.example.org\tbox\n\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n",
    "both-families": "10.0.0.1 web web.local # comment\n2001:db8::1 web\n10.0.0.2 WEB\n",
    "comments-and-blanks": "   \n#only a comment\n\t10.1.1.1\tx#y z\n \f\v\r\n",
    "bad-address": "300.1.1.1 bad\nnot-an-ip name\n1.2.3.4 good\n",
    "crlf": "1.2.3.4 a b c\r\n5.6.7.8 d\r\n",
    "no-newline-at-end": "9.9.9.9 last",
    "many-names": "1.1.1.1 " + " ".join("n%d" % i for i in range(100)) + "\n",
    "v4-mapped-literal": "::ffff:1.2.3.4 mapped\n",
    "nul-inside": "1.2.3.4 before\n\x005.6.7.8 after\n",
}
for k, v in hosts.items():
    write("hosts_file", k, v)

# ---- env: a selector byte (0 WEFT_WORKERS, 1 WEFT_DNS_SERVERS), then the value ------------
env = {
    "workers-8": b"\x008",
    "workers-padded": b"\x00 16\n",
    "workers-plus": b"\x00+4",
    "workers-zero": b"\x000",
    "workers-too-many": b"\x001025",
    "workers-negative": b"\x00-1",
    "workers-blank-negative": b"\x00 -18446744073709551615",
    "workers-hex": b"\x000x10",
    "workers-huge": b"\x0099999999999999999999999",
    "servers-one": b"\x01127.0.0.1:5353",
    "servers-list": b"\x01127.0.0.1:5353,10.0.0.1,[::1]:53,[2001:db8::2]",
    "servers-bad": b"\x01127.0.0.1:99999,foo",
    "servers-empty-items": b"\x01,,1.2.3.4,,",
    "servers-v6-noport": b"\x01::1",
}
for k, v in env.items():
    write("env", k, v)

# ---- dns_answer: flags, the length of template A, template A, template B --------------
def header(rcode=0, an=1, qd=1, tc=False, ns=0, ar=0):
    flags = 0x8180 | rcode | (0x0200 if tc else 0)
    return struct.pack(">HHHHHH", 0, flags, qd, an, ns, ar)


def rr(rtype, rdata, ttl=30, name=b"\xc0\x0c"):
    return name + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


A = lambda *b: rr(1, bytes(b))
AAAA = lambda *g: rr(28, struct.pack(">8H", *g))
# Offsets in a patched answer: header 12, question "q<8 hex>.fuzz.test" 25 bytes, so
# the first record starts at 37.
QNAME = 12


def dns(flags, ta, tb=b""):
    return bytes([flags]) + struct.pack(">H", len(ta)) + ta + tb


F_INET, F_INET6, F_UNSPEC, F_MAPPED = 0, 4, 8, 12
cname = rr(5, b"\x05alias\x07example\x00")  # q... -> alias.example (at 37 + 12 = 49)
dnsseeds = {
    "a": dns(F_INET, header() + A(127, 0, 0, 1)),
    "a-two": dns(F_INET, header(an=2) + A(10, 0, 0, 1) + A(10, 0, 0, 2)),
    "aaaa": dns(F_INET6, header(), header() + AAAA(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    "unspec": dns(F_UNSPEC, header() + A(192, 0, 2, 7), header() + AAAA(0xfe80, 0, 0, 0, 0, 0, 0, 9)),
    "mapped": dns(F_MAPPED, header() + A(192, 0, 2, 8), header(an=0)),
    "mapped-all": dns(F_MAPPED | 64, header() + A(192, 0, 2, 9), header() + AAAA(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
    "cname-canon": dns(F_INET | 16, header(an=2) + cname + rr(1, bytes([127, 0, 0, 2]), name=b"\xc0\x31")),
    "cname-loop": dns(F_INET | 16, header(an=3) + rr(5, b"\xc0\x0c") + A(127, 0, 0, 3)),
    "nxdomain": dns(F_INET, header(rcode=3, an=0)),
    "servfail": dns(F_INET, header(rcode=2, an=0)),
    "refused": dns(F_INET | 128, header(rcode=5, an=0)),
    "wrong-id": dns(F_INET | 1, b"\x12\x34" + header()[2:] + A(127, 0, 0, 4)),
    "raw-question": dns(F_INET | 2, header() + b"\x05other\x04test\x00\x00\x01\x00\x01" + A(127, 0, 0, 5)),
    "truncated-tcp": dns(F_INET, header(tc=True, an=0), b""),
    "truncated-tcp-answer": dns(F_INET, header(tc=True) + A(127, 0, 0, 6)),
    "tcp-cut": dns(F_INET | 32, header(tc=True) + A(127, 0, 0, 7)),
    "bad-rdlength": dns(F_INET, header() + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\xc8\x7f\x00\x00\x01"),
    "rdlength-3": dns(F_INET, header() + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x03\x7f\x00\x00"),
    "pointer-loop": dns(F_INET, header() + b"\xc0\x25\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x7f\x00\x00\x01"),
    "ancount-lies": dns(F_INET, header(an=5) + A(127, 0, 0, 8)),
    "short": dns(F_INET, b"\x00\x00\x81\x80\x00"),
    "authority-additional": dns(F_UNSPEC, header(an=1, ns=1, ar=1) + A(127, 0, 0, 9) + rr(2, b"\x02ns\xc0\x0c") + A(127, 0, 0, 10),
                                header(an=0)),
    "wrong-type": dns(F_INET, header() + rr(28, b"\x00" * 16)),
    "zero-ttl": dns(F_UNSPEC | 16, header() + rr(1, bytes([127, 0, 0, 11]), ttl=0)),
    "long-name": dns(F_INET | 16, header(an=2) + rr(5, b"".join(b"\x3f" + b"x" * 63 for _ in range(4)) + b"\x00")
                     + rr(1, bytes([127, 0, 0, 12]), name=b"\xc0\x31")),
}
for k, v in dnsseeds.items():
    write("dns_answer", k, v)
