/*
 * jwriter: a streaming JSON writer that appends straight into one growing
 * buffer, for responses too large to build as json-c trees (the instance
 * list). Its output is byte for byte what json-c prints with
 * JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE: no whitespace,
 * json-c's string escaping. Every call returns void and the first error
 * sticks; jwriter_finish() reports it. Keys must be string literals
 * that need no escaping.
 * Commas go in by themselves; the caller keeps objects and arrays balanced.
 */
#ifndef HYPERLET_JWRITER_H
#define HYPERLET_JWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A writer: zero it (or jwriter_init) before use, jwriter_reset after. */
struct jwriter {
	char *buf; /* owned; NUL-terminated whenever len < cap */
	size_t len, cap;
	int err; /* the first error (-ENOMEM), or 0 */
	bool sep; /* a value ended: the next key or value needs a comma */
};

/* Starts an empty writer; with hint > 0, reserves that many bytes. */
void jwriter_init(struct jwriter *w, size_t hint);
/* Frees the buffer and empties w (it can be used again). */
void jwriter_reset(struct jwriter *w);

/* Writes "key": with key a string literal that needs no escaping (no ",
 * backslash or control character): it is copied as it is, quotes and
 * colon included, in one go (keys are half of an instance's text). */
#define jwriter_key(w, k) jwriter_key_(w, "\"" k "\":", sizeof(k) + 2)
/* Not for direct use: writes quoted, len bytes with quotes and colon. */
void jwriter_key_(struct jwriter *w, const char *quoted, size_t len);

/* Writes "key": for a key that is data (escaped as a string value). */
void jwriter_key_str(struct jwriter *w, const char *key);
void jwriter_obj_begin(struct jwriter *w);
void jwriter_obj_end(struct jwriter *w);
void jwriter_arr_begin(struct jwriter *w);
void jwriter_arr_end(struct jwriter *w);
/* A string value, escaped as json-c does; NULL writes null. */
void jwriter_str(struct jwriter *w, const char *s);
void jwriter_int(struct jwriter *w, int64_t v);
void jwriter_bool(struct jwriter *w, bool v);
void jwriter_null(struct jwriter *w);

/*
 * Writes text, a JSON value, as it is, if it is already in the form
 * json-c prints (no whitespace, json-c's escapes, integers only, at most
 * JWRITER_MAX_DEPTH deep), so that the output is what parsing it with
 * json-c and printing it again would give. Returns 0; -EINVAL when text
 * is NULL, not JSON or not in that form: then nothing is written and the
 * caller writes the value another way. Duplicate keys are not looked for
 * (json-c never prints them).
 */
#define JWRITER_MAX_DEPTH 32
int jwriter_json_text(struct jwriter *w, const char *text);
/* Writes len bytes of JSON the caller vouches for as one value. */
void jwriter_raw(struct jwriter *w, const char *json, size_t len);

/*
 * Returns 0 with the text in *ret (owned, NUL-terminated, free()) and its
 * length in *ret_len, and empties w; or the first error (-ENOMEM) of any
 * earlier call, with w reset and the out-parameters untouched.
 */
int jwriter_finish(struct jwriter *w, char **ret, size_t *ret_len);

#endif
