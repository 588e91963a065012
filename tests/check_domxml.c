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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <libxml/xpath.h>

#include <json-c/json.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"
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

/* "<a v=\"VALUE\">VALUE</a>\n" as libxml2's own xmlTextWriter escapes
 * it (owned). */
static char *
libxml2_reference(const char *value)
{
	xmlBufferPtr b = xmlBufferCreate();
	xmlTextWriterPtr tw = xmlNewTextWriterMemory(b, 0);
	char *ref;

	ck_assert_ptr_nonnull(tw);
	ck_assert_int_ge(xmlTextWriterStartElement(tw, BAD_CAST "a"), 0);
	ck_assert_int_ge(
	    xmlTextWriterWriteAttribute(tw, BAD_CAST "v", BAD_CAST value), 0);
	ck_assert_int_ge(xmlTextWriterWriteString(tw, BAD_CAST value), 0);
	ck_assert_int_ge(xmlTextWriterEndElement(tw), 0);
	ck_assert_int_ge(xmlTextWriterFlush(tw), 0);
	ref = malloc((size_t)xmlBufferLength(b) + 2);
	ck_assert_ptr_nonnull(ref);
	sprintf(ref, "%s\n", (const char *)xmlBufferContent(b));
	xmlFreeTextWriter(tw);
	xmlBufferFree(b);
	return ref;
}

/* xwriter writes values made of verbatim bytes raw (no escaping pass):
 * every byte it accepts must come out as libxml2's escaping writes it. */
START_TEST(test_xwriter_writes_every_byte_as_libxml2_escapes_it)
{
	char value[8];
	struct err e = {0};
	char *xml = NULL, *ref;
	struct xwriter *w;
	int c = _i;

	if (c == 0)
		value[0] = '\0'; /* the empty value: <a v="">, then "" text */
	else
		(void)snprintf(value, sizeof(value), "x%cy", c);
	w = xwriter_new();
	ck_assert_ptr_nonnull(w);
	xwriter_start(w, "a");
	xwriter_attr(w, "v", value);
	xwriter_text(w, value);
	xwriter_end(w);
	ck_assert_int_eq(xwriter_finish(w, &xml, &e), 0);
	ref = libxml2_reference(value);
	ck_assert_str_eq(xml, ref);
	free(ref);
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
	/* 0 (empty), then tab, newline, carriage return and 0x20-0x7f */
	tcase_add_loop_test(
	    tc, test_xwriter_writes_every_byte_as_libxml2_escapes_it, 0, 1);
	tcase_add_loop_test(
	    tc, test_xwriter_writes_every_byte_as_libxml2_escapes_it, 9, 11);
	tcase_add_loop_test(
	    tc, test_xwriter_writes_every_byte_as_libxml2_escapes_it, 13, 14);
	tcase_add_loop_test(
	    tc, test_xwriter_writes_every_byte_as_libxml2_escapes_it, 32, 128);
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

/* ---- domxml: inputs through the real chain ------------------------- */

/* An instance and its blockinfo, built from a request file the way the
 * API builds them. */
struct built {
	struct instance *inst;
	struct blockinfo *bi;
	char dir[256]; /* the instance directory the opts point at */
	char base[256];
	struct domxml_opts o;
};

static void
built_free(struct built *b)
{
	b->bi = blockinfo_free(b->bi);
	b->inst = instance_free(b->inst);
}

/* The limits of a request: defaults, or those of <request>.config.json
 * beside it (the tests/data/golden convention). */
static void
request_limits(const char *path, struct bdm_limits *lim)
{
	char cfg[600];
	struct json_object *o, *v;
	char *text;
	size_t n = strlen(path);

	ck_assert(n > 5 && n < 500);
	(void)snprintf(
	    cfg, sizeof(cfg), "%.*s.config.json", (int)(n - 5), path);
	text = testutil_read_file(cfg, NULL);
	if (text == NULL)
		return;
	o = json_tokener_parse(text);
	ck_assert_msg(o != NULL, "%s: not JSON", cfg);
	if (json_object_object_get_ex(o, "max_local_block_devices", &v))
		lim->max_local_block_devices = json_object_get_int(v);
	if (json_object_object_get_ex(o, "max_disk_devices_to_attach", &v))
		lim->max_disk_devices_to_attach = json_object_get_int(v);
	json_object_put(o);
	free(text);
}

/* Parses, prepares and maps tests/data/<request>, and fills default
 * options: local disks under /var/lib/hyperlet/instances/<uuid>, the root
 * overlay backed by /var/lib/hyperlet/images/<imageRef>. A BDM the
 * request gave no bdm_uuid gets "<index+1 as %08x>-0000-4000-8000-
 * 000000000000" after prepare (as tests/data/golden's expectations and
 * check_blockinfo do), so golden files stay the same from run to run. */
static void
build(const char *request, struct built *b)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct err e = {0};
	char path[512];
	char *body;
	size_t len;

	memset(b, 0, sizeof(*b));
	(void)snprintf(
	    path, sizeof(path), "%s/%s", testutil_data_dir(), request);
	request_limits(path, &lim);
	body = testutil_read_file(path, &len);
	ck_assert_msg(body != NULL, "cannot read %s", path);
	ck_assert_msg(bdm_json_parse_create(body, len, &b->inst, &e) == 0,
	    "%s: parse: %s %s", request, e.field, e.msg);
	free(body);
	ck_assert_msg(bdm_instance_prepare(b->inst, &lim, &e) == 0,
	    "%s: prepare: %s %s", request, e.field, e.msg);
	for (size_t i = 0; i < b->inst->n_bdms; i++)
		if (!b->inst->bdms[i].uuid_given)
			(void)snprintf(b->inst->bdms[i].uuid, UUID_STR_LEN,
			    "%08x-0000-4000-8000-000000000000",
			    (unsigned)i + 1);
	ck_assert_msg(blockinfo_build(b->inst, &lim, &b->bi, &e) == 0,
	    "%s: blockinfo: %s %s", request, e.field, e.msg);
	(void)snprintf(b->dir, sizeof(b->dir), "/var/lib/hyperlet/instances/%s",
	    b->inst->uuid);
	b->o.virt_type = "kvm";
	b->o.instance_dir = b->dir;
	if (b->inst->image_ref != NULL) {
		(void)snprintf(b->base, sizeof(b->base),
		    "/var/lib/hyperlet/images/%s", b->inst->image_ref);
		b->o.base_image_path = b->base;
		b->o.base_image_format = "qcow2";
	}
}

/* The options a test boot uses: TCG, direct kernel boot, no restart. */
static void
opts_tcg_kernel_boot(struct domxml_opts *o)
{
	o->virt_type = "qemu";
	o->kernel = "/var/lib/hyperlet/boot/vmlinuz";
	o->initrd = "/var/lib/hyperlet/boot/initrd.img";
	o->cmdline = "console=ttyS0 panic=-1";
	o->on_reboot = "destroy";
	o->disk_cache = "writeback";
	o->console_log = "/var/log/hyperlet/console.log";
}

/* The base image is an ISO 9660 image (images format iso). */
static void
opts_iso_base(struct domxml_opts *o)
{
	o->base_image_format = "iso";
}

struct golden_case {
	const char *name; /* tests/data/domxml/<name>.xml */
	const char *request; /* under tests/data/ */
	void (*opts)(struct domxml_opts *o); /* NULL: the defaults */
};

static const struct golden_case golden_cases[] = {
    {"local-virtio", "domxml/local-virtio.json", NULL},
    {"iso-image-root", "golden/iso_image_root_flavor_root_gb.json",
	opts_iso_base},
    {"local-virtio-tcg", "domxml/local-virtio.json", opts_tcg_kernel_boot},
    {"scsi-volumes", "domxml/scsi-volumes.json", NULL},
    {"boot-from-volume", "domxml/boot-from-volume.json", NULL},
    {"config-drive", "domxml/config-drive.json", NULL},
    {"q35-config-drive", "domxml/q35-config-drive.json", NULL},
    {"lun", "domxml/lun.json", NULL},
    {"nic-bridge", "domxml/nic-bridge.json", NULL},
    {"nic-network", "domxml/nic-network.json", NULL},
    {"odd-name", "domxml/odd-name.json",
	NULL}, /* the request cases of tests/data/golden (Nova-derived mappings) */
    {"golden-blank-volumes", "golden/blank_volumes.json", NULL},
    {"golden-boot-from-volume", "golden/boot_from_volume.json", NULL},
    {"golden-boot-from-volume-flavor-disks",
	"golden/boot_from_volume_flavor_disks.json", NULL},
    {"golden-bootable-second-volume", "golden/bootable_second_volume.json",
	NULL},
    {"golden-cdrom-bus-override", "golden/cdrom_bus_override.json", NULL},
    {"golden-cdrom-volume", "golden/cdrom_volume.json", NULL},
    {"golden-config-drive", "golden/config_drive.json", NULL},
    {"golden-ephemeral-without-size", "golden/ephemeral_without_size.json",
	NULL},
    {"golden-explicit-device-names", "golden/explicit_device_names.json", NULL},
    {"golden-explicit-names-skipped", "golden/explicit_names_skipped.json",
	NULL},
    {"golden-explicit-root-name", "golden/explicit_root_name.json", NULL},
    {"golden-generated-bdm-uuids", "golden/generated_bdm_uuids.json", NULL},
    {"golden-ide-config-drive-fills-bus",
	"golden/ide_config_drive_fills_bus.json", NULL},
    {"golden-ide-disks", "golden/ide_disks.json", NULL},
    {"golden-image-five-disks", "golden/image_five_disks.json", NULL},
    {"golden-image-flavor-ephemeral-swap",
	"golden/image_flavor_ephemeral_swap.json", NULL},
    {"golden-image-flavor-only", "golden/image_flavor_only.json", NULL},
    {"golden-image-root-bdm", "golden/image_root_bdm.json", NULL},
    {"golden-image-to-volume", "golden/image_to_volume.json", NULL},
    {"golden-lun-volume", "golden/lun_volume.json", NULL},
    {"golden-max-disk-devices-ok", "golden/max_disk_devices_ok.json", NULL},
    {"golden-q35-cdrom-volume", "golden/q35_cdrom_volume.json", NULL},
    {"golden-q35-config-drive-sata", "golden/q35_config_drive_sata.json", NULL},
    {"golden-root-volume-not-first", "golden/root_volume_not_first.json", NULL},
    {"golden-sata-disks", "golden/sata_disks.json", NULL},
    {"golden-scsi-disks", "golden/scsi_disks.json", NULL},
    {"golden-several-ephemerals", "golden/several_ephemerals.json", NULL},
    {"golden-snapshot-to-volume", "golden/snapshot_to_volume.json", NULL},
    {"golden-swap-and-ephemeral-from-bdms",
	"golden/swap_and_ephemeral_from_bdms.json", NULL},
    {"golden-swap-from-bdm", "golden/swap_from_bdm.json", NULL},
    {"golden-swap-from-flavor", "golden/swap_from_flavor.json", NULL},
    {"golden-tagged-volume-keeps-fields",
	"golden/tagged_volume_keeps_fields.json", NULL},
    {"golden-virtio-scsi", "golden/virtio_scsi.json", NULL},
    {"golden-volume-bus-scsi", "golden/volume_bus_scsi.json", NULL},
    {"golden-volume-kinds-order", "golden/volume_kinds_order.json", NULL},
    {"golden-volume-name-implies-bus", "golden/volume_name_implies_bus.json",
	NULL},
};

/* Compares xml with tests/data/domxml/<name>.xml byte for byte, or
 * rewrites that file when UPDATE_GOLDEN is set. */
static void
golden_compare(const char *name, const char *xml)
{
	const char *update = getenv("UPDATE_GOLDEN");
	char path[512];
	char *want;
	size_t line = 1, i;

	(void)snprintf(
	    path, sizeof(path), "%s/domxml/%s.xml", testutil_data_dir(), name);
	if (update != NULL && *update != '\0' && !STREQ(update, "0")) {
		FILE *f = fopen(path, "w");

		ck_assert_msg(f != NULL, "cannot write %s", path);
		ck_assert_int_eq(fputs(xml, f) >= 0, 1);
		ck_assert_int_eq(fclose(f), 0);
		return;
	}
	want = testutil_read_file(path, NULL);
	ck_assert_msg(
	    want != NULL, "%s missing (make check UPDATE_GOLDEN=1)", path);
	for (i = 0; want[i] != '\0' && want[i] == xml[i]; i++)
		if (xml[i] == '\n')
			line++;
	ck_assert_msg(want[i] == xml[i],
	    "%s differs from line %zu on; got:\n%s", path, line, xml);
	free(want);
}

/* The string value of expr evaluated at node. Owned by the caller. */
static char *xpath_string(xmlXPathContextPtr ctx, xmlNodePtr node,
    const char *fmt, ...) _printf_(3, 4);
static char *
xpath_string(xmlXPathContextPtr ctx, xmlNodePtr node, const char *fmt, ...)
{
	char expr[256];
	xmlXPathObjectPtr r;
	char *s;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(expr, sizeof(expr), fmt, ap);
	va_end(ap);
	ctx->node = node;
	r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	ck_assert_msg(r != NULL, "xpath %s", expr);
	s = (char *)xmlXPathCastToString(r);
	xmlXPathFreeObject(r);
	return s;
}

static int
xpath_count(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr,
    xmlNodePtr *ret_first)
{
	xmlXPathObjectPtr r;
	int n;

	ctx->node = node;
	r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	ck_assert_msg(r != NULL, "xpath %s", expr);
	n = r->nodesetval ? r->nodesetval->nodeNr : 0;
	if (ret_first != NULL)
		*ret_first = n > 0 ? r->nodesetval->nodeTab[0] : NULL;
	xmlXPathFreeObject(r);
	return n;
}

static void
assert_xpath_eq(xmlXPathContextPtr ctx, xmlNodePtr node, const char *want,
    const char *what, const char *expr)
{
	char *got = xpath_string(ctx, node, "%s", expr);

	ck_assert_msg(STREQ(got, want), "%s: libvirt stored '%s', want '%s'",
	    what, got, want);
	xmlFree(got);
}

static void
quiet_libvirt(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* Defines xml on test:///default with VIR_DOMAIN_DEFINE_VALIDATE, then
 * checks libvirt's stored copy: name, uuid, and for every disk of b its
 * bus, source, serial and boot order, and the metadata's BDM uuids. */
static void
libvirt_check(const struct built *b, const char *xml)
{
	char name[DOMXML_NAME_MAX], want[1200], expr[128];
	virConnectPtr c;
	virDomainPtr dom;
	char *stored, *meta;
	xmlDocPtr doc, mdoc;
	xmlXPathContextPtr ctx, mctx;
	xmlNodePtr root, disk;

	virSetErrorFunc(NULL, quiet_libvirt);
	c = virConnectOpen("test:///default");
	ck_assert_ptr_nonnull(c);
	dom = virDomainDefineXMLFlags(c, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	ck_assert_msg(dom != NULL, "libvirt refused the domain: %s\n%s",
	    virGetLastErrorMessage(), xml);
	stored = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	ck_assert_ptr_nonnull(stored);
	doc = parse_xml(stored);
	ctx = xmlXPathNewContext(doc);
	root = xmlDocGetRootElement(doc);

	domxml_domain_name(b->inst->uuid, name);
	assert_xpath_eq(ctx, root, name, "name", "string(/domain/name)");
	assert_xpath_eq(
	    ctx, root, b->inst->uuid, "uuid", "string(/domain/uuid)");
	ck_assert_int_eq(xpath_count(ctx, root, "/domain/devices/disk", NULL),
	    (int)b->bi->n_disks);
	for (size_t i = 0; i < b->bi->n_disks; i++) {
		const struct blockinfo_disk *d = &b->bi->disks[i];

		(void)snprintf(expr, sizeof(expr),
		    "/domain/devices/disk[target/@dev='%s']", d->dev);
		ck_assert_msg(xpath_count(ctx, root, expr, &disk) == 1,
		    "libvirt has no single disk %s", d->dev);
		assert_xpath_eq(ctx, disk, bdm_bus_to_string(d->bus), d->dev,
		    "string(target/@bus)");
		assert_xpath_eq(ctx, disk, d->serial, d->dev, "string(serial)");
		if (d->conn_path != NULL)
			(void)snprintf(want, sizeof(want), "%s", d->conn_path);
		else
			(void)snprintf(
			    want, sizeof(want), "%s/%s", b->dir, d->name);
		assert_xpath_eq(ctx, disk, want, d->dev,
		    "string(source/@file | source/@dev)");
		(void)snprintf(want, sizeof(want), "%d", d->boot_order);
		assert_xpath_eq(ctx, disk, d->boot_order > 0 ? want : "",
		    d->dev, "string(boot/@order)");
	}
	if (b->bi->virtio_scsi)
		ck_assert_int_eq(
		    xpath_count(ctx, root,
			"/domain/devices/controller[@type='scsi' and "
			"@model='virtio-scsi']",
			NULL),
		    1);

	/* the metadata, as reconciliation reads it (libvirt hands the
	 * element back without its namespace prefix) */
	meta = virDomainGetMetadata(
	    dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS, 0);
	ck_assert_msg(
	    meta != NULL, "no metadata: %s", virGetLastErrorMessage());
	mdoc = parse_xml(meta);
	mctx = xmlXPathNewContext(mdoc);
	root = xmlDocGetRootElement(mdoc);
	assert_xpath_eq(mctx, root, b->inst->uuid, "metadata uuid",
	    "string(/instance/@uuid)");
	assert_xpath_eq(mctx, root, b->inst->name, "metadata name",
	    "string(/instance/name)");
	for (size_t i = 0; i < b->bi->n_disks; i++) {
		const struct blockinfo_disk *d = &b->bi->disks[i];

		if (d->uuid[0] == '\0')
			continue;
		(void)snprintf(expr, sizeof(expr),
		    "string(/instance/disk[@bdm_uuid='%s']/@dev)", d->uuid);
		assert_xpath_eq(mctx, root, d->dev, d->uuid, expr);
	}
	xmlXPathFreeContext(mctx);
	xmlFreeDoc(mdoc);
	free(meta);

	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	free(stored);
	ck_assert_int_eq(virDomainUndefine(dom), 0);
	virDomainFree(dom);
	ck_assert_int_ge(virConnectClose(c), 0);
}

START_TEST(test_domxml_domain_matches_golden_and_libvirt_accepts_it)
{
	const struct golden_case *gc = &golden_cases[_i];
	struct built b;
	struct err e = {0};
	char *xml = NULL;

	build(gc->request, &b);
	if (gc->opts != NULL)
		gc->opts(&b.o);
	ck_assert_msg(domxml_format_domain(b.inst, b.bi, &b.o, &xml, &e) == 0,
	    "%s: %s", gc->name, e.msg);
	golden_compare(gc->name, xml);
	libvirt_check(&b, xml);
	free(xml);
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_domain_gives_every_disk_a_bdm_serial)
{
	struct built b;
	struct err e = {0};
	char *xml = NULL;

	build("domxml/local-virtio.json", &b);
	ck_assert_int_eq(domxml_format_domain(b.inst, b.bi, &b.o, &xml, &e), 0);
	for (size_t i = 0; i < b.bi->n_disks; i++) {
		const struct blockinfo_disk *d = &b.bi->disks[i];
		char want[64];

		ck_assert_str_ne(d->serial, "");
		(void)snprintf(
		    want, sizeof(want), "<serial>%s</serial>", d->serial);
		ck_assert_msg(strstr(xml, want) != NULL, "no %s", want);
	}
	free(xml);
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_domain_is_deterministic)
{
	struct built b;
	struct err e = {0};
	char *x1 = NULL, *x2 = NULL;

	build("domxml/scsi-volumes.json", &b);
	ck_assert_int_eq(domxml_format_domain(b.inst, b.bi, &b.o, &x1, &e), 0);
	ck_assert_int_eq(domxml_format_domain(b.inst, b.bi, &b.o, &x2, &e), 0);
	ck_assert_str_eq(x1, x2);
	free(x1);
	free(x2);
	built_free(&b);
}
END_TEST

/* An ISO base image backs the root overlay as raw, as Nova reads it
 * (nova/virt/images.py); the root stays a disk (Nova 26's mapping). */
START_TEST(test_domxml_backs_the_root_with_an_iso_image_as_raw)
{
	struct built b;
	struct err e = {0};
	char *xml = NULL;
	const char *bs;

	build("golden/iso_image_root_flavor_root_gb.json", &b);
	ck_assert_str_eq(b.inst->props.disk_format, "iso");
	b.o.base_image_format = "iso";
	ck_assert_int_eq(domxml_format_domain(b.inst, b.bi, &b.o, &xml, &e), 0);
	bs = strstr(xml, "<backingStore");
	ck_assert_ptr_nonnull(bs);
	ck_assert_ptr_nonnull(strstr(bs, "<format type=\"raw\"/>"));
	ck_assert_ptr_null(strstr(xml, "\"iso\""));
	ck_assert_ptr_null(strstr(xml, "device=\"cdrom\""));
	free(xml);
	built_free(&b);
}
END_TEST

/* Formats b's domain expecting -EINVAL with a message holding what;
 * *ret_xml must stay untouched. */
static void
expect_domain_refused(struct built *b, const char *what)
{
	struct err e = {0};
	char *xml = (char *)"untouched";

	ck_assert_int_eq(
	    domxml_format_domain(b->inst, b->bi, &b->o, &xml, &e), -EINVAL);
	ck_assert_str_eq(xml, "untouched");
	ck_assert_msg(strstr(e.msg, what) != NULL, "message '%s' lacks '%s'",
	    e.msg, what);
}

/* The refusals below start from a chain-built instance and then break one
 * field by hand, to reach combinations bdm and blockinfo already refuse:
 * domxml must not rely on them. */

START_TEST(test_domxml_refuses_a_lun_off_the_scsi_bus)
{
	struct built b;

	build("domxml/lun.json", &b);
	for (size_t i = 0; i < b.bi->n_disks; i++)
		if (b.bi->disks[i].type == BDM_DEVICE_LUN)
			b.bi->disks[i].bus = BDM_BUS_VIRTIO;
	expect_domain_refused(&b, "a lun must be a block volume on the scsi");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_lun_backed_by_a_file)
{
	struct built b;

	build("domxml/lun.json", &b);
	for (size_t i = 0; i < b.bi->n_disks; i++)
		if (b.bi->disks[i].type == BDM_DEVICE_LUN) {
			free(b.bi->disks[i].conn_type);
			b.bi->disks[i].conn_type = strdup("file");
		}
	expect_domain_refused(&b, "a lun must be a block volume on the scsi");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_cdrom_on_virtio)
{
	struct built b;

	build("domxml/config-drive.json", &b);
	ck_assert_ptr_nonnull(b.bi->config_drive);
	b.bi->config_drive->bus = BDM_BUS_VIRTIO;
	expect_domain_refused(&b, "a cdrom cannot use the virtio bus");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_ide_on_q35)
{
	struct built b;

	build("domxml/q35-config-drive.json", &b);
	ck_assert_int_eq(b.bi->q35, 1);
	b.bi->config_drive->bus = BDM_BUS_IDE;
	expect_domain_refused(&b, "the q35 machine has no IDE bus");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_long_serial_off_scsi)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	(void)snprintf(b.bi->disks[0].serial, sizeof(b.bi->disks[0].serial),
	    "%s", b.bi->disks[0].uuid);
	expect_domain_refused(&b, "serial longer than the 20 characters");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_serial_with_odd_characters)
{
	struct built b;

	build("domxml/scsi-volumes.json", &b);
	b.bi->disks[0].serial[3] = '<';
	expect_domain_refused(&b, "serial holds characters outside");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_an_unknown_volume_type)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	free(b.bi->volumes[0]->conn_type);
	b.bi->volumes[0]->conn_type = strdup("network");
	expect_domain_refused(&b, "driver_volume_type: expected file or block");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_relative_volume_path)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	free(b.bi->volumes[0]->conn_path);
	b.bi->volumes[0]->conn_path = strdup("../etc/shadow");
	expect_domain_refused(&b, "volume path is not a normalised");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_local_disks_without_an_instance_dir)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	b.o.instance_dir = NULL;
	expect_domain_refused(&b, "needs the instance directory");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_a_relative_instance_dir)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	b.o.instance_dir = "instances/x";
	expect_domain_refused(&b, "instance directory is not a normalised");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_an_unknown_virt_type)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	b.o.virt_type = "xen";
	expect_domain_refused(&b, "virt_type 'xen'");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_control_characters_in_the_name)
{
	struct built b;

	build("domxml/odd-name.json", &b);
	free(b.inst->name);
	b.inst->name = strdup("web\x01");
	expect_domain_refused(&b, "text of <hyperlet:name>: control character");
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_refuses_invalid_utf8_in_the_kernel_cmdline)
{
	struct built b;

	build("domxml/local-virtio.json", &b);
	opts_tcg_kernel_boot(&b.o);
	b.o.cmdline = "console=ttyS0 \xc0\xae";
	expect_domain_refused(&b, "text of <cmdline>: not valid UTF-8");
	built_free(&b);
}
END_TEST

/* Every disk's <disk> for attach is the same element the domain holds. */
START_TEST(test_domxml_disk_equals_the_domains_disk_element)
{
	const struct golden_case *gc = &golden_cases[_i];
	struct built b;
	struct err e = {0};
	char *dom = NULL;

	build(gc->request, &b);
	if (gc->opts != NULL)
		gc->opts(&b.o);
	ck_assert_int_eq(domxml_format_domain(b.inst, b.bi, &b.o, &dom, &e), 0);
	for (size_t i = 0; i < b.bi->n_disks; i++) {
		char *disk = NULL, *indented, *q;
		size_t n = 0;

		ck_assert_msg(domxml_format_disk(b.inst, b.bi, &b.bi->disks[i],
				  &b.o, &disk, &e) == 0,
		    "%s", e.msg);
		/* the domain holds it indented by four spaces */
		for (const char *p = disk; *p; p++)
			n += *p == '\n' ? 5 : 1;
		indented = q = malloc(n + 5);
		q += sprintf(q, "    ");
		for (const char *p = disk; *p; p++) {
			*q++ = *p;
			if (*p == '\n' && p[1] != '\0')
				q += sprintf(q, "    ");
		}
		*q = '\0';
		ck_assert_msg(strstr(dom, indented) != NULL,
		    "disk %s:\n%s\nnot in\n%s", b.bi->disks[i].dev, indented,
		    dom);
		free(indented);
		free(disk);
	}
	free(dom);
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_disk_matches_golden)
{
	struct built b;
	struct err e = {0};
	char *xml = NULL;

	build("domxml/scsi-volumes.json", &b);
	ck_assert_int_ge((int)b.bi->n_volumes, 1);
	ck_assert_int_eq(
	    domxml_format_disk(b.inst, b.bi, b.bi->volumes[0], &b.o, &xml, &e),
	    0);
	golden_compare("scsi-volumes-attach", xml);
	free(xml);
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_disk_refuses_a_disk_outside_the_mapping)
{
	struct built a, b;
	struct err e = {0};
	char *xml = (char *)"untouched";

	build("domxml/scsi-volumes.json", &a);
	build("domxml/lun.json", &b);
	ck_assert_int_eq(
	    domxml_format_disk(a.inst, a.bi, &b.bi->disks[0], &a.o, &xml, &e),
	    -EINVAL);
	ck_assert_str_eq(xml, "untouched");
	ck_assert_ptr_nonnull(strstr(e.msg, "disk not in the mapping"));
	built_free(&a);
	built_free(&b);
}
END_TEST

START_TEST(test_domxml_domain_name_is_instance_dash_uuid)
{
	char name[DOMXML_NAME_MAX];

	domxml_domain_name("0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11", name);
	ck_assert_str_eq(name, "instance-0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11");
}
END_TEST

static TCase *
tcase_domxml_format_domain(void)
{
	TCase *tc = tcase_create("domxml_format_domain");

	tcase_add_loop_test(tc,
	    test_domxml_domain_matches_golden_and_libvirt_accepts_it, 0,
	    (int)ELEMENTSOF(golden_cases));
	tcase_add_test(tc, test_domxml_domain_gives_every_disk_a_bdm_serial);
	tcase_add_test(tc, test_domxml_domain_is_deterministic);
	tcase_add_test(tc, test_domxml_backs_the_root_with_an_iso_image_as_raw);
	tcase_add_test(tc, test_domxml_refuses_a_lun_off_the_scsi_bus);
	tcase_add_test(tc, test_domxml_refuses_a_lun_backed_by_a_file);
	tcase_add_test(tc, test_domxml_refuses_a_cdrom_on_virtio);
	tcase_add_test(tc, test_domxml_refuses_ide_on_q35);
	tcase_add_test(tc, test_domxml_refuses_a_long_serial_off_scsi);
	tcase_add_test(tc, test_domxml_refuses_a_serial_with_odd_characters);
	tcase_add_test(tc, test_domxml_refuses_an_unknown_volume_type);
	tcase_add_test(tc, test_domxml_refuses_a_relative_volume_path);
	tcase_add_test(
	    tc, test_domxml_refuses_local_disks_without_an_instance_dir);
	tcase_add_test(tc, test_domxml_refuses_a_relative_instance_dir);
	tcase_add_test(tc, test_domxml_refuses_an_unknown_virt_type);
	tcase_add_test(tc, test_domxml_refuses_control_characters_in_the_name);
	tcase_add_test(
	    tc, test_domxml_refuses_invalid_utf8_in_the_kernel_cmdline);
	return tc;
}

static TCase *
tcase_domxml_format_disk(void)
{
	TCase *tc = tcase_create("domxml_format_disk");

	tcase_add_loop_test(tc,
	    test_domxml_disk_equals_the_domains_disk_element, 0,
	    (int)ELEMENTSOF(golden_cases));
	tcase_add_test(tc, test_domxml_disk_matches_golden);
	tcase_add_test(tc, test_domxml_disk_refuses_a_disk_outside_the_mapping);
	return tc;
}

static TCase *
tcase_domxml_domain_name(void)
{
	TCase *tc = tcase_create("domxml_domain_name");

	tcase_add_test(tc, test_domxml_domain_name_is_instance_dash_uuid);
	return tc;
}

int
main(void)
{
	Suite *s = suite_create("domxml");

	suite_add_tcase(s, tcase_xwriter());
	suite_add_tcase(s, tcase_domxml_format_domain());
	suite_add_tcase(s, tcase_domxml_format_disk());
	suite_add_tcase(s, tcase_domxml_domain_name());
	return testutil_run(s);
}
