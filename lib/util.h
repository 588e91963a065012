/*
 * Checks and helpers that many modules need: UUIDs (libuuid lives only in
 * util.c), UTF-8 and control-character checks, serial character sets,
 * normalised absolute paths and wall-clock time.
 */
#ifndef HYPERLET_UTIL_H
#define HYPERLET_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

void util_uuid_generate(char out[UUID_STR_LEN]);
int util_uuid_normalize(const char *in, char out[UUID_STR_LEN]);
bool util_uuid_is_canonical(const char *s);
bool util_utf8_valid(const char *s, size_t len);
size_t util_utf8_chars(const char *s);
bool util_text_valid(const char *s, size_t len);
bool util_serial_valid(const char *s);
bool util_path_valid(const char *path);
bool util_path_under(const char *path, const char *dir);
int64_t util_now_ms(void);
void util_rfc3339(int64_t ms, char out[32]);
/* Names the calling thread (at most 15 characters) for ps, top -H and
 * perf; failure is ignored. */
void util_thread_name(const char *name);

#endif
