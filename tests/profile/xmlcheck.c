/*
 * xmlcheck.c - is a file well-formed XML? For the flame graph tests.
 *
 *   weft-test-xmlcheck FILE
 *
 * Why: the profiling tests must prove that weft-flame's SVG is a document
 * a browser will open, on machines with neither python nor xmllint. This
 * checks well-formedness only (XML 1.0, section 2), not validity against
 * the SVG schema: one root element; tags nest and match; attribute names
 * are unique within a tag and their values quoted, with no '<'; '&' only
 * as an entity (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;); comments,
 * processing instructions (the <?xml?> declaration) and CDATA sections
 * closed; no text outside the root; the bytes valid UTF-8 with no control
 * characters but tab, CR and LF. A DOCTYPE is accepted if it has no
 * internal subset. Prints "FILE: well-formed, N elements" and exits 0, or
 * "FILE:LINE: what is wrong" and exits 1.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *path;
static const char *doc, *end;
static const char *p;

static void fail(const char *what) {
  int line = 1;
  for (const char *q = doc; q < p && q < end; q++)
    line += *q == '\n';
  fprintf(stderr, "%s:%d: %s\n", path, line, what);
  exit(1);
}

static bool starts(const char *s) {
  size_t n = strlen(s);
  return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

static bool is_name_start(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static bool is_name_char(unsigned char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void skip_space(void) {
  while (p < end && is_space(*p))
    p++;
}

/* A name; returns its length. */
static size_t name(void) {
  const char *s = p;
  if (p >= end || !is_name_start((unsigned char)*p))
    fail("expected a name");
  while (p < end && is_name_char((unsigned char)*p))
    p++;
  return (size_t)(p - s);
}

/* An entity or character reference, at '&'. */
static void reference(void) {
  p++;
  if (p < end && *p == '#') {
    p++;
    bool hex = p < end && *p == 'x';
    if (hex)
      p++;
    const char *s = p;
    while (p < end && (hex ? strchr("0123456789abcdefABCDEF", *p) != NULL : (*p >= '0' && *p <= '9')) && *p)
      p++;
    if (p == s || p >= end || *p != ';')
      fail("malformed character reference");
    p++;
    return;
  }
  static const char *const known[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
    if (starts(known[i])) {
      p += strlen(known[i]);
      return;
    }
  }
  fail("'&' that is not &amp; &lt; &gt; &quot; &apos; or a character reference");
}

/* Skips to just past the terminator, or fails. */
static void until(const char *term, const char *what) {
  const char *q = p;
  size_t n = strlen(term);
  while ((size_t)(end - q) >= n && memcmp(q, term, n) != 0)
    q++;
  if ((size_t)(end - q) < n)
    fail(what);
  p = q + n;
}

/* Comments, PIs, a DOCTYPE; returns false if p is at none of them. */
static bool misc(bool doctype_ok) {
  if (starts("<!--")) {
    p += 4;
    until("-->", "unterminated comment");
    return true;
  }
  if (starts("<?")) {
    p += 2;
    name();
    until("?>", "unterminated processing instruction");
    return true;
  }
  if (starts("<!DOCTYPE")) {
    if (!doctype_ok)
      fail("DOCTYPE in the wrong place");
    const char *q = p;
    while (q < end && *q != '>' && *q != '[')
      q++;
    if (q >= end || *q == '[')
      fail("DOCTYPE with an internal subset (not supported) or unterminated");
    p = q + 1;
    return true;
  }
  return false;
}

#define MAX_DEPTH 4096
#define MAX_ATTRS 256

static long elements;

static void element(void) {
  struct {
    const char *name;
    size_t len;
  } stack[MAX_DEPTH];
  int depth = 0;
  for (;;) {
    /* At '<' of a start tag, an end tag, or markup in content. */
    if (starts("</")) {
      p += 2;
      const char *n = p;
      size_t len = name();
      if (depth == 0 || len != stack[depth - 1].len || memcmp(n, stack[depth - 1].name, len) != 0)
        fail("end tag does not match the open element");
      skip_space();
      if (p >= end || *p != '>')
        fail("malformed end tag");
      p++;
      if (--depth == 0)
        return;
    } else if (starts("<![CDATA[")) {
      if (depth == 0)
        fail("CDATA outside the root element");
      p += 9;
      until("]]>", "unterminated CDATA section");
    } else if (starts("<!--") || starts("<?")) {
      misc(false);
    } else if (starts("<")) {
      p++;
      const char *n = p;
      size_t len = name();
      const char *an[MAX_ATTRS];
      size_t al[MAX_ATTRS];
      int na = 0;
      elements++;
      for (;;) {
        bool sp = p < end && is_space(*p);
        skip_space();
        if (p >= end)
          fail("unterminated start tag");
        if (*p == '>' || starts("/>"))
          break;
        if (!sp)
          fail("attributes must be separated by space");
        const char *a = p;
        size_t alen = name();
        for (int i = 0; i < na; i++)
          if (al[i] == alen && memcmp(an[i], a, alen) == 0)
            fail("attribute repeated in a tag");
        if (na < MAX_ATTRS) {
          an[na] = a;
          al[na++] = alen;
        }
        skip_space();
        if (p >= end || *p != '=')
          fail("attribute without '='");
        p++;
        skip_space();
        if (p >= end || (*p != '"' && *p != '\''))
          fail("attribute value not quoted");
        char q = *p++;
        while (p < end && *p != q) {
          if (*p == '<')
            fail("'<' in an attribute value");
          if (*p == '&')
            reference();
          else
            p++;
        }
        if (p >= end)
          fail("unterminated attribute value");
        p++;
      }
      if (*p == '/') { /* an empty element */
        p += 2;
        if (depth == 0)
          return;
      } else {
        p++;
        if (depth == MAX_DEPTH)
          fail("elements nested too deep for this checker");
        stack[depth].name = n;
        stack[depth].len = len;
        depth++;
      }
    } else {
      fail("expected markup");
    }
    /* Character data up to the next markup. */
    while (p < end && *p != '<') {
      if (*p == '&')
        reference();
      else if (starts("]]>"))
        fail("']]>' in character data");
      else
        p++;
    }
    if (p >= end)
      fail("the document ends inside an element");
  }
}

/* Valid UTF-8, and no control characters but tab, CR and LF. */
static void check_chars(void) {
  const unsigned char *q = (const unsigned char *)doc, *e = (const unsigned char *)end;
  while (q < e) {
    unsigned c = *q;
    p = (const char *)q;
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
        fail("a control character");
      q++;
      continue;
    }
    size_t k = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (!k || (size_t)(e - q) < k)
      fail("malformed UTF-8");
    for (size_t i = 1; i < k; i++)
      if ((q[i] & 0xc0) != 0x80)
        fail("malformed UTF-8");
    if ((c == 0xe0 && q[1] < 0xa0) || (c == 0xed && q[1] >= 0xa0) || (c == 0xf0 && q[1] < 0x90) ||
        (c == 0xf4 && q[1] >= 0x90))
      fail("malformed UTF-8 (overlong or a surrogate)");
    q += k;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  path = argv[1];
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t cap = 1 << 16, len = 0, n;
  char *b = malloc(cap);
  while (b && (n = fread(b + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap)
      b = realloc(b, cap *= 2);
  }
  if (!b || ferror(f)) {
    fprintf(stderr, "%s: cannot read\n", path);
    return 1;
  }
  fclose(f);
  doc = p = b;
  end = b + len;
  check_chars();
  p = doc;
  if (starts("\xef\xbb\xbf"))
    p += 3; /* a byte order mark */
  for (;;) { /* the prolog */
    skip_space();
    if (!misc(true))
      break;
  }
  if (p >= end || *p != '<')
    fail("no root element");
  element();
  for (;;) { /* after the root: only comments, PIs and space */
    skip_space();
    if (p >= end)
      break;
    if (!misc(false))
      fail("content after the root element");
  }
  printf("%s: well-formed, %ld elements\n", path, elements);
  free(b);
  return 0;
}
