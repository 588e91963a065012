/*
 * log: the daemon's one log stream, on stderr. Under systemd
 * ($JOURNAL_STREAM set) each line starts with a "<N>" syslog priority that
 * journald parses, and nothing else; otherwise with an RFC 3339 UTC
 * timestamp and the level name. Each line is one write(2), so threads never
 * interleave inside a line. Levels are <syslog.h>'s LOG_ERR, LOG_WARNING,
 * LOG_INFO and LOG_DEBUG. lib/ modules log only at debug (style.md 3).
 */
#ifndef HYPERLET_LOG_H
#define HYPERLET_LOG_H

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Sets the level and the output style (journal prefix when
 * $JOURNAL_STREAM is set and names stderr). Call once, before threads;
 * logging works before it (level info, plain style). */
void log_init(int level);

/* Changes the level (SIGHUP); safe from any thread. */
void log_set_level(int level);
int log_get_level(void);

/* True if a message at level would be written. */
bool log_enabled(int level);

/* Re-examines stderr after SIGHUP (a log file reopened by the supervisor
 * keeps the same fd: nothing to do today). */
void log_reopen(void);

/* level name <-> value: "err", "warn", "info", "debug". */
const char *log_level_to_string(int level);
int log_level_from_string(const char *s, int *ret);

/* Writes one line (a trailing newline is added; embedded newlines and
 * control characters are escaped so one call is one line). */
void log_write(int level, const char *fmt, ...) _printf_(2, 3);

void log_err(const char *fmt, ...) _printf_(1, 2);
void log_warn(const char *fmt, ...) _printf_(1, 2);
void log_info(const char *fmt, ...) _printf_(1, 2);
/* Arguments are not evaluated when debug is off. */
#define log_debug(...)                                     \
	do {                                               \
		if (log_enabled(LOG_DEBUG))                \
			log_write(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
