/*
 * Small pure helpers. util.c is the only file that includes <uuid/uuid.h>.
 * UUIDs leave here in lower-case canonical form (8-4-4-4-12); the checks
 * here are the ones every module shares, so that "valid" means one thing.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

#include "util.h"

/*
 * Draws a random (version 4) UUID into out, lower case. The bytes come from
 * getrandom(2) through a small per-thread pool: libuuid's
 * uuid_generate_random() re-seeds random() with several system calls on
 * every call, which cost more than the rest of a create request's model
 * work. libuuid still formats the result. A forked child drops the pool
 * it inherited, or parent and child would hand out the same UUIDs.
 */
static __thread unsigned char pool[256];
static __thread size_t used = sizeof(pool);
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Runs in the child, in the one thread fork() left: its pool is the
 * parent's. */
static void
pool_drop(void)
{
	explicit_bzero(pool, sizeof(pool));
	used = sizeof(pool);
}

static void
pool_init(void)
{
	(void)pthread_atfork(NULL, NULL, pool_drop);
}

void
util_uuid_generate(char out[UUID_STR_LEN])
{
	uuid_t u;

	(void)pthread_once(&pool_once, pool_init);

	if (used + sizeof(u) > sizeof(pool)) {
		size_t got = 0;

		while (got < sizeof(pool)) {
			ssize_t n =
			    getrandom(pool + got, sizeof(pool) - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* No kernel entropy interface: libuuid's way. */
				uuid_generate_random(u);
				uuid_unparse_lower(u, out);
				return;
			}
			got += (size_t)n;
		}
		used = 0;
	}
	memcpy(u, pool + used, sizeof(u));
	explicit_bzero(pool + used, sizeof(u));
	used += sizeof(u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	uuid_unparse_lower(u, out);
}

/* Lower-case hexadecimal digits. */
static const bool util_hex_lower[256] = {
    ['0' ... '9'] = true,
    ['a' ... 'f'] = true,
};

/* True if s is a UUID in lower-case canonical 8-4-4-4-12 form. Every
 * model stage checks the instance's and each BDM's. */
bool
util_uuid_is_canonical(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	if (s == NULL)
		return false;
	/* a NUL before 36 fails here without reading past it */
	for (i = 0; i < 36; i++)
		if (!util_hex_lower[p[i]] &&
		    !(p[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23)))
			return false;
	return p[8] == '-' && p[13] == '-' && p[18] == '-' && p[23] == '-' &&
	    p[36] == '\0';
}

/* Writes the canonical lower-case form of the UUID in to out. Accepts
 * only the 36-character hyphenated form (either case). Returns 0, or
 * -EINVAL (out untouched). */
int
util_uuid_normalize(const char *in, char out[UUID_STR_LEN])
{
	char buf[UUID_STR_LEN];
	size_t i;

	if (in == NULL || strlen(in) != 36)
		return -EINVAL;
	for (i = 0; i < 36; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		buf[i] = c;
	}
	buf[36] = '\0';
	if (!util_uuid_is_canonical(buf))
		return -EINVAL;
	memcpy(out, buf, UUID_STR_LEN);
	return 0;
}

/* True if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool
util_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* The number of characters (code points) in s, a valid UTF-8 string. */
size_t
util_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* True if s[0..len) is UTF-8 text without NUL or C0 control characters
 * other than tab, newline and carriage return, and without DEL. */
bool
util_text_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    c == 0x7f)
			return false;
	}
	return util_utf8_valid(s, len);
}

/* The bytes of a serial: [A-Za-z0-9_.+-]. */
static const bool util_serial_char[256] = {
    ['a' ... 'z'] = true,
    ['A' ... 'Z'] = true,
    ['0' ... '9'] = true,
    ['_'] = true,
    ['.'] = true,
    ['+'] = true,
    ['-'] = true,
};

/* True if s is non-empty and holds only [A-Za-z0-9_.+-]. */
bool
util_serial_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (s == NULL || *s == '\0')
		return false;
	while (util_serial_char[*p])
		p++;
	return *p == '\0';
}

/* True if path is absolute and normalised: no empty, "." or ".."
 * components, no trailing slash, no control characters, at most 1024
 * bytes. One pass over the bytes (the UTF-8 check only for non-ASCII):
 * every domain checks several paths. */
bool
util_path_valid(const char *path)
{
	const unsigned char *p = (const unsigned char *)path;
	unsigned char high = 0;
	size_t i;

	if (path == NULL || path[0] != '/')
		return false;
	for (i = 0; p[i] != '\0'; i++) {
		unsigned char c = p[i];

		if (c < 0x20 || c == 0x7f || i == 1024)
			return false;
		high |= c;
		if (c != '/')
			continue;
		/* an empty, "." or ".." component after this slash */
		if (p[i + 1] == '/')
			return false;
		if (p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == '\0'))
			return false;
		if (p[i + 1] == '.' && p[i + 2] == '.' &&
		    (p[i + 3] == '/' || p[i + 3] == '\0'))
			return false;
	}
	/* "/" alone is fine; any other path must not end in a slash */
	if (i > 1 && p[i - 1] == '/')
		return false;
	return (high & 0x80) == 0 || util_utf8_valid(path, i);
}

/* True if path is valid (util_path_valid) and lies strictly below dir,
 * a valid path itself. No symbolic links are resolved here. */
bool
util_path_under(const char *path, const char *dir)
{
	size_t n;

	if (!util_path_valid(path) || !util_path_valid(dir))
		return false;
	n = strlen(dir);
	if (n == 1)
		return path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/' &&
	    path[n + 1] != '\0';
}

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t
util_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Names the calling thread. See util.h. */
void
util_thread_name(const char *name)
{
	(void)pthread_setname_np(pthread_self(), name);
}

/* Formats ms since the epoch as RFC 3339 UTC with second precision,
 * "2026-11-25T16:00:00Z". */
void
util_rfc3339(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	(void)gmtime_r(&t, &tm);
	(void)strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
