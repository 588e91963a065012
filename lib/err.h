/*
 * Message-bearing errors. A struct err carries a negative errno, the
 * request field at fault (if any) and a one-line message that is safe to
 * show to an API client. The first error set wins.
 */
#ifndef HYPERLET_ERR_H
#define HYPERLET_ERR_H

#include "macro.h"

#define ERR_FIELD_MAX 128
#define ERR_MSG_MAX 256

struct err {
	int code; /* negative errno, 0 when unset */
	char field
	    [ERR_FIELD_MAX]; /* "block_device_mapping_v2[2].volume_size" or "" */
	char msg[ERR_MSG_MAX];
};

int err_set(struct err *e, int code, const char *fmt, ...) _printf_(3, 4);
int err_set_field(struct err *e, int code, const char *field, const char *fmt,
    ...) _printf_(4, 5);
void err_clear(struct err *e);

#endif
