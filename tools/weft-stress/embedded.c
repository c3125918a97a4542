/*
 * embedded.c - the server weft-stress aims at when it is given no URL:
 * weft's own HTTP/1.1 server (weft/http_server.h) in this process, on a
 * free loopback port, answering every request with "hello". It shares
 * the runtime (and the workers) with the load, so the figure is what one
 * machine does serving and loading itself: a smoke test and a demo that
 * needs nothing installed, not a benchmark of either half alone.
 */
#include "stress.h"

#include <weft/http_server.h>

static weft_http_server *server;

static void hello(void *arg, const weft_http_server_request *req,
                  weft_http_server_response *resp) {
  (void)arg;
  (void)req;
  weft_http_server_add_header(resp, "Content-Type", "text/plain");
  weft_http_server_body(resp, "hello", 5);
}

int embedded_start(char *url, size_t cap, char *err, size_t errcap) {
  weft_http_server_config cfg = {.handler = hello};
  int rc = weft_http_server_start(&cfg, &server);
  if (rc) {
    char name[128];
    snprintf(err, errcap, "starting the embedded server: %s", err_name(rc, name, sizeof name));
    return rc;
  }
  snprintf(url, cap, "http://127.0.0.1:%u/", (unsigned)weft_http_server_port(server));
  return 0;
}

uint64_t embedded_stop(void) {
  if (!server)
    return 0;
  weft_http_server_stats st = {0};
  weft_http_server_get_stats(server, &st);
  weft_http_server_stop(server, 1000);
  server = NULL;
  return st.requests;
}
