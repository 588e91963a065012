/*
 * console: the tail of an instance's serial console log, the file the
 * domain's <serial type='file'> writes (domxml.c: <instance_dir>/console.log)
 * and that virtlogd may rotate to console.log.0, .1, ... Pure file I/O:
 * no libvirt call, so it may run on an HTTP worker.
 */
#ifndef HYPERLET_CONSOLE_H
#define HYPERLET_CONSOLE_H

#include <stddef.h>

#include "err.h"

/* The log's name in the instance directory (as domxml.c writes it). */
#define CONSOLE_LOG_NAME "console.log"
/* At most this many lines may be asked for. */
#define CONSOLE_MAX_LINES 10000
/* At most this many bytes of the log are read, whatever the line count:
 * Nova's MAX_CONSOLE_BYTES (100 KiB), so a reply stays small and quick. */
#define CONSOLE_MAX_BYTES (100 * 1024)

/*
 * The last `lines` lines of the log at path (lines < 0: every line),
 * taken from at most max_bytes bytes at its end; when path holds fewer,
 * the rotated files path.0, path.1, ... (newest first) are read on, as
 * Nova does. A trailing newline ends the last line; a line the byte
 * bound cut at its start is dropped. Control characters other than tab
 * and newline (carriage returns, escape sequences, NULs) are removed, as
 * Nova's os-getConsoleOutput does. A log that does not exist (yet) is
 * empty. The file is never followed through a symlink and must be a
 * regular file. Returns 0 and *ret (owned, NUL-terminated) with
 * *ret_len, -EIO (unreadable, named in e), -ENOMEM.
 */
int console_tail(const char *path, long lines, size_t max_bytes, char **ret,
    size_t *ret_len, struct err *e);

#endif
