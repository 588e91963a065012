/*
 * Small macros shared by every module: cleanup attributes in the style of
 * systemd (_cleanup_, DEFINE_FREEP, TAKE_PTR), array sizes and printf
 * format checking. No functions with external linkage live here.
 */
#ifndef HYPERLET_MACRO_H
#define HYPERLET_MACRO_H

#include <stdlib.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))

static inline void
freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* DEFINE_FREEP(struct bdm, bdm_free) defines bdm_freep(struct bdm **). */
#define DEFINE_FREEP(type, fn)             \
	static inline void fn##p(type **p) \
	{                                  \
		if (*p)                    \
			(void)fn(*p);      \
	}

/* Returns p and sets it to NULL, so that a cleanup no longer frees it. */
#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) _ptr_ = (p); \
		(p) = NULL;                \
		_ptr_;                     \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define STREQ(a, b) (strcmp((a), (b)) == 0)

#endif
