/*
 * resp_parse.h - weft-stress's HTTP/1.1 response grammar (resp_parse.c):
 * the status line and the framing headers of a response head, and a
 * chunk-size line. Pure functions over bytes in memory, so that
 * engine_native.c keeps the reading and a fuzz driver
 * (tests/fuzz/fuzz_stress_response.c) can call them directly.
 */
#ifndef WEFT_STRESS_RESP_PARSE_H
#define WEFT_STRESS_RESP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a response head says about itself and its body. */
typedef struct resp_head {
  int status, minor;
  bool close, chunked, has_len, other_te;
  uint64_t len;
} resp_head;

/* N2: the head b[0..n), which ends at its first "\r\n\r\n". 0, or
 * WEFT_EHTTP_PROTOCOL. */
int resp_parse_head(const char *b, size_t n, resp_head *h);

/* A chunk-size line p[0..n) without its CRLF: hex digits (at most 15),
 * then the end, or a ';', SP or HTAB and anything after it. 0 with
 * *size, or WEFT_EHTTP_PROTOCOL. */
int resp_chunk_size(const char *p, size_t n, uint64_t *size);

#endif
