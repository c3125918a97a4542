/*
 * fuzz_hosts_file.c - the hosts-file parser of io/src/dns.c (hosts_parse,
 * what WEFT_HOSTS_FILE or /etc/hosts is read with) and the answers built
 * from its table, through weft__hosts_load and weft__hosts_lookup.
 *
 * The input is a hosts file's contents (the parser sees them up to a NUL
 * byte, as it would a file's text). No runtime runs: the table is what
 * the poller builds, asked directly.
 *
 * What it checks, against a plain reading of the same text (lines split
 * at LF, cut at '#', split at blanks; a line whose first word inet_pton
 * does not take is ignored; every later word is a name of that address):
 *   H1. Every name is found, in any case, with exactly its addresses: an
 *       AF_UNSPEC answer lists its IPv4 addresses in file order, then
 *       its IPv6 ones, each family's in file order, duplicates kept;
 *       AF_INET and AF_INET6 answers list that family's alone, or are
 *       WEFT_EDNS_NOTFOUND when it has none.
 *   H2. With AI_CANONNAME, the first entry carries the first name of the
 *       first line that names it.
 *   H3. A word that is no name in the file is WEFT_EDNS_NOTFOUND.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "fuzz.h"

#include <weft/weft.h>

enum { MAX_CHECKED = 64 };

typedef struct entry {
  int family;
  unsigned char bytes[16];
} entry;

/* The oracle's reading: every (name, address) pair in file order, with
 * the first name of the pair's line. */
typedef struct pair {
  const char *name, *first;
  entry addr;
} pair;

typedef struct reading {
  char *text; /* the oracle's own copy, cut up */
  pair *pairs;
  size_t n, cap;
} reading;

static const char BLANKS[] = " \t\r\f\v";

static void add_pair(reading *r, const char *name, const char *first, const entry *e) {
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 16;
    r->pairs = realloc(r->pairs, r->cap * sizeof *r->pairs);
    FUZZ_CHECK(r->pairs);
  }
  r->pairs[r->n++] = (pair){name, first, *e};
}

static void read_plainly(reading *r, const char *text) {
  *r = (reading){.text = strdup(text)};
  FUZZ_CHECK(r->text);
  char *line = r->text;
  while (line) {
    char *next = strchr(line, '\n');
    if (next)
      *next++ = 0;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = 0;
    entry e = {AF_INET, {0}};
    const char *first = NULL;
    bool have_addr = false;
    for (char *p = line;;) {
      p += strspn(p, BLANKS);
      size_t len = strcspn(p, BLANKS);
      if (!len)
        break;
      char *word = p;
      p += len;
      if (*p)
        *p++ = 0;
      if (!have_addr) { /* the first word: the address, or the line is ignored */
        if (inet_pton(AF_INET, word, e.bytes) != 1) {
          if (inet_pton(AF_INET6, word, e.bytes) != 1)
            break;
          e.family = AF_INET6;
        }
        have_addr = true;
        continue;
      }
      if (!first)
        first = word;
      add_pair(r, word, first, &e);
    }
    line = next;
  }
}

static bool same_entry(const struct addrinfo *ai, const entry *e) {
  if (ai->ai_family != e->family)
    return false;
  if (e->family == AF_INET)
    return ai->ai_addrlen == sizeof(struct sockaddr_in) &&
           memcmp(&((const struct sockaddr_in *)ai->ai_addr)->sin_addr, e->bytes, 4) == 0;
  return ai->ai_addrlen == sizeof(struct sockaddr_in6) &&
         memcmp(&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, e->bytes, 16) == 0;
}

/* H1, H2 for one name and one family (AF_UNSPEC: v4 then v6). */
static void check_name(const weft__hosts *h, const reading *r, const char *name, int family,
                       bool canon) {
  /* The name in another case must be found the same. */
  char *asked = strdup(name);
  FUZZ_CHECK(asked);
  for (char *p = asked; *p; p++)
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
      *p ^= 0x20;
  struct addrinfo hints = {.ai_family = family, .ai_flags = canon ? AI_CANONNAME : 0};
  struct addrinfo *res;
  int rc = weft__hosts_lookup(h, asked, &hints, &res);
  const char *first = NULL;
  const struct addrinfo *ai = res;
  size_t expected = 0;
  for (int pass = 0; pass < 2; pass++) {
    int fam = pass == 0 ? AF_INET : AF_INET6;
    if (family != AF_UNSPEC && family != fam)
      continue;
    for (size_t i = 0; i < r->n; i++) {
      if (strcasecmp(r->pairs[i].name, name) != 0)
        continue;
      if (!first)
        first = r->pairs[i].first;
      if (r->pairs[i].addr.family != fam)
        continue;
      expected++;
      FUZZ_CHECK(ai && same_entry(ai, &r->pairs[i].addr));
      ai = ai->ai_next;
    }
  }
  if (!first) /* the family pass skipped the first pair: find it */
    for (size_t i = 0; i < r->n && !first; i++)
      if (strcasecmp(r->pairs[i].name, name) == 0)
        first = r->pairs[i].first;
  FUZZ_CHECK(ai == NULL);
  if (expected == 0) {
    FUZZ_CHECK(rc == WEFT_EDNS_NOTFOUND && res == NULL);
  } else {
    FUZZ_CHECK(rc == 0 && res);
    if (canon)
      FUZZ_CHECK(res->ai_canonname && first && strcmp(res->ai_canonname, first) == 0);
    else
      FUZZ_CHECK(res->ai_canonname == NULL);
    for (const struct addrinfo *p = res->ai_next; p; p = p->ai_next)
      FUZZ_CHECK(p->ai_canonname == NULL);
  }
  weft_freeaddrinfo(res);
  free(asked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  FUZZ_CHECK(text);
  memcpy(text, data, size);
  text[size] = 0;
  reading r;
  read_plainly(&r, text);
  weft__hosts *h = weft__hosts_load(text); /* takes text */
  FUZZ_CHECK(h);
  static const int families[3] = {AF_UNSPEC, AF_INET, AF_INET6};
  for (size_t i = 0; i < r.n && i < MAX_CHECKED; i++)
    check_name(h, &r, r.pairs[i].name, families[i % 3], i % 2 == 0);
  /* H3: a word of the file that names nothing (an address, a comment). */
  static const char *const strangers[] = {"weft-fuzz-not-a-name.invalid", "#", ""};
  for (size_t i = 0; i < sizeof strangers / sizeof *strangers; i++) {
    bool named = false;
    for (size_t k = 0; k < r.n; k++)
      named |= strcasecmp(r.pairs[k].name, strangers[i]) == 0;
    if (named)
      continue;
    struct addrinfo *res;
    FUZZ_CHECK(weft__hosts_lookup(h, strangers[i], NULL, &res) == WEFT_EDNS_NOTFOUND && !res);
  }
  weft__hosts_free(h);
  free(r.pairs);
  free(r.text);
  return 0;
}
