/*
 * log: the daemon's log stream on stderr. The only process-wide state is the
 * level and the output style, both atomics (SIGHUP changes them while
 * request threads log). A line is formatted into a stack buffer of PIPE_BUF
 * bytes (longer messages are cut) and written with one write(2), which
 * keeps lines from different threads whole (stderr is a pipe or socket to
 * journald, or a terminal). Control characters in a message are escaped,
 * so a client-controlled string cannot forge a line.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* a whole line, prefix and newline included, in one atomic pipe write */
#define LOG_LINE_MAX PIPE_BUF

static _Atomic int log_level = LOG_INFO;
static atomic_bool log_journal; /* log_init, and log_reopen on SIGHUP */

static const struct {
	int level;
	const char *name;
} log_levels[] = {
    {LOG_ERR, "err"},
    {LOG_WARNING, "warn"},
    {LOG_INFO, "info"},
    {LOG_DEBUG, "debug"},
};

static bool journal_stream_is_stderr(void);
static size_t log_escape(char *dst, size_t cap, const char *src);

/* $JOURNAL_STREAM is "device:inode" of the stream systemd connected to
 * journald; it only counts if stderr is still that stream (a child whose
 * stderr was redirected inherits the variable). */
static bool
journal_stream_is_stderr(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* Sets the level and chooses the journal prefix style when stderr is the
 * journal stream. Call once before starting threads. */
void
log_init(int level)
{
	atomic_store(&log_journal, journal_stream_is_stderr());
	log_set_level(level);
}

/* Changes the level; levels outside LOG_ERR..LOG_DEBUG are clamped. */
void
log_set_level(int level)
{
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	atomic_store(&log_level, level);
}

/* The current level. */
int
log_get_level(void)
{
	return atomic_load(&log_level);
}

/* True if a message at level would be written now. */
bool
log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

/* SIGHUP: stderr belongs to the supervisor, so there is nothing to reopen;
 * the journal style is re-examined in case stderr changed. */
void
log_reopen(void)
{
	atomic_store(&log_journal, journal_stream_is_stderr());
}

/* "err", "warn", "info", "debug"; "?" for anything else (static). */
const char *
log_level_to_string(int level)
{
	for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
		if (log_levels[i].level == level)
			return log_levels[i].name;
	return "?";
}

/* Parses a level name. Returns 0 and *ret, or -EINVAL. */
int
log_level_from_string(const char *s, int *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
		if (STREQ(log_levels[i].name, s)) {
			*ret = log_levels[i].level;
			return 0;
		}
	return -EINVAL;
}

/* Copies src into dst (capacity cap, NUL-terminated), escaping control
 * characters as \n, \t or \xNN. Returns the length written. */
static size_t
log_escape(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char tmp[5];
		size_t l;

		if (*p == '\n')
			l = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
		else if (*p == '\t')
			l = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			l = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
		else {
			tmp[0] = (char)*p;
			l = 1;
		}
		if (n + l >= cap)
			break;
		memcpy(dst + n, tmp, l);
		n += l;
	}
	dst[n] = '\0';
	return n;
}

static void
log_vwrite(int level, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX];
	size_t n;
	int saved = errno; /* callers may log and then look at errno */

	if (!log_enabled(level))
		return;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (atomic_load(&log_journal))
		n = (size_t)snprintf(line, sizeof(line), "<%d>", level);
	else {
		int64_t ms = util_now_ms();
		time_t t = (time_t)(ms / 1000);
		struct tm tm;
		char ts[32];

		(void)gmtime_r(&t, &tm);
		(void)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		n = (size_t)snprintf(line, sizeof(line), "%s.%03dZ %s: ", ts,
		    (int)(ms % 1000), log_level_to_string(level));
	}
	n += log_escape(line + n, sizeof(line) - n - 1, msg);
	line[n++] = '\n';
	/* one write(2) per line; a short write to a full pipe is not retried
	 * beyond EINTR (a log line is not worth blocking on forever) */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

/* Writes one line at level (see log.h). */
void
log_write(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

/* Writes one line at LOG_ERR. */
void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERR, fmt, ap);
	va_end(ap);
}

/* Writes one line at LOG_WARNING. */
void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap);
	va_end(ap);
}

/* Writes one line at LOG_INFO. */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap);
	va_end(ap);
}
