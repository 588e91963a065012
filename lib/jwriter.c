/*
 * jwriter: JSON text appended to one growing buffer, with no tree and no
 * allocation per value (the buffer doubles when full). The output matches
 * json-c's JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE byte for
 * byte: strings escape ", \, \b \f \n \r \t and the other C0 controls as
 * \u00xx (lower-case hex), and nothing else; integers are printed as
 * PRId64. The only error is -ENOMEM, which sticks: later calls do
 * nothing and jwriter_finish() returns it. No json-c here: tests compare
 * the output with json-c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "jwriter.h"

/* For each byte: 0 when it is copied as it is, else the letter after the
 * backslash ('u' for \u00xx). */
static const char escape[256] = {
    ['\b'] = 'b',
    ['\t'] = 't',
    ['\n'] = 'n',
    ['\f'] = 'f',
    ['\r'] = 'r',
    [0x00] = 'u',
    [0x01] = 'u',
    [0x02] = 'u',
    [0x03] = 'u',
    [0x04] = 'u',
    [0x05] = 'u',
    [0x06] = 'u',
    [0x07] = 'u',
    [0x0b] = 'u',
    [0x0e] = 'u',
    [0x0f] = 'u',
    [0x10] = 'u',
    [0x11] = 'u',
    [0x12] = 'u',
    [0x13] = 'u',
    [0x14] = 'u',
    [0x15] = 'u',
    [0x16] = 'u',
    [0x17] = 'u',
    [0x18] = 'u',
    [0x19] = 'u',
    [0x1a] = 'u',
    [0x1b] = 'u',
    [0x1c] = 'u',
    [0x1d] = 'u',
    [0x1e] = 'u',
    [0x1f] = 'u',
    ['"'] = '"',
    ['\\'] = '\\',
};

static const char hex[] = "0123456789abcdef";

/* Makes room for n more bytes and the NUL; false (error set) on OOM. */
static bool
grow(struct jwriter *w, size_t n)
{
	size_t cap;
	char *b;

	if (w->err)
		return false;
	if (w->len + n < w->cap)
		return true;
	cap = w->cap ? w->cap : 4096;
	while (cap <= w->len + n) {
		if (cap > SIZE_MAX / 2) {
			w->err = -ENOMEM;
			return false;
		}
		cap *= 2;
	}
	if ((b = realloc(w->buf, cap)) == NULL) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	return true;
}

static void
put(struct jwriter *w, const char *s, size_t n)
{
	if (!grow(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void
putc_(struct jwriter *w, char c)
{
	if (!grow(w, 1))
		return;
	w->buf[w->len++] = c;
	w->buf[w->len] = '\0';
}

/* The comma before a value or key that follows another. */
static void
sep(struct jwriter *w)
{
	if (w->sep)
		putc_(w, ',');
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of the 8 bytes of x needs an escape: below 0x20, " or \.
 * (The classic "has a byte less than n" and "has a zero byte" tests.) */
static inline bool
word_needs_escape(uint64_t x)
{
	uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');

	return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) |
		   ((b - ONES) & ~b)) &
	    HIGHS;
}

/* "s" (n bytes) escaped, written in place after one grow for the worst
 * case (every byte as \u00xx); 8 plain bytes at a time where it can. */
static void
put_string(struct jwriter *w, const char *s, size_t n)
{
	size_t i = 0;
	char *o;

	if (n > (SIZE_MAX - 3) / 6 || !grow(w, 6 * n + 2)) {
		w->err = -ENOMEM;
		return;
	}
	o = w->buf + w->len;
	*o++ = '"';
	while (i < n) {
		unsigned char c;
		char x;

		if (n - i >= 8) {
			uint64_t v;

			memcpy(&v, s + i, 8);
			if (!word_needs_escape(v)) {
				memcpy(o, &v, 8);
				o += 8;
				i += 8;
				continue;
			}
		}
		c = (unsigned char)s[i++];
		if ((x = escape[c]) == 0) {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		*o++ = x;
		if (x == 'u') {
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xf];
		}
	}
	*o++ = '"';
	*o = '\0';
	w->len = (size_t)(o - w->buf);
}

/* See jwriter.h. */
void
jwriter_init(struct jwriter *w, size_t hint)
{
	*w = (struct jwriter){0};
	if (hint > 0 && (w->buf = malloc(hint + 1)) != NULL) {
		w->cap = hint + 1;
		w->buf[0] = '\0';
	}
}

/* See jwriter.h. */
void
jwriter_reset(struct jwriter *w)
{
	free(w->buf);
	*w = (struct jwriter){0};
}

/* See jwriter.h. */
void
jwriter_key_(struct jwriter *w, const char *quoted, size_t len)
{
	sep(w);
	put(w, quoted, len);
	w->sep = false;
}

/* See jwriter.h. */
void
jwriter_key_str(struct jwriter *w, const char *key)
{
	sep(w);
	put_string(w, key, strlen(key));
	putc_(w, ':');
	w->sep = false;
}

/* See jwriter.h. */
void
jwriter_obj_begin(struct jwriter *w)
{
	sep(w);
	putc_(w, '{');
	w->sep = false;
}

/* See jwriter.h. */
void
jwriter_obj_end(struct jwriter *w)
{
	putc_(w, '}');
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_arr_begin(struct jwriter *w)
{
	sep(w);
	putc_(w, '[');
	w->sep = false;
}

/* See jwriter.h. */
void
jwriter_arr_end(struct jwriter *w)
{
	putc_(w, ']');
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_str(struct jwriter *w, const char *s)
{
	if (s == NULL) {
		jwriter_null(w);
		return;
	}
	sep(w);
	put_string(w, s, strlen(s));
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_int(struct jwriter *w, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	/* negate as unsigned: INT64_MIN has no positive int64 */
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	sep(w);
	put(w, p, (size_t)(buf + sizeof(buf) - p));
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_bool(struct jwriter *w, bool v)
{
	sep(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_null(struct jwriter *w)
{
	sep(w);
	put(w, "null", 4);
	w->sep = true;
}

/* See jwriter.h. */
void
jwriter_raw(struct jwriter *w, const char *json, size_t len)
{
	sep(w);
	put(w, json, len);
	w->sep = true;
}

/* ---- the canonical-form check of jwriter_json_text -------------------- */

static bool
is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A string at p (on its quote) as json-c prints it: the end, or NULL. */
static const char *
scan_string(const char *p)
{
	for (p++;; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20) /* the NUL too: unterminated */
			return NULL;
		if (c != '\\')
			continue;
		c = (unsigned char)*++p;
		if (c == 'u') {
			unsigned v;

			/* json-c prints only C0 controls as \u00xx, and
			 * of those not the ones with a letter */
			if (p[1] != '0' || p[2] != '0' ||
			    (p[3] != '0' && p[3] != '1') || !is_hex_lower(p[4]))
				return NULL;
			v = (unsigned)(p[3] - '0') * 16 +
			    (unsigned)(p[4] <= '9' ? p[4] - '0'
						   : p[4] - 'a' + 10);
			if (escape[v] != 'u')
				return NULL;
			p += 4;
		} else if (c == 0 || c == 'u' || c == '/' ||
		    strchr("bfnrt\"\\", (int)c) == NULL)
			return NULL;
	}
}

/* An integer json-c prints the same: no leading zero, no -0, at most 18
 * digits (so within int64). */
static const char *
scan_int(const char *p)
{
	bool neg = *p == '-';
	const char *d = neg ? ++p : p;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == d || p - d > 18 || (*d == '0' && (p - d > 1 || neg)))
		return NULL;
	if (*p == '.' || *p == 'e' || *p == 'E')
		return NULL;
	return p;
}

static const char *
scan_value(const char *p, int depth)
{
	if (depth > JWRITER_MAX_DEPTH)
		return NULL;
	switch (*p) {
	case '"':
		return scan_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	case '{':
		if (*++p == '}')
			return p + 1;
		for (;;) {
			if (*p != '"' || (p = scan_string(p)) == NULL ||
			    *p++ != ':' ||
			    (p = scan_value(p, depth + 1)) == NULL)
				return NULL;
			if (*p == '}')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	case '[':
		if (*++p == ']')
			return p + 1;
		for (;;) {
			if ((p = scan_value(p, depth + 1)) == NULL)
				return NULL;
			if (*p == ']')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	default:
		return scan_int(p);
	}
}

/* See jwriter.h. */
int
jwriter_json_text(struct jwriter *w, const char *text)
{
	const char *end;

	if (text == NULL || (end = scan_value(text, 1)) == NULL || *end)
		return -EINVAL;
	jwriter_raw(w, text, (size_t)(end - text));
	return 0;
}

/* See jwriter.h. */
int
jwriter_finish(struct jwriter *w, char **ret, size_t *ret_len)
{
	int rc = w->err;

	if (rc == 0 && w->buf == NULL)
		put(w, "", 0);
	if ((rc = w->err) < 0) {
		jwriter_reset(w);
		return rc;
	}
	*ret = w->buf;
	*ret_len = w->len;
	*w = (struct jwriter){0};
	return 0;
}
