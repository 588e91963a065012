/*
 * libFuzzer target: the chain from a create request to domain XML
 * (parse, prepare, blockinfo_build, domxml_format_domain and
 * domxml_format_disk, and the JSON the API answers with). Every XML
 * document it produces must be well-formed (libxml2 reads it back) and
 * every JSON answer must parse; anything else aborts, which libFuzzer
 * reports. Domains are also defined on test:///default with
 * VIR_DOMAIN_DEFINE_VALIDATE, so that libvirt's schema judges them (a
 * refusal aborts too). A validated define costs milliseconds, so under
 * libFuzzer only a domain of a shape not seen before is defined: its
 * tags, attribute names and, for each value, the value itself when it is
 * a short token (bus, device, format, target dev) or else its length
 * class and the kinds of characters in it (see shape_is_new). FUZZ_LIBVIRT
 * picks: 0 none, 1 every domain, shapes (the default) new shapes only.
 * The make check replay (check_fuzz_xml) defines every domain.
 */
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static virConnectPtr conn;
/* FUZZ_LIBVIRT: -1 not read yet, 0 no defines, 1 every domain, 2 domains
 * of a new shape */
static int use_libvirt = -1;
#ifdef FUZZ_TARGET /* the make check replay: every seed is defined */
#define FUZZ_LIBVIRT_DEFAULT 1
#else
#define FUZZ_LIBVIRT_DEFAULT 2
#endif

/* Shapes seen so far: 64-bit FNV-1a hashes, open addressing; 0 = empty.
 * When it fills up every domain counts as new (slower, never blind). */
#define SHAPES_MAX (1u << 16)
static uint64_t shapes[SHAPES_MAX];
static size_t n_shapes;

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	return h;
}

/* Hashes the value v[0..n) into h: a short token as it is, anything else
 * as its length class and the kinds of bytes in it. */
static uint64_t
shape_value(uint64_t h, const char *v, size_t n)
{
	unsigned kinds = 0, len_class = 0;
	bool token = n <= 16;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '.' || c == '_' || c == '-'))
			token = false;
		kinds |= c >= 0x80         ? 1u
		    : c < 0x20             ? 2u
		    : c >= 'a' && c <= 'z' ? 4u
		    : c >= 'A' && c <= 'Z' ? 8u
		    : c >= '0' && c <= '9' ? 16u
		    : c == '/'             ? 32u
		    : c == ' '             ? 64u
		    : c == '&' || c == ';' ? 128u
					   : 256u;
	}
	if (token)
		return fnv(h, v, n);
	while (n >>= 1)
		len_class++;
	h = fnv(h, &kinds, sizeof(kinds));
	return fnv(h, &len_class, sizeof(len_class));
}

/* True when xml's shape (markup with each attribute value and text
 * reduced by shape_value) was not seen before; records it. */
static bool
shape_is_new(const char *xml)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	const char *p = xml;
	size_t i;

	while (*p) {
		/* an attribute value (xwriter quotes with "; a '"' in a value
		 * is written as &quot;), a text, or markup */
		if (*p == '"') {
			const char *end = strchr(p + 1, '"');

			if (end == NULL)
				break;
			h = shape_value(h, p + 1, (size_t)(end - p - 1));
			p = end + 1;
		} else if (*p == '>' && p[1] != '\0' && p[1] != '<') {
			const char *end = strchr(p + 1, '<');
			size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);

			h = fnv(h, ">", 1);
			h = shape_value(h, p + 1, n);
			p += 1 + n;
		} else {
			h = fnv(h, p, 1);
			p++;
		}
	}
	if (h == 0)
		h = 1;
	if (n_shapes >= SHAPES_MAX / 2)
		return true;
	for (i = h & (SHAPES_MAX - 1); shapes[i] != 0;
	     i = (i + 1) & (SHAPES_MAX - 1))
		if (shapes[i] == h)
			return false;
	shapes[i] = h;
	n_shapes++;
	return true;
}

static void
quiet(void *u, virErrorPtr err)
{
	(void)u;
	(void)err;
}

static void
xml_must_parse(const char *what, const char *xml)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "fuzz.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	if (doc == NULL) {
		fprintf(stderr, "fuzz_xml: ill-formed %s:\n%s\n", what, xml);
		abort();
	}
	xmlFreeDoc(doc);
}

static void
json_must_parse(struct json_object *o)
{
	const char *s;
	struct json_object *back;

	if (o == NULL)
		return; /* OOM only */
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	back = json_tokener_parse(s);
	if (back == NULL) {
		fprintf(stderr, "fuzz_xml: unparsable JSON answer: %s\n", s);
		abort();
	}
	json_object_put(back);
	json_object_put(o);
}

static size_t n_defined;

static void
report_defines(void)
{
	fprintf(stderr,
	    "fuzz_xml: libvirt validated %zu domains (%zu shapes)\n", n_defined,
	    n_shapes);
}

static void
define_must_work(const char *xml)
{
	virDomainPtr dom;

	if (use_libvirt < 0) {
		const char *v = getenv("FUZZ_LIBVIRT");

		use_libvirt = FUZZ_LIBVIRT_DEFAULT;
		if (v && (STREQ(v, "0") || STREQ(v, "1")))
			use_libvirt = *v - '0';
		else if (v && STREQ(v, "shapes"))
			use_libvirt = 2;
		if (use_libvirt) {
			virSetErrorFunc(NULL, quiet);
			conn = virConnectOpen("test:///default");
			if (conn == NULL)
				abort();
			(void)atexit(report_defines);
		}
	}
	if (!use_libvirt || (use_libvirt == 2 && !shape_is_new(xml)))
		return;
	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (dom == NULL) {
		virErrorPtr err = virGetLastError();

		fprintf(stderr, "fuzz_xml: libvirt refused the XML: %s\n%s\n",
		    err && err->message ? err->message : "?", xml);
		abort();
	}
	(void)virDomainUndefine(dom);
	virDomainFree(dom);
	n_defined++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};
	char dir[128], *xml = NULL;
	struct domxml_opts o = {
	    .virt_type = "qemu",
	    .base_image_path = "/var/lib/hyperlet/images/base",
	    .base_image_format = "qcow2",
	};

	if (bdm_json_parse_create((const char *)data, size, &inst, &e) < 0)
		return 0;
	if (bdm_instance_prepare(inst, &lim, &e) < 0 ||
	    blockinfo_build(inst, &lim, &bi, &e) < 0)
		goto out;
	snprintf(
	    dir, sizeof(dir), "/var/lib/hyperlet/instances/%s", inst->uuid);
	o.instance_dir = dir;
	json_must_parse(bdm_json_format_instance(inst, bi));
	json_must_parse(bdm_json_format_blockinfo(inst, bi));
	if (domxml_format_domain(inst, bi, &o, &xml, &e) == 0) {
		xml_must_parse("domain", xml);
		define_must_work(xml);
		free(xml);
		xml = NULL;
	}
	for (size_t i = 0; i < bi->n_disks; i++) {
		struct err e2 = {0};

		if (domxml_format_disk(
			inst, bi, &bi->disks[i], &o, &xml, &e2) == 0) {
			xml_must_parse("disk", xml);
			free(xml);
			xml = NULL;
		}
	}
out:
	blockinfo_free(bi);
	instance_free(inst);
	return 0;
}
