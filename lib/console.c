/*
 * console: reads the tail of a serial console log. See console.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "macro.h"

#define CONSOLE_MAX_ROTATIONS 10 /* path.0 .. path.9 */

/* Reads the last `want` bytes of path (fewer if it is shorter) into the
 * end of buf[0..want). *ret_got: how many; *ret_more: the file had more
 * before them. A missing file reads as empty. Returns 0, 1 (no such
 * file), -EIO. */
static int
read_tail(const char *path, char *buf, size_t want, size_t *ret_got,
    bool *ret_more, struct err *e)
{
	struct stat st;
	size_t got = 0, n;
	off_t start;
	ssize_t k;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return err_set(
		    e, -EIO, "console log %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(
		    e, -EIO, "console log %s: not a regular file", path);
		goto out;
	}
	n = (unsigned long long)st.st_size < want ? (size_t)st.st_size : want;
	start = st.st_size - (off_t)n;
	/* the log may grow meanwhile: read n bytes from start, no more */
	while (got < n) {
		k = pread(
		    fd, buf + (want - n) + got, n - got, start + (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = err_set(e, -EIO, "console log %s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (k == 0)
			break; /* truncated meanwhile */
		got += (size_t)k;
	}
	if (got < n) /* keep what was read at the end of buf */
		memmove(buf + want - got, buf + (want - n), got);
	*ret_got = got;
	*ret_more = start > 0;
out:
	close(fd);
	return rc;
}

/* Removes what Nova's os-getConsoleOutput removes: [\x00-\x08\x0B-\x1F].
 * Returns the new length. */
static size_t
strip_controls(char *s, size_t len)
{
	size_t i, j = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 && ch != '\t' && ch != '\n')
			continue;
		s[j++] = s[i];
	}
	return j;
}

int
console_tail(const char *path, long lines, size_t max_bytes, char **ret,
    size_t *ret_len, struct err *e)
{
	_cleanup_free_ char *buf = NULL, *rot = NULL;
	size_t have = 0, got, len, start, i, size, cap;
	bool more = false, truncated;
	char *out;
	long seen = 0;
	int r;

	if (path == NULL)
		return err_set(e, -EIO, "console log: no path");
	if (max_bytes == 0 || max_bytes > (size_t)64 << 20)
		max_bytes = CONSOLE_MAX_BYTES;
	/* one byte more than is answered: the byte before the answer
	 * tells whether it starts a line */
	cap = max_bytes + 1;
	size = strlen(path) + 16;
	if (!(buf = malloc(cap)) || !(rot = malloc(size)))
		return err_set(e, -ENOMEM, "out of memory");
	/* newest first, each file's tail in front of what was read */
	for (i = 0; lines != 0 && have < cap && i <= CONSOLE_MAX_ROTATIONS;
	     i++) {
		if (i == 0)
			(void)snprintf(rot, size, "%s", path);
		else
			(void)snprintf(rot, size, "%s.%zu", path, i - 1);
		got = 0;
		more = false;
		r = read_tail(rot, buf, cap - have, &got, &more, e);
		if (r < 0)
			return r;
		if (r == 1)
			break; /* no such file: the chain ends */
		have += got;
		/* the next file's tail goes in front: buf[0..cap - have)
		 * is its window */
		if (more)
			break;
	}
	truncated = more || have == cap;
	/* the bytes are buf[cap - have .. cap) */
	start = cap - have;
	len = cap;
	if (lines == 0)
		start = len;
	else {
		/* the last `lines` lines: back over `lines` newlines, the
		 * final newline ending the last line */
		for (i = len; lines > 0 && i > start; i--)
			if (buf[i - 1] == '\n' && i != len && ++seen == lines)
				break;
		if (lines > 0 && i > start)
			start = i;
		else if (truncated) {
			/* the byte bound cut the first line: drop it when a
			 * whole line follows */
			for (i = start; i < len && buf[i] != '\n'; i++)
				;
			if (i + 1 < len)
				start = i + 1;
		}
	}
	if (len - start > max_bytes) /* a line longer than the bound */
		start = len - max_bytes;
	len -= start;
	out = malloc(len + 1);
	if (out == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(out, buf + start, len);
	len = strip_controls(out, len);
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	return 0;
}
