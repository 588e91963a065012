/*
 * xwriter: a thin wrapper around libxml2's xmlTextWriter that writes an
 * indented (two spaces) XML document into memory. Every call returns void
 * and the first error sticks; xwriter_finish() reports it. Element and
 * attribute names must be string literals; values and text are refused
 * unless they are valid UTF-8 without C0 controls other than \t \n \r.
 * The only file that includes <libxml/...> is xwriter.c.
 */
#ifndef HYPERLET_XWRITER_H
#define HYPERLET_XWRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "macro.h"

#define XWRITER_MAX_DEPTH 32

struct xwriter;

/* Builds libxml2's process-wide tables (the parser's, RelaxNG's and XML
 * Schema's built-in types) now. libxml2 2.9 builds them lazily on first
 * use without a lock, so two threads validating at once (libvirt's
 * validating define) race on them: lost tables, and frees of the wrong
 * ones at exit. Call before threads use libxml2; idempotent. */
void xwriter_global_init(void);

/* A new writer (owned; xwriter_free). NULL on OOM. */
struct xwriter *xwriter_new(void);
/* Frees w (NULL is fine). Returns NULL. */
struct xwriter *xwriter_free(struct xwriter *w);
DEFINE_FREEP(struct xwriter, xwriter_free)

/* Names must be literals: the macros refuse anything else at compile
 * time. The trailing-underscore functions are not for direct use. */
#define xwriter_start(w, n) xwriter_start_(w, "" n "")
#define xwriter_attr(w, n, v) xwriter_attr_(w, "" n "", v)
#define xwriter_attr_int(w, n, v) xwriter_attr_int_(w, "" n "", v)
#define xwriter_element_text(w, n, t) xwriter_element_text_(w, "" n "", t)

/* Opens element name. */
void xwriter_start_(struct xwriter *w, const char *name);
/* Closes the innermost open element (as <x/> when it has no content). */
void xwriter_end(struct xwriter *w);
/* Adds attribute name="value" to the element just opened; NULL value
 * omits the attribute. */
void xwriter_attr_(struct xwriter *w, const char *name, const char *value);
void xwriter_attr_int_(struct xwriter *w, const char *name, int64_t value);
/* Writes escaped text content into the current element. */
void xwriter_text(struct xwriter *w, const char *text);
/* Writes v in decimal as text content into the current element. */
void xwriter_text_int(struct xwriter *w, int64_t v);
/* <name>text</name>; NULL text omits the element. */
void xwriter_element_text_(
    struct xwriter *w, const char *name, const char *text);

/*
 * Ends the document and returns its text in *ret_xml (owned, free()) with
 * a trailing newline. Returns 0; or the first error of any earlier call:
 * -EINVAL (invalid UTF-8 or a control character, naming the element or
 * attribute; an element left open or closed too often; nesting deeper
 * than XWRITER_MAX_DEPTH), -ENOMEM, -EIO (libxml2 failed). The writer
 * cannot be used afterwards, only freed.
 */
int xwriter_finish(struct xwriter *w, char **ret_xml, struct err *e);

#endif
