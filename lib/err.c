/*
 * struct err: the first error wins, so the innermost (most precise)
 * message survives as it travels up. Every setter returns the code, so
 * that `return err_set(e, -EINVAL, "...")` is one line. e may be NULL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static int
err_vset(
    struct err *e, int code, const char *field, const char *fmt, va_list ap)
{
	if (e == NULL || e->code != 0)
		return code;
	e->code = code;
	(void)snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	(void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return code;
}

/* Records code and the formatted message unless an error is already set.
 * Returns code. */
int
err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = err_vset(e, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

/* As err_set, and names the request field at fault. Returns code. */
int
err_set_field(struct err *e, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = err_vset(e, code, field, fmt, ap);
	va_end(ap);
	return code;
}

/* Forgets any error recorded in e. */
void
err_clear(struct err *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->field[0] = '\0';
	e->msg[0] = '\0';
}
