/*
 * Strict json-c access. jfield_parse runs a small validating scanner over
 * the raw body before json-c sees it: json-c accepts single quotes, NaN and
 * duplicate keys (keeping the last) even in strict mode, and decodes
 * "\u0000", so the scanner enforces the grammar, the depth, the string
 * rules and key uniqueness, and names the path of the first offence.
 * json-c then builds the tree (jfield_scan stops before, picking a few
 * values out on the way). The getters check json_object_is_type before
 * every read; nothing here coerces. No globals: safe from any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jfield.h"
#include "util.h"

#define JSCAN_MAX_DEPTH 32
#define JSCAN_INLINE_KEYS 64
#define JSCAN_INLINE_ARENA 1024
#define JSCAN_STR_MAX 2048 /* largest lim->max_string */

/* A key of an open object: in the body when it has no escapes (the common
 * case, no copy), else decoded into the arena. */
struct jkey {
	const char *p; /* NULL: at arena + off */
	size_t off;
	size_t len;
};

struct jframe {
	bool is_obj;
	bool has_key; /* object: keys[cur_key] is the current key */
	size_t first_key; /* index into keys[] of this object's first key */
	size_t cur_key;
	size_t arena_mark; /* arena_len when the object opened */
	size_t index; /* array: current element */
};

/* Lives on the stack of jfield_parse: no allocation unless an object has
 * more than JSCAN_INLINE_KEYS keys open or escaped keys overflow the
 * inline arena. */
struct jscan {
	const char *p, *end;
	const struct jfield_limits *lim;
	struct err *e;
	int depth;
	struct jframe frames[JSCAN_MAX_DEPTH + 1];

	struct jkey *keys;
	size_t nkeys, keys_cap;
	char *arena;
	size_t arena_len, arena_cap;
	struct jkey keys_inline[JSCAN_INLINE_KEYS];
	char arena_inline[JSCAN_INLINE_ARENA];

	/* the string just scanned: sp[0..str_len), either in the body or
	 * (escaped) decoded into str */
	const char *sp;
	size_t str_len;
	size_t str_max; /* the limit of the string being scanned */
	char *str; /* str_inline, or a heap buffer for a long string */
	size_t str_cap;
	char str_inline[JSCAN_STR_MAX + 4];

	/* jfield_scan: the values to pick up on the way */
	struct jfield_want *wants;
	size_t n_wants;
};

static int jscan_value(struct jscan *s);

#define JFIELD_KEY_SHOWN 64 /* bytes of a key that messages show */

/* How many of s[0..len) to show, at most max bytes, without splitting a
 * UTF-8 sequence. */
static int
utf8_shown(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return (int)len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

/* Drops an incomplete UTF-8 sequence that snprintf's truncation left at
 * the end of buf, so that messages stay valid UTF-8. */
static void
utf8_trim(char *buf)
{
	size_t n = strlen(buf), i = n, need;
	unsigned char lead;

	while (i > 0 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	lead = (unsigned char)buf[i - 1];
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		buf[i - 1] = '\0';
}

static const char *
jkey_ptr(const struct jscan *s, const struct jkey *k)
{
	return k->p ? k->p : s->arena + k->off;
}

/* The path of the value being scanned, for messages. */
static void
jscan_path(const struct jscan *s, char buf[JFIELD_PATH_MAX])
{
	size_t n = 0;

	buf[0] = '\0';
	for (int d = 1; d <= s->depth; d++) {
		const struct jframe *f = &s->frames[d];
		int r;

		if (f->is_obj) {
			const struct jkey *k = &s->keys[f->cur_key];

			if (!f->has_key)
				break;
			r = snprintf(buf + n, JFIELD_PATH_MAX - n, "%s%.*s%s",
			    n ? "." : "",
			    utf8_shown(
				jkey_ptr(s, k), k->len, JFIELD_KEY_SHOWN),
			    jkey_ptr(s, k),
			    k->len > JFIELD_KEY_SHOWN ? "..." : "");
		} else
			r = snprintf(
			    buf + n, JFIELD_PATH_MAX - n, "[%zu]", f->index);
		if (r < 0 || (size_t)r >= JFIELD_PATH_MAX - n)
			break;
		n += (size_t)r;
	}
	utf8_trim(buf);
}

static int
jscan_fail(struct jscan *s, const char *what)
{
	char path[JFIELD_PATH_MAX];

	jscan_path(s, path);
	if (path[0])
		return err_set_field(
		    s->e, -EINVAL, path, "field '%s': %s", path, what);
	return err_set(s->e, -EINVAL, "malformed JSON: %s", what);
}

static void
jscan_ws(struct jscan *s)
{
	while (s->p < s->end &&
	    (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
jscan_hex4(struct jscan *s, unsigned *ret)
{
	unsigned v = 0;

	if (s->end - s->p < 4)
		return jscan_fail(s, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval(s->p[i]);

		if (h < 0)
			return jscan_fail(s, "invalid \\u escape");
		v = v << 4 | (unsigned)h;
	}
	s->p += 4;
	*ret = v;
	return 0;
}

static int
jscan_too_long(struct jscan *s)
{
	char m[64];

	(void)snprintf(
	    m, sizeof(m), "string longer than %zu bytes", s->str_max);
	return jscan_fail(s, m);
}

static int
jscan_put(struct jscan *s, const char *b, size_t n)
{
	if (s->str_len + n > s->str_max)
		return jscan_too_long(s);
	if (s->str_len + n > s->str_cap) {
		/* a long string (lim->longs): one buffer for its limit */
		char *p = s->str == s->str_inline ? NULL : s->str;

		if ((p = realloc(p, s->str_max + 4)) == NULL)
			return err_set(s->e, -ENOMEM, "out of memory");
		if (s->str == s->str_inline)
			memcpy(p, s->str_inline, s->str_len);
		s->str = p;
		s->str_cap = s->str_max;
	}
	memcpy(s->str + s->str_len, b, n);
	s->str_len += n;
	return 0;
}

/* Decodes one escape (s->p just past the backslash) into s->str. */
static int
jscan_escape(struct jscan *s)
{
	char out[4];
	unsigned cp, lo;
	size_t n = 1;
	int r;

	if (s->p >= s->end)
		return jscan_fail(s, "unterminated string");
	switch (*s->p++) {
	case '"':
		out[0] = '"';
		break;
	case '\\':
		out[0] = '\\';
		break;
	case '/':
		out[0] = '/';
		break;
	case 'n':
		out[0] = '\n';
		break;
	case 'r':
		out[0] = '\r';
		break;
	case 't':
		out[0] = '\t';
		break;
	case 'b':
	case 'f':
		return jscan_fail(s, "control character in string");
	case 'u':
		if ((r = jscan_hex4(s, &cp)) < 0)
			return r;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return jscan_fail(s, "unpaired surrogate");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (s->end - s->p < 2 || s->p[0] != '\\' ||
			    s->p[1] != 'u')
				return jscan_fail(s, "unpaired surrogate");
			s->p += 2;
			if ((r = jscan_hex4(s, &lo)) < 0)
				return r;
			if (lo < 0xdc00 || lo > 0xdfff)
				return jscan_fail(s, "unpaired surrogate");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
		    cp == 0x7f)
			return jscan_fail(s, "control character in string");
		if (cp < 0x80) {
			out[0] = (char)cp;
		} else if (cp < 0x800) {
			out[0] = (char)(0xc0 | cp >> 6);
			out[1] = (char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			out[0] = (char)(0xe0 | cp >> 12);
			out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			out[0] = (char)(0xf0 | cp >> 18);
			out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		break;
	default:
		return jscan_fail(s, "invalid escape in string");
	}
	return jscan_put(s, out, n);
}

/* Byte classes inside a string: JC_STOP ends a plain run ('"', '\\',
 * C0 controls), JC_CHECK asks for the full text check (DEL and every
 * non-ASCII byte). One table lookup per byte in the common case. */
#define JC_STOP 1
#define JC_CHECK 2
static const unsigned char jclass[256] = {
    [0x00 ... 0x1f] = JC_STOP,
    ['"'] = JC_STOP,
    ['\\'] = JC_STOP,
    [0x7f ... 0xff] = JC_CHECK,
};

/* Advances s->p over a run of plain string bytes; ORs their classes into
 * *acc. */
static void
jscan_run(struct jscan *s, unsigned *acc)
{
	const char *p = s->p;
	unsigned a = 0;

	while (p < s->end) {
		unsigned k = jclass[(unsigned char)*p];

		if (k & JC_STOP)
			break;
		a |= k;
		p++;
	}
	s->p = p;
	*acc |= a;
}

/* The limit of the string about to be scanned: a value whose key is
 * one of lim->longs has that entry's, everything else (keys included:
 * while a key is scanned its frame has none) lim->max_string. */
static size_t
jscan_str_max(const struct jscan *s)
{
	const struct jframe *f = &s->frames[s->depth];
	const struct jkey *k;

	if (s->lim->n_longs == 0 || s->depth < 1 || !f->is_obj || !f->has_key)
		return s->lim->max_string;
	k = &s->keys[f->cur_key];
	for (size_t i = 0; i < s->lim->n_longs; i++)
		if (strlen(s->lim->longs[i].key) == k->len &&
		    memcmp(jkey_ptr(s, k), s->lim->longs[i].key, k->len) == 0)
			return s->lim->longs[i].max;
	return s->lim->max_string;
}

/* Scans the string at s->p (on the opening quote) and checks it: s->sp
 * points at its bytes, in the body when it has no escape, else decoded
 * into s->str. Pure ASCII without DEL needs no further check; anything
 * else goes through util_text_valid. */
static int
jscan_string(struct jscan *s)
{
	const char *start = ++s->p, *run;
	unsigned acc = 0;
	int r;

	s->str_max = jscan_str_max(s);
	jscan_run(s, &acc);
	if (s->p < s->end && *s->p == '"') {
		/* no escape: check in place */
		s->sp = start;
		s->str_len = (size_t)(s->p - start);
		s->p++;
		if (s->str_len > s->str_max)
			return jscan_too_long(s);
		if ((acc & JC_CHECK) && !util_text_valid(s->sp, s->str_len))
			return jscan_fail(s, "string is not valid UTF-8 text");
		return 0;
	}
	s->str_len = 0;
	run = start;
	for (;;) {
		if ((r = jscan_put(s, run, (size_t)(s->p - run))) < 0)
			return r;
		if (s->p >= s->end)
			return jscan_fail(s, "unterminated string");
		if (*s->p == '"')
			break;
		if (*s->p != '\\')
			return jscan_fail(s, "control character in string");
		s->p++;
		if ((r = jscan_escape(s)) < 0)
			return r;
		run = s->p;
		jscan_run(s, &acc);
	}
	s->p++;
	s->sp = s->str;
	/* escapes may have produced non-ASCII bytes: check them all */
	if (!util_text_valid(s->str, s->str_len))
		return jscan_fail(s, "string is not valid UTF-8 text");
	return 0;
}

static int
jscan_grow(struct jscan *s, size_t need_arena)
{
	if (s->nkeys == s->keys_cap) {
		size_t cap = s->keys_cap * 2;
		struct jkey *k = s->keys == s->keys_inline
		    ? malloc(cap * sizeof(*k))
		    : realloc(s->keys, cap * sizeof(*k));

		if (k == NULL)
			return err_set(s->e, -ENOMEM, "out of memory");
		if (s->keys == s->keys_inline)
			memcpy(k, s->keys_inline, sizeof(s->keys_inline));
		s->keys = k;
		s->keys_cap = cap;
	}
	if (s->arena_len + need_arena > s->arena_cap) {
		size_t cap = s->arena_cap * 2;
		char *a;

		while (cap < s->arena_len + need_arena)
			cap *= 2;
		a = s->arena == s->arena_inline ? malloc(cap)
						: realloc(s->arena, cap);
		if (a == NULL)
			return err_set(s->e, -ENOMEM, "out of memory");
		if (s->arena == s->arena_inline)
			memcpy(a, s->arena_inline, s->arena_len);
		s->arena = a;
		s->arena_cap = cap;
	}
	return 0;
}

static int
jkey_cmp(const void *a, const void *b, void *arg)
{
	const struct jkey *x = a, *y = b;
	const struct jscan *s = arg;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(jkey_ptr(s, x), jkey_ptr(s, y), n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* Records the key just scanned as the current key of frame f; refuses a
 * duplicate within the object. Small objects are checked pairwise here,
 * large ones also when they close (by sorting). */
static int
jscan_key(struct jscan *s, struct jframe *f)
{
	bool escaped = s->sp == s->str, dup = false;
	struct jkey *k;
	int r;

	/* keys end up in single-line messages and paths; only an escape
	 * can bring one of these in (jscan_string refuses them raw) */
	if (escaped)
		for (size_t i = 0; i < s->str_len; i++)
			if (s->sp[i] == '\t' || s->sp[i] == '\n' ||
			    s->sp[i] == '\r')
				return jscan_fail(
				    s, "control character in key");

	if (f->first_key + 16 > s->nkeys)
		for (size_t i = f->first_key; i < s->nkeys && !dup; i++)
			dup = s->keys[i].len == s->str_len &&
			    memcmp(jkey_ptr(s, &s->keys[i]), s->sp,
				s->str_len) == 0;
	if ((r = jscan_grow(s, escaped ? s->str_len : 0)) < 0)
		return r;
	k = &s->keys[s->nkeys];
	k->len = s->str_len;
	if (escaped) {
		k->p = NULL;
		k->off = s->arena_len;
		memcpy(s->arena + s->arena_len, s->str, s->str_len);
		s->arena_len += s->str_len;
	} else
		k->p = s->sp;
	f->cur_key = s->nkeys++;
	f->has_key = true;
	return dup ? jscan_fail(s, "duplicate key") : 0;
}

/* At the close of a large object: sort its keys and look for equal
 * neighbours. Then forget the object's keys. */
static int
jscan_close_object(struct jscan *s, struct jframe *f)
{
	size_t n = s->nkeys - f->first_key;

	if (n > 16) {
		struct jkey *k = s->keys + f->first_key;

		qsort_r(k, n, sizeof(*k), jkey_cmp, s);
		for (size_t i = 1; i < n; i++)
			if (jkey_cmp(&k[i - 1], &k[i], s) == 0) {
				char m[JFIELD_PATH_MAX + 32];

				/* name the object and the key */
				(void)snprintf(m, sizeof(m),
				    "duplicate key '%.*s'",
				    utf8_shown(jkey_ptr(s, &k[i]), k[i].len,
					JFIELD_KEY_SHOWN),
				    jkey_ptr(s, &k[i]));
				f->has_key = false;
				return jscan_fail(s, m);
			}
	}
	s->arena_len = f->arena_mark;
	s->nkeys = f->first_key;
	return 0;
}

static int
jscan_number(struct jscan *s)
{
	const char *p = s->p;

	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end || *p < '0' || *p > '9')
		return jscan_fail(s, "invalid number");
	if (*p == '0') {
		p++;
		if (p < s->end && *p >= '0' && *p <= '9')
			return jscan_fail(s, "invalid number (leading zero)");
	} else
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	if (p < s->end && *p == '.') {
		p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return jscan_fail(s, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || *p < '0' || *p > '9')
			return jscan_fail(s, "invalid number");
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	s->p = p;
	return 0;
}

static int
jscan_literal(struct jscan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return jscan_fail(s, "invalid literal");
	s->p += n;
	return 0;
}

static int
jscan_container(struct jscan *s, bool is_obj)
{
	struct jframe *f;
	int r;

	if (s->depth >= s->lim->max_depth || s->depth >= JSCAN_MAX_DEPTH) {
		char m[64];

		(void)snprintf(
		    m, sizeof(m), "nesting deeper than %d", s->lim->max_depth);
		return jscan_fail(s, m);
	}
	f = &s->frames[++s->depth];
	f->is_obj = is_obj;
	f->first_key = s->nkeys;
	f->index = 0;
	f->has_key = false;
	f->cur_key = 0;
	f->arena_mark = s->arena_len;
	s->p++;
	jscan_ws(s);
	if (s->p < s->end && *s->p == (is_obj ? '}' : ']')) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		if (is_obj) {
			if (s->p >= s->end)
				return jscan_fail(s, "truncated object");
			if (*s->p != '"')
				return jscan_fail(
				    s, "expected a double-quoted key");
			/* a bad key is reported at the object's path */
			f->has_key = false;
			if ((r = jscan_string(s)) < 0 ||
			    (r = jscan_key(s, f)) < 0)
				return r;
			jscan_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return jscan_fail(s, "expected ':'");
			s->p++;
			jscan_ws(s);
		}
		if ((r = jscan_value(s)) < 0)
			return r;
		jscan_ws(s);
		if (s->p >= s->end)
			return jscan_fail(
			    s, is_obj ? "truncated object" : "truncated array");
		if (*s->p == ',') {
			s->p++;
			jscan_ws(s);
			if (!is_obj)
				f->index++;
			continue;
		}
		if (*s->p != (is_obj ? '}' : ']'))
			return jscan_fail(s,
			    is_obj ? "expected ',' or '}'"
				   : "expected ',' or ']'");
		s->p++;
		break;
	}
	if (is_obj && (r = jscan_close_object(s, f)) < 0)
		return r;
	s->depth--;
	return 0;
}

/* Is the path of the value being scanned the dotted key path want
 * (objects only, no array on the way)? */
static bool
jscan_at(const struct jscan *s, const char *want)
{
	for (int d = 1; d <= s->depth; d++) {
		const struct jframe *f = &s->frames[d];
		const struct jkey *k = &s->keys[f->cur_key];
		const char *dot = strchr(want, '.');
		size_t n = dot ? (size_t)(dot - want) : strlen(want);

		if (!f->is_obj || !f->has_key || k->len != n ||
		    memcmp(jkey_ptr(s, k), want, n) != 0)
			return false;
		if ((dot == NULL) != (d == s->depth))
			return false;
		want = dot ? dot + 1 : want + n;
	}
	return true;
}

static int jscan_value_plain(struct jscan *s);

/* jscan_value when values are wanted: notes the type of a wanted value
 * and copies a wanted string out of the scratch buffer. */
static int
jscan_wanted(struct jscan *s)
{
	struct jfield_want *w = NULL;
	int r;

	for (size_t i = 0; i < s->n_wants && w == NULL; i++)
		if (jscan_at(s, s->wants[i].path))
			w = &s->wants[i];
	if (w == NULL)
		return jscan_value_plain(s);
	w->found = true;
	w->type_ok = (w->type == json_type_string && *s->p == '"') ||
	    (w->type == json_type_object && *s->p == '{');
	if ((r = jscan_value_plain(s)) < 0)
		return r;
	if (w->type_ok && w->type == json_type_string) {
		free(w->str);
		if ((w->str = strndup(s->sp, s->str_len)) == NULL)
			return err_set(s->e, -ENOMEM, "out of memory");
	}
	return 0;
}

static int
jscan_value(struct jscan *s)
{
	if (s->n_wants > 0)
		return jscan_wanted(s);
	return jscan_value_plain(s);
}

static int
jscan_value_plain(struct jscan *s)
{
	if (s->p >= s->end)
		return jscan_fail(s, "truncated");
	switch (*s->p) {
	case '{':
		return jscan_container(s, true);
	case '[':
		return jscan_container(s, false);
	case '"':
		return jscan_string(s);
	case 't':
		return jscan_literal(s, "true");
	case 'f':
		return jscan_literal(s, "false");
	case 'n':
		return jscan_literal(s, "null");
	default:
		if (*s->p != '-' && (*s->p < '0' || *s->p > '9'))
			return jscan_fail(s, "expected a value");
		return jscan_number(s);
	}
}

/* Runs the scanner over body; see jfield_parse for what it enforces. */
static int
jscan_all(const char *body, size_t len, const struct jfield_limits *lim,
    struct jfield_want *wants, size_t n_wants, struct err *e)
{
	struct jscan scan, *s = &scan;
	int r = 0;

	if (body == NULL || len == 0)
		return err_set(e, -EINVAL, "malformed JSON: empty body");
	if (memchr(body, '\0', len) != NULL)
		return err_set(e, -EINVAL, "malformed JSON: NUL byte in body");
	if (len > INT32_MAX)
		return err_set(e, -EINVAL, "malformed JSON: body too large");
	if (lim->max_string > JSCAN_STR_MAX || lim->max_depth < 1)
		return err_set(e, -EINVAL, "jfield_parse: limits out of range");
	for (size_t i = 0; i < lim->n_longs; i++)
		if (lim->longs[i].max > JFIELD_LONG_MAX)
			return err_set(
			    e, -EINVAL, "jfield_parse: limits out of range");
	s->str = s->str_inline;
	s->str_cap = JSCAN_STR_MAX;
	s->str_max = lim->max_string;
	s->p = body;
	s->end = body + len;
	s->lim = lim;
	s->e = e;
	s->depth = 0;
	s->keys = s->keys_inline;
	s->nkeys = 0;
	s->keys_cap = JSCAN_INLINE_KEYS;
	s->arena = s->arena_inline;
	s->arena_len = 0;
	s->arena_cap = JSCAN_INLINE_ARENA;
	s->wants = wants;
	s->n_wants = n_wants;

	jscan_ws(s);
	if (s->p >= s->end)
		r = err_set(e, -EINVAL, "malformed JSON: empty body");
	else if (*s->p != '{')
		r = err_set(e, -EINVAL,
		    "malformed JSON: expected an object at the top level");
	else if ((r = jscan_container(s, true)) == 0) {
		jscan_ws(s);
		if (s->p != s->end)
			r = err_set(e, -EINVAL,
			    "malformed JSON: trailing characters after the "
			    "object");
	}
	if (s->keys != s->keys_inline)
		free(s->keys);
	if (s->arena != s->arena_inline)
		free(s->arena);
	if (s->str != s->str_inline)
		free(s->str);
	return r;
}

/* See jfield.h. */
int
jfield_scan(const char *text, size_t len, const struct jfield_limits *lim,
    struct jfield_want *wants, size_t n_wants, struct err *e)
{
	int r;

	for (size_t i = 0; i < n_wants; i++) {
		wants[i].found = wants[i].type_ok = false;
		wants[i].str = NULL;
	}
	r = jscan_all(text, len, lim, wants, n_wants, e);
	if (r < 0)
		for (size_t i = 0; i < n_wants; i++) {
			free(wants[i].str);
			wants[i].str = NULL;
		}
	return r;
}

/* See jfield.h. */
int
jfield_parse(const char *body, size_t len, const struct jfield_limits *lim,
    struct json_object **ret, struct err *e)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	int r;

	if ((r = jscan_all(body, len, lim, NULL, 0, e)) < 0)
		return r;

	/* The scanner accepted strict JSON: json-c must agree. The +1
	 * because json-c refuses the depth it is given. */
	tok = json_tokener_new_ex(lim->max_depth + 1);
	if (tok == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	/* UTF-8 was checked by the scanner (JSON_TOKENER_VALIDATE_UTF8 would
	 * check it again) */
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success)
		r = err_set(e, -EINVAL, "malformed JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
	else if (!json_object_is_type(o, json_type_object))
		r = err_set(e, -EINVAL,
		    "malformed JSON: expected an object at the top level");
	json_tokener_free(tok);
	if (r < 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	return 0;
}

/* See jfield.h. */
char *
jfield_path(char buf[JFIELD_PATH_MAX], const char *prefix, const char *key)
{
	size_t kl = key ? strlen(key) : 0;
	int shown = utf8_shown(key ? key : "", kl, JFIELD_KEY_SHOWN);
	const char *more = kl > JFIELD_KEY_SHOWN ? "..." : "";

	if (kl == 0)
		(void)snprintf(
		    buf, JFIELD_PATH_MAX, "%s", prefix ? prefix : "");
	else if (prefix == NULL || prefix[0] == '\0')
		(void)snprintf(
		    buf, JFIELD_PATH_MAX, "%.*s%s", shown, key, more);
	else
		(void)snprintf(buf, JFIELD_PATH_MAX, "%s.%.*s%s", prefix, shown,
		    key, more);
	utf8_trim(buf);
	return buf;
}

/* See jfield.h. */
char *
jfield_path_index(char buf[JFIELD_PATH_MAX], const char *prefix,
    const char *key, size_t index)
{
	if (prefix == NULL || prefix[0] == '\0')
		(void)snprintf(buf, JFIELD_PATH_MAX, "%s[%zu]", key, index);
	else
		(void)snprintf(
		    buf, JFIELD_PATH_MAX, "%s.%s[%zu]", prefix, key, index);
	utf8_trim(buf);
	return buf;
}

/* The message of a type mismatch or a missing value. */
static int
jfield_fail(
    const char *prefix, const char *key, struct err *e, const char *what)
{
	char path[JFIELD_PATH_MAX];

	jfield_path(path, prefix, key);
	return err_set_field(e, -EINVAL, path, "field '%s': %s", path, what);
}

/* Common head of the checkers: v is the value of a key that is present
 * (NULL for a JSON null, as json-c represents it). 0 = null allowed,
 * 1 = go on, <0 = error. */
static int
jfield_present(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, struct err *e)
{
	if (v != NULL && !json_object_is_type(v, json_type_null))
		return 1;
	if (!(flags & JFIELD_NULLABLE))
		return jfield_fail(prefix, key, e, "must not be null");
	if (flags & JFIELD_REQUIRED)
		return jfield_fail(prefix, key, e, "is required");
	return 0;
}

/* See jfield.h. */
int
jfield_value_str(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, const char **ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);

	if (r <= 0)
		return r;
	if (!json_object_is_type(v, json_type_string))
		return jfield_fail(prefix, key, e, "expected string");
	*ret = json_object_get_string(v);
	return 1;
}

/* See jfield.h. */
int
jfield_value_strdup(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, char **ret, struct err *e)
{
	const char *s = NULL;
	char *d;
	int r = jfield_value_str(v, prefix, key, flags, &s, e);

	if (r <= 0)
		return r;
	d = strdup(s);
	if (d == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	*ret = d;
	return 1;
}

/* See jfield.h. */
int
jfield_value_int(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, int64_t min, int64_t max, int64_t *ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);
	int64_t x;

	if (r <= 0)
		return r;
	if (!json_object_is_type(v, json_type_int))
		return jfield_fail(prefix, key, e, "expected integer");
	x = json_object_get_int64(v);
	if (x == INT64_MAX || x == INT64_MIN || x < min || x > max) {
		char m[96];

		(void)snprintf(m, sizeof(m),
		    "integer out of range [%lld, %lld]", (long long)min,
		    (long long)max);
		return jfield_fail(prefix, key, e, m);
	}
	*ret = x;
	return 1;
}

/* See jfield.h. */
int
jfield_value_bool(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, bool *ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);

	if (r <= 0)
		return r;
	if (!json_object_is_type(v, json_type_boolean))
		return jfield_fail(prefix, key, e, "expected boolean");
	*ret = json_object_get_boolean(v) != 0;
	return 1;
}

/* The digits of a Nova integer string: [0-9]+, after a '-' when neg is
 * allowed, and at most one '\n' at the end (jsonschema's pattern is
 * re.search with '$', which matches before a final newline, and int()
 * ignores it). Returns 0 and *ret, -ERANGE past int64, -EINVAL. */
static int
nova_digits(const char *s, size_t len, bool neg_ok, int64_t *ret)
{
	bool neg = false;
	uint64_t x = 0;
	size_t i = 0;

	if (len > 0 && s[len - 1] == '\n')
		len--;
	if (neg_ok && i < len && s[i] == '-') {
		neg = true;
		i++;
	}
	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (x > (UINT64_C(1) << 63) / 10)
			return -ERANGE;
		x = x * 10 + (uint64_t)(s[i] - '0');
		if (x > (UINT64_C(1) << 63))
			return -ERANGE;
	}
	if (!neg && x > INT64_MAX)
		return -ERANGE;
	*ret = neg ? (int64_t)(0 - x) : (int64_t)x;
	return 0;
}

/* See jfield.h. */
int
jfield_value_nova_int(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, bool neg_ok, int64_t min, int64_t max,
    int64_t *ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);
	int64_t x;

	if (r <= 0)
		return r;
	if (json_object_is_type(v, json_type_string)) {
		r = nova_digits(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), neg_ok, &x);
		if (r == -EINVAL)
			return jfield_fail(prefix, key, e,
			    neg_ok ? "expected integer, or a string of "
				     "digits with an optional leading '-'"
				   : "expected integer, or a string of digits");
		if (r == -ERANGE)
			x = INT64_MAX; /* refused below */
	} else if (json_object_is_type(v, json_type_int))
		x = json_object_get_int64(v);
	else
		return jfield_fail(
		    prefix, key, e, "expected integer, or a string of digits");
	if (x == INT64_MAX || x == INT64_MIN || x < min || x > max) {
		char m[96];

		(void)snprintf(m, sizeof(m),
		    "integer out of range [%lld, %lld]", (long long)min,
		    (long long)max);
		return jfield_fail(prefix, key, e, m);
	}
	*ret = x;
	return 1;
}

/* See jfield.h. Nova's parameter_types.boolean enum, case as listed. */
int
jfield_value_nova_bool(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, bool *ret, struct err *e)
{
	static const char *const yes[] = {
	    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"};
	static const char *const no[] = {"False", "FALSE", "false", "0", "OFF",
	    "Off", "off", "NO", "No", "no"};
	int r = jfield_present(v, prefix, key, flags, e);
	const char *s;

	if (r <= 0)
		return r;
	if (json_object_is_type(v, json_type_boolean)) {
		*ret = json_object_get_boolean(v) != 0;
		return 1;
	}
	if (!json_object_is_type(v, json_type_string))
		return jfield_fail(prefix, key, e, "expected boolean");
	s = json_object_get_string(v);
	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (STREQ(s, yes[i])) {
			*ret = true;
			return 1;
		}
		if (STREQ(s, no[i])) {
			*ret = false;
			return 1;
		}
	}
	return jfield_fail(prefix, key, e,
	    "expected boolean, or one of the strings true/false, yes/no, "
	    "on/off, 1/0 (lower case, capitalised or upper case)");
}

/* See jfield.h. */
int
jfield_value_obj(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, struct json_object **ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);

	if (r <= 0)
		return r;
	if (!json_object_is_type(v, json_type_object))
		return jfield_fail(prefix, key, e, "expected object");
	*ret = v;
	return 1;
}

/* See jfield.h. */
int
jfield_value_array(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, size_t max_len, struct json_object **ret, struct err *e)
{
	int r = jfield_present(v, prefix, key, flags, e);

	if (r <= 0)
		return r;
	if (!json_object_is_type(v, json_type_array))
		return jfield_fail(prefix, key, e, "expected array");
	if (json_object_array_length(v) > max_len) {
		char m[64];

		(void)snprintf(m, sizeof(m), "more than %zu entries", max_len);
		return jfield_fail(prefix, key, e, m);
	}
	*ret = v;
	return 1;
}

/* The obj-level getters: an absent key is 0, or an error if REQUIRED;
 * a present one goes to the value checker. */
#define JFIELD_GET(obj, prefix, key, flags, e, call)                         \
	({                                                                   \
		struct json_object *v = NULL;                                \
		int _r;                                                      \
		if (obj == NULL || !json_object_object_get_ex(obj, key, &v)) \
			_r = (flags & JFIELD_REQUIRED)                       \
			    ? jfield_fail(prefix, key, e, "is required")     \
			    : 0;                                             \
		else                                                         \
			_r = call;                                           \
		_r;                                                          \
	})

/* See jfield.h. */
int
jfield_str(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, const char **ret, struct err *e)
{
	return JFIELD_GET(obj, prefix, key, flags, e,
	    jfield_value_str(v, prefix, key, flags, ret, e));
}

/* See jfield.h. */
int
jfield_int(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, int64_t min, int64_t max, int64_t *ret, struct err *e)
{
	return JFIELD_GET(obj, prefix, key, flags, e,
	    jfield_value_int(v, prefix, key, flags, min, max, ret, e));
}

/* See jfield.h. */
int
jfield_bool(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, bool *ret, struct err *e)
{
	return JFIELD_GET(obj, prefix, key, flags, e,
	    jfield_value_bool(v, prefix, key, flags, ret, e));
}

/* See jfield.h. */
int
jfield_obj(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, struct json_object **ret, struct err *e)
{
	return JFIELD_GET(obj, prefix, key, flags, e,
	    jfield_value_obj(v, prefix, key, flags, ret, e));
}

/* See jfield.h. */
int
jfield_array(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, size_t max_len, struct json_object **ret, struct err *e)
{
	return JFIELD_GET(obj, prefix, key, flags, e,
	    jfield_value_array(v, prefix, key, flags, max_len, ret, e));
}

/* See jfield.h. */
int
jfield_lookup(const char *const *names, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, names[mid]);

		if (c == 0)
			return (int)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* See jfield.h. */
int
jfield_check_keys(struct json_object *obj, const char *prefix,
    const char *const *names, size_t n, struct err *e)
{
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		if (jfield_lookup(names, n, key) < 0)
			return jfield_fail(prefix, key, e, "unknown field");
	}
	return 0;
}

/* See jfield.h. */
char *
jfield_to_text(struct json_object *v)
{
	const char *s = json_object_to_json_string_ext(
	    v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	return s ? strdup(s) : NULL;
}

static void
jfield_add(struct json_object *obj, const char *key, struct json_object *v,
    bool is_null, int *rc)
{
	/* keys are literals added once (see jfield.h): no copy, no lookup */
	if (*rc < 0 || (v == NULL && !is_null) ||
	    json_object_object_add_ex(obj, key, v,
		JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) <
		0) {
		json_object_put(v);
		*rc = -ENOMEM;
	}
}

/* See jfield.h. */
void
jfield_add_str(struct json_object *obj, const char *key, const char *s, int *rc)
{
	if (*rc < 0)
		return;
	jfield_add(
	    obj, key, s ? json_object_new_string(s) : NULL, s == NULL, rc);
}

/* See jfield.h. */
void
jfield_add_int(struct json_object *obj, const char *key, int64_t v, int *rc)
{
	if (*rc < 0)
		return;
	jfield_add(obj, key, json_object_new_int64(v), false, rc);
}

/* See jfield.h. */
void
jfield_add_bool(struct json_object *obj, const char *key, bool v, int *rc)
{
	if (*rc < 0)
		return;
	jfield_add(obj, key, json_object_new_boolean(v), false, rc);
}

/* See jfield.h. */
void
jfield_add_take(
    struct json_object *obj, const char *key, struct json_object *v, int *rc)
{
	if (*rc < 0) {
		json_object_put(v);
		return;
	}
	jfield_add(obj, key, v, true, rc);
}

/* See jfield.h. */
void
jfield_append_take(struct json_object *arr, struct json_object *v, int *rc)
{
	if (*rc < 0 || v == NULL || json_object_array_add(arr, v) < 0) {
		json_object_put(v);
		*rc = -ENOMEM;
	}
}

/* See jfield.h. */
void
jfield_putp(struct json_object **o)
{
	if (*o != NULL)
		json_object_put(*o);
	*o = NULL;
}
