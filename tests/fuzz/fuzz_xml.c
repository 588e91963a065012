/*
 * libFuzzer target: the chain from a create request to domain XML
 * (parse, prepare, blockinfo_build, domxml_format_domain and
 * domxml_format_disk, and the JSON the API answers with). Every XML
 * document it produces must be well-formed (libxml2 reads it back) and
 * every JSON answer must parse; anything else aborts, which libFuzzer
 * reports. With FUZZ_LIBVIRT=1 each domain is also defined on
 * test:///default with VIR_DOMAIN_DEFINE_VALIDATE, so libvirt's schema
 * judges it (slower; a refusal aborts too).
 */
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
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
static int use_libvirt = -1;

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

static void
define_must_work(const char *xml)
{
	virDomainPtr dom;

	if (use_libvirt < 0) {
		const char *v = getenv("FUZZ_LIBVIRT");

		use_libvirt = v && *v == '1';
		if (use_libvirt) {
			virSetErrorFunc(NULL, quiet);
			conn = virConnectOpen("test:///default");
			if (conn == NULL)
				abort();
		}
	}
	if (!use_libvirt)
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
