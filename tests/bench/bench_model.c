/*
 * bench_model: what the model costs per create request, without HTTP,
 * SQLite or libvirt: parse (bdm_json_parse_create) + Nova's rules and
 * defaults (bdm_instance_prepare) + block_device_info and the disk mapping
 * (blockinfo_build) + the domain XML (domxml_format_domain), for the 5-disk
 * instance of design.md (image root, ephemeral, swap, two file volumes).
 * ROUNDS rounds of CALLS calls; prints the median microseconds per call as
 * "model_us <value> us", and the same for the first stages alone
 * (model_parse_us, model_prepare_us = parse + prepare, model_noxml_us =
 * parse + prepare + blockinfo). Wall-clock figures; the *_cpu_us lines are
 * the same in process CPU time, steadier on a shared machine.
 * The library floor is what json-c and libxml2 alone cost for the same
 * work, measured the same way: model_floor_parse_us is json-c's tokener
 * (made once, as jfield_parse makes it: same depth and flags; reset per
 * call) parsing the body and json_object_put of the tree;
 * model_floor_xml_us writes the model's own domain XML (made once before
 * the timing and flattened by libxml2's xmlTextReader into its elements,
 * attributes and texts) through a fresh xmlTextWriter on a memory buffer,
 * made as xwriter_new makes it, one writer call per element, attribute,
 * text and end, no indentation, and copies the bytes out as
 * xwriter_finish does; model_floor_us is both in one call. The floor's
 * document (model_floor_xml_bytes) is checked to be the model's minus its
 * indentation.
 * ratio_model is model_floor_cpu_us / model_cpu_us: 1.00 would be as
 * cheap as the libraries alone, lower is further from it.
 * Usage: bench_model [request.json [calls [rounds [stage]]]]; "-" for
 * request.json is the built-in body. With stage (1 parse, 2 prepare,
 * 3 blockinfo, 4 XML, 5 floor, 6 floor parse, 7 floor XML) only that line
 * is measured, without the warm-up: for counting instructions per call
 * under callgrind, e.g. valgrind --tool=callgrind bench_model - 2000 1 4.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <libxml/xmlreader.h>
#include <libxml/xmlwriter.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"
#include "macro.h"

#include "benchutil.h"

#define CALLS 10000
#define ROUNDS 5

/* How far one call goes: the model's stages, then the library floor. */
enum stage {
	STAGE_PARSE = 1,
	STAGE_PREPARE,
	STAGE_BLOCKINFO,
	STAGE_XML,
	STAGE_FLOOR, /* floor parse + floor XML */
	STAGE_FLOOR_PARSE,
	STAGE_FLOOR_XML,
	STAGE_LAST = STAGE_FLOOR_XML,
};

/* One xmlTextWriter call of the floor's document. */
enum floor_kind {
	FLOOR_START, /* xmlTextWriterStartElement(name) */
	FLOOR_ATTR, /* xmlTextWriterWriteAttribute(name, value) */
	FLOOR_TEXT, /* xmlTextWriterWriteString(value) */
	FLOOR_END, /* xmlTextWriterEndElement */
};

struct floor_op {
	enum floor_kind kind;
	char *name;
	char *value;
};

/* What the calls of one run share. */
struct bench {
	const char *body;
	size_t len;
	struct json_tokener *tok; /* the floor's, made once */
	struct floor_op *ops; /* the floor's document */
	size_t n_ops;
};

/* The create body of tests/bench/run.sh: no bdm_uuid, so the uuids are
 * drawn as in production. */
static const char five_disks[] =
    "{\"name\": \"bench\", \"start\": false,"
    " \"flavor\": {\"vcpus\": 1, \"memory_mb\": 256, \"root_gb\": 1,"
    " \"ephemeral_gb\": 1, \"swap\": 64},"
    " \"imageRef\": \"6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f\","
    " \"block_device_mapping_v2\": ["
    "  {\"boot_index\": 0, \"source_type\": \"image\","
    "   \"destination_type\": \"local\","
    "   \"uuid\": \"6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f\"},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"volume_size\": 1},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"swap\","
    "   \"volume_size\": 64},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "   \"data\": {\"device_path\": \"/srv/volumes/vol1\"}}},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"5e2b8f10-3c4d-4e6f-8a9b-0c1d2e3f4a5b\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "   \"data\": {\"device_path\": \"/srv/volumes/vol2\"}}}"
    " ]}";

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One request through the model up to stage (STAGE_PARSE to STAGE_XML).
 * Returns 0 with the domain XML in *ret_xml (owned; NULL before
 * STAGE_XML), or a negative errno with e set. */
static int
model_call(const char *body, size_t len, enum stage stage, char **ret_xml,
    struct err *e)
{
	static const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	char dir[128];
	int r;

	*ret_xml = NULL;
	r = bdm_json_parse_create(body, len, &inst, e);
	if (r == 0 && stage >= STAGE_PREPARE)
		r = bdm_instance_prepare(inst, &lim, e);
	if (r == 0 && stage >= STAGE_BLOCKINFO)
		r = blockinfo_build(inst, &lim, &bi, e);
	if (r == 0 && stage >= STAGE_XML) {
		struct domxml_opts o = {.virt_type = "kvm",
		    .instance_dir = dir,
		    .base_image_path = "/var/lib/hyperlet/images/base"};

		(void)snprintf(dir, sizeof(dir),
		    "/var/lib/hyperlet/instances/%s", inst->uuid);
		r = domxml_format_domain(inst, bi, &o, ret_xml, e);
	}
	blockinfo_free(bi);
	instance_free(inst);
	return r;
}

/* The floor's parse: json-c alone on the body. Returns 0, or a negative
 * errno with e set. */
static int
floor_parse(const struct bench *b, struct err *e)
{
	struct json_object *o;

	json_tokener_reset(b->tok);
	o = json_tokener_parse_ex(b->tok, b->body, (int)b->len);
	if (o == NULL ||
	    json_tokener_get_error(b->tok) != json_tokener_success) {
		json_object_put(o);
		return err_set(e, -EINVAL, "floor: malformed JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(b->tok)));
	}
	json_object_put(o);
	return 0;
}

/* The floor's XML: b's operations replayed on a fresh xmlTextWriter.
 * Returns 0 with the document in *ret_xml (owned), or a negative errno
 * with e set. */
static int
floor_xml(const struct bench *b, char **ret_xml, struct err *e)
{
	xmlOutputBufferPtr out = xmlAllocOutputBuffer(NULL);
	xmlTextWriterPtr tw = out != NULL ? xmlNewTextWriter(out) : NULL;
	char *xml = NULL;
	int rc = 0, len;

	if (tw == NULL) {
		if (out != NULL)
			(void)xmlOutputBufferClose(out);
		return err_set(e, -ENOMEM, "floor: out of memory");
	}
	for (size_t i = 0; i < b->n_ops && rc >= 0; i++) {
		const struct floor_op *op = &b->ops[i];

		switch (op->kind) {
		case FLOOR_START:
			rc = xmlTextWriterStartElement(tw, BAD_CAST op->name);
			break;
		case FLOOR_ATTR:
			rc = xmlTextWriterWriteAttribute(
			    tw, BAD_CAST op->name, BAD_CAST op->value);
			break;
		case FLOOR_TEXT:
			rc = xmlTextWriterWriteString(tw, BAD_CAST op->value);
			break;
		case FLOOR_END:
			rc = xmlTextWriterEndElement(tw);
			break;
		}
	}
	if (rc >= 0)
		rc = xmlTextWriterEndDocument(tw);
	if (rc >= 0)
		rc = xmlTextWriterFlush(tw);
	if (rc >= 0) {
		/* the copy xwriter_finish makes */
		len = (int)xmlOutputBufferGetSize(out);
		xml = malloc((size_t)len + 2);
		if (xml != NULL) {
			memcpy(
			    xml, xmlOutputBufferGetContent(out), (size_t)len);
			if (len == 0 || xml[len - 1] != '\n')
				xml[len++] = '\n';
			xml[len] = '\0';
		}
	}
	xmlFreeTextWriter(tw); /* closes out */
	if (xml == NULL)
		return err_set(e, -ENOMEM, "floor: xml writer failed");
	*ret_xml = xml;
	return 0;
}

/* One call of stage; *ret_bytes is the XML's length, if any. Returns 0,
 * or a negative errno with e set. */
static int
one_call(
    const struct bench *b, enum stage stage, size_t *ret_bytes, struct err *e)
{
	char *xml = NULL;
	int r = 0;

	if (stage <= STAGE_XML)
		r = model_call(b->body, b->len, stage, &xml, e);
	if (r == 0 && (stage == STAGE_FLOOR || stage == STAGE_FLOOR_PARSE))
		r = floor_parse(b, e);
	if (r == 0 && (stage == STAGE_FLOOR || stage == STAGE_FLOOR_XML))
		r = floor_xml(b, &xml, e);
	if (xml != NULL)
		*ret_bytes = strlen(xml);
	free(xml);
	return r;
}

/* Appends an operation to b->ops (name and value copied; either may be
 * NULL). Returns 0, or -ENOMEM with e set. */
static int
floor_push(struct bench *b, enum floor_kind kind, const xmlChar *name,
    const xmlChar *value, struct err *e)
{
	struct floor_op *ops, *op;

	if ((b->n_ops & (b->n_ops + 1)) == 0) { /* 0, 1, 3, 7...: grow */
		ops = realloc(b->ops, (2 * b->n_ops + 2) * sizeof(*ops));
		if (ops == NULL)
			return err_set(e, -ENOMEM, "floor: out of memory");
		b->ops = ops;
	}
	op = &b->ops[b->n_ops];
	*op = (struct floor_op){.kind = kind};
	if (name != NULL && (op->name = strdup((const char *)name)) == NULL)
		return err_set(e, -ENOMEM, "floor: out of memory");
	if (value != NULL &&
	    (op->value = strdup((const char *)value)) == NULL) {
		free(op->name);
		return err_set(e, -ENOMEM, "floor: out of memory");
	}
	b->n_ops++;
	return 0;
}

/* Flattens xml into b->ops with libxml2's reader: its elements (qualified
 * names), attributes (namespace declarations included, in the reader's
 * order), texts and ends; the whitespace between tags is left out.
 * Returns 0, or a negative errno with e set. */
static int
floor_flatten(struct bench *b, const char *xml, struct err *e)
{
	xmlTextReaderPtr rd = xmlReaderForMemory(
	    xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
	int r = 0, rc;

	if (rd == NULL)
		return err_set(e, -ENOMEM, "floor: out of memory");
	while (r == 0 && (rc = xmlTextReaderRead(rd)) == 1) {
		switch (xmlTextReaderNodeType(rd)) {
		case XML_READER_TYPE_ELEMENT: {
			bool empty = xmlTextReaderIsEmptyElement(rd) == 1;

			r = floor_push(b, FLOOR_START,
			    xmlTextReaderConstName(rd), NULL, e);
			while (
			    r == 0 && xmlTextReaderMoveToNextAttribute(rd) == 1)
				r = floor_push(b, FLOOR_ATTR,
				    xmlTextReaderConstName(rd),
				    xmlTextReaderConstValue(rd), e);
			if (r == 0 && empty)
				r = floor_push(b, FLOOR_END, NULL, NULL, e);
			break;
		}
		case XML_READER_TYPE_TEXT:
		case XML_READER_TYPE_CDATA:
			r = floor_push(b, FLOOR_TEXT, NULL,
			    xmlTextReaderConstValue(rd), e);
			break;
		case XML_READER_TYPE_END_ELEMENT:
			r = floor_push(b, FLOOR_END, NULL, NULL, e);
			break;
		case XML_READER_TYPE_WHITESPACE:
		case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
			break;
		default:
			r = err_set(e, -EINVAL,
			    "floor: unexpected XML node type %d",
			    xmlTextReaderNodeType(rd));
		}
	}
	if (r == 0 && rc != 0)
		r = err_set(
		    e, -EINVAL, "floor: the model's XML does not parse");
	xmlFreeTextReader(rd);
	return r;
}

/* s without the whitespace between a '>' and the next '<' or the end:
 * the document without its indentation (owned; NULL on OOM). */
static char *
strip_indent(const char *s)
{
	char *out = malloc(strlen(s) + 1);
	size_t n = 0;

	if (out == NULL)
		return NULL;
	for (const char *p = s; *p != '\0'; p++) {
		if (n > 0 && out[n - 1] == '>' && strchr(" \t\r\n", *p)) {
			size_t ws = strspn(p, " \t\r\n");

			if (p[ws] == '<' || p[ws] == '\0') {
				p += ws - 1;
				continue;
			}
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

/* Sets up the floor: the tokener jfield_parse would make, and the
 * model's XML of b->body as writer operations, checked to replay into
 * the same document minus its indentation. Returns 0, or a negative
 * errno with e set. */
static int
floor_init(struct bench *b, struct err *e)
{
	char *model = NULL, *replay = NULL, *m = NULL, *f = NULL;
	int r;

	/* as jfield_parse (bdm_json_parse_create's json_limits) */
	b->tok = json_tokener_new_ex(BDM_JSON_MAX_DEPTH + 1);
	if (b->tok == NULL)
		return err_set(e, -ENOMEM, "floor: out of memory");
	json_tokener_set_flags(
	    b->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);

	r = model_call(b->body, b->len, STAGE_XML, &model, e);
	if (r == 0)
		r = floor_flatten(b, model, e);
	if (r == 0)
		r = floor_xml(b, &replay, e);
	if (r == 0 &&
	    ((m = strip_indent(model)) == NULL ||
		(f = strip_indent(replay)) == NULL))
		r = err_set(e, -ENOMEM, "floor: out of memory");
	if (r == 0 && strcmp(m, f) != 0)
		r = err_set(e, -EINVAL,
		    "floor: the replayed XML differs from the model's:\n%s\n%s",
		    m, f);
	free(model);
	free(replay);
	free(m);
	free(f);
	return r;
}

static void
floor_fini(struct bench *b)
{
	for (size_t i = 0; i < b->n_ops; i++) {
		free(b->ops[i].name);
		free(b->ops[i].value);
	}
	free(b->ops);
	if (b->tok != NULL)
		json_tokener_free(b->tok);
}

static double
cpu_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The medians over rounds of the mean wall and CPU microseconds per
 * call. */
static int
measure(const struct bench *b, enum stage stage, long calls, int rounds,
    double *ret_us, double *ret_cpu_us, size_t *ret_bytes)
{
	double wall[64], cpu[64];
	struct err e = {0};

	for (int k = 0; k < rounds; k++) {
		double t0 = bench_now_ms(), c0 = cpu_ms();

		for (long i = 0; i < calls; i++)
			if (one_call(b, stage, ret_bytes, &e) < 0) {
				fprintf(stderr, "bench_model: %s (%s)\n", e.msg,
				    e.field);
				return -1;
			}
		wall[k] = (bench_now_ms() - t0) * 1000.0 / (double)calls;
		cpu[k] = (cpu_ms() - c0) * 1000.0 / (double)calls;
	}
	qsort(wall, (size_t)rounds, sizeof(double), cmp_double);
	qsort(cpu, (size_t)rounds, sizeof(double), cmp_double);
	*ret_us = wall[rounds / 2];
	*ret_cpu_us = cpu[rounds / 2];
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {[STAGE_PARSE] = "model_parse_us",
	    [STAGE_PREPARE] = "model_prepare_us",
	    [STAGE_BLOCKINFO] = "model_noxml_us",
	    [STAGE_XML] = "model_us",
	    [STAGE_FLOOR] = "model_floor_us",
	    [STAGE_FLOOR_PARSE] = "model_floor_parse_us",
	    [STAGE_FLOOR_XML] = "model_floor_xml_us"};
	static const char *const cpu_names[] = {
	    [STAGE_PARSE] = "model_parse_cpu_us",
	    [STAGE_PREPARE] = "model_prepare_cpu_us",
	    [STAGE_BLOCKINFO] = "model_noxml_cpu_us",
	    [STAGE_XML] = "model_cpu_us",
	    [STAGE_FLOOR] = "model_floor_cpu_us",
	    [STAGE_FLOOR_PARSE] = "model_floor_parse_cpu_us",
	    [STAGE_FLOOR_XML] = "model_floor_xml_cpu_us"};
	/* the model's lines, then the floor's (parse, XML, both) */
	static const enum stage model_order[] = {
	    STAGE_PARSE, STAGE_PREPARE, STAGE_BLOCKINFO, STAGE_XML};
	static const enum stage floor_order[] = {
	    STAGE_FLOOR_PARSE, STAGE_FLOOR_XML, STAGE_FLOOR};
	static const struct {
		const enum stage *st;
		size_t n;
	} groups[] = {{model_order, ELEMENTSOF(model_order)},
	    {floor_order, ELEMENTSOF(floor_order)}};
	double cpu[STAGE_LAST + 1] = {0};
	size_t bytes[STAGE_LAST + 1] = {0};
	bool builtin = argc < 2 || strcmp(argv[1], "-") == 0;
	char *file = builtin ? NULL : bench_read_file(argv[1]);
	struct bench b = {.body = file ? file : five_disks};
	long calls = argc > 2 ? atol(argv[2]) : CALLS;
	int rounds = argc > 3 ? atoi(argv[3]) : ROUNDS;
	int only = argc > 4 ? atoi(argv[4]) : 0;
	struct err e = {0};
	double us, cpu_us;
	size_t warm_bytes = 0;
	int ret = 1;

	if ((!builtin && file == NULL) || calls < 1 || rounds < 1 ||
	    rounds > 64 || only < 0 || only > STAGE_LAST) {
		fprintf(stderr,
		    "usage: bench_model [request.json|- [calls "
		    "[rounds<=64 [stage 1-7]]]]\n");
		free(file);
		return 2;
	}
	b.len = strlen(b.body);
	if ((only == 0 || only >= STAGE_FLOOR) && floor_init(&b, &e) < 0) {
		fprintf(stderr, "bench_model: %s\n", e.msg);
		goto out;
	}
	/* warm up caches and the allocator */
	if (only == 0 &&
	    (measure(&b, STAGE_XML, calls / 10 + 1, 1, &us, &cpu_us,
		 &warm_bytes) < 0 ||
		measure(&b, STAGE_FLOOR, calls / 10 + 1, 1, &us, &cpu_us,
		    &warm_bytes) < 0))
		goto out;
	for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
		bool any = false;

		for (size_t i = 0; i < groups[g].n; i++) {
			enum stage st = groups[g].st[i];

			if (only != 0 && (int)st != only)
				continue;
			if (measure(&b, st, calls, rounds, &us, &cpu_us,
				&bytes[st]) < 0)
				goto out;
			printf("%s %.2f us\n", names[st], us);
			cpu[st] = cpu_us;
			any = true;
		}
		for (size_t i = 0; i < groups[g].n; i++) {
			enum stage st = groups[g].st[i];

			if (only == 0 || (int)st == only)
				printf("%s %.2f us\n", cpu_names[st], cpu[st]);
		}
		if (g == 0 && any)
			printf("model_xml_bytes %zu B\n", bytes[STAGE_XML]);
		else if (g == 1 && any)
			printf("model_floor_xml_bytes %zu B\n",
			    bytes[STAGE_FLOOR] ? bytes[STAGE_FLOOR]
					       : bytes[STAGE_FLOOR_XML]);
	}
	if (only == 0)
		printf(
		    "ratio_model %.2f x\n", cpu[STAGE_FLOOR] / cpu[STAGE_XML]);
	ret = 0;
out:
	floor_fini(&b);
	free(file);
	return ret;
}
