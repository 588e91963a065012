/*
 * xwriter: libxml2's xmlTextWriter behind a handful of void calls with a
 * sticky error, in the manner of libvirt's virBuffer. Output goes to a
 * memory buffer, indented by two spaces as libvirt formats its XML, with
 * attribute values in double quotes (libxml2 escapes '"' in values, not
 * '\'', so single quotes would be unsafe; it also writes non-ASCII in
 * attribute values as character references, which parse back the same).
 * libxml2 escapes markup but passes control characters through and
 * re-encodes invalid UTF-8, so every value is checked here first.
 * The indentation is ours, not xmlTextWriterSetIndent's: libxml2 writes
 * it one level per call into its output buffer (each write costs ~150
 * instructions), while xwriter_space() writes the same bytes in one call;
 * output is byte for byte what libxml2's indenting gave. Every element,
 * attribute and text still goes through xmlTextWriter. A value made only
 * of bytes that libxml2's escaping copies unchanged (printable ASCII but
 * '"', '&', '<' and '>'; most values: uuids, paths, names) is written
 * with xmlTextWriterWriteRawLen inside the attribute or element that
 * xmlTextWriter opened, which skips its escaping pass (a copy and a
 * malloc for text) and gives the same bytes; anything else is escaped by
 * libxml2. The writer writes straight into its xmlOutputBuffer (no
 * encoder, no second buffer). This is the only file that includes
 * <libxml/...>.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/xmlschemastypes.h>
#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>

#include "util.h"
#include "xwriter.h"

struct xwriter {
	xmlOutputBufferPtr out; /* owned by tw once tw exists */
	xmlTextWriterPtr tw;
	const char *stack[XWRITER_MAX_DEPTH]; /* open elements (literals) */
	/* The indentation state, as xmlTextWriter keeps it when indenting:
	 * has_content[i]: stack[i]'s start tag is closed ('>' written: it has
	 * a child or text); newline_owed: an element just ended, and its
	 * "\n" is still to be written; indent_end: the next end tag of an
	 * element with content goes on a line of its own (false right after
	 * text, so <a>text</a> stays on one line). */
	bool has_content[XWRITER_MAX_DEPTH];
	bool newline_owed;
	bool indent_end;
	int depth;
	bool done; /* xwriter_finish ran */
	struct err err; /* the first error; err.code == 0 while none */
};

/* "\n" and enough two-space indentation for XWRITER_MAX_DEPTH levels. */
static const char xwriter_ws[] = "\n"
				 "                                "
				 "                                ";
_Static_assert(sizeof(xwriter_ws) - 2 >= 2 * XWRITER_MAX_DEPTH,
    "xwriter_ws holds too little indentation");

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

/* The bytes libxml2 writes unchanged both in attribute values
 * (xmlBufAttrSerializeTxtContent) and in text (xmlEncodeSpecialChars):
 * printable ASCII except '"', '&', '<' and '>'. DEL, tab, newline, carriage
 * return and non-ASCII go the escaping way. */
static const bool xwriter_verbatim[256] = {
    [0x20 ... 0x21] = true, /* '"' is 0x22 */
    [0x23 ... 0x25] = true, /* '&' is 0x26 */
    [0x27 ... 0x3b] = true, /* '<' is 0x3c */
    [0x3d] = true, /* '>' is 0x3e */
    [0x3f ... 0x7e] = true,
};

/* The length of s if every byte of it is verbatim (above), else -1. */
static ssize_t
xwriter_verbatim_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (xwriter_verbatim[p[i]])
		i++;
	return p[i] == '\0' ? (ssize_t)i : -1;
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

/*
 * Writes the whitespace libxml2 would write before the next tag or text
 * when indenting: the newline owed by the last end tag (or by a start tag
 * just closed), then indent levels of two spaces. One raw write of
 * whitespace; a pending '>' of the enclosing start tag is written by
 * libxml2 first, as for any content.
 */
static void
xwriter_space(struct xwriter *w, bool newline, int indent)
{
	const char *ws = newline ? xwriter_ws : xwriter_ws + 1;
	int len = (newline ? 1 : 0) + 2 * indent;

	w->newline_owed = false;
	if (len > 0)
		xwriter_libxml_failed(w,
		    xmlTextWriterWriteRawLen(w->tw, BAD_CAST ws, len),
		    "indent");
}

/* Formats v in decimal into buf (at least 21 bytes); returns buf. */
static char *
xwriter_fmt_int(char *buf, int64_t v)
{
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	char tmp[20];
	size_t n = 0, i = 0;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		buf[i++] = '-';
	while (n > 0)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
	return buf;
}

/* A new writer (owned; xwriter_free). NULL on OOM. */
struct xwriter *
xwriter_new(void)
{
	struct xwriter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	/* no encoder: the text is UTF-8 as given; no write callback: it
	 * stays in out's buffer until xwriter_finish copies it */
	w->out = xmlAllocOutputBuffer(NULL);
	if (w->out == NULL)
		return xwriter_free(w);
	/* not xmlTextWriterSetIndent: xwriter_space() indents */
	w->tw = xmlNewTextWriter(w->out);
	if (w->tw == NULL)
		return xwriter_free(w);
	w->indent_end = true;
	return w;
}

/* Frees w and everything it holds; NULL is fine. Returns NULL. */
struct xwriter *
xwriter_free(struct xwriter *w)
{
	if (w == NULL)
		return NULL;
	if (w->tw != NULL)
		xmlFreeTextWriter(w->tw); /* closes out */
	else if (w->out != NULL)
		(void)xmlOutputBufferClose(w->out);
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
	/* a new line for the tag (the raw write first makes libxml2 close
	 * the parent's start tag with '>', as any content does) */
	xwriter_space(w,
	    w->newline_owed || (w->depth > 0 && !w->has_content[w->depth - 1]),
	    w->depth);
	if (w->depth > 0)
		w->has_content[w->depth - 1] = true;
	w->has_content[w->depth] = false;
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
	/* <x/> stays where it is; an end tag after children goes on a line
	 * of its own, one after text does not */
	if (w->has_content[w->depth])
		xwriter_space(w, w->newline_owed, w->indent_end ? w->depth : 0);
	w->indent_end = true;
	w->newline_owed = true;
	xwriter_libxml_failed(w, xmlTextWriterEndElement(w->tw), "end element");
}

/* name="value" through xmlTextWriter: value (len bytes, all verbatim)
 * goes raw between the attribute's quotes, which escaping would leave
 * as it is. */
static void
xwriter_attr_verbatim(
    struct xwriter *w, const char *name, const char *value, ssize_t len)
{
	int rc = xmlTextWriterStartAttribute(w->tw, BAD_CAST name);

	if (rc >= 0 && len > 0)
		rc = xmlTextWriterWriteRawLen(w->tw, BAD_CAST value, (int)len);
	if (rc >= 0)
		rc = xmlTextWriterEndAttribute(w->tw);
	xwriter_libxml_failed(w, rc, "attribute");
}

/* Adds name="value" to the element just opened; a NULL value omits it. */
void
xwriter_attr_(struct xwriter *w, const char *name, const char *value)
{
	ssize_t len;

	if (!xwriter_ok(w) || value == NULL)
		return;
	if ((len = xwriter_verbatim_len(value)) >= 0) {
		xwriter_attr_verbatim(w, name, value, len);
		return;
	}
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
	xwriter_fmt_int(buf, value);
	xwriter_attr_verbatim(w, name, buf, (ssize_t)strlen(buf));
}

/* Writes text (escaped) into the current element; NULL writes nothing. */
void
xwriter_text(struct xwriter *w, const char *text)
{
	ssize_t len;

	if (!xwriter_ok(w) || text == NULL)
		return;
	len = xwriter_verbatim_len(text);
	if (len < 0 &&
	    !xwriter_check(w, text, "text of <%s>%s", xwriter_current(w), ""))
		return;
	/* text after a child element starts on a new line (not "", which
	 * writes nothing: the newline stays owed) */
	if (w->newline_owed && text[0] != '\0')
		xwriter_space(w, true, 0);
	if (w->depth > 0)
		w->has_content[w->depth - 1] = true;
	w->indent_end = false;
	/* raw, verbatim text: the '>' still owed by the start tag is
	 * written first, as for escaped text */
	if (len >= 0)
		xwriter_libxml_failed(w,
		    xmlTextWriterWriteRawLen(w->tw, BAD_CAST text, (int)len),
		    "text");
	else
		xwriter_libxml_failed(
		    w, xmlTextWriterWriteString(w->tw, BAD_CAST text), "text");
}

/* Writes v in decimal as text into the current element. */
void
xwriter_text_int(struct xwriter *w, int64_t v)
{
	char buf[24];

	xwriter_text(w, xwriter_fmt_int(buf, v));
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

	content = xmlOutputBufferGetContent(w->out);
	len = (int)xmlOutputBufferGetSize(w->out);
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

/* libxml2's lazily built global tables, built now (see xwriter.h). */
void
xwriter_global_init(void)
{
	xmlInitParser();
	(void)xmlRelaxNGInitTypes();
	xmlSchemaInitTypes();
}
