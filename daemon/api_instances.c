/*
 * api_instances: the instance routes, health and metrics. Each handler
 * goes JSON -> model (bdm_json) -> rules (bdm) -> compute (store, disks,
 * libvirt, with rollback) and back to JSON; it never builds SQL or XML.
 * Reads come straight from this thread's store connection and never wait.
 * A change of an instance (create, PUT, delete, action, attach, detach)
 * holds a claim on its uuid (api_instance_claim), taken by api.c before
 * the change is queued for a job thread: a second change while one runs
 * is 409 at once, so an If-Match check and the change it guards are never
 * interleaved with another, a create holds its instance from its first
 * write to its answer, and no thread ever waits for a claim. A replay of a
 * PUT whose create is still running is 409 too; once it has answered, the
 * replay answers what is true (api_instance_put).
 */
#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api_impl.h"
#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "cfg.h"
#include "compute.h"
#include "console.h"
#include "domevents.h"
#include "events.h"
#include "guestdrive.h"
#include "jwriter.h"
#include "log.h"
#include "metrics.h"
#include "nic_json.h"
#include "placement_sync.h"
#include "store.h"
#include "virt.h"

#define LIST_LIMIT_MAX 1000
static void
instance_freep(struct instance **p)
{
	*p = instance_free(*p);
}

static void
blockinfo_freep(struct blockinfo **p)
{
	*p = blockinfo_free(*p);
}

static void
json_putp(struct json_object **p)
{
	if (*p)
		json_object_put(*p);
}

static void
set_etag(struct api_req *r, const struct instance *inst)
{
	(void)snprintf(
	    r->etag, sizeof(r->etag), "\"%lld\"", (long long)inst->generation);
}

/* Sets the pci_address of each NIC of inst from its domain's XML
 * (matched by MAC). Best effort: a domain libvirt cannot show leaves
 * them null; the answer does not fail for it. */
static void
fill_pci(struct api_req *r, struct instance *inst)
{
	_cleanup_free_ struct virt_nic *v = NULL;
	struct err e = {0};
	size_t n = 0;

	if (inst->guest.n_nics == 0 || r->h->virt == NULL ||
	    virt_domain_nics(r->h->virt, inst->uuid, &v, &n, &e) < 0)
		return;
	for (size_t i = 0; i < inst->guest.n_nics; i++) {
		struct nic *nic = &inst->guest.nics[i];

		for (size_t k = 0; k < n; k++)
			if (STREQ(v[k].mac, nic->mac) && v[k].pci[0] != '\0') {
				free(nic->pci_address);
				nic->pci_address = strdup(v[k].pci);
				break;
			}
	}
}

/* Loads the path's instance row alone: no libvirt call (a delete needs
 * no NIC's PCI address). */
static int
load_row(struct api_req *r, struct instance **ret_inst, struct err *e)
{
	struct store *s;
	int rc;

	if (!(s = api_store(r, e)))
		return e->code;
	if ((rc = store_instance_get(s, r->id, ret_inst, e)) < 0) {
		if (rc == -ENOENT)
			err_clear(e), err_set(e, rc, "no such instance");
		return rc;
	}
	return 0;
}

/* Loads the path's instance and its driver view. */
static int
load(struct api_req *r, struct instance **ret_inst, struct blockinfo **ret_bi,
    struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	int rc;

	if ((rc = load_row(r, &inst, e)) < 0)
		return rc;
	if (ret_bi &&
	    (rc = blockinfo_build(inst, &r->h->cfg->limits, ret_bi, e)) < 0)
		return rc;
	fill_pci(r, inst);
	*ret_inst = TAKE_PTR(inst);
	return 0;
}

/* Answers the instance as GET shows it, with its ETag: the text the list
 * writes for it, written the same way. */
static void
reply_instance(struct api_req *r, int status, struct instance *inst,
    const struct blockinfo *bi)
{
	struct jwriter w = {0};
	char *text;
	size_t len;

	bdm_json_write_instance(&w, inst, bi);
	if (jwriter_finish(&w, &text, &len) < 0) {
		struct err e = {0};

		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return;
	}
	set_etag(r, inst);
	api_reply_take(r, status, "application/json", text, len);
}

/* Reloads the instance after a change and answers it. */
static void
reply_reloaded(struct api_req *r, int status)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	struct err e = {0};

	if (load(r, &inst, &bi, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	reply_instance(r, status, inst, bi);
}

/* RFC 9110 If-Match with strong comparison: "*" or a list of entity
 * tags. -ESTALE (412) when none matches the instance's. */
static int
check_if_match(struct api_req *r, const struct instance *inst, struct err *e)
{
	const char *v = api_header(r, "If-Match");
	char mine[32];
	const char *p;

	if (v == NULL)
		return 0;
	(void)snprintf(
	    mine, sizeof(mine), "\"%lld\"", (long long)inst->generation);
	for (p = v; *p;) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		n = strcspn(p, ", \t");
		if (n == 1 && *p == '*')
			return 0;
		if (n == strlen(mine) && strncmp(p, mine, n) == 0)
			return 0;
		p += n;
	}
	return err_set_field(e, -ESTALE, "If-Match",
	    "If-Match does not match the instance's ETag %s", mine);
}

/* Parses a small JSON body into an object (depth and size bounded). */
static int
parse_object(
    const char *body, size_t len, struct json_object **ret, struct err *e)
{
	struct json_tokener *t = json_tokener_new_ex(BDM_JSON_MAX_DEPTH);
	struct json_object *o;

	if (t == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	o = json_tokener_parse_ex(t, body ? body : "", (int)len);
	if (o == NULL || json_tokener_get_error(t) != json_tokener_success ||
	    t->char_offset != (int)len) {
		json_object_put(o);
		json_tokener_free(t);
		return err_set(e, -EINVAL, "the body is not one JSON object");
	}
	json_tokener_free(t);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return err_set(e, -EINVAL, "the body is not a JSON object");
	}
	*ret = o;
	return 0;
}

/* ---- health and metrics ------------------------------------------------ */

/* GET /v1/health: 200 when libvirt and the database answer and the job
 * queue makes progress (api_jobs_stalled), else 503. Never waits for
 * another request nor for libvirt: the libvirt state is the one the
 * connection keeps (virt_health: reopens, failed calls, the keepalive, the
 * sweeper thread's probe), and the store read runs on this thread's own
 * connection (WAL: never blocked by a writer). */
void
api_health(struct api_req *r)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	struct err e = {0};
	struct api_jobs j;
	struct store *s;
	int64_t since = 0;
	bool lv, db = false;
	int v = 0;

	api_jobs_get(r->api, &j);
	lv = r->h->virt && virt_health(r->h->virt, &since);
	if ((s = api_store(r, &e)) && store_schema_version(s, &v, &e) == 0 &&
	    v > 0 &&
	    access(r->h->db_path ? r->h->db_path : r->h->cfg->db_path,
		R_OK | W_OK) == 0)
		db = true;
	json_object_object_add(o, "status",
	    json_object_new_string(lv && db && !j.stalled ? "ok" : "degraded"));
	json_object_object_add(
	    o, "libvirt", json_object_new_string(lv ? "ok" : "down"));
	/* how long libvirt has been in that state, in whole seconds */
	if (r->h->virt)
		json_object_object_add(o, "libvirt_for_s",
		    json_object_new_int64(
			since > 0 ? (util_now_ms() - since) / 1000 : 0));
	json_object_object_add(
	    o, "database", json_object_new_string(db ? "ok" : "down"));
	json_object_object_add(
	    o, "jobs", json_object_new_string(j.stalled ? "stalled" : "ok"));
	json_object_object_add(
	    o, "jobs_queued", json_object_new_int64((int64_t)j.queued));
	json_object_object_add(
	    o, "jobs_running", json_object_new_int64((int64_t)j.running));
	if (j.stalled)
		json_object_object_add(
		    o, "detail", json_object_new_string("job queue stalled"));
	json_object_object_add(o, "schema_version", json_object_new_int(v));
	json_object_object_add(
	    o, "version", json_object_new_string(PACKAGE_VERSION));
	api_reply_json(r, lv && db && !j.stalled ? 200 : 503, o);
}

/* GET /metrics: Prometheus text exposition 0.0.4. */
void
api_metrics(struct api_req *r)
{
	struct metrics_gauges g = {.libvirt_up = -1};
	struct domevents *de;
	struct placement_sync_status ps;
	struct events_stats es;
	struct err e = {0};
	struct store *s;
	char *text = NULL;
	size_t len = 0;

	if (!(s = api_store(r, &e)) ||
	    store_count_by_state(s, g.instances_by_state, &e) < 0)
		g.instances_by_state[0] = -1;
	g.libvirt_reconnects =
	    r->h->virt ? (int64_t)virt_reconnects(r->h->virt) : -1;
	g.reconcile_findings = atomic_load(&r->h->reconcile_findings);
	g.inflight = api_inflight(r->api);
	g.domevents_handled = -1;
	if ((de = atomic_load(&r->h->domevents)) != NULL) {
		struct domevents_stats ds;

		domevents_stats(de, &ds);
		g.domevents_handled = (int64_t)ds.handled;
	}
	if (r->h->events) {
		events_stats_get(r->h->events, &es);
		g.events = &es;
	}
	placement_sync_status(r->h->placement, &ps);
	g.placement_enabled = ps.enabled;
	g.placement_pending = ps.pending;
	g.placement_behind = !ps.ok;
	g.placement_errors = ps.errors;
	g.placement_last_sync_ms = ps.last_sync_ms;
	g.placement_reconcile_ms = ps.last_reconcile_ms;
	if (metrics_format(api_metrics_get(r->api), &g, &text, &len) < 0) {
		err_clear(&e);
		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return;
	}
	api_reply_text(
	    r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

/* ---- reads ----------------------------------------------------------- */

/* GET /v1/instances?limit=N&marker=UUID: {"instances": [...], "next":
 * uuid or null}. limit 1..1000 (default 1000); next is the last uuid of a
 * page when more follow. An unknown marker is 400, as in Nova. */
void
api_instances_list(struct api_req *r)
{
	static const char *const allowed[] = {"limit", "marker", NULL};
	_cleanup_(jwriter_reset) struct jwriter w = {0};
	_cleanup_free_ char *text = NULL;
	struct instance **v = NULL;
	struct err e = {0};
	const char *ls = api_query(r, "limit"), *ms = api_query(r, "marker");
	char marker[UUID_STR_LEN];
	size_t limit = LIST_LIMIT_MAX, n = 0, i, len;
	struct store *s;
	int rc;

	if (api_query_check(r, allowed, &e) < 0)
		goto fail;
	if (ls) {
		char *end;
		long l;

		errno = 0;
		l = strtol(ls, &end, 10);
		if (errno || end == ls || *end || l < 1 || l > LIST_LIMIT_MAX) {
			err_set_field(&e, -EINVAL, "limit",
			    "limit: expected an integer from 1 to %d",
			    LIST_LIMIT_MAX);
			goto fail;
		}
		limit = (size_t)l;
	}
	if (ms && util_uuid_normalize(ms, marker) < 0) {
		err_set_field(&e, -EINVAL, "marker", "marker: not a UUID");
		goto fail;
	}
	if (!(s = api_store(r, &e)))
		goto fail;
	/* One more than asked tells whether a next page exists. */
	rc = store_instance_list(s, ms ? marker : NULL, limit + 1, &v, &n, &e);
	if (rc == -ENOENT) {
		err_clear(&e);
		err_set_field(
		    &e, -EINVAL, "marker", "marker: no instance %s", marker);
		goto fail;
	}
	if (rc < 0)
		goto fail;
	/* Written straight into one buffer: a page of 1,000 is megabytes of
	 * JSON, which as a json-c tree cost more than the query. The hint is
	 * above what 5 BDMs take, and untouched pages cost nothing. */
	jwriter_init(&w, 4096 * (n < limit ? n : limit) + 64);
	jwriter_obj_begin(&w);
	jwriter_key(&w, "instances");
	jwriter_arr_begin(&w);
	for (i = 0; i < n && i < limit; i++) {
		_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
		struct err be = {0};

		/* An instance whose view cannot be built (a rule tightened
		 * since) is still listed, without serials. */
		(void)blockinfo_build(v[i], &r->h->cfg->limits, &bi, &be);
		bdm_json_write_instance(&w, v[i], bi);
	}
	jwriter_arr_end(&w);
	jwriter_key(&w, "next");
	jwriter_str(&w, n > limit ? v[limit - 1]->uuid : NULL);
	jwriter_obj_end(&w);
	store_instance_list_free(v, n);
	if ((rc = jwriter_finish(&w, &text, &len)) < 0) {
		err_set(&e, rc, "out of memory");
		goto fail;
	}
	api_reply_take(r, 200, "application/json", TAKE_PTR(text), len);
	return;
fail:
	api_reply_error(r, &e);
}

/* GET /v1/instances/{uuid}: the instance with its BDMs, and its ETag. */
void
api_instance_get(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	struct err e = {0};

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (load(r, &inst, &bi, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	reply_instance(r, 200, inst, bi);
}

/* Answers GET of one view of an instance's disks: the JSON that format
 * builds from the stored instance and its block_device_info, with the
 * instance's ETag. */
static void
reply_disk_view(struct api_req *r,
    struct json_object *(*format)(
	const struct instance *, const struct blockinfo *))
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct err e = {0};

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (load(r, &inst, &bi, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	o = format(inst, bi);
	if (o == NULL) {
		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return;
	}
	set_etag(r, inst);
	api_reply_json(r, 200, o);
}

/* GET /v1/instances/{uuid}/block_device_mappings:
 * {"block_device_mappings": [...]} with bdm_uuid, serial and by_id. */
void
api_instance_bdms(struct api_req *r)
{
	reply_disk_view(r, bdm_json_format_bdms);
}

/* GET /v1/instances/{uuid}/block_device_info. */
void
api_instance_blockinfo(struct api_req *r)
{
	reply_disk_view(r, bdm_json_format_blockinfo);
}

/* GET /v1/instances/{uuid}/domain: libvirt's XML (application/xml). */
void
api_instance_domain(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_free_ char *xml = NULL;
	struct err e = {0};

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (load(r, &inst, NULL, &e) < 0 ||
	    virt_get_xml(r->h->virt, r->id, false, &xml, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	api_reply_text(r, 200, "application/xml", xml, strlen(xml));
}

/* GET /v1/instances/{uuid}/console?length=N: the last N lines of the
 * serial console log as text/plain (Nova's os-getConsoleOutput). length
 * as in Nova: absent or -1 every line, 0 none, else 1..CONSOLE_MAX_LINES;
 * at most CONSOLE_MAX_BYTES of the log are read either way. An instance
 * whose guest has written nothing yet (or whose driver writes no file,
 * test:///default) answers an empty 200. Reads a file only: no libvirt
 * call, so it runs on the HTTP worker. */
void
api_instance_console(struct api_req *r)
{
	static const char *const allowed[] = {"length", NULL};
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_free_ char *dir = NULL, *path = NULL;
	const char *ls = api_query(r, "length");
	char *text = NULL;
	struct err e = {0};
	size_t len = 0;
	long lines = -1;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (api_query_check(r, allowed, &e) < 0)
		goto fail;
	if (ls) {
		char *end;

		errno = 0;
		lines = strtol(ls, &end, 10);
		/* digits only (strtol would take blanks and a '+') */
		if (errno || end == ls || *end ||
		    strspn(ls + (*ls == '-'), "0123456789") !=
			strlen(ls + (*ls == '-')) ||
		    lines < -1 || lines > CONSOLE_MAX_LINES) {
			err_set_field(&e, -EINVAL, "length",
			    "length: expected an integer from -1 (every "
			    "line) to %d",
			    CONSOLE_MAX_LINES);
			goto fail;
		}
	}
	if (load(r, &inst, NULL, &e) < 0 ||
	    virt_instance_dir(r->h->virt, r->id, &dir, &e) < 0)
		goto fail;
	if (asprintf(&path, "%s/" CONSOLE_LOG_NAME, dir) < 0) {
		path = NULL;
		err_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (console_tail(path, lines, CONSOLE_MAX_BYTES, &text, &len, &e) < 0)
		goto fail;
	api_reply_take(r, 200, "text/plain", text, len);
	return;
fail:
	api_reply_error(r, &e);
}

/* GET /v1/instances/{uuid}/config_drive: the config drive image as
 * built (application/octet-stream); 404 for no such instance and for an
 * instance without a drive. Reads a file only, on the HTTP worker. */
void
api_instance_config_drive(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	char *buf = NULL;
	struct err e = {0};
	size_t len = 0;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (load(r, &inst, NULL, &e) < 0 ||
	    guestdrive_read(r->h->virt, r->id, &buf, &len, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	api_reply_take(r, 200, "application/octet-stream", buf, len);
}

/* ---- changes ---------------------------------------------------------- */

/* Fills the instance's image properties the request left unset from the
 * stored image's (the request wins), and checks that imageRef and every
 * image-sourced BDM name an uploaded image (400 naming the field). */
static int
apply_images(
    struct api_req *r, struct store *s, struct instance *inst, struct err *e)
{
	struct image_props *p = &inst->props;
	struct store_image *img = NULL;
	struct json_object *props = NULL;
	size_t i;
	int rc;

	for (i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];
		char field[64];

		if (b->source_type != BDM_SOURCE_IMAGE || b->image_id == NULL)
			continue;
		rc = store_image_get(s, b->image_id, &img, NULL);
		img = store_image_free(img);
		if (rc == -ENOENT || rc == -EINVAL) {
			(void)snprintf(field, sizeof(field),
			    "block_device_mapping_v2[%zu].uuid", i);
			return err_set_field(e, -EINVAL, field,
			    "%s: no uploaded image %.64s", field, b->image_id);
		}
		if (rc < 0)
			return err_set(
			    e, rc, "reading image %.64s", b->image_id);
	}
	if (inst->image_ref == NULL)
		return 0;
	rc = store_image_get(s, inst->image_ref, &img, NULL);
	if (rc == -ENOENT || rc == -EINVAL)
		return err_set_field(e, -EINVAL, "imageRef",
		    "imageRef: no uploaded image %.64s", inst->image_ref);
	if (rc < 0)
		return err_set(e, rc, "reading image %.64s", inst->image_ref);
	if (!p->disk_format && img->format &&
	    !(p->disk_format = strdup(img->format))) {
		store_image_free(img);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (img->properties)
		props = json_tokener_parse(img->properties);
	store_image_free(img);
	if (props && json_object_is_type(props, json_type_object)) {
		static const struct {
			const char *key;
			size_t off;
		} keys[] = {
		    {"hw_disk_bus", offsetof(struct image_props, hw_disk_bus)},
		    {"hw_cdrom_bus",
			offsetof(struct image_props, hw_cdrom_bus)},
		    {"hw_scsi_model",
			offsetof(struct image_props, hw_scsi_model)},
		    {"hw_machine_type",
			offsetof(struct image_props, hw_machine_type)},
		};

		for (i = 0; i < ELEMENTSOF(keys); i++) {
			char **slot = (char **)((char *)p + keys[i].off);
			struct json_object *v;

			if (*slot ||
			    !json_object_object_get_ex(
				props, keys[i].key, &v) ||
			    !json_object_is_type(v, json_type_string))
				continue;
			*slot = strdup(json_object_get_string(v));
			if (*slot == NULL) {
				json_object_put(props);
				return err_set(e, -ENOMEM, "out of memory");
			}
		}
	}
	json_object_put(props);
	(void)r;
	return 0;
}

/* The digest that makes PUT idempotent: sha256 of the body re-serialised
 * by json-c, so whitespace does not matter but every value does. */
static int
body_digest(const char *body, size_t len, char out[72], struct err *e)
{
	_cleanup_(json_putp) struct json_object *o = NULL;
	const char *canon;
	char hex[65];
	int rc;

	if ((rc = parse_object(body, len, &o, e)) < 0)
		return rc;
	canon = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (canon == NULL || api_sha256_hex(canon, strlen(canon), hex) < 0)
		return err_set(e, -EIO, "cannot digest the body");
	(void)snprintf(out, 72, "sha256:%s", hex);
	return 0;
}

/* Parse, check images, create through compute. On success the instance
 * exists (and runs unless "start": false). */
static int
create(
    struct api_req *r, const char *path_uuid, const char *digest, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct store *s;
	int rc;

	if ((rc = bdm_json_parse_create(r->body, r->body_len, &inst, e)) < 0 ||
	    (rc = compute_check_volumes(r->h->compute, inst, e)) < 0)
		return rc;
	if (path_uuid) {
		if (inst->uuid_given && !STREQ(inst->uuid, path_uuid))
			return err_set_field(e, -EINVAL, "uuid",
			    "uuid: the body's %s is not the path's %s",
			    inst->uuid, path_uuid);
		memcpy(inst->uuid, path_uuid, UUID_STR_LEN);
		inst->uuid_given = true;
	}
	if (!(s = api_store(r, e)))
		return e->code;
	api_images_lock(r, false);
	if ((rc = apply_images(r, s, inst, e)) < 0 ||
	    (rc = bdm_instance_prepare(inst, &r->h->cfg->limits, e)) < 0 ||
	    (rc = nic_json_prepare(&inst->guest, inst->name, inst->uuid, e)) <
		0) {
		api_images_unlock(r);
		return rc;
	}
	/* a drawn MAC another NIC of the node has (24 random bits): draw
	 * again, as Nova does */
	for (int tries = 0;; tries++) {
		rc = compute_create(r->h->compute, s, inst, digest, NULL, e);
		if (rc != -EEXIST || tries == 4 ||
		    !nic_json_redraw_mac(&inst->guest, e->field))
			break;
		err_clear(e);
	}
	if (rc < 0) {
		api_images_unlock(r);
		return rc;
	}
	api_images_unlock(r);
	placement_sync_note(r->h->placement, inst->uuid);
	memcpy(r->id, inst->uuid, UUID_STR_LEN);
	memcpy(r->log_uuid, inst->uuid, UUID_STR_LEN);
	return 0;
}

static void
set_location(struct api_req *r)
{
	free(r->location);
	if (asprintf(&r->location, "/v1/instances/%s", r->id) < 0)
		r->location = NULL;
}

/* The uuid a POST /v1/instances creates, for api.c to claim before the
 * request is queued: the body's, or one drawn now (the create then takes
 * it). A body that does not parse, or a uuid that is not one, leaves
 * r->id empty: the handler answers 400 without writing anything. */
void
api_instances_create_id(struct api_req *r)
{
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct json_object *u;
	struct err e = {0};

	r->id[0] = '\0';
	if (parse_object(r->body, r->body_len, &o, &e) < 0)
		return;
	if (json_object_object_get_ex(o, "uuid", &u) &&
	    json_object_is_type(u, json_type_string)) {
		(void)util_uuid_normalize(json_object_get_string(u), r->id);
		return;
	}
	util_uuid_generate(r->id);
}

/* POST /v1/instances: 201 + Location, the instance as GET shows it. */
void
api_instances_create(struct api_req *r)
{
	struct err e = {0};
	static const char *const none[] = {NULL};

	/* r->id: the claimed uuid (api_instances_create_id) */
	if (api_query_check(r, none, &e) < 0 ||
	    create(r, r->id[0] ? r->id : NULL, NULL, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	set_location(r);
	reply_reloaded(r, 201);
}

/* PUT /v1/instances/{uuid}: idempotent create. api.c claims the uuid
 * before queueing, so a replay while the create runs is 409 at once and
 * one that comes later sees its outcome: the instance as it is (200) if
 * the create succeeded, 409 while a failed create is being undone (its row
 * deleting, or building with the undo pending), and a new create once the
 * undo removed the row. */
void
api_instance_put(struct api_req *r)
{
	_cleanup_free_ char *stored = NULL;
	struct err e = {0};
	char digest[72];
	struct store *s;
	int rc;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (body_digest(r->body, r->body_len, digest, &e) < 0 ||
	    !(s = api_store(r, &e)))
		goto fail;
	if (api_instance_claim(r, &e) < 0)
		goto fail;
	rc = store_instance_digest(s, r->id, &stored, &e);
	if (rc == 0) {
		_cleanup_(instance_freep) struct instance *inst = NULL;
		_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;

		if (stored == NULL || !STREQ(stored, digest)) {
			err_set_field(&e, -EEXIST, "uuid",
			    "instance %s exists with a different request "
			    "body",
			    r->id);
			goto fail;
		}
		if (load(r, &inst, &bi, &e) < 0)
			goto fail;
		/* The claim is ours, so no create of it is running: a row
		 * still building or deleting is a failed create whose undo
		 * has not finished (or a delete). */
		if (inst->state == INSTANCE_BUILDING ||
		    inst->state == INSTANCE_DELETING) {
			err_set_field(&e, -EBUSY, "uuid",
			    "instance %s is %s: a failed create (or a "
			    "delete) is being undone; retry later",
			    r->id, instance_state_to_string(inst->state));
			goto fail;
		}
		set_location(r);
		reply_instance(r, 200, inst, bi);
		return;
	}
	if (rc != -ENOENT)
		goto fail;
	err_clear(&e);
	if (create(r, r->id, digest, &e) < 0)
		goto fail;
	set_location(r);
	reply_reloaded(r, 201);
	return;
fail:
	api_reply_error(r, &e);
}

/* DELETE /v1/instances/{uuid}: 204; If-Match honoured. Without one the
 * row is not read first: the delete's first write refuses what it must
 * (no such instance, building). */
void
api_instance_delete(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct store *s;
	struct err e = {0};
	int64_t generation = 0;
	int rc;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (api_instance_claim(r, &e) < 0 || !(s = api_store(r, &e)))
		goto fail;
	if (api_header(r, "If-Match") != NULL) {
		if (load_row(r, &inst, &e) < 0 ||
		    check_if_match(r, inst, &e) < 0)
			goto fail;
		generation = inst->generation;
	}
	rc = compute_delete_if(r->h->compute, s, r->id, generation, &e);
	if (rc == -ENOENT)
		err_clear(&e), err_set(&e, rc, "no such instance");
	if (rc < 0)
		goto fail;
	placement_sync_note(r->h->placement, r->id);
	api_reply_empty(r, 204);
	return;
fail:
	api_reply_error(r, &e);
}

/* Nova's reboot types, as its schema spells them. */
static int
reboot_type(const char *t, bool *ret_hard)
{
	static const char *const soft[] = {"soft", "Soft", "SOFT"};
	static const char *const hard[] = {"hard", "Hard", "HARD"};
	size_t i;

	for (i = 0; i < ELEMENTSOF(soft); i++) {
		if (STREQ(t, soft[i]))
			return *ret_hard = false, 0;
		if (STREQ(t, hard[i]))
			return *ret_hard = true, 0;
	}
	return -EINVAL;
}

/* POST /v1/instances/{uuid}/action {"action": "start"|"stop"|"reboot"}
 * and, for reboot, "type": "soft" (ACPI, the default) | "hard" (Nova's
 * hard reboot: redefined from the database and started; Nova's "SOFT",
 * "HARD" spellings too): 200 with the instance; If-Match honoured. */
void
api_instance_action(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct err e = {0};
	const char *action = NULL, *type = NULL;
	enum compute_action act;
	bool hard = false;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (parse_object(r->body, r->body_len, &o, &e) < 0)
		goto fail;
	json_object_object_foreach(o, key, val)
	{
		if (!STREQ(key, "action") && !STREQ(key, "type")) {
			err_set_field(
			    &e, -EINVAL, key, "unknown field '%.64s'", key);
			goto fail;
		}
		if (!json_object_is_type(val, json_type_string)) {
			err_set_field(
			    &e, -EINVAL, key, "%s: expected a string", key);
			goto fail;
		}
		if (STREQ(key, "action"))
			action = json_object_get_string(val);
		else
			type = json_object_get_string(val);
	}
	if (action == NULL || compute_action_from_string(action, &act) < 0) {
		err_set_field(&e, -EINVAL, "action",
		    "action: expected start, stop or reboot");
		goto fail;
	}
	if (type != NULL &&
	    (act != COMPUTE_REBOOT || reboot_type(type, &hard) < 0)) {
		err_set_field(&e, -EINVAL, "type",
		    act != COMPUTE_REBOOT ? "type: only a reboot has a type"
					  : "type: expected soft or hard");
		goto fail;
	}
	if (hard)
		act = COMPUTE_REBOOT_HARD;
	if (api_instance_claim(r, &e) < 0 || load(r, &inst, NULL, &e) < 0 ||
	    check_if_match(r, inst, &e) < 0 ||
	    compute_action(
		r->h->compute, api_store(r, &e), r->id, act, NULL, &e) < 0)
		goto fail;
	reply_reloaded(r, 200);
	return;
fail:
	api_reply_error(r, &e);
}

/* POST /v1/instances/{uuid}/volumes: 201 with the new BDM. */
void
api_instance_attach(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct bdm b = {0};
	struct err e = {0};
	size_t i = 0;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (bdm_json_parse_attach(r->body, r->body_len, &b, &e) < 0)
		goto fail;
	if (api_instance_claim(r, &e) < 0 || load(r, &inst, NULL, &e) < 0 ||
	    check_if_match(r, inst, &e) < 0)
		goto fail;
	inst = instance_free(inst);
	if (compute_attach(r->h->compute, api_store(r, &e), r->id, &b, &inst,
		&i, &e) < 0 ||
	    blockinfo_build(inst, &r->h->cfg->limits, &bi, &e) < 0)
		goto fail;
	o = bdm_json_format_bdm(inst, i, bi);
	if (o == NULL) {
		err_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	free(r->location);
	if (asprintf(&r->location, "/v1/instances/%s/volumes/%s", r->id,
		inst->bdms[i].volume_id ? inst->bdms[i].volume_id : "") < 0)
		r->location = NULL;
	set_etag(r, inst);
	api_reply_json(r, 201, o);
	bdm_clear(&b);
	return;
fail:
	bdm_clear(&b);
	api_reply_error(r, &e);
}

/* DELETE /v1/instances/{uuid}/volumes/{volume_id}: 204. */
void
api_instance_detach(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct err e = {0};
	size_t i;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (api_instance_claim(r, &e) < 0 || load(r, &inst, NULL, &e) < 0 ||
	    check_if_match(r, inst, &e) < 0)
		goto fail;
	for (i = 0; i < inst->n_bdms; i++)
		if (inst->bdms[i].destination_type == BDM_DEST_VOLUME &&
		    inst->bdms[i].volume_id &&
		    STREQ(inst->bdms[i].volume_id, r->sub))
			break;
	if (i == inst->n_bdms) {
		err_set_field(&e, -ENOENT, "volume_id",
		    "instance %s has no volume %.64s", r->id, r->sub);
		goto fail;
	}
	if (compute_detach(r->h->compute, api_store(r, &e), r->id, r->sub, &e) <
	    0)
		goto fail;
	api_reply_empty(r, 204);
	return;
fail:
	api_reply_error(r, &e);
}

/* ---- interfaces -------------------------------------------------------- */

/* POST /v1/instances/{uuid}/interfaces: 201 with the new interface, as
 * the instance JSON shows it (pci_address as libvirt assigned it). */
void
api_instance_interface_attach(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct jwriter w = {0};
	struct nic n = {0};
	struct err e = {0};
	const struct nic *got = NULL;
	char *text;
	size_t len;

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (nic_json_parse_attach(r->body, r->body_len, &n, &e) < 0)
		goto fail;
	if (api_instance_claim(r, &e) < 0 || load(r, &inst, NULL, &e) < 0 ||
	    check_if_match(r, inst, &e) < 0)
		goto fail;
	inst = instance_free(inst);
	for (int tries = 0;; tries++) {
		int rc = compute_attach_interface(
		    r->h->compute, api_store(r, &e), r->id, &n, &inst, &e);

		if (rc == 0)
			break;
		/* a drawn MAC another NIC of the node has: draw again */
		if (rc != -EEXIST || tries == 4 || !n.mac_drawn ||
		    !STREQ(e.field, "mac"))
			goto fail;
		err_clear(&e);
		n.mac[0] = '\0';
		nic_json_fill(&n);
	}
	fill_pci(r, inst);
	for (size_t i = 0; i < inst->guest.n_nics; i++)
		if (STREQ(inst->guest.nics[i].port_id, n.port_id))
			got = &inst->guest.nics[i];
	if (got == NULL) {
		err_set(
		    &e, -EIO, "interface %s vanished after attach", n.port_id);
		goto fail;
	}
	nic_json_write_nic(&w, got);
	if (jwriter_finish(&w, &text, &len) < 0) {
		err_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	free(r->location);
	if (asprintf(&r->location, "/v1/instances/%s/interfaces/%s", r->id,
		n.port_id) < 0)
		r->location = NULL;
	set_etag(r, inst);
	api_reply_take(r, 201, "application/json", text, len);
	nic_clear(&n);
	return;
fail:
	nic_clear(&n);
	api_reply_error(r, &e);
}

/* DELETE /v1/instances/{uuid}/interfaces/{port_id}: 204. */
void
api_instance_interface_detach(struct api_req *r)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	char port[UUID_STR_LEN];
	struct err e = {0};

	memcpy(r->log_uuid, r->id, sizeof(r->log_uuid));
	if (util_uuid_normalize(r->sub ? r->sub : "", port) < 0) {
		err_set_field(
		    &e, -EINVAL, "port_id", "port_id: expected a UUID");
		goto fail;
	}
	if (api_instance_claim(r, &e) < 0 || load(r, &inst, NULL, &e) < 0 ||
	    check_if_match(r, inst, &e) < 0 ||
	    compute_detach_interface(
		r->h->compute, api_store(r, &e), r->id, port, &e) < 0)
		goto fail;
	api_reply_empty(r, 204);
	return;
fail:
	api_reply_error(r, &e);
}
