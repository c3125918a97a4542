/*
 * weft-flame - fold `perf script` output into stacks and draw a flame graph.
 *
 *   weft-flame [--folded] [-f FOLDED_OUT] [-o SVG_OUT] [-t TITLE]
 *              [-w WIDTH] [--min-width PX] [--period] [--no-comm]
 *              [--merge-threads] [INPUT]
 *
 * Why it exists: engineers profile weft with perf (tools/profile drives
 * it), and a flame graph is the quickest way to read where a program's
 * time goes across thousands of coroutines. Debian carries no flame graph
 * renderer, so weft ships this one: one C file, no dependencies, and an SVG
 * that needs nothing but a browser (no external scripts, fonts or network).
 *
 * What it does:
 *   1. Reads INPUT (default stdin). By default that is the text of
 *      `perf script` on a recording made with -g or --call-graph: per
 *      sample, a header line `comm [pid/]tid [cpu] time: [period] event:`
 *      followed by one indented line per frame, innermost first,
 *      `addr sym+off (dso)`, and a blank line. A recording without call
 *      graphs puts the one frame on the header line; that is read too.
 *      With --folded, INPUT is already folded (the format below).
 *   2. Folds: each sample becomes one line `comm;outermost;...;innermost`,
 *      root first, and identical stacks are counted together (one per
 *      sample, or the event's period with --period). Frame names are
 *      cleaned: `+0x..` offsets are dropped; an unresolved frame is named
 *      after its object, `[libc.so.6]`, or `[unknown]` when perf knows no
 *      object either; kernel frames get `_[k]` so they stand out; ';' in a
 *      name (it separates frames) becomes ':'. The thread name comes first
 *      (weft's workers are weft-w0, weft-w1, ..., the poller weft-poller,
 *      the offload pool weft-blk-N); --merge-threads turns a trailing
 *      number into '*' (weft-w*), so a coroutine that migrated between
 *      workers shows as one tower; --no-comm leaves the thread out.
 *   3. Writes the folded stacks, sorted, to -f FILE ("-" is stdout; with
 *      neither -f nor -o the folded stacks go to stdout).
 *   4. Draws the SVG (-o FILE): frames are stacked from the root at the
 *      bottom, each as wide as its share of the samples, siblings in name
 *      order; colours come from a hash of the name, so a function keeps its
 *      colour from one graph to the next; names are XML-escaped (C++
 *      templates bring < > &) and truncated with ".." to fit their frame;
 *      each frame has a <title> tooltip with its name, samples and share.
 *      Frames narrower than --min-width pixels are left out, which keeps
 *      graphs of long recordings small. A short inline script adds
 *      click-to-zoom (click a frame to widen it, "Reset zoom" to return)
 *      and shows the frame under the mouse in the bottom line; without
 *      scripting the tooltips still work.
 *
 * Exit status: 0 when it wrote its outputs, 1 on bad input or an I/O
 * error (including input with no samples), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small utilities ------------------------------------------------------ */

static const char *progname = "weft-flame";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", progname);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    die("out of memory");
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p)
    die("out of memory");
  return p;
}

static char *xstrndup(const char *s, size_t n) {
  char *d = xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

/* A growable byte string. */
typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_adds(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* FNV-1a: the hash behind both the stack table and the frame colours. */
static uint32_t hash_str(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

/* ---- the table of folded stacks -------------------------------------------- */

typedef struct {
  char *key; /* "comm;root;...;leaf" */
  uint64_t count;
  uint32_t hash;
} stack_entry;

static stack_entry *table;
static size_t table_cap, table_len;
static uint64_t total_samples;

static void table_grow(void) {
  size_t cap = table_cap ? table_cap * 2 : 1024;
  stack_entry *t = xmalloc(cap * sizeof *t);
  memset(t, 0, cap * sizeof *t);
  for (size_t i = 0; i < table_cap; i++) {
    if (!table[i].key)
      continue;
    size_t j = table[i].hash & (cap - 1);
    while (t[j].key)
      j = (j + 1) & (cap - 1);
    t[j] = table[i];
  }
  free(table);
  table = t;
  table_cap = cap;
}

static void table_add(const char *key, size_t n, uint64_t count) {
  if ((table_len + 1) * 2 > table_cap)
    table_grow();
  uint32_t h = hash_str(key, n);
  size_t j = h & (table_cap - 1);
  while (table[j].key) {
    if (table[j].hash == h && strlen(table[j].key) == n &&
        memcmp(table[j].key, key, n) == 0) {
      table[j].count += count;
      total_samples += count;
      return;
    }
    j = (j + 1) & (table_cap - 1);
  }
  table[j].key = xstrndup(key, n);
  table[j].hash = h;
  table[j].count = count;
  table_len++;
  total_samples += count;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const stack_entry *)a)->key, ((const stack_entry *)b)->key);
}

/* Packs the table's entries to its front, sorted by stack. */
static void table_sort(void) {
  size_t n = 0;
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].key)
      table[n++] = table[i];
  qsort(table, n, sizeof *table, cmp_entry);
}

/* ---- reading perf script ------------------------------------------------------ */

static bool opt_period, opt_no_comm, opt_merge_threads;

/* Appends a frame name to b with ';' (the frame separator) replaced. */
static void add_name(buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i] == ';' ? ':' : s[i];
    buf_add(b, &c, 1);
  }
}

static bool is_hex(const char *s, size_t n) {
  if (!n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i]))
      return false;
  return true;
}

static bool is_digits(const char *s, size_t n) {
  if (!n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return false;
  return true;
}

/* One sample while it is being read: its thread and frames, innermost
 * first, as perf prints them. */
typedef struct {
  bool open;
  char *comm;
  uint64_t weight;
  char **frames;
  size_t nframes, cap;
} sample;

static void sample_frame(sample *s, char *name) {
  if (s->nframes == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->frames = xrealloc(s->frames, s->cap * sizeof *s->frames);
  }
  s->frames[s->nframes++] = name;
}

/* Ends the open sample: folds it into the table. */
static void sample_end(sample *s, buf *key) {
  if (!s->open)
    return;
  key->len = 0;
  if (key->p)
    key->p[0] = 0;
  if (!opt_no_comm)
    buf_adds(key, s->comm);
  for (size_t i = s->nframes; i-- > 0;) {
    if (key->len)
      buf_add(key, ";", 1);
    buf_adds(key, s->frames[i]);
  }
  if (!key->len) /* --no-comm and no frames: still a sample */
    buf_adds(key, "[unknown]");
  table_add(key->p, key->len, s->weight);
  for (size_t i = 0; i < s->nframes; i++)
    free(s->frames[i]);
  free(s->comm);
  s->comm = NULL;
  s->nframes = 0;
  s->open = false;
}

/* Turns the text after an address, `sym+0x1c (dso)`, into a frame name. */
static char *frame_name(const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p))
    p++;
  while (end > p && isspace((unsigned char)end[-1]))
    end--;
  /* The object: the last "(...)" on the line. */
  const char *dso = NULL, *dso_end = NULL;
  if (end > p && end[-1] == ')') {
    int depth = 0;
    for (const char *q = end - 1; q >= p; q--) {
      if (*q == ')')
        depth++;
      else if (*q == '(' && --depth == 0) {
        if (q == p || isspace((unsigned char)q[-1])) {
          dso = q + 1;
          dso_end = end - 1;
        }
        break;
      }
    }
  }
  const char *sym_end = dso ? dso - 1 : end;
  while (sym_end > p && isspace((unsigned char)sym_end[-1]))
    sym_end--;
  /* Drop the offset: the last '+' followed by "0x" and hex digits only. */
  for (const char *q = sym_end; q > p; q--) {
    if (q[-1] == '+') {
      if (sym_end - q > 2 && q[0] == '0' && q[1] == 'x' &&
          is_hex(q + 2, (size_t)(sym_end - q - 2)))
        sym_end = q - 1;
      break;
    }
  }
  size_t symlen = (size_t)(sym_end - p);
  bool unknown = symlen == 0 || (symlen == 9 && memcmp(p, "[unknown]", 9) == 0);
  bool kernel = dso && dso_end - dso >= 7 && memcmp(dso, "[kernel", 7) == 0;
  buf b = {0};
  if (!unknown) {
    add_name(&b, p, symlen);
    if (kernel)
      buf_adds(&b, "_[k]");
  } else if (dso && dso_end > dso && !(dso_end - dso == 9 && memcmp(dso, "[unknown]", 9) == 0)) {
    /* Name the frame after its object: "[libc.so.6]", "[kernel.kallsyms]". */
    const char *base = dso;
    for (const char *q = dso; q < dso_end; q++)
      if (*q == '/')
        base = q + 1;
    if (*base == '[') {
      add_name(&b, base, (size_t)(dso_end - base));
    } else {
      buf_add(&b, "[", 1);
      add_name(&b, base, (size_t)(dso_end - base));
      buf_add(&b, "]", 1);
    }
  } else {
    buf_adds(&b, "[unknown]");
  }
  return b.p;
}

/* The thread name of a header line, given where its pid token starts. */
static char *comm_name(const char *line, const char *pid_tok) {
  while (line < pid_tok && isspace((unsigned char)*line))
    line++; /* perf pads the name on the left without call graphs */
  const char *end = pid_tok;
  while (end > line && isspace((unsigned char)end[-1]))
    end--;
  buf b = {0};
  if (end == line) {
    buf_adds(&b, "[unknown]");
    return b.p;
  }
  if (opt_merge_threads) {
    const char *d = end;
    while (d > line && isdigit((unsigned char)d[-1]))
      d--;
    if (d < end && d > line) {
      add_name(&b, line, (size_t)(d - line));
      buf_add(&b, "*", 1);
      return b.p;
    }
  }
  add_name(&b, line, (size_t)(end - line));
  return b.p;
}

#define MAX_TOK 64

/* A perf timestamp token: "12345.678901:". */
static bool is_timestamp(const char *t, size_t n) {
  const char *dot = memchr(t, '.', n);
  return n >= 4 && t[n - 1] == ':' && dot && is_digits(t, (size_t)(dot - t)) &&
         is_digits(dot + 1, (size_t)(t + n - 1 - dot - 1));
}

static bool has_timestamp(const char *line) {
  for (const char *p = line; *p;) {
    while (*p && isspace((unsigned char)*p))
      p++;
    const char *t = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    if (p > t && is_timestamp(t, (size_t)(p - t)))
      return true;
  }
  return false;
}

/* Reads a sample header: `comm [pid/]tid [cpu] time: [period] event: ...`.
 * comm may hold spaces and digits, so the pid is found from the right of
 * it: the token before the timestamp (or before "[cpu]"). Without a
 * timestamp (perf script -F without time), it is the first number after
 * the comm's first word. Returns false if the line is no header. */
static bool parse_header(const char *line, sample *s) {
  const char *tok[MAX_TOK];
  size_t len[MAX_TOK];
  size_t nt = 0;
  for (const char *p = line; *p && nt < MAX_TOK;) {
    while (*p && isspace((unsigned char)*p))
      p++;
    if (!*p)
      break;
    tok[nt] = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    len[nt] = (size_t)(p - tok[nt]);
    nt++;
  }
  if (nt < 2)
    return false;
  /* The timestamp: "12345.678901:". */
  size_t ts = 0;
  for (size_t i = 1; i < nt; i++) {
    if (is_timestamp(tok[i], len[i])) {
      ts = i;
      break;
    }
  }
  size_t pid = 0;
  if (ts) {
    pid = ts - 1;
    if (pid >= 1 && len[pid] >= 3 && tok[pid][0] == '[' && tok[pid][len[pid] - 1] == ']')
      pid--; /* "[001]": the cpu */
  } else {
    for (size_t i = 1; i < nt; i++) {
      const char *slash = memchr(tok[i], '/', len[i]);
      if (slash ? is_digits(tok[i], (size_t)(slash - tok[i])) &&
                      is_digits(slash + 1, (size_t)(tok[i] + len[i] - slash - 1))
                : is_digits(tok[i], len[i])) {
        pid = i;
        break;
      }
    }
  }
  if (pid < 1)
    return false;
  {
    const char *t = tok[pid];
    size_t n = len[pid];
    const char *slash = memchr(t, '/', n);
    bool ok = slash ? is_digits(t, (size_t)(slash - t)) &&
                          is_digits(slash + 1, (size_t)(t + n - slash - 1))
                    : is_digits(t, n);
    if (!ok)
      return false;
  }
  s->open = true;
  s->comm = comm_name(line, tok[pid]);
  s->weight = 1;
  /* After the timestamp: an optional period, the event ("cpu-clock:",
   * "cpu-clock:u:"), then, without call graphs, the one frame. */
  if (ts) {
    size_t i = ts + 1;
    uint64_t period = 0;
    if (i < nt && is_digits(tok[i], len[i])) {
      period = strtoull(tok[i], NULL, 10);
      i++;
    }
    if (opt_period)
      s->weight = period ? period : 1;
    if (i < nt && tok[i][len[i] - 1] == ':') {
      i++;
      if (i < nt && is_hex(tok[i], len[i]) && i + 1 < nt) {
        const char *end = line + strlen(line);
        sample_frame(s, frame_name(tok[i] + len[i], end));
      }
    }
  } else {
    size_t i = pid + 1;
    if (i < nt && tok[i][0] == '[')
      i++;
    if (i + 1 < nt && is_hex(tok[i], len[i]))
      sample_frame(s, frame_name(tok[i] + len[i], line + strlen(line)));
  }
  return true;
}

static void read_perf_script(FILE *in) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  sample s = {0};
  buf key = {0};
  while ((n = getline(&line, &cap, in)) > 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = 0;
    if (n == 0) { /* the blank line after a sample */
      sample_end(&s, &key);
      continue;
    }
    if (line[0] == '#')
      continue;
    /* A frame, "addr sym+off (dso)", is indented. So is a header when
     * perf pads the thread name (recordings without call graphs), but a
     * header has a timestamp and a frame does not. Other indented lines
     * (srclines, branch stacks) are neither, and are skipped. */
    if (isspace((unsigned char)line[0]) && !has_timestamp(line)) {
      char *p = line;
      while (*p && isspace((unsigned char)*p))
        p++;
      char *a = p;
      while (*p && !isspace((unsigned char)*p))
        p++;
      if (is_hex(a, (size_t)(p - a)) && *p) {
        if (s.open)
          sample_frame(&s, frame_name(p, line + n));
        continue;
      }
    }
    /* A header starts the next sample even without a blank line. */
    sample next = {0};
    if (parse_header(line, &next)) {
      sample_end(&s, &key);
      free(s.frames);
      s = next;
    } else {
      free(next.frames);
    }
  }
  sample_end(&s, &key);
  if (ferror(in))
    die("reading input: %s", strerror(errno));
  free(line);
  free(key.p);
  free(s.frames);
}

/* Folded input: "a;b;c COUNT" (the count after the last space). */
static void read_folded(FILE *in) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  size_t lineno = 0;
  while ((n = getline(&line, &cap, in)) > 0) {
    lineno++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
      line[--n] = 0;
    if (n == 0 || line[0] == '#')
      continue;
    char *sp = strrchr(line, ' ');
    char *endp;
    errno = 0;
    uint64_t c = sp ? strtoull(sp + 1, &endp, 10) : 0;
    if (!sp || sp == line || errno || *endp || !is_digits(sp + 1, strlen(sp + 1))) {
      fprintf(stderr, "%s: line %zu is not 'stack COUNT', skipped\n", progname, lineno);
      continue;
    }
    if (c)
      table_add(line, (size_t)(sp - line), c);
  }
  if (ferror(in))
    die("reading input: %s", strerror(errno));
  free(line);
}

/* ---- the frame tree ------------------------------------------------------------ */

typedef struct node {
  const char *name; /* points into a table key or is static */
  size_t name_len;
  uint64_t value;
  struct node **kids;
  size_t nkids, cap;
} node;

static node *node_new(const char *name, size_t n) {
  node *x = xmalloc(sizeof *x);
  memset(x, 0, sizeof *x);
  x->name = name;
  x->name_len = n;
  return x;
}

static node *node_child(node *parent, const char *name, size_t n) {
  /* Sorted input puts a repeated child last almost always; scan back. */
  for (size_t i = parent->nkids; i-- > 0;) {
    node *k = parent->kids[i];
    if (k->name_len == n && memcmp(k->name, name, n) == 0)
      return k;
  }
  if (parent->nkids == parent->cap) {
    parent->cap = parent->cap ? parent->cap * 2 : 4;
    parent->kids = xrealloc(parent->kids, parent->cap * sizeof *parent->kids);
  }
  node *k = node_new(name, n);
  parent->kids[parent->nkids++] = k;
  return k;
}

static int cmp_node(const void *a, const void *b) {
  const node *x = *(node *const *)a, *y = *(node *const *)b;
  size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
  int c = memcmp(x->name, y->name, n);
  if (c)
    return c;
  return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static size_t max_depth;

static void tree_sort(node *x, size_t depth) {
  if (depth > max_depth)
    max_depth = depth;
  if (x->nkids > 1)
    qsort(x->kids, x->nkids, sizeof *x->kids, cmp_node);
  for (size_t i = 0; i < x->nkids; i++)
    tree_sort(x->kids[i], depth + 1);
}

static void tree_free(node *x) {
  for (size_t i = 0; i < x->nkids; i++)
    tree_free(x->kids[i]);
  free(x->kids);
  free(x);
}

static node *tree_build(void) {
  node *root = node_new("all", 3);
  for (size_t i = 0; i < table_len; i++) {
    node *x = root;
    x->value += table[i].count;
    const char *p = table[i].key;
    for (;;) {
      const char *semi = strchr(p, ';');
      size_t n = semi ? (size_t)(semi - p) : strlen(p);
      x = node_child(x, p, n);
      x->value += table[i].count;
      if (!semi)
        break;
      p = semi + 1;
    }
  }
  tree_sort(root, 0);
  return root;
}

/* ---- the SVG -------------------------------------------------------------------- */

#define FRAME_H 16     /* pixels per stack level */
#define FONT_PX 12     /* frame text size */
#define CHAR_W 7.3     /* a monospace glyph at FONT_PX, a little generous */
#define XPAD 10        /* left and right margins */
#define TOP 36         /* room for the title */
#define BOTTOM 30      /* room for the details line */

static unsigned opt_width = 1200;
static double opt_min_width = 0.1;
static const char *opt_title = "Flame graph";

/* Writes s[0..n) as XML character data: the five special characters as
 * entities, control characters and malformed UTF-8 as '?', so any symbol
 * name gives a well-formed document. */
static void xml_put(FILE *f, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    unsigned c = *p;
    if (c == '&')
      fputs("&amp;", f);
    else if (c == '<')
      fputs("&lt;", f);
    else if (c == '>')
      fputs("&gt;", f);
    else if (c == '"')
      fputs("&quot;", f);
    else if (c == '\'')
      fputs("&apos;", f);
    else if (c < 0x20 || c == 0x7f)
      fputc('?', f);
    else if (c < 0x80)
      fputc((int)c, f);
    else {
      /* A UTF-8 sequence: copy it if it is complete and valid. */
      size_t k = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = k && (size_t)(end - p) >= k;
      for (size_t i = 1; ok && i < k; i++)
        ok = (p[i] & 0xc0) == 0x80;
      if (ok && k == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        ok = false; /* overlong, or a surrogate */
      if (ok && k == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        ok = false;
      if (ok) {
        fwrite(p, 1, k, f);
        p += k;
        continue;
      }
      fputc('?', f);
    }
    p++;
  }
}

static void xml_puts(FILE *f, const char *s) { xml_put(f, s, strlen(s)); }

/* Counts the characters (not bytes) of a UTF-8 prefix, to fit text. */
static size_t utf8_prefix(const char *s, size_t n, size_t chars) {
  size_t i = 0, c = 0;
  while (i < n && c < chars) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
      i++;
    c++;
  }
  return i;
}

static size_t utf8_len(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xc0) != 0x80)
      c++;
  return c;
}

static void frame_colour(const node *x, bool root, unsigned *r, unsigned *g, unsigned *b) {
  if (root) {
    *r = *g = *b = 200;
    return;
  }
  uint32_t h = hash_str(x->name, x->name_len);
  /* Mix, so that names differing in their last bytes still differ in all
   * three channels. */
  h ^= h >> 15;
  h *= 0x2c1b3c6dU;
  h ^= h >> 12;
  double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0, v3 = ((h >> 16) & 0xff) / 255.0;
  bool kernel = x->name_len > 4 && memcmp(x->name + x->name_len - 4, "_[k]", 4) == 0;
  if (kernel) { /* kernel frames in a cooler orange-brown, set apart */
    *r = 190 + (unsigned)(40 * v1);
    *g = 120 + (unsigned)(50 * v2);
    *b = 60 + (unsigned)(40 * v3);
  } else { /* a warm red-yellow range */
    *r = 205 + (unsigned)(50 * v1);
    *g = (unsigned)(210 * v2);
    *b = (unsigned)(60 * v3);
  }
}

static unsigned svg_height;

static void svg_frame(FILE *f, const node *x, double x0, size_t depth, double scale) {
  double w = (double)x->value * scale;
  if (w < opt_min_width)
    return;
  double y = svg_height - BOTTOM - (double)(depth + 1) * FRAME_H;
  unsigned r, g, b;
  frame_colour(x, depth == 0, &r, &g, &b);
  double pct = 100.0 * (double)x->value / (double)total_samples;
  fputs("<g class=\"f\"><title>", f);
  xml_put(f, x->name, x->name_len);
  fprintf(f, " (%" PRIu64 " samples, %.2f%%)</title>", x->value, pct);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>",
          x0, y, w, FRAME_H - 1, r, g, b);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x0 + 3, y + FRAME_H - 4.5);
  size_t fit = w > 6 ? (size_t)((w - 6) / CHAR_W) : 0;
  size_t chars = utf8_len(x->name, x->name_len);
  if (chars <= fit) {
    xml_put(f, x->name, x->name_len);
  } else if (fit >= 3) {
    xml_put(f, x->name, utf8_prefix(x->name, x->name_len, fit - 2));
    fputs("..", f);
  }
  fputs("</text></g>\n", f);
  double cx = x0;
  for (size_t i = 0; i < x->nkids; i++) {
    svg_frame(f, x->kids[i], cx, depth + 1, scale);
    cx += (double)x->kids[i]->value * scale;
  }
}

/* Click-to-zoom and the details line. The frames' geometry is read from
 * the document on load, so the script needs no data of its own. It lives
 * in CDATA, so it must not contain the CDATA terminator. */
static const char svg_script[] =
    "var W, frames = [], details, unzoom;\n"
    "function init(evt) {\n"
    "  var svg = document.documentElement;\n"
    "  W = +svg.getAttribute('width');\n"
    "  details = document.getElementById('details').firstChild;\n"
    "  unzoom = document.getElementById('unzoom');\n"
    "  var gs = document.querySelectorAll('g.f');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], r = g.querySelector('rect'), t = g.querySelector('text');\n"
    "    var title = g.querySelector('title').textContent;\n"
    "    var f = {g: g, r: r, t: t, x: +r.getAttribute('x'), w: +r.getAttribute('width'),\n"
    "             y: +r.getAttribute('y'), name: title.replace(/ \\([0-9]+ samples, [0-9.]+%\\)$/, ''),\n"
    "             title: title};\n"
    "    frames.push(f);\n"
    "    g.addEventListener('click', zoomer(f));\n"
    "    g.addEventListener('mouseover', shower(f));\n"
    "    g.addEventListener('mouseout', function() { details.nodeValue = ' '; });\n"
    "  }\n"
    "  unzoom.addEventListener('click', function() { zoom(null); });\n"
    "}\n"
    "function zoomer(f) { return function() { zoom(f); }; }\n"
    "function shower(f) { return function() { details.nodeValue = f.title; }; }\n"
    "function fit(f, x, w) {\n"
    "  f.r.setAttribute('x', x.toFixed(1));\n"
    "  f.r.setAttribute('width', w.toFixed(1));\n"
    "  f.t.setAttribute('x', (x + 3).toFixed(1));\n"
    "  var n = Math.floor((w - 6) / CW), s = f.name;\n"
    "  f.t.textContent = s.length <= n ? s : n >= 3 ? s.substring(0, n - 2) + '..' : '';\n"
    "}\n"
    "function zoom(z) {\n"
    "  unzoom.style.display = z ? 'inline' : 'none';\n"
    "  var s = z ? (W - 2 * PAD) / z.w : 1;\n"
    "  for (var i = 0; i < frames.length; i++) {\n"
    "    var f = frames[i], show = true, x = f.x, w = f.w;\n"
    "    if (z) {\n"
    "      var inside = f.x >= z.x - 0.05 && f.x + f.w <= z.x + z.w + 0.05;\n"
    "      var below = f.y > z.y && f.x <= z.x + 0.05 && f.x + f.w >= z.x + z.w - 0.05;\n"
    "      if (below) { x = PAD; w = W - 2 * PAD; }\n"
    "      else if (inside && f.y <= z.y) { x = PAD + (f.x - z.x) * s; w = f.w * s; }\n"
    "      else show = false;\n"
    "    }\n"
    "    f.g.style.display = show ? 'inline' : 'none';\n"
    "    if (show) fit(f, x, w);\n"
    "    f.g.style.opacity = z && f.y > z.y ? 0.6 : 1;\n"
    "  }\n"
    "}\n";

static void write_svg(FILE *f, node *root) {
  svg_height = (unsigned)(TOP + BOTTOM + (max_depth + 1) * FRAME_H);
  double scale = (double)(opt_width - 2 * XPAD) / (double)root->value;
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
  fprintf(f,
          "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
          "viewBox=\"0 0 %u %u\" onload=\"init(evt)\">\n",
          opt_width, svg_height, opt_width, svg_height);
  fputs("<style type=\"text/css\">\n"
        "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
        "#title { font-size: 17px; }\n"
        "#unzoom { cursor: pointer; display: none; }\n"
        "g.f { cursor: pointer; }\n"
        "g.f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
        "</style>\n",
        f);
  fputs("<script type=\"text/ecmascript\"><![CDATA[\n", f);
  fprintf(f, "var PAD = %d, CW = %.2f;\n", XPAD, CHAR_W);
  fputs(svg_script, f);
  fputs("]]></script>\n", f);
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#f6f6f0\"/>\n", opt_width,
          svg_height);
  fprintf(f, "<text id=\"title\" x=\"%u\" y=\"24\" text-anchor=\"middle\">", opt_width / 2);
  xml_puts(f, opt_title);
  fprintf(f, "</text>\n");
  fprintf(f, "<text id=\"unzoom\" x=\"%d\" y=\"24\">Reset zoom</text>\n", XPAD);
  fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", XPAD, svg_height - 10);
  fputs("<g id=\"frames\">\n", f);
  svg_frame(f, root, XPAD, 0, scale);
  fputs("</g>\n</svg>\n", f);
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [OPTIONS] [INPUT]\n"
          "Fold `perf script` output (INPUT, default stdin) into stacks and draw a flame graph.\n"
          "  --folded            INPUT is already folded (\"a;b;c COUNT\" lines)\n"
          "  -f, --fold FILE     write the folded stacks to FILE (\"-\": stdout)\n"
          "  -o, --svg FILE      write the flame graph to FILE (\"-\": stdout)\n"
          "  -t, --title TEXT    the graph's title (default \"Flame graph\")\n"
          "  -w, --width PX      image width (default 1200)\n"
          "      --min-width PX  leave out frames narrower than this (default 0.1)\n"
          "      --period        weigh samples by their period, not one each\n"
          "      --no-comm       do not start stacks with the thread name\n"
          "      --merge-threads weft-w0, weft-w1, ... fold together as weft-w*\n"
          "With neither -f nor -o the folded stacks go to stdout.\n",
          progname);
}

static FILE *open_out(const char *path) {
  if (strcmp(path, "-") == 0)
    return stdout;
  FILE *f = fopen(path, "w");
  if (!f)
    die("cannot write %s: %s", path, strerror(errno));
  return f;
}

static void close_out(FILE *f, const char *path) {
  if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0))
    die("writing %s: %s", path, strerror(errno));
}

int main(int argc, char **argv) {
  enum { O_FOLDED = 256, O_MIN_WIDTH, O_PERIOD, O_NO_COMM, O_MERGE };
  static const struct option longopts[] = {
      {"folded", no_argument, NULL, O_FOLDED},
      {"fold", required_argument, NULL, 'f'},
      {"svg", required_argument, NULL, 'o'},
      {"title", required_argument, NULL, 't'},
      {"width", required_argument, NULL, 'w'},
      {"min-width", required_argument, NULL, O_MIN_WIDTH},
      {"period", no_argument, NULL, O_PERIOD},
      {"no-comm", no_argument, NULL, O_NO_COMM},
      {"merge-threads", no_argument, NULL, O_MERGE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool folded_in = false;
  const char *fold_out = NULL, *svg_out = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "f:o:t:w:h", longopts, NULL)) != -1) {
    switch (c) {
    case O_FOLDED:
      folded_in = true;
      break;
    case 'f':
      fold_out = optarg;
      break;
    case 'o':
      svg_out = optarg;
      break;
    case 't':
      opt_title = optarg;
      break;
    case 'w': {
      char *end;
      unsigned long w = strtoul(optarg, &end, 10);
      if (*end || w < 100 || w > 100000) {
        fprintf(stderr, "%s: --width must be 100..100000 pixels\n", progname);
        return 2;
      }
      opt_width = (unsigned)w;
      break;
    }
    case O_MIN_WIDTH: {
      char *end;
      opt_min_width = strtod(optarg, &end);
      if (*end || opt_min_width < 0) {
        fprintf(stderr, "%s: --min-width must be a number of pixels\n", progname);
        return 2;
      }
      break;
    }
    case O_PERIOD:
      opt_period = true;
      break;
    case O_NO_COMM:
      opt_no_comm = true;
      break;
    case O_MERGE:
      opt_merge_threads = true;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (argc - optind > 1) {
    usage(stderr);
    return 2;
  }
  const char *in_path = optind < argc ? argv[optind] : "-";
  FILE *in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "r");
  if (!in)
    die("cannot read %s: %s", in_path, strerror(errno));
  if (folded_in)
    read_folded(in);
  else
    read_perf_script(in);
  if (in != stdin)
    fclose(in);
  if (!total_samples)
    die("no samples in %s (%s)", strcmp(in_path, "-") ? in_path : "the input",
        folded_in ? "expected 'stack COUNT' lines" : "expected `perf script` output");
  table_sort();

  if (!fold_out && !svg_out)
    fold_out = "-";
  if (fold_out) {
    FILE *f = open_out(fold_out);
    for (size_t i = 0; i < table_len; i++)
      fprintf(f, "%s %" PRIu64 "\n", table[i].key, table[i].count);
    close_out(f, fold_out);
  }
  if (svg_out) {
    node *root = tree_build();
    FILE *f = open_out(svg_out);
    write_svg(f, root);
    close_out(f, svg_out);
    tree_free(root);
  }
  for (size_t i = 0; i < table_len; i++)
    free(table[i].key);
  free(table);
  return 0;
}
