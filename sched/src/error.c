/*
 * error.c - weft_strerror: a name for every code a weft call returns.
 * Negative errno values get the C library's description; WEFT_E* codes
 * (below -1000) get their own. Later modules add theirs to the table.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

#include "internal.h"

static const struct {
  int code;
  const char *text;
} weft_codes[] = {
    {WEFT_ENOTCO, "not called from a coroutine"},
    {WEFT_ECLOSED, "channel closed"},
    {WEFT_EDEADLOCK, "deadlock: every coroutine is asleep and nothing can wake them"},
    {WEFT_EDNS_NOTFOUND, "DNS: name not found"},
    {WEFT_EDNS_SERVFAIL, "DNS: server failure"},
    {WEFT_EDNS_TIMEOUT, "DNS: timed out"},
    {WEFT_EDNS_REFUSED, "DNS: refused or unreachable"},
    {WEFT_EDNS_BADRESP, "DNS: malformed answer"},
    {WEFT_EHTTP_URL, "HTTP: malformed URL"},
    {WEFT_EHTTP_SCHEME, "HTTP: unsupported URL scheme (http and https only)"},
    {WEFT_EHTTP_REFUSED, "HTTP: connection refused or host unreachable"},
    {WEFT_EHTTP_RESET, "HTTP: connection broken before the response ended"},
    {WEFT_EHTTP_TIMEOUT, "HTTP: timed out"},
    {WEFT_EHTTP_TOOBIG, "HTTP: response body larger than allowed"},
    {WEFT_EHTTP_TLS, "HTTP: TLS handshake or certificate verification failed"},
    {WEFT_EHTTP_PROTOCOL, "HTTP: the server's answer is not valid HTTP"},
    {WEFT_EHTTP_REDIRECTS, "HTTP: too many redirects"},
    {WEFT_EHTTP_BODY, "HTTP: the request body's reader failed"},
    {WEFT_EHTTP_FAILED, "HTTP: transfer failed"},
};

const char *weft_strerror(int code) {
  if (code == 0)
    return "success";
  for (size_t i = 0; i < sizeof weft_codes / sizeof weft_codes[0]; i++)
    if (weft_codes[i].code == code)
      return weft_codes[i].text;
  if (code < 0 && code > WEFT_EBASE) {
    const char *d = strerrordesc_np(-code);
    if (d)
      return d;
  }
  return "unknown weft error code";
}
