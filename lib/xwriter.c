/*
 * xwriter: libxml2's xmlTextWriter behind a handful of void calls with a
 * sticky error, in the manner of libvirt's virBuffer. Output goes to a
 * memory buffer, indented by two spaces as libvirt formats its XML, with
 * attribute values in double quotes (libxml2 escapes '"' in values, not
 * '\'', so single quotes would be unsafe; it also writes non-ASCII in
 * attribute values as character references, which parse back the same).
 * libxml2 escapes markup but passes control characters through and
 * re-encodes invalid UTF-8, so every value is checked here first. This is the only file that includes
 * <libxml/...>.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>

#include "util.h"
#include "xwriter.h"

struct xwriter {
	xmlBufferPtr buf;
	xmlTextWriterPtr tw;
	const char *stack[XWRITER_MAX_DEPTH]; /* open elements (literals) */
	int depth;
	bool done; /* xwriter_finish ran */
	struct err err; /* the first error; err.code == 0 while none */
};

static bool
xwriter_ok(struct xwriter *w)
{
	return w != NULL && w->err.code == 0 && !w->done;
}

static const char *
xwriter_current(const struct xwriter *w)
{
	return w->depth > 0 ? w->stack[w->depth - 1] : "document";
}

/*
 * Checks that s may go into the document unchanged: UTF-8 (xmlCheckUTF8,
 * and util_utf8_valid for the overlongs and surrogates it lets through),
 * no C0 control other than tab, newline and carriage return, and none of
 * the non-characters U+FFFE and U+FFFF that XML 1.0 excludes. what names
 * the place for the message. Returns true, or false with the error set.
 */
static bool
xwriter_check(struct xwriter *w, const char *s, const char *what_fmt,
    const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)s;
	bool ascii = true;
	char what[128];
	size_t i;

	for (i = 0; p[i]; i++) {
		if (p[i] >= 0x20 && p[i] < 0x80)
			continue;
		if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			break;
		if (p[i] == 0xef && p[i + 1] == 0xbf &&
		    (p[i + 2] == 0xbe || p[i + 2] == 0xbf))
			break;
		if (p[i] >= 0x80)
			ascii = false;
	}
	/* plain ASCII (most values: uuids, paths, literals) is done */
	if (p[i] == '\0' &&
	    (ascii || (xmlCheckUTF8(p) && util_utf8_valid(s, i))))
		return true;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	(void)snprintf(what, sizeof(what), what_fmt, a, b);
#pragma GCC diagnostic pop
	if (p[i] == 0xef)
		(void)err_set(&w->err, -EINVAL,
		    "%s: U+%s is not allowed in XML", what,
		    p[i + 2] == 0xbe ? "FFFE" : "FFFF");
	else if (p[i] != '\0')
		(void)err_set(&w->err, -EINVAL,
		    "%s: control character 0x%02x is not allowed", what, p[i]);
	else
		(void)err_set(&w->err, -EINVAL, "%s: not valid UTF-8", what);
	return false;
}

/* Records a libxml2 failure (rc < 0). On a memory buffer the only cause
 * is allocation. */
static void
xwriter_libxml_failed(struct xwriter *w, int rc, const char *op)
{
	if (rc < 0)
		(void)err_set(&w->err, -ENOMEM, "xml writer: %s failed", op);
}

/* A new writer (owned; xwriter_free). NULL on OOM. */
struct xwriter *
xwriter_new(void)
{
	struct xwriter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->buf = xmlBufferCreateSize(4096);
	if (w->buf == NULL)
		return xwriter_free(w);
	w->tw = xmlNewTextWriterMemory(w->buf, 0);
	if (w->tw == NULL)
		return xwriter_free(w);
	if (xmlTextWriterSetIndent(w->tw, 1) < 0 ||
	    xmlTextWriterSetIndentString(w->tw, BAD_CAST "  ") < 0)
		return xwriter_free(w);
	return w;
}

/* Frees w and everything it holds; NULL is fine. Returns NULL. */
struct xwriter *
xwriter_free(struct xwriter *w)
{
	if (w == NULL)
		return NULL;
	if (w->tw != NULL)
		xmlFreeTextWriter(w->tw);
	if (w->buf != NULL)
		xmlBufferFree(w->buf);
	free(w);
	return NULL;
}

/* Opens element name (a literal, through xwriter_start). */
void
xwriter_start_(struct xwriter *w, const char *name)
{
	if (!xwriter_ok(w))
		return;
	if (w->depth == XWRITER_MAX_DEPTH) {
		(void)err_set(&w->err, -EINVAL,
		    "xml writer: <%s> nests deeper than %d", name,
		    XWRITER_MAX_DEPTH);
		return;
	}
	w->stack[w->depth++] = name;
	xwriter_libxml_failed(w,
	    xmlTextWriterStartElement(w->tw, BAD_CAST name), "start element");
}

/* Closes the innermost open element. */
void
xwriter_end(struct xwriter *w)
{
	if (!xwriter_ok(w))
		return;
	if (w->depth == 0) {
		(void)err_set(&w->err, -EINVAL,
		    "xml writer: end without an open element");
		return;
	}
	w->depth--;
	xwriter_libxml_failed(w, xmlTextWriterEndElement(w->tw), "end element");
}

/* Adds name="value" to the element just opened; a NULL value omits it. */
void
xwriter_attr_(struct xwriter *w, const char *name, const char *value)
{
	if (!xwriter_ok(w) || value == NULL)
		return;
	if (!xwriter_check(
		w, value, "attribute '%s' of <%s>", name, xwriter_current(w)))
		return;
	xwriter_libxml_failed(w,
	    xmlTextWriterWriteAttribute(w->tw, BAD_CAST name, BAD_CAST value),
	    "attribute");
}

/* Adds name="value" in decimal. */
void
xwriter_attr_int_(struct xwriter *w, const char *name, int64_t value)
{
	char buf[24];

	if (!xwriter_ok(w))
		return;
	(void)snprintf(buf, sizeof(buf), "%" PRId64, value);
	xwriter_libxml_failed(w,
	    xmlTextWriterWriteAttribute(w->tw, BAD_CAST name, BAD_CAST buf),
	    "attribute");
}

/* Writes text (escaped) into the current element; NULL writes nothing. */
void
xwriter_text(struct xwriter *w, const char *text)
{
	if (!xwriter_ok(w) || text == NULL)
		return;
	if (!xwriter_check(w, text, "text of <%s>%s", xwriter_current(w), ""))
		return;
	xwriter_libxml_failed(
	    w, xmlTextWriterWriteString(w->tw, BAD_CAST text), "text");
}

/* <name>text</name>; a NULL text omits the element. */
void
xwriter_element_text_(struct xwriter *w, const char *name, const char *text)
{
	if (!xwriter_ok(w) || text == NULL)
		return;
	xwriter_start_(w, name);
	xwriter_text(w, text);
	xwriter_end(w);
}

/*
 * Ends the document; returns 0 with its text in *ret_xml (owned, free()),
 * ending in a newline, or the first error of any call (see xwriter.h).
 * *ret_xml is untouched on failure.
 */
int
xwriter_finish(struct xwriter *w, char **ret_xml, struct err *e)
{
	const xmlChar *content;
	char *xml;
	int len;

	if (w == NULL)
		return err_set(e, -ENOMEM, "xml writer: out of memory");
	if (w->done && w->err.code == 0)
		(void)err_set(&w->err, -EINVAL, "xml writer: already finished");
	if (w->err.code == 0 && w->depth > 0)
		(void)err_set(&w->err, -EINVAL, "xml writer: <%s> left open",
		    w->stack[w->depth - 1]);
	w->done = true;
	if (w->err.code == 0)
		xwriter_libxml_failed(
		    w, xmlTextWriterEndDocument(w->tw), "end document");
	if (w->err.code == 0)
		xwriter_libxml_failed(w, xmlTextWriterFlush(w->tw), "flush");
	if (w->err.code != 0) {
		if (e != NULL && e->code == 0)
			*e = w->err;
		return w->err.code;
	}

	content = xmlBufferContent(w->buf);
	len = xmlBufferLength(w->buf);
	xml = malloc((size_t)len + 2);
	if (xml == NULL)
		return err_set(e, -ENOMEM, "xml writer: out of memory");
	memcpy(xml, content, (size_t)len);
	if (len == 0 || xml[len - 1] != '\n')
		xml[len++] = '\n';
	xml[len] = '\0';
	*ret_xml = xml;
	return 0;
}
