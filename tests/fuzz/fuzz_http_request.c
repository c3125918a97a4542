/*
 * fuzz_http_request.c - the HTTP server's request parser (http/src/parse.c)
 * driven the way server.c drives it, over bytes that arrive in pieces:
 * http_model.h's model of the server, whose checks (F1-F4 there) are this
 * target's: the scanner's answer independent of how bytes arrive, parsed
 * heads whose pointers stay inside them, a canonical round trip that
 * parses to the same request, chunk sizes as the hex digits say and
 * bodies within their limits; ASan watches every read.
 *
 * The input: a control byte (bits 0-2: the size of each read, from 1 byte
 * to everything at once; bit 3: small limits instead of the server's
 * defaults, so short inputs reach them), then a connection's bytes.
 */
#include "http_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  conn c = {.data = data + 1, .size = size - 1, .piece = pieces[data[0] & 7],
            .lim = data[0] & 8 ? small_limits : server_limits};
  while (c.nout < MAX_REQUESTS && serve_one(&c))
    FUZZ_CHECK(c.off <= c.arrived && c.arrived <= c.size);
  return 0;
}
