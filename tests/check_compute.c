/*
 * check_compute: the orchestration against real parts: a SQLite file,
 * real libvirt (test:///default in-process, so every forked test starts
 * from the driver's stock state; or, with HL_LIBVIRT_URI set by
 * tests/libvirtd/with-libvirtd.sh, a private libvirtd, where attach and
 * detach also work), and inputs from JSON through bdm_json and bdm.
 * Crashes are reproduced by leaving the rows and domains a kill -9 would
 * leave between two steps, then running compute_reconcile.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "compute.h"
#include "nic_json.h"
#include "store.h"
#include "testutil.h"
#include "virt.h"

#define IMAGE_ID "5b0f3c1e-2d4a-4e6f-8a9b-0c1d2e3f4a5b"
#define VOLUME_ID "0b5e3d1c-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
#define BASE_SIZE (INT64_C(64) << 20)

static const char *uri; /* NULL: test:///default */
static bool real;
static char *tmpdir, *images_dir, *inst_path, *base_path, *vol_path, *vols_dir;
static char db_path[4096];
static struct virt *v;
static struct store *s;
static struct compute *c;
static bool force_drive; /* set_resume's [guest] force_config_drive */

static void
make_file(const char *path, int64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* (Re)makes the compute, with [guest] resume_guests_state_on_host_boot set
 * to resume. */
static void
set_resume(bool resume)
{
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
	struct err e = {0};

	c = compute_free(c);
	co.virt = v;
	co.images_dir = images_dir;
	co.domxml.on_reboot = "destroy";
	co.volume_roots = vols_dir;
	co.state_dir = tmpdir;
	co.db_path = db_path;
	co.resume_guests = resume;
	co.force_config_drive = force_drive;
	co.availability_zone = "az-test";
	ck_assert_msg(compute_new(&co, &c, &e) == 0, "%s", e.msg);
}

static void
setup(void)
{
	struct virt_opts vo = {.virt_type = "qemu"};
	struct store_image img = {.id = IMAGE_ID,
	    .format = (char *)"raw",
	    .virtual_size = BASE_SIZE,
	    .file_size = BASE_SIZE};
	struct err e = {0};

	if (real) {
		ck_assert_int_ge(
		    asprintf(&tmpdir, "%s/c.XXXXXX", getenv("HL_LIBVIRT_DIR")),
		    0);
		ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	} else
		ck_assert_ptr_nonnull(
		    tmpdir = testutil_mkdtemp("check_compute"));
	ck_assert_int_ge(asprintf(&images_dir, "%s/images", tmpdir), 0);
	ck_assert_int_ge(asprintf(&inst_path, "%s/instances", tmpdir), 0);
	ck_assert_int_ge(asprintf(&base_path, "%s/" IMAGE_ID, images_dir), 0);
	ck_assert_int_ge(asprintf(&vols_dir, "%s/vols", tmpdir), 0);
	ck_assert_int_ge(asprintf(&vol_path, "%s/vol.img", vols_dir), 0);
	ck_assert_int_eq(mkdir(vols_dir, 0755), 0);
	ck_assert_int_eq(mkdir(images_dir, 0755), 0);
	ck_assert_int_eq(mkdir(inst_path, 0755), 0);
	make_file(base_path, BASE_SIZE);
	make_file(vol_path, 16 << 20);
	(void)snprintf(db_path, sizeof(db_path), "%s/hyperlet.db", tmpdir);

	ck_assert_msg(store_open(db_path, NULL, &s, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_image_put(s, &img, &e), 0);
	vo.uri = uri;
	vo.instances_path = inst_path;
	ck_assert_msg(virt_open(&vo, &v, &e) == 0, "virt_open: %s", e.msg);
	set_resume(true); /* the daemon's default */
}

static void
teardown(void)
{
	struct instance **l = NULL;
	struct err e = {0};
	size_t n = 0, i;

	/* On a private libvirtd, leave no domain behind. */
	if (s && v && store_instance_list(s, NULL, 0, &l, &n, &e) == 0)
		for (i = 0; i < n; i++) {
			(void)virt_undefine(v, l[i]->uuid, &e);
			(void)virt_delete_disks(v, l[i]->uuid, &e);
		}
	store_instance_list_free(l, n);
	c = compute_free(c);
	s = store_close(s);
	v = virt_close(v);
	force_drive = false;
	testutil_rm_rf(tmpdir);
	free(tmpdir);
	free(images_dir);
	free(inst_path);
	free(base_path);
	free(vol_path);
	free(vols_dir);
	tmpdir = images_dir = inst_path = base_path = vol_path = vols_dir =
	    NULL;
}

/* A create request with one volume of type at path, parsed and, when
 * prepare, prepared as the API does. */
static struct instance *
request_volume(bool start, const char *type, const char *path, bool prepare)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct err e = {0};
	char json[2048];

	(void)snprintf(json, sizeof(json),
	    "{\"name\": \"vm-1\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64,"
	    " \"root_gb\": 1},"
	    " \"imageRef\": \"" IMAGE_ID "\", \"start\": %s,"
	    " \"block_device_mapping_v2\": ["
	    "{\"boot_index\": 0, \"source_type\": \"image\","
	    " \"destination_type\": \"local\", \"uuid\": \"" IMAGE_ID "\"},"
	    "{\"source_type\": \"volume\", \"destination_type\": \"volume\","
	    " \"uuid\": \"" VOLUME_ID "\", \"connection_info\":"
	    " {\"driver_volume_type\": \"%s\", \"data\": {\"device_path\":"
	    " \"%s\"}}}]}",
	    start ? "true" : "false", type, path);
	ck_assert_msg(bdm_json_parse_create(json, strlen(json), &inst, &e) == 0,
	    "parse: %s: %s", e.field, e.msg);
	if (prepare)
		ck_assert_msg(bdm_instance_prepare(inst, &lim, &e) == 0,
		    "prepare: %s: %s", e.field, e.msg);
	return inst;
}

/* A create request, parsed and prepared as the API does. */
static struct instance *
request(bool start, bool with_volume)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct err e = {0};
	char json[2048];

	(void)snprintf(json, sizeof(json),
	    "{\"name\": \"vm-1\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64,"
	    " \"root_gb\": 1, \"ephemeral_gb\": 1, \"swap\": 16},"
	    " \"imageRef\": \"" IMAGE_ID "\", \"start\": %s%s%s%s}",
	    start ? "true" : "false",
	    with_volume ? ", \"block_device_mapping_v2\": ["
			  "{\"boot_index\": 0, \"source_type\": \"image\","
			  " \"destination_type\": \"local\","
			  " \"uuid\": \"" IMAGE_ID "\"},"
			  "{\"source_type\": \"volume\","
			  " \"destination_type\": \"volume\","
			  " \"uuid\": \"" VOLUME_ID "\","
			  " \"connection_info\": {\"driver_volume_type\":"
			  " \"file\", \"data\": {\"device_path\": \""
			: "",
	    with_volume ? vol_path : "", with_volume ? "\"}}}]" : "");
	ck_assert_msg(bdm_json_parse_create(json, strlen(json), &inst, &e) == 0,
	    "parse: %s: %s", e.field, e.msg);
	ck_assert_msg(bdm_instance_prepare(inst, &lim, &e) == 0,
	    "prepare: %s: %s", e.field, e.msg);
	return inst;
}

/* Creates an instance through compute; returns it as stored. */
static struct instance *
create(bool start)
{
	struct instance *inst = request(start, false), *got = NULL;
	struct err e = {0};

	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	instance_free(inst);
	return got;
}

static enum instance_state
dom_state(const char *uuid)
{
	enum instance_state st = INSTANCE_ERROR;
	struct err e = {0};

	ck_assert_msg(virt_state(v, uuid, &st, &e) == 0, "%s", e.msg);
	return st;
}

static bool
dom_exists(const char *uuid)
{
	enum instance_state st;
	struct err e = {0};
	int rc = virt_state(v, uuid, &st, &e);

	ck_assert_msg(rc == 0 || rc == -ENOENT, "%s", e.msg);
	return rc == 0;
}

static bool
row_exists(const char *uuid)
{
	struct instance *inst = NULL;
	struct err e = {0};
	int rc = store_instance_get(s, uuid, &inst, &e);

	ck_assert_msg(rc == 0 || rc == -ENOENT, "%s", e.msg);
	instance_free(inst);
	return rc == 0;
}

static enum instance_state
row_state(const char *uuid)
{
	struct instance *inst = NULL;
	struct err e = {0};
	enum instance_state st;

	ck_assert_msg(store_instance_get(s, uuid, &inst, &e) == 0, "%s", e.msg);
	st = inst->state;
	instance_free(inst);
	return st;
}

static bool
instance_dir_exists(const char *uuid)
{
	char path[4096];
	struct stat st;

	(void)snprintf(path, sizeof(path), "%s/%s", inst_path, uuid);
	return stat(path, &st) == 0;
}

/* ---- create ---------------------------------------------------------- */

START_TEST(test_compute_create_stores_the_instance_and_runs_its_domain)
{
	struct instance *got = create(true);
	struct err e = {0};
	char *xml = NULL;

	ck_assert_int_eq(got->state, INSTANCE_RUNNING);
	ck_assert_int_eq(got->generation, 2); /* created, then running */
	ck_assert_uint_eq(got->n_bdms, 3); /* root, eph0, swap */
	/* The mapping's names were stored with the BDMs. */
	ck_assert_str_eq(got->bdms[0].device_name, "/dev/vda");
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(virt_get_xml(v, got->uuid, true, &xml, &e), 0);
	{
		char serial[64];

		(void)snprintf(serial, sizeof(serial), "<serial>%.20s</serial>",
		    got->bdms[0].uuid);
		ck_assert_msg(strstr(xml, serial), "%s", xml);
	}
	free(xml);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_create_with_start_false_leaves_a_stopped_domain)
{
	struct instance *got = create(false);

	ck_assert_int_eq(got->state, INSTANCE_STOPPED);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_STOPPED);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_create_failing_after_the_row_leaves_nothing_behind)
{
	struct instance *inst = request(true, false);
	struct err e = {0};
	int rc;

	/* The image is recorded but its file is gone: the disks fail, after
	 * the row was written. */
	ck_assert_int_eq(unlink(base_path), 0);
	rc = compute_create(c, s, inst, NULL, NULL, &e);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_msg(strstr(e.msg, "base image"), "%s", e.msg);
	ck_assert(!row_exists(inst->uuid));
	ck_assert(!dom_exists(inst->uuid));
	ck_assert(!instance_dir_exists(inst->uuid));
	instance_free(inst);
}
END_TEST

START_TEST(test_compute_create_of_an_image_never_uploaded_writes_nothing)
{
	struct instance *inst = request(true, false);
	struct instance **l = NULL;
	struct err e = {0};
	size_t n;

	ck_assert_int_eq(store_image_delete(s, IMAGE_ID, &e), 0);
	ck_assert_int_eq(compute_create(c, s, inst, NULL, NULL, &e), -EINVAL);
	ck_assert_str_eq(e.field, "imageRef");
	err_clear(&e);
	ck_assert_int_eq(store_instance_list(s, NULL, 0, &l, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	store_instance_list_free(l, n);
	ck_assert(!dom_exists(inst->uuid));
	instance_free(inst);
}
END_TEST

START_TEST(test_compute_create_of_a_taken_uuid_leaves_the_first_alone)
{
	struct instance *first = create(true);
	struct instance *again = request(true, false);
	struct err e = {0};

	memcpy(again->uuid, first->uuid, UUID_STR_LEN);
	ck_assert_int_eq(compute_create(c, s, again, "d2", NULL, &e), -EEXIST);
	ck_assert_int_eq(row_state(first->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(dom_state(first->uuid), INSTANCE_RUNNING);
	instance_free(first);
	instance_free(again);
}
END_TEST

/* ---- delete ---------------------------------------------------------- */

START_TEST(test_compute_delete_removes_domain_disks_and_row)
{
	struct instance *got = create(true);
	struct err e = {0};

	ck_assert(instance_dir_exists(got->uuid) || !real);
	ck_assert_msg(compute_delete(c, s, got->uuid, &e) == 0, "%s", e.msg);
	ck_assert(!row_exists(got->uuid));
	ck_assert(!dom_exists(got->uuid));
	ck_assert(!instance_dir_exists(got->uuid));
	ck_assert_int_eq(compute_delete(c, s, got->uuid, &e), -ENOENT);
	/* The image is free again. */
	err_clear(&e);
	ck_assert_int_eq(store_image_delete(s, IMAGE_ID, &e), 0);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_delete_finishes_an_instance_left_deleting)
{
	struct instance *got = create(true);
	struct err e = {0};

	/* A delete killed after its first step. */
	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_DELETING, &e), 0);
	ck_assert_msg(compute_delete(c, s, got->uuid, &e) == 0, "%s", e.msg);
	ck_assert(!row_exists(got->uuid));
	ck_assert(!dom_exists(got->uuid));
	instance_free(got);
}
END_TEST

START_TEST(test_compute_delete_of_an_instance_being_built_is_busy)
{
	struct instance *got = create(true);
	struct err e = {0};

	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_BUILDING, &e), 0);
	ck_assert_int_eq(compute_delete(c, s, got->uuid, &e), -EBUSY);
	ck_assert_msg(strstr(e.msg, "building"), "%s", e.msg);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_BUILDING);
	ck_assert(dom_exists(got->uuid));
	instance_free(got);
}
END_TEST

START_TEST(test_store_cas_state_changes_only_the_expected_state)
{
	struct instance *got = create(false);
	struct err e = {0};

	ck_assert_int_eq(store_instance_cas_state(s, got->uuid,
			     INSTANCE_RUNNING, INSTANCE_DELETING, &e),
	    -EBUSY);
	ck_assert_msg(
	    strstr(e.msg, "is stopped, no longer running"), "%s", e.msg);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_STOPPED);
	err_clear(&e);
	ck_assert_int_eq(store_instance_cas_state(s, got->uuid,
			     INSTANCE_STOPPED, INSTANCE_RUNNING, &e),
	    0);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(
	    store_instance_cas_state(s, "00000000-0000-4000-8000-000000000001",
		INSTANCE_RUNNING, INSTANCE_STOPPED, &e),
	    -ENOENT);
	instance_free(got);
}
END_TEST

/* One create and a stream of deletes of the same uuid, each on its own
 * thread and store connection, as two API job threads would run them
 * without the API's claim. */
struct race {
	struct instance *inst;
	atomic_bool created; /* compute_create has returned */
	int create_rc;
	int deletes_ok;
	int delete_bad; /* a delete error other than -ENOENT/-EBUSY */
	char bad_msg[ERR_MSG_MAX];
};

static void *
race_create(void *p)
{
	struct race *r = p;
	struct store *cs = NULL;
	struct err e = {0};

	ck_assert_int_eq(store_open(db_path, NULL, &cs, &e), 0);
	r->create_rc = compute_create(c, cs, r->inst, "d", NULL, &e);
	atomic_store(&r->created, true);
	store_close(cs);
	return NULL;
}

static void *
race_delete(void *p)
{
	struct race *r = p;
	struct store *ds = NULL;
	struct err e = {0};
	bool last = false;

	ck_assert_int_eq(store_open(db_path, NULL, &ds, &e), 0);
	/* until the create has answered, and once more after */
	while (!last) {
		int rc;

		last = atomic_load(&r->created);
		err_clear(&e);
		rc = compute_delete(c, ds, r->inst->uuid, &e);
		if (rc == 0)
			r->deletes_ok++;
		else if (rc != -ENOENT && rc != -EBUSY && !r->delete_bad) {
			r->delete_bad = rc;
			(void)snprintf(
			    r->bad_msg, sizeof(r->bad_msg), "%s", e.msg);
		}
	}
	store_close(ds);
	return NULL;
}

START_TEST(test_compute_create_and_delete_racing_never_leave_an_orphan_domain)
{
	int rounds = real ? 20 : 200, i, created = 0, kept = 0;

	for (i = 0; i < rounds; i++) {
		struct race r = {.inst = request(true, false)};
		pthread_t a, b;
		bool row, dom;

		ck_assert_int_eq(pthread_create(&b, NULL, race_delete, &r), 0);
		ck_assert_int_eq(pthread_create(&a, NULL, race_create, &r), 0);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		ck_assert_msg(r.delete_bad == 0, "delete: %d %s", r.delete_bad,
		    r.bad_msg);
		row = row_exists(r.inst->uuid);
		dom = dom_exists(r.inst->uuid);
		/* no domain without a row, no row without its domain */
		ck_assert_msg(row == dom,
		    "round %d: row %d, domain %d (create %d, deletes %d)", i,
		    row, dom, r.create_rc, r.deletes_ok);
		if (row) {
			ck_assert_int_eq(r.create_rc, 0);
			ck_assert_int_eq(
			    row_state(r.inst->uuid), INSTANCE_RUNNING);
			kept++;
		} else
			ck_assert(!instance_dir_exists(r.inst->uuid));
		created += r.create_rc == 0;
		instance_free(r.inst);
	}
	printf("create/delete race: %d rounds, %d created, %d kept\n", rounds,
	    created, kept);
	fflush(stdout);
}
END_TEST

/* ---- actions --------------------------------------------------------- */

START_TEST(test_compute_actions_drive_the_domain_and_record_the_state)
{
	struct instance *got = create(true), *after = NULL;
	enum compute_action a;
	struct err e = {0};

	ck_assert_int_eq(compute_action_from_string("stop", &a), 0);
	ck_assert_int_eq(a, COMPUTE_STOP);
	ck_assert_int_eq(compute_action_from_string("pause", &a), -EINVAL);

	ck_assert_msg(
	    compute_action(c, s, got->uuid, COMPUTE_STOP, &after, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(after->state, INSTANCE_STOPPED);
	ck_assert_int_gt(after->generation, got->generation);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_STOPPED);
	after = instance_free(after);
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_STOP, NULL, &e), -EBUSY);
	err_clear(&e);
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_START, NULL, &e), 0);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_START, NULL, &e), -EBUSY);
	err_clear(&e);
	ck_assert_msg(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_action_on_an_instance_being_built_is_busy)
{
	struct instance *got = create(true);
	struct err e = {0};

	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_BUILDING, &e), 0);
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_STOP, NULL, &e), -EBUSY);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	instance_free(got);
}
END_TEST

/* ---- volumes --------------------------------------------------------- */

START_TEST(test_compute_attach_stores_the_bdm_only_if_libvirt_attaches)
{
	struct instance *got = create(true), *after = NULL;
	struct bdm b = {0};
	struct err e = {0};
	char body[512];
	size_t idx = 99;
	int rc;

	(void)snprintf(body, sizeof(body),
	    "{\"volume_id\": \"" VOLUME_ID "\", \"connection_info\":"
	    " {\"driver_volume_type\": \"file\","
	    "  \"data\": {\"device_path\": \"%s\"}}}",
	    vol_path);
	ck_assert_msg(bdm_json_parse_attach(body, strlen(body), &b, &e) == 0,
	    "%s", e.msg);
	rc = compute_attach(c, s, got->uuid, &b, &after, &idx, &e);
	if (!real) {
		/* libvirt 9.0's test driver cannot attach: -EOPNOTSUPP
		 * (the API's 501), a definite refusal, so the BDM row that
		 * was written first is gone again. */
		ck_assert_msg(rc == -EOPNOTSUPP, "%d %s", rc, e.msg);
		after = NULL;
		err_clear(&e);
		ck_assert_int_eq(
		    store_instance_get(s, got->uuid, &after, &e), 0);
		ck_assert_uint_eq(after->n_bdms, got->n_bdms);
	} else {
		char *xml = NULL;

		ck_assert_msg(rc == 0, "%s", e.msg);
		ck_assert_uint_eq(after->n_bdms, got->n_bdms + 1);
		ck_assert_uint_eq(idx, got->n_bdms);
		ck_assert_str_eq(after->bdms[idx].volume_id, VOLUME_ID);
		ck_assert_str_eq(after->bdms[idx].device_name, "/dev/vdd");
		ck_assert_int_eq(virt_get_xml(v, got->uuid, true, &xml, &e), 0);
		ck_assert_msg(
		    strstr(xml, "<serial>0b5e3d1c-9a8f-4e7d-8</serial>"), "%s",
		    xml);
		free(xml);
		after = instance_free(after);
		/* A running guest without an OS never releases the disk
		 * (compute_detach waits for that, 17.3): detach from the
		 * stopped domain. */
		ck_assert_msg(compute_action(
				  c, s, got->uuid, COMPUTE_STOP, NULL, &e) == 0,
		    "%s", e.msg);
		ck_assert_msg(
		    compute_detach(c, s, got->uuid, VOLUME_ID, &e) == 0, "%s",
		    e.msg);
		ck_assert_int_eq(
		    store_instance_get(s, got->uuid, &after, &e), 0);
		ck_assert_uint_eq(after->n_bdms, got->n_bdms);
		ck_assert_int_eq(virt_get_xml(v, got->uuid, true, &xml, &e), 0);
		ck_assert_ptr_null(strstr(xml, "0b5e3d1c-9a8f-4e7d-8"));
		free(xml);
	}
	instance_free(after);
	bdm_clear(&b);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_detach_of_a_volume_not_attached_is_not_found)
{
	struct instance *got = create(true);
	struct err e = {0};

	ck_assert_int_eq(
	    compute_detach(c, s, got->uuid, VOLUME_ID, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, VOLUME_ID), "%s", e.msg);
	instance_free(got);
}
END_TEST

/* ---- volume roots ---------------------------------------------------- */

static size_t
row_count(void)
{
	struct instance **l = NULL;
	struct err e = {0};
	size_t n = 0;

	ck_assert_msg(
	    store_instance_list(s, NULL, 0, &l, &n, &e) == 0, "%s", e.msg);
	store_instance_list_free(l, n);
	return n;
}

/* compute_create of a volume (type, path) must be refused before
 * anything is written; the API's check names the request's field. */
static void
assert_volume_refused(const char *type, const char *path, const char *why)
{
	struct instance *inst = request_volume(true, type, path, false);
	struct err e = {0};
	size_t before = row_count();

	ck_assert_int_eq(compute_check_volumes(c, inst, &e), -EINVAL);
	ck_assert_str_eq(e.field,
	    "block_device_mapping_v2[1].connection_info.data.device_path");
	ck_assert_msg(strstr(e.msg, why), "%s %s: %s", type, path, e.msg);
	instance_free(inst);
	inst = request_volume(true, type, path, true);
	err_clear(&e);
	ck_assert_int_eq(compute_create(c, s, inst, "d", NULL, &e), -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2");
	ck_assert_msg(strstr(e.msg, why), "%s %s: %s", type, path, e.msg);
	ck_assert_uint_eq(row_count(), before);
	ck_assert(!instance_dir_exists(inst->uuid));
	ck_assert(!dom_exists(inst->uuid));
	instance_free(inst);
}

START_TEST(test_compute_create_takes_volumes_from_the_roots_only)
{
	char out[4096], in[4096], inst_file[4096], dir[4096];
	struct instance *inst;
	struct err e = {0};
	int fd;

	(void)snprintf(out, sizeof(out), "%s/out", vols_dir);
	(void)snprintf(in, sizeof(in), "%s/in", vols_dir);
	(void)snprintf(dir, sizeof(dir), "%s/dir", vols_dir);
	(void)snprintf(inst_file, sizeof(inst_file), "%s/x.img", inst_path);
	ck_assert_int_eq(symlink("/etc/passwd", out), 0);
	ck_assert_int_eq(symlink("vol.img", in), 0);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fd = open(inst_file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);

	assert_volume_refused("file", "/etc/shadow", "not inside any");
	assert_volume_refused("block", "/etc/shadow", "not inside any");
	assert_volume_refused("file", db_path, "not inside any");
	assert_volume_refused("file", base_path, "not inside any");
	assert_volume_refused("file", inst_file, "not inside any");
	assert_volume_refused("file", out, "not inside any");
	assert_volume_refused("block", vol_path, "not a block device");
	assert_volume_refused("file", dir, "not a regular file");
	assert_volume_refused("file", "/nonexistent/vol", "No such file");
	(void)unlink(inst_file);

	/* a regular file in a root, also through a link inside it */
	inst = request_volume(false, "file", in, true);
	ck_assert_msg(
	    compute_create(c, s, inst, "d", NULL, &e) == 0, "%s", e.msg);
	ck_assert(row_exists(inst->uuid));
	instance_free(inst);
}
END_TEST

/* A root that holds hyperlet's own directories still refuses its files. */
START_TEST(test_a_root_over_the_state_dir_still_refuses_hyperlets_files)
{
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
	struct compute *wide = NULL;
	char inst_file[4096], other[4096];
	struct instance *inst;
	struct err e = {0};
	int fd;

	co.virt = v;
	co.images_dir = images_dir;
	co.volume_roots = tmpdir; /* also the state dir */
	co.state_dir = tmpdir;
	co.db_path = db_path;
	ck_assert_msg(compute_new(&co, &wide, &e) == 0, "%s", e.msg);
	(void)snprintf(inst_file, sizeof(inst_file), "%s/x.img", inst_path);
	(void)snprintf(other, sizeof(other), "%s/other.img", tmpdir);
	fd = open(inst_file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	make_file(other, 4096);
	{
		static const struct {
			const char *type;
			const char *path;
			const char *why;
		} cases[] = {
		    {"file", NULL, "database"},
		    {"block", NULL, "database"},
		    {"file", NULL, "images or instances"},
		    {"file", NULL, "images or instances"},
		    {"file", NULL, "state directory"},
		};
		const char *paths[] = {
		    db_path, db_path, base_path, inst_file, other};

		for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
			inst = request_volume(
			    true, cases[i].type, paths[i], false);
			err_clear(&e);
			ck_assert_int_eq(
			    compute_check_volumes(wide, inst, &e), -EINVAL);
			ck_assert_msg(strstr(e.msg, cases[i].why), "%s: %s",
			    paths[i], e.msg);
			instance_free(inst);
		}
	}
	(void)unlink(inst_file);
	compute_free(wide);

	/* the same, hyperlet's paths named through a symlink: compute
	 * resolves them once, the volume's path is resolved at each check */
	{
		char link[4096], l_db[4200], l_images[4200];

		(void)snprintf(link, sizeof(link), "%s-link", tmpdir);
		(void)unlink(link);
		ck_assert_int_eq(symlink(tmpdir, link), 0);
		(void)snprintf(
		    l_db, sizeof(l_db), "%s%s", link, db_path + strlen(tmpdir));
		(void)snprintf(l_images, sizeof(l_images), "%s%s", link,
		    images_dir + strlen(tmpdir));
		co.state_dir = link;
		co.db_path = l_db;
		co.images_dir = l_images;
		ck_assert_msg(compute_new(&co, &wide, &e) == 0, "%s", e.msg);
		inst = request_volume(true, "file", db_path, false);
		err_clear(&e);
		ck_assert_int_eq(
		    compute_check_volumes(wide, inst, &e), -EINVAL);
		ck_assert_msg(strstr(e.msg, "database"), "%s", e.msg);
		instance_free(inst);
		inst = request_volume(true, "file", base_path, false);
		err_clear(&e);
		ck_assert_int_eq(
		    compute_check_volumes(wide, inst, &e), -EINVAL);
		ck_assert_msg(
		    strstr(e.msg, "images or instances"), "%s", e.msg);
		instance_free(inst);
		inst = request_volume(true, "file", other, false);
		err_clear(&e);
		ck_assert_int_eq(
		    compute_check_volumes(wide, inst, &e), -EINVAL);
		ck_assert_msg(strstr(e.msg, "state directory"), "%s", e.msg);
		instance_free(inst);
		compute_free(wide);
		(void)unlink(link);
	}
}
END_TEST

START_TEST(test_no_volume_roots_means_no_volumes)
{
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
	struct compute *none = NULL;
	struct instance *inst = request_volume(true, "file", vol_path, true);
	struct err e = {0};

	co.virt = v;
	co.images_dir = images_dir;
	ck_assert_msg(compute_new(&co, &none, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(compute_create(none, s, inst, "d", NULL, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "no volume roots"), "%s", e.msg);
	ck_assert_uint_eq(row_count(), 0);
	compute_free(none);
	instance_free(inst);
}
END_TEST

/* udev's link directories: a block volume may be a direct entry of a root
 * that links to a device node under /dev. */
START_TEST(test_a_link_directory_root_admits_links_to_block_devices)
{
	static const char *const devs[] = {
	    "/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1"};
	struct volroot_opts o = {0};
	char byid[2048], link[4096], deep[4096], roots[4096];
	const char *dev = NULL;
	struct stat st;
	struct err e = {0};

	for (size_t i = 0; i < ELEMENTSOF(devs) && !dev; i++)
		if (stat(devs[i], &st) == 0 && S_ISBLK(st.st_mode))
			dev = devs[i];
	if (dev == NULL)
		return; /* no block device to link to on this machine */
	(void)snprintf(byid, sizeof(byid), "%s/by-id", tmpdir);
	(void)snprintf(link, sizeof(link), "%s/virtio-vol1", byid);
	(void)snprintf(deep, sizeof(deep), "%s/sub/virtio-vol2", byid);
	ck_assert_int_eq(mkdir(byid, 0755), 0);
	ck_assert_int_eq(symlink(dev, link), 0);
	(void)snprintf(roots, sizeof(roots), "%s", byid);
	o.roots = roots;
	ck_assert_msg(
	    volroot_check(&o, "block", link, "f", &e) == 0, "%s", e.msg);
	/* a file volume never leaves its root */
	ck_assert_int_eq(volroot_check(&o, "file", link, "f", &e), -EINVAL);
	/* only a direct entry of the root, only to a block device */
	(void)snprintf(deep, sizeof(deep), "%s/sub", byid);
	ck_assert_int_eq(mkdir(deep, 0755), 0);
	(void)snprintf(deep, sizeof(deep), "%s/sub/virtio-vol2", byid);
	ck_assert_int_eq(symlink(dev, deep), 0);
	ck_assert_int_eq(volroot_check(&o, "block", deep, "f", &e), -EINVAL);
	(void)snprintf(link, sizeof(link), "%s/virtio-null", byid);
	ck_assert_int_eq(symlink("/dev/null", link), 0);
	ck_assert_int_eq(volroot_check(&o, "block", link, "f", &e), -EINVAL);
	(void)snprintf(link, sizeof(link), "%s/virtio-etc", byid);
	ck_assert_int_eq(symlink("/etc/passwd", link), 0);
	ck_assert_int_eq(volroot_check(&o, "block", link, "f", &e), -EINVAL);
}
END_TEST

START_TEST(test_compute_attach_refuses_a_volume_outside_the_roots)
{
	struct instance *got = create(true), *after = NULL;
	struct bdm b = {0};
	struct err e = {0};
	const char *body =
	    "{\"volume_id\": \"" VOLUME_ID "\", \"connection_info\":"
	    " {\"driver_volume_type\": \"file\","
	    "  \"data\": {\"device_path\": \"/etc/shadow\"}}}";

	ck_assert_msg(bdm_json_parse_attach(body, strlen(body), &b, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(
	    compute_attach(c, s, got->uuid, &b, NULL, NULL, &e), -EINVAL);
	ck_assert_str_eq(e.field, "connection_info.data.device_path");
	err_clear(&e);
	ck_assert_int_eq(store_instance_get(s, got->uuid, &after, &e), 0);
	ck_assert_uint_eq(after->n_bdms, got->n_bdms);
	instance_free(after);
	bdm_clear(&b);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_does_not_redefine_over_a_swapped_volume)
{
	struct instance *inst = request_volume(true, "file", vol_path, true);
	struct instance *got = NULL;
	struct compute_report r;
	struct err e = {0};

	ck_assert_msg(
	    compute_create(c, s, inst, "d", &got, &e) == 0, "%s", e.msg);
	/* the domain is gone (host reboot without persistence) and the
	 * volume was swapped for a link to a host file meanwhile */
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	ck_assert_int_eq(unlink(vol_path), 0);
	ck_assert_int_eq(symlink("/etc/passwd", vol_path), 0);
	ck_assert_int_eq(compute_reconcile(c, s, &r, &e), 0);
	ck_assert_uint_eq(r.failed, 1);
	ck_assert_uint_eq(r.redefined, 0);
	ck_assert_msg(
	    strstr(r.first_error, "not inside any"), "%s", r.first_error);
	compute_report_clear(&r);
	ck_assert(!dom_exists(got->uuid));
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_ERROR);
	instance_free(inst);
	instance_free(got);
}
END_TEST

/* ---- reconcile ------------------------------------------------------- */

static void
reconcile(struct compute_report *r)
{
	struct err e = {0};

	ck_assert_msg(compute_reconcile(c, s, r, &e) == 0, "%s", e.msg);
	ck_assert_msg(r->failed == 0, "%s", r->first_error);
}

START_TEST(test_compute_reconcile_redefines_and_restarts_a_missing_domain)
{
	struct instance *run = create(true), *stop = create(false);
	struct compute_report r;
	struct err e = {0};

	/* libvirt lost both domains (a host reboot with a transient
	 * driver). */
	ck_assert_int_eq(virt_undefine(v, run->uuid, &e), 0);
	ck_assert_int_eq(virt_undefine(v, stop->uuid, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.instances, 2);
	ck_assert_uint_eq(r.redefined, 2);
	ck_assert_uint_eq(r.restarted, 1);
	ck_assert_int_eq(dom_state(run->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(dom_state(stop->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(row_state(run->uuid), INSTANCE_RUNNING);
	compute_report_clear(&r);
	/* A second pass has nothing to do. */
	reconcile(&r);
	ck_assert_uint_eq(r.redefined + r.states_refreshed + r.n_unknown, 0);
	compute_report_clear(&r);
	instance_free(run);
	instance_free(stop);
}
END_TEST

/* A domain lost with its NICs comes back with them, from the rows. */
START_TEST(test_compute_reconcile_redefines_a_domain_with_its_nics)
{
	static const char json[] =
	    "{\"name\": \"vm-nics\", \"flavor\": {\"vcpus\": 1, \"memory_mb\":"
	    " 64, \"root_gb\": 1}, \"imageRef\": \"" IMAGE_ID "\", \"start\":"
	    " false, \"networks\": [{\"bridge\": \"br-ex\", \"mac\":"
	    " \"fa:16:3e:00:00:31\", \"mtu\": 1400}, {\"network\": \"default\","
	    " \"model\": \"e1000\", \"mac\": \"fa:16:3e:00:00:32\"}]}";
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL, *got = NULL;
	struct compute_report r;
	struct err e = {0};
	char *xml = NULL;
	const char *a, *b;

	ck_assert_msg(bdm_json_parse_create(json, strlen(json), &inst, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(bdm_instance_prepare(inst, &lim, &e), 0);
	ck_assert_int_eq(
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e), 0);
	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(got->guest.n_nics, 2);
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.redefined, 1);
	compute_report_clear(&r);
	ck_assert_int_eq(virt_get_xml(v, got->uuid, true, &xml, &e), 0);
	a = strstr(xml, "fa:16:3e:00:00:31");
	b = strstr(xml, "fa:16:3e:00:00:32");
	ck_assert_msg(a && b && a < b, "NICs in order: %s", xml);
	ck_assert_ptr_nonnull(strstr(xml, "<source bridge='br-ex'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<source network='default'"));
	ck_assert_ptr_nonnull(strstr(xml, "<mtu size='1400'/>"));
	free(xml);
	instance_free(inst);
	instance_free(got);
}
END_TEST

/* The attach_state of NIC port_id on uuid, or -1 when it has no such
 * NIC. */
static int
nic_state(const char *uuid, const char *port_id)
{
	struct instance *got = NULL;
	struct err e = {0};
	int st = -1;

	ck_assert_msg(store_instance_get(s, uuid, &got, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < got->guest.n_nics; i++)
		if (STREQ(got->guest.nics[i].port_id, port_id))
			st = (int)got->guest.nics[i].attach_state;
	instance_free(got);
	return st;
}

/* An attach or detach of a NIC a crash interrupted (the row attaching or
 * detaching) is settled at start-up against the domain's MACs. The
 * unsettled rows are written through the store, as compute leaves them
 * (test:///default attaches no interfaces). */
START_TEST(test_compute_reconcile_settles_nics_against_the_domains_macs)
{
	static const char json[] =
	    "{\"name\": \"vm-nicst\", \"flavor\": {\"vcpus\": 1,"
	    " \"memory_mb\": 64, \"root_gb\": 1}, \"imageRef\": \"" IMAGE_ID
	    "\", \"start\": false, \"networks\": [{\"bridge\": \"br-ex\","
	    " \"mac\": \"fa:16:3e:00:00:41\"}, {\"bridge\": \"br-ex\","
	    " \"mac\": \"fa:16:3e:00:00:42\"}]}";
	static const char gone_a[] = "0a0a0a0a-0000-4000-8000-000000000001";
	static const char gone_d[] = "0a0a0a0a-0000-4000-8000-000000000002";
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL, *got = NULL, *after = NULL;
	struct nic n = {.model = NIC_MODEL_VIRTIO, .bridge = (char *)"br-ex"};
	struct compute_report r;
	struct err e = {0};
	const char *p0, *p1;

	ck_assert_msg(bdm_json_parse_create(json, strlen(json), &inst, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(bdm_instance_prepare(inst, &lim, &e), 0);
	ck_assert_int_eq(
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e), 0);
	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(got->guest.n_nics, 2);
	p0 = got->guest.nics[0].port_id;
	p1 = got->guest.nics[1].port_id;
	/* a create writes its NICs settled, and a settled node is left
	 * alone */
	ck_assert_int_eq(nic_state(got->uuid, p0), NIC_ATTACH_SETTLED);
	ck_assert_int_eq(nic_state(got->uuid, p1), NIC_ATTACH_SETTLED);

	/* attaching, and the domain has the MAC: libvirt did it */
	ck_assert_msg(store_nic_set_attach_state(
			  s, got->uuid, p0, NIC_ATTACH_ATTACHING, &e) == 0,
	    "%s", e.msg);
	/* attaching, and the domain lacks the MAC: it never happened */
	memcpy(n.port_id, gone_a, sizeof(n.port_id));
	memcpy(n.mac, "fa:16:3e:00:00:43", NIC_MAC_LEN);
	n.attach_state = NIC_ATTACH_ATTACHING;
	ck_assert_msg(store_nic_insert(s, got->uuid, &n, &e) == 0, "%s", e.msg);
	/* detaching, and the domain lacks the MAC: libvirt did it */
	memcpy(n.port_id, gone_d, sizeof(n.port_id));
	memcpy(n.mac, "fa:16:3e:00:00:44", NIC_MAC_LEN);
	n.attach_state = NIC_ATTACH_DETACHING;
	ck_assert_msg(store_nic_insert(s, got->uuid, &n, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(nic_state(got->uuid, p0), NIC_ATTACH_ATTACHING);
	ck_assert_int_eq(nic_state(got->uuid, gone_a), NIC_ATTACH_ATTACHING);
	ck_assert_int_eq(nic_state(got->uuid, gone_d), NIC_ATTACH_DETACHING);

	reconcile(&r);
	ck_assert_uint_eq(r.nic_attaches_settled, 1);
	ck_assert_uint_eq(r.nic_attaches_undone, 1);
	ck_assert_uint_eq(r.nic_detaches_finished, 1);
	ck_assert_uint_eq(r.redefined, 0);
	compute_report_clear(&r);
	ck_assert_int_eq(nic_state(got->uuid, p0), NIC_ATTACH_SETTLED);
	ck_assert_int_eq(nic_state(got->uuid, p1), NIC_ATTACH_SETTLED);
	ck_assert_int_eq(nic_state(got->uuid, gone_a), -1);
	ck_assert_int_eq(nic_state(got->uuid, gone_d), -1);
	ck_assert_msg(
	    store_instance_get(s, got->uuid, &after, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(after->guest.n_nics, 2);
	instance_free(after);

	/* a second pass has nothing to do */
	reconcile(&r);
	ck_assert_uint_eq(r.nic_attaches_settled + r.nic_attaches_undone +
		r.nic_detaches_finished,
	    0);
	compute_report_clear(&r);

	/* detaching, and the domain has the MAC: detached again, then the
	 * row goes. test:///default refuses interface detach, which is a
	 * refusal reconciliation reports, keeping the row detaching (the
	 * NIC is still there) for the next pass or a detach to finish. */
	ck_assert_msg(store_nic_set_attach_state(
			  s, got->uuid, p1, NIC_ATTACH_DETACHING, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(compute_reconcile(c, s, &r, &e), 0);
	if (uri == NULL) { /* test:///default: refused, kept detaching */
		ck_assert_uint_eq(r.failed, 1);
		ck_assert_uint_eq(r.nic_detaches_finished, 0);
		ck_assert_msg(
		    strstr(r.first_error, p1) != NULL, "%s", r.first_error);
		ck_assert_int_eq(
		    nic_state(got->uuid, p1), NIC_ATTACH_DETACHING);
	} else { /* a real libvirtd detaches it: the row goes */
		ck_assert_msg(r.failed == 0, "%s", r.first_error);
		ck_assert_uint_eq(r.nic_detaches_finished, 1);
		ck_assert_int_eq(nic_state(got->uuid, p1), -1);
	}
	compute_report_clear(&r);
	/* the domain goes with it: the private libvirtd is shared by the
	 * tests that follow */
	ck_assert_msg(compute_delete(c, s, got->uuid, &e) == 0, "%s", e.msg);
	instance_free(inst);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_rolls_back_a_build_that_never_defined)
{
	struct instance *inst = request(true, false);
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct blockinfo *bi = NULL;
	struct compute_report r;
	struct err e = {0};

	/* A create killed after its row (and disks) but before define. */
	ck_assert_int_eq(blockinfo_build(inst, &lim, &bi, &e), 0);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_msg(virt_create_disks(
			  v, inst, bi, base_path, "raw", BASE_SIZE, &e) == 0,
	    "%s", e.msg);
	reconcile(&r);
	ck_assert_uint_eq(r.builds_rolled_back, 1);
	ck_assert(!row_exists(inst->uuid));
	ck_assert(!instance_dir_exists(inst->uuid));
	compute_report_clear(&r);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_compute_reconcile_keeps_a_build_whose_domain_was_defined)
{
	struct instance *got = create(false);
	struct compute_report r;
	struct err e = {0};

	/* A create killed after define, before it recorded the state. */
	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_BUILDING, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.builds_finished, 1);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_STOPPED);
	ck_assert(dom_exists(got->uuid));
	compute_report_clear(&r);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_finishes_a_delete)
{
	struct instance *got = create(true);
	struct compute_report r;
	struct err e = {0};

	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_DELETING, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.deletes_finished, 1);
	ck_assert(!row_exists(got->uuid));
	ck_assert(!dom_exists(got->uuid));
	compute_report_clear(&r);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_reports_a_hyperlet_domain_without_a_row)
{
	struct instance *got = create(true);
	struct compute_report r;
	struct err e = {0};

	/* The row went (a restored older database, say); the domain
	 * stays. The test driver's own "test" domain is not ours and is not
	 * reported. */
	ck_assert_int_eq(store_instance_delete(s, got->uuid, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.n_unknown, 1);
	ck_assert_str_eq(r.unknown[0], got->uuid);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	compute_report_clear(&r);
	/* cleanup for a private libvirtd: teardown only knows rows */
	(void)virt_undefine(v, got->uuid, &e);
	(void)virt_delete_disks(v, got->uuid, &e);
	instance_free(got);
}
END_TEST

/* ---- domains hyperlet does not own ------------------------------------ */

/* A second libvirt connection, as another tool on the host would use:
 * test:///default's state is shared within the process. */
static virConnectPtr
foreign_conn(void)
{
	virConnectPtr conn = virConnectOpen(uri ? uri : "test:///default");

	ck_assert_ptr_nonnull(conn);
	return conn;
}

/* Defines (and starts) a plain domain, as virsh would: no hyperlet
 * metadata. */
static void
foreign_define(const char *name, const char *uuid, bool start)
{
	virConnectPtr conn = foreign_conn();
	virDomainPtr d;
	char xml[512];

	(void)snprintf(xml, sizeof(xml),
	    "<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
	    "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
	    "<os><type arch='x86_64'>hvm</type></os></domain>",
	    name, uuid);
	d = virDomainDefineXML(conn, xml);
	ck_assert_ptr_nonnull(d);
	if (start)
		ck_assert_int_eq(virDomainCreate(d), 0);
	(void)virDomainFree(d);
	(void)virConnectClose(conn);
}

/* -1 no such domain, 0 defined and shut off, 1 running. */
static int
foreign_state(const char *uuid)
{
	virConnectPtr conn = foreign_conn();
	virDomainPtr d = virDomainLookupByUUIDString(conn, uuid);
	int st = -1;

	if (d) {
		st = virDomainIsActive(d) == 1;
		(void)virDomainFree(d);
	}
	(void)virConnectClose(conn);
	return st;
}

static void
foreign_remove(const char *uuid)
{
	virConnectPtr conn = foreign_conn();
	virDomainPtr d = virDomainLookupByUUIDString(conn, uuid);

	if (d) {
		if (virDomainIsActive(d) == 1)
			(void)virDomainDestroy(d);
		(void)virDomainUndefine(d);
		(void)virDomainFree(d);
	}
	(void)virConnectClose(conn);
}

static int
tomb_state(const char *uuid)
{
	struct err e = {0};
	int st = -1;

	ck_assert_msg(
	    store_tombstone_state(s, uuid, &st, &e) == 0, "%s", e.msg);
	return st;
}

START_TEST(test_compute_create_over_a_foreign_domain_is_409_and_touches_it_not)
{
	struct instance *inst = request(true, false);
	struct compute_report r;
	struct err e = {0};
	size_t n = 0;

	foreign_define("tenant-b-db", inst->uuid, true);
	ck_assert_int_eq(compute_create(c, s, inst, "d1", NULL, &e), -EEXIST);
	ck_assert_str_eq(e.field, "uuid");
	ck_assert_ptr_null(strstr(e.msg, "tenant-b-db"));
	ck_assert_int_eq(foreign_state(inst->uuid), 1);
	ck_assert(!row_exists(inst->uuid));
	ck_assert_int_eq(tomb_state(inst->uuid), 0);
	ck_assert(!instance_dir_exists(inst->uuid));
	/* a stopped one, too */
	foreign_remove(inst->uuid);
	foreign_define("tenant-b-db", inst->uuid, false);
	err_clear(&e);
	ck_assert_int_eq(compute_create(c, s, inst, "d1", NULL, &e), -EEXIST);
	ck_assert_int_eq(foreign_state(inst->uuid), 0);
	ck_assert(!row_exists(inst->uuid));
	/* the sweeper and reconciliation leave it alone */
	ck_assert_msg(compute_sweep(c, s, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 0);
	reconcile(&r);
	ck_assert_uint_eq(r.n_unknown, 0);
	compute_report_clear(&r);
	ck_assert_int_eq(foreign_state(inst->uuid), 0);
	foreign_remove(inst->uuid);
	instance_free(inst);
}
END_TEST

START_TEST(test_compute_create_whose_domain_name_is_taken_leaves_that_domain)
{
	struct instance *inst = request(true, false);
	const char *other = "0f0f0f0f-0000-4000-8000-000000000004";
	char name[64];
	struct err e = {0};

	/* instance-<uuid> is someone else's domain, of another uuid */
	(void)snprintf(name, sizeof(name), "instance-%s", inst->uuid);
	foreign_define(name, other, true);
	ck_assert_int_eq(compute_create(c, s, inst, "d1", NULL, &e), -EEXIST);
	ck_assert_str_eq(e.field, "uuid");
	ck_assert_int_eq(foreign_state(other), 1);
	ck_assert_int_eq(foreign_state(inst->uuid), -1);
	ck_assert(!row_exists(inst->uuid));
	foreign_remove(other);
	instance_free(inst);
}
END_TEST

/* The persistent definition of uuid's domain (owned). */
static char *
inactive_xml(const char *uuid)
{
	struct err e = {0};
	char *xml = NULL;

	ck_assert_msg(virt_get_xml(v, uuid, true, &xml, &e) == 0, "%s", e.msg);
	return xml;
}

/* Nova's hard reboot: whatever was done to the domain behind hyperlet's
 * back (a changed definition, an undefine, a stop), it comes back as
 * hyperlet formats it from the database, running; a domain of the uuid
 * that is not hyperlet's is refused and left alone. */
START_TEST(test_compute_hard_reboot_redefines_the_domain_from_the_database)
{
	struct instance *got = create(true), *after = NULL;
	char *want = inactive_xml(got->uuid), *xml, *changed, *p;
	virConnectPtr conn;
	virDomainPtr d;
	struct err e = {0};
	int64_t gen = got->generation;

	/* a definition changed behind hyperlet's back (its metadata kept,
	 * so the domain is still hyperlet's): a watchdog added */
	p = strstr(want, "</devices>");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_ge(
	    asprintf(&changed,
		"%.*s<watchdog model='i6300esb' action='poweroff'/>"
		"%s",
		(int)(p - want), want, p),
	    0);
	conn = foreign_conn();
	d = virDomainDefineXML(conn, changed);
	ck_assert_ptr_nonnull(d);
	(void)virDomainFree(d);
	(void)virConnectClose(conn);
	free(changed);
	xml = inactive_xml(got->uuid);
	ck_assert_ptr_nonnull(strstr(xml, "watchdog"));
	free(xml);
	ck_assert_msg(compute_action(c, s, got->uuid, COMPUTE_REBOOT_HARD,
			  &after, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(after->state, INSTANCE_RUNNING);
	ck_assert_int_gt(after->generation, gen);
	after = instance_free(after);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	xml = inactive_xml(got->uuid);
	ck_assert_str_eq(xml, want);
	free(xml);

	/* undefined behind its back: defined again and started */
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	ck_assert(!dom_exists(got->uuid));
	ck_assert_msg(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT_HARD, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	xml = inactive_xml(got->uuid);
	ck_assert_str_eq(xml, want);
	free(xml);

	/* a stopped instance: a soft reboot is refused, a hard one starts
	 * it (as Nova allows) */
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_STOP, NULL, &e), 0);
	ck_assert_int_eq(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT, NULL, &e), -EBUSY);
	err_clear(&e);
	ck_assert_msg(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT_HARD, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);

	/* a foreign domain holds the uuid: refused, untouched, the row as
	 * it was */
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	foreign_define("tenant-c-web", got->uuid, true);
	ck_assert_int_lt(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT_HARD, &after, &e),
	    0);
	err_clear(&e);
	ck_assert_ptr_null(after);
	ck_assert_int_eq(foreign_state(got->uuid), 1);
	xml = inactive_xml(got->uuid);
	ck_assert_ptr_nonnull(strstr(xml, "tenant-c-web"));
	free(xml);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	foreign_remove(got->uuid);
	free(want);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_sweep_and_delete_never_remove_a_foreign_domain)
{
	struct instance *inst = request(false, false), *got = create(false);
	struct compute_report r;
	struct err e = {0};
	size_t n = 0;

	/* A tombstone of a uuid a foreign domain holds (left by an older
	 * hyperlet's failed create): the sweep skips the domain. */
	foreign_define("tenant-b-db", inst->uuid, true);
	ck_assert_int_eq(store_tombstone_add(s, inst->uuid, &e), 0);
	ck_assert_int_eq(tomb_state(inst->uuid), 1);
	ck_assert_msg(compute_sweep(c, s, &n, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(foreign_state(inst->uuid), 1);
	ck_assert_int_eq(virt_undefine(v, inst->uuid, &e), -EPERM);
	ck_assert_int_eq(virt_stop(v, inst->uuid, 0, &e), -EPERM);
	ck_assert_int_eq(foreign_state(inst->uuid), 1);
	foreign_remove(inst->uuid);

	/* An instance whose domain was replaced behind hyperlet's back by
	 * a foreign one of the same uuid: actions refuse, reconciliation
	 * sets the row to error, a delete removes the row only. */
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	foreign_define("tenant-b-web", got->uuid, true);
	ck_assert_int_lt(
	    compute_action(c, s, got->uuid, COMPUTE_STOP, NULL, &e), 0);
	ck_assert_int_eq(foreign_state(got->uuid), 1);
	err_clear(&e);
	ck_assert_int_eq(compute_reconcile(c, s, &r, &e), 0);
	ck_assert_uint_eq(r.failed, 1);
	ck_assert_uint_eq(r.redefined, 0);
	compute_report_clear(&r);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_ERROR);
	ck_assert_int_eq(foreign_state(got->uuid), 1);
	ck_assert_msg(compute_delete(c, s, got->uuid, &e) == 0, "%s", e.msg);
	ck_assert(!row_exists(got->uuid));
	ck_assert_int_eq(foreign_state(got->uuid), 1);
	foreign_remove(got->uuid);
	instance_free(inst);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_does_not_report_a_lookalike_without_metadata)
{
	static const char lookalike[] =
	    "<domain type='qemu'>"
	    "<name>instance-0f0f0f0f-0000-4000-8000-000000000003</name>"
	    "<uuid>0f0f0f0f-0000-4000-8000-000000000003</uuid>"
	    "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
	    "<os><type arch='x86_64'>hvm</type></os></domain>";
	struct compute_report r;
	struct err e = {0};

	/* Named as hyperlet names its domains, so its metadata is read;
	 * there is none: someone else's domain, not reported. */
	ck_assert_msg(virt_define(v, lookalike, &e) == 0, "%s", e.msg);
	reconcile(&r);
	ck_assert_uint_eq(r.n_unknown, 0);
	compute_report_clear(&r);
	/* not hyperlet's: virt_undefine leaves it alone */
	ck_assert_int_eq(
	    virt_undefine(v, "0f0f0f0f-0000-4000-8000-000000000003", &e),
	    -EPERM);
	ck_assert_int_eq(
	    foreign_state("0f0f0f0f-0000-4000-8000-000000000003"), 0);
	foreign_remove("0f0f0f0f-0000-4000-8000-000000000003");
}
END_TEST

START_TEST(test_compute_sweep_removes_a_define_that_landed_after_its_rollback)
{
	struct instance *late = create(false), *other = create(false);
	struct compute_report r;
	struct err e = {0};
	size_t n = 0;

	/* Reconcile rolled late's build back (row gone, tombstone left)
	 * before libvirtd finished the define the killed daemon had sent:
	 * domain and disks exist without a row. other's row went without a
	 * tombstone (a restored database): never touched. */
	ck_assert_int_eq(store_instance_roll_back(s, late->uuid, &e), 0);
	ck_assert_int_eq(store_instance_delete(s, other->uuid, &e), 0);
	ck_assert_msg(compute_sweep(c, s, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert(!dom_exists(late->uuid));
	ck_assert(!instance_dir_exists(late->uuid));
	ck_assert(dom_exists(other->uuid));
	ck_assert(instance_dir_exists(other->uuid));
	/* nothing left to do; reconcile still reports other only */
	reconcile(&r);
	ck_assert_uint_eq(r.swept, 0);
	ck_assert_uint_eq(r.n_unknown, 1);
	ck_assert_str_eq(r.unknown[0], other->uuid);
	compute_report_clear(&r);
	(void)virt_undefine(v, other->uuid, &e);
	(void)virt_delete_disks(v, other->uuid, &e);
	instance_free(late);
	instance_free(other);
}
END_TEST

static enum instance_state
row_desired(const char *uuid)
{
	struct instance *inst = NULL;
	struct err e = {0};
	enum instance_state st;

	ck_assert_msg(store_instance_get(s, uuid, &inst, &e) == 0, "%s", e.msg);
	st = inst->desired_state;
	instance_free(inst);
	return st;
}

START_TEST(test_compute_reconcile_takes_the_state_from_libvirt)
{
	struct instance *got = create(true);
	struct compute_report r;
	struct err e = {0};

	/* resume_guests_state_on_host_boot = false: the observed state
	 * follows libvirt, the desired one stays what the client asked */
	set_resume(false);
	ck_assert_int_eq(virt_stop(v, got->uuid, 0, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.states_refreshed, 1);
	ck_assert_uint_eq(r.resumed, 0);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(row_desired(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_STOPPED);
	compute_report_clear(&r);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_reconcile_starts_what_should_run_after_a_host_reboot)
{
	struct instance *run = create(true), *off = create(false);
	struct instance *stopped = create(true);
	struct compute_report r;
	struct err e = {0};

	/* stopped was stopped through the API: it should stay off */
	ck_assert_msg(
	    compute_action(c, s, stopped->uuid, COMPUTE_STOP, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(row_desired(stopped->uuid), INSTANCE_STOPPED);
	/* The host rebooted: libvirt has the domains, all shut off. */
	ck_assert_int_eq(virt_stop(v, run->uuid, 0, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.resumed, 1);
	ck_assert_int_eq(dom_state(run->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(run->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_desired(run->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(dom_state(off->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(row_state(off->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(row_desired(off->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(dom_state(stopped->uuid), INSTANCE_STOPPED);
	ck_assert_int_eq(row_state(stopped->uuid), INSTANCE_STOPPED);
	compute_report_clear(&r);
	/* the same once libvirt's stopped has been recorded (a start-up
	 * with resume off first) */
	set_resume(false);
	ck_assert_int_eq(virt_stop(v, run->uuid, 0, &e), 0);
	reconcile(&r);
	ck_assert_int_eq(row_state(run->uuid), INSTANCE_STOPPED);
	compute_report_clear(&r);
	set_resume(true);
	reconcile(&r);
	ck_assert_uint_eq(r.resumed, 1);
	ck_assert_int_eq(dom_state(run->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(run->uuid), INSTANCE_RUNNING);
	compute_report_clear(&r);
	/* starting through the API wants it running again */
	ck_assert_msg(
	    compute_action(c, s, stopped->uuid, COMPUTE_START, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(row_desired(stopped->uuid), INSTANCE_RUNNING);
	instance_free(run);
	instance_free(off);
	instance_free(stopped);
}
END_TEST

/* The instance's local disk file (real libvirt only). */
static void
disk_path(const char *uuid, const char *name, char *out, size_t n)
{
	(void)snprintf(out, n, "%s/%s/%s", inst_path, uuid, name);
}

START_TEST(
    test_compute_reconcile_puts_an_instance_whose_root_disk_is_lost_in_error)
{
	struct instance *got = create(true), *after = NULL;
	struct compute_report r;
	struct err e = {0};
	char path[4096];
	struct stat st;

	/* While the daemon was down the domain went and so did the root
	 * disk: the data is lost; a fresh disk from the image would hide
	 * that. */
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	disk_path(got->uuid, "disk", path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(compute_reconcile(c, s, &r, &e), 0);
	ck_assert_uint_eq(r.failed, 1);
	ck_assert_uint_eq(r.lost, 1);
	ck_assert_uint_eq(r.redefined, 0);
	ck_assert_uint_eq(r.n_faults, 1);
	ck_assert_str_eq(r.faults[0].uuid, got->uuid);
	compute_report_clear(&r);
	ck_assert(!dom_exists(got->uuid));
	ck_assert_int_ne(stat(path, &st), 0);
	ck_assert_int_eq(store_instance_get(s, got->uuid, &after, &e), 0);
	ck_assert_int_eq(after->state, INSTANCE_ERROR);
	ck_assert_ptr_nonnull(after->fault);
	ck_assert_msg(strstr(after->fault, "root disk") &&
		strstr(after->fault, "missing"),
	    "%s", after->fault);
	after = instance_free(after);

	/* Only the swap disk is made again: a lost swap alone is no data
	 * loss. */
	instance_free(got);
	got = create(true);
	ck_assert_int_eq(virt_undefine(v, got->uuid, &e), 0);
	disk_path(got->uuid, "disk.swap", path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(compute_reconcile(c, s, &r, &e), 0);
	ck_assert_uint_eq(r.redefined, 1);
	ck_assert_uint_eq(r.restarted, 1);
	compute_report_clear(&r);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	instance_free(got);
}
END_TEST

/* Whether the domain's persistent definition has a disk with serial. */
static bool
dom_has_serial(const char *uuid, const char *serial)
{
	struct virt_disk *dd = NULL;
	struct err e = {0};
	size_t n = 0, i;
	bool found = false;

	ck_assert_msg(
	    virt_domain_disks(v, uuid, &dd, &n, &e) == 0, "%s", e.msg);
	for (i = 0; i < n; i++)
		found |= STREQ(dd[i].serial, serial);
	free(dd);
	return found;
}

/* The attach_state of the BDM of volume_id on uuid, or -1 when it has
 * none. */
static int
vol_state(const char *uuid, const char *volume_id)
{
	struct instance *got = NULL;
	struct err e = {0};
	size_t i;
	int st = -1;

	ck_assert_msg(store_instance_get(s, uuid, &got, &e) == 0, "%s", e.msg);
	for (i = 0; i < got->n_bdms; i++)
		if (got->bdms[i].volume_id &&
		    STREQ(got->bdms[i].volume_id, volume_id))
			st = (int)got->bdms[i].attach_state;
	instance_free(got);
	return st;
}

static void
set_state(const char *uuid, const char *bdm_uuid, enum bdm_attach_state st)
{
	struct err e = {0};

	ck_assert_msg(
	    store_bdm_set_attach_state(s, uuid, bdm_uuid, st, &e) == 0, "%s",
	    e.msg);
}

/* Attaches VOLUME_ID (vol_path) to uuid through compute; b is filled. */
static void
attach_volume(const char *uuid, struct bdm *b)
{
	struct err e = {0};
	char body[512];

	(void)snprintf(body, sizeof(body),
	    "{\"volume_id\": \"" VOLUME_ID "\", \"connection_info\":"
	    " {\"driver_volume_type\": \"file\","
	    "  \"data\": {\"device_path\": \"%s\"}}}",
	    vol_path);
	ck_assert_msg(
	    bdm_json_parse_attach(body, strlen(body), b, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    compute_attach(c, s, uuid, b, NULL, NULL, &e) == 0, "%s", e.msg);
}

START_TEST(
    test_compute_reconcile_repairs_disks_the_domain_and_the_rows_disagree_on)
{
	/* running: the repairs touch the persistent definition only (this
	 * guest, without an OS, would never release a live disk anyway) */
	struct instance *got = create(true), *after = NULL;
	struct compute_report r;
	struct bdm b = {0};
	struct err e = {0};
	char xml[256], root_serial[BLOCKINFO_SERIAL_MAX];
	const char *vs = "0b5e3d1c-9a8f-4e7d-8";
	size_t i;

	attach_volume(got->uuid, &b);
	ck_assert(dom_has_serial(got->uuid, vs));
	/* confirmed by libvirt: settled */
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), BDM_ATTACH_SETTLED);
	ck_assert_int_eq(store_instance_get(s, got->uuid, &after, &e), 0);
	for (i = 0; i < after->n_bdms; i++)
		if (STREQ(after->bdms[i].uuid, b.uuid))
			(void)snprintf(xml, sizeof(xml),
			    "<disk type='file' device='disk'>"
			    "<target dev='%s'/></disk>",
			    after->bdms[i].device_name + 5);
	after = instance_free(after);
	/* Local disks carry their BDM uuid (its first 20 characters on
	 * virtio). */
	ck_assert_int_eq(blockinfo_serial(BDM_BUS_VIRTIO, got->bdms[0].uuid,
			     root_serial, &e),
	    0);
	ck_assert(dom_has_serial(got->uuid, root_serial));

	/* Settled rows are not compared at start-up (no libvirt call per
	 * instance): a disk removed behind hyperlet's back stays removed. */
	ck_assert_msg(
	    virt_disk_config(v, got->uuid, xml, false, &e) == 0, "%s", e.msg);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 0);
	ck_assert_uint_eq(r.disks_attached + r.disks_detached, 0);
	compute_report_clear(&r);
	ck_assert(!dom_has_serial(got->uuid, vs));

	/* An attach killed between the row and libvirt (or one that failed
	 * ambiguously) leaves the row attaching: the row is the truth, the
	 * disk is attached again, and the row settled. Persistent
	 * definition only: this guest never lets a live disk go. */
	set_state(got->uuid, b.uuid, BDM_ATTACH_ATTACHING);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.disks_attached, 1);
	ck_assert_uint_eq(r.attaches_settled, 1);
	ck_assert_uint_eq(r.disks_detached, 0);
	compute_report_clear(&r);
	ck_assert(dom_has_serial(got->uuid, vs));
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), BDM_ATTACH_SETTLED);
	/* nothing left to look at */
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 0);
	compute_report_clear(&r);

	/* A detach cut off after the row was marked: the user asked for
	 * it, so it is finished. The domain runs and may hold the disk
	 * live: it leaves the definition, the row stays detaching (the
	 * volume may be in use) ... */
	set_state(got->uuid, b.uuid, BDM_ATTACH_DETACHING);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.disks_detached, 1);
	ck_assert_uint_eq(r.detaches_pending, 1);
	ck_assert_uint_eq(r.detaches_finished, 0);
	compute_report_clear(&r);
	ck_assert(!dom_has_serial(got->uuid, vs));
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), BDM_ATTACH_DETACHING);
	/* ... and with the domain shut off the row goes (the instance is
	 * started again: it should run). */
	ck_assert_int_eq(virt_stop(v, got->uuid, 0, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.disks_detached, 0);
	ck_assert_uint_eq(r.detaches_finished, 1);
	ck_assert_uint_eq(r.resumed, 1);
	compute_report_clear(&r);
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), -1);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);

	/* A detaching row whose disk the shut-off domain still has (cut
	 * off before libvirt): detached from the definition, row gone. */
	bdm_clear(&b);
	attach_volume(got->uuid, &b);
	ck_assert_int_eq(virt_stop(v, got->uuid, 0, &e), 0);
	ck_assert(dom_has_serial(got->uuid, vs));
	set_state(got->uuid, b.uuid, BDM_ATTACH_DETACHING);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_detached, 1);
	ck_assert_uint_eq(r.detaches_finished, 1);
	compute_report_clear(&r);
	ck_assert(!dom_has_serial(got->uuid, vs));
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), -1);

	/* A disk no row knows: left alone on a settled instance, detached
	 * once something flags the instance (here its root row). */
	bdm_clear(&b);
	attach_volume(got->uuid, &b);
	ck_assert_int_eq(store_bdm_delete(s, got->uuid, b.uuid, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 0);
	compute_report_clear(&r);
	ck_assert(dom_has_serial(got->uuid, vs));
	set_state(got->uuid, got->bdms[0].uuid, BDM_ATTACH_ATTACHING);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.disks_attached, 0);
	ck_assert_uint_eq(r.disks_detached, 1);
	ck_assert_uint_eq(r.attaches_settled, 1);
	compute_report_clear(&r);
	ck_assert(!dom_has_serial(got->uuid, vs));
	ck_assert(dom_has_serial(got->uuid, root_serial));
	/* nothing left to repair */
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 0);
	ck_assert_uint_eq(r.disks_attached + r.disks_detached, 0);
	compute_report_clear(&r);
	bdm_clear(&b);
	instance_free(got);
}
END_TEST

/* test:///default as well: a node of settled instances reads no domain's
 * disks at start-up (issue 17.4: one libvirt call per instance broke the
 * start-up target); an unsettled row costs its instance one read. */
START_TEST(test_compute_reconcile_reads_the_disks_of_unsettled_instances_only)
{
	struct instance *a = create(true), *b = create(false);
	struct compute_report r;

	reconcile(&r);
	ck_assert_uint_eq(r.instances, 2);
	ck_assert_uint_eq(r.disks_checked, 0);
	compute_report_clear(&r);
	/* b's root row left attaching (its disk is there): compared, and
	 * settled */
	set_state(b->uuid, b->bdms[0].uuid, BDM_ATTACH_ATTACHING);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.attaches_settled, 1);
	ck_assert_uint_eq(r.disks_attached + r.disks_detached, 0);
	compute_report_clear(&r);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 0);
	compute_report_clear(&r);
	instance_free(a);
	instance_free(b);
}
END_TEST

/* Runs the private libvirtd's harness script (start.sh or stop.sh) on its
 * directory, keeping the directory (and so the domains). In a session of
 * its own: Check kills the test's process group when the test ends, and
 * the libvirtd start.sh starts must outlive it. */
static void
harness(const char *script)
{
	char cmd[8192];

	(void)snprintf(cmd, sizeof(cmd),
	    "HLV_KEEP=1 setsid -w '%s/%s' '%s' >/dev/null",
	    getenv("HL_LIBVIRT_HARNESS"), script, getenv("HL_LIBVIRT_DIR"));
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

START_TEST(test_compute_attach_without_libvirt_keeps_the_bdm_for_reconcile)
{
	struct instance *got = create(true), *after = NULL;
	struct compute_report r;
	struct bdm b = {0};
	struct err e = {0};
	char body[512];
	int i, rc;

	(void)snprintf(body, sizeof(body),
	    "{\"volume_id\": \"" VOLUME_ID "\", \"connection_info\":"
	    " {\"driver_volume_type\": \"file\","
	    "  \"data\": {\"device_path\": \"%s\"}}}",
	    vol_path);
	ck_assert_msg(bdm_json_parse_attach(body, strlen(body), &b, &e) == 0,
	    "%s", e.msg);
	/* libvirtd goes away (its guests with it) after the row: whether
	 * the disk was attached cannot be known, so the row stays. */
	harness("stop.sh");
	rc = compute_attach(c, s, got->uuid, &b, NULL, NULL, &e);
	/* libvirtd is back with its domains shut off, as after a host
	 * reboot (before any assertion: the next tests need it) */
	harness("start.sh");
	ck_assert_int_eq(rc, -EAGAIN);
	ck_assert_int_eq(store_instance_get(s, got->uuid, &after, &e), 0);
	ck_assert_uint_eq(after->n_bdms, got->n_bdms + 1);
	ck_assert_str_eq(after->bdms[got->n_bdms].volume_id, VOLUME_ID);
	/* ... marked attaching: start-up compares this instance's disks */
	ck_assert_int_eq(
	    after->bdms[got->n_bdms].attach_state, BDM_ATTACH_ATTACHING);
	after = instance_free(after);

	/* Start-up attaches the volume the row names and starts the
	 * instance that should run. */
	for (i = 0; i < 600 && !virt_alive(v); i++)
		usleep(100 * 1000);
	ck_assert(virt_alive(v));
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_STOPPED);
	reconcile(&r);
	ck_assert_uint_eq(r.disks_checked, 1);
	ck_assert_uint_eq(r.disks_attached, 1);
	ck_assert_uint_eq(r.attaches_settled, 1);
	ck_assert_uint_eq(r.resumed, 1);
	compute_report_clear(&r);
	ck_assert(dom_has_serial(got->uuid, "0b5e3d1c-9a8f-4e7d-8"));
	ck_assert_int_eq(vol_state(got->uuid, VOLUME_ID), BDM_ATTACH_SETTLED);
	ck_assert_int_eq(dom_state(got->uuid), INSTANCE_RUNNING);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	bdm_clear(&b);
	instance_free(got);
}
END_TEST

/* ---- the config drive -------------------------------------------------- */

static void
drive_path(const char *uuid, const char *name, char *out, size_t n)
{
	(void)snprintf(out, n, "%s/%s/%s", inst_path, uuid, name);
}

/* The drive's bytes (owned) after checking it is an ISO whose volume id
 * is config-2 and that names the instance. */
static char *
read_drive(const char *uuid, size_t *ret_len)
{
	char path[4096];
	char *iso;
	size_t len;

	drive_path(uuid, "disk.config", path, sizeof(path));
	iso = testutil_read_file(path, &len);
	ck_assert_msg(iso != NULL, "%s missing", path);
	ck_assert_uint_gt(len, 17 * 2048);
	ck_assert_int_eq(memcmp(iso + 16 * 2048 + 1, "CD001", 5), 0);
	ck_assert_int_eq(memcmp(iso + 16 * 2048 + 40, "config-2 ", 9), 0);
	ck_assert_ptr_nonnull(memmem(iso, len, uuid, strlen(uuid)));
	ck_assert_ptr_nonnull(memmem(iso, len, "az-test", 7));
	*ret_len = len;
	return iso;
}

START_TEST(
    test_compute_create_with_a_config_drive_writes_it_and_delete_removes_it)
{
	struct instance *inst = request(true, true), *got = NULL;
	struct err e = {0};
	char *iso;
	size_t len;

	inst->config_drive = true;
	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	ck_assert(got->config_drive);
	/* on a private libvirtd the guest started with it as its cdrom */
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	iso = read_drive(got->uuid, &len);
	free(iso);
	ck_assert_msg(compute_delete(c, s, got->uuid, &e) == 0, "%s", e.msg);
	ck_assert(!instance_dir_exists(got->uuid));
	instance_free(inst);
	instance_free(got);
}
END_TEST

START_TEST(test_force_config_drive_gives_every_create_a_drive)
{
	struct instance *got;
	char *iso;
	size_t len;

	force_drive = true;
	set_resume(true);
	got = create(false);
	ck_assert(got->config_drive);
	iso = read_drive(got->uuid, &len);
	free(iso);
	instance_free(got);
}
END_TEST

START_TEST(test_compute_create_without_a_drive_writes_none)
{
	struct instance *got = create(false);
	char path[4096];
	struct stat st;

	ck_assert(!got->config_drive);
	drive_path(got->uuid, "disk.config", path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), -1);
	instance_free(got);
}
END_TEST

/* A hard reboot makes the drive again if it went missing (the start would
 * fail on a real libvirtd without it). */
START_TEST(test_compute_hard_reboot_writes_a_missing_drive)
{
	struct instance *inst = request(true, false), *got = NULL;
	struct err e = {0};
	char path[4096];
	char *iso;
	size_t len;

	inst->config_drive = true;
	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	drive_path(got->uuid, "disk.config", path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_msg(
	    compute_action(c, s, got->uuid, COMPUTE_REBOOT_HARD, NULL, &e) == 0,
	    "%s", e.msg);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_RUNNING);
	iso = read_drive(got->uuid, &len);
	free(iso);
	instance_free(inst);
	instance_free(got);
}
END_TEST

/* A create killed after it wrote the drive (or while it wrote it) but
 * before define: rollback leaves no ISO and no temp file behind. */
START_TEST(test_compute_reconcile_rolls_back_a_builds_config_drive)
{
	struct instance *inst = request(true, false);
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct blockinfo *bi = NULL;
	struct compute_report r;
	struct err e = {0};
	char dir[4096], path[4200];

	inst->config_drive = true;
	ck_assert_int_eq(blockinfo_build(inst, &lim, &bi, &e), 0);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_msg(virt_create_disks(
			  v, inst, bi, base_path, "raw", BASE_SIZE, &e) == 0,
	    "%s", e.msg);
	(void)snprintf(dir, sizeof(dir), "%s/%s", inst_path, inst->uuid);
	(void)mkdir(dir, 0755); /* test:///default makes none */
	drive_path(inst->uuid, "disk.config", path, sizeof(path));
	make_file(path, 4096);
	drive_path(inst->uuid, "disk.config.tmp.Ab12Cd", path, sizeof(path));
	make_file(path, 2048);
	reconcile(&r);
	ck_assert_uint_eq(r.builds_rolled_back, 1);
	ck_assert(!row_exists(inst->uuid));
	ck_assert(!instance_dir_exists(inst->uuid));
	compute_report_clear(&r);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* A create killed between define and the drive's write: the kept build
 * gets its drive before reconcile starts it. */
START_TEST(test_compute_reconcile_writes_the_drive_a_kept_build_lacks)
{
	struct instance *inst = request(false, false), *got = NULL;
	struct compute_report r;
	struct err e = {0};
	char path[4096];
	char *iso;
	size_t len;

	inst->config_drive = true;
	ck_assert_msg(
	    compute_create(c, s, inst, "d1", &got, &e) == 0, "%s", e.msg);
	drive_path(got->uuid, "disk.config", path, sizeof(path));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(
	    store_instance_set_state(s, got->uuid, INSTANCE_BUILDING, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.builds_finished, 1);
	iso = read_drive(got->uuid, &len);
	free(iso);
	compute_report_clear(&r);
	instance_free(inst);
	instance_free(got);
}
END_TEST

/* ---- kill -9 (private libvirtd only) ---------------------------------- */

/* The child of the kill test: its own store, libvirt connection and
 * compute, one create, no Check calls (it is killed at a random point). */
static void _noreturn_
kill_child(int i)
{
	struct virt_opts vo = {.uri = uri, .virt_type = "qemu"};
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct store *cs = NULL;
	struct virt *cv = NULL;
	struct compute *cc = NULL;
	struct err e = {0};
	char json[512];

	(void)snprintf(json, sizeof(json),
	    "{\"name\": \"k-%d\", \"flavor\": {\"vcpus\": 1,"
	    " \"memory_mb\": 64, \"root_gb\": 1, \"ephemeral_gb\": 1,"
	    " \"swap\": 16}, \"imageRef\": \"" IMAGE_ID "\","
	    " \"config_drive\": true}",
	    i);
	vo.instances_path = inst_path;
	if (store_open(db_path, NULL, &cs, &e) < 0 ||
	    virt_open(&vo, &cv, &e) < 0)
		_exit(2);
	co.virt = cv;
	co.images_dir = images_dir;
	if (compute_new(&co, &cc, &e) < 0 ||
	    bdm_json_parse_create(json, strlen(json), &inst, &e) < 0 ||
	    bdm_instance_prepare(inst, &lim, &e) < 0)
		_exit(3);
	_exit(compute_create(cc, cs, inst, NULL, NULL, &e) < 0 ? 4 : 0);
}

START_TEST(test_compute_create_killed_at_any_step_is_made_whole_by_reconcile)
{
	static const int delay_ms[] = {0, 20, 100, 300, 700, 1500, 3000};
	struct virt_opts vo = {.uri = uri, .virt_type = "qemu"};
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
	struct err e = {0};
	size_t i, j;

	for (i = 0; i < ELEMENTSOF(delay_ms); i++) {
		struct compute_report r;
		struct instance **l = NULL;
		struct dirent *de;
		size_t n = 0;
		pid_t pid;
		DIR *d;

		/* Nothing of ours is open across the fork. */
		c = compute_free(c);
		s = store_close(s);
		v = virt_close(v);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			kill_child((int)i);
		usleep((useconds_t)delay_ms[i] * 1000);
		(void)kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, NULL, 0), pid);

		/* What a restarted hyperletd does. */
		vo.instances_path = inst_path;
		ck_assert_int_eq(store_open(db_path, NULL, &s, &e), 0);
		ck_assert_msg(virt_open(&vo, &v, &e) == 0, "%s", e.msg);
		co.virt = v;
		co.images_dir = images_dir;
		ck_assert_int_eq(compute_new(&co, &c, &e), 0);
		reconcile(&r);
		ck_assert_uint_eq(r.n_unknown, 0);
		/* Where the kill landed, for the log. */
		printf("kill after %d ms: %zu rows, %zu builds rolled back, "
		       "%zu finished\n",
		    delay_ms[i], r.instances, r.builds_rolled_back,
		    r.builds_finished);
		fflush(stdout);
		compute_report_clear(&r);

		/* Every row is settled and has its domain... */
		ck_assert_int_eq(
		    store_instance_list(s, NULL, 0, &l, &n, &e), 0);
		for (j = 0; j < n; j++) {
			char iso[4096];
			struct stat st;

			ck_assert_int_ne(l[j]->state, INSTANCE_BUILDING);
			ck_assert_int_ne(l[j]->state, INSTANCE_DELETING);
			ck_assert(dom_exists(l[j]->uuid));
			/* ...and its config drive (written by reconcile if
			 * the kill came between define and the drive) */
			drive_path(l[j]->uuid, "disk.config", iso, sizeof(iso));
			ck_assert_msg(stat(iso, &st) == 0, "%s missing", iso);
		}
		store_instance_list_free(l, n);
		/* ...and no instance directory outlives its row. */
		d = opendir(inst_path);
		ck_assert_ptr_nonnull(d);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				ck_assert_msg(row_exists(de->d_name),
				    "disks of %s without a row", de->d_name);
		closedir(d);
	}
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("compute");
	TCase *tc;

	uri = getenv("HL_LIBVIRT_URI");
	if (uri && !*uri)
		uri = NULL;
	real = uri != NULL;
	printf("check_compute: %s\n", real ? uri : "test:///default");

#define TC(name)                                                \
	do {                                                    \
		tc = tcase_create(name);                        \
		tcase_add_checked_fixture(tc, setup, teardown); \
		tcase_set_timeout(tc, real ? 120 : 30);         \
		suite_add_tcase(su, tc);                        \
	} while (0)

	TC("compute_create");
	tcase_add_test(
	    tc, test_compute_create_stores_the_instance_and_runs_its_domain);
	tcase_add_test(
	    tc, test_compute_create_with_start_false_leaves_a_stopped_domain);
	tcase_add_test(tc,
	    test_compute_create_failing_after_the_row_leaves_nothing_behind);
	tcase_add_test(
	    tc, test_compute_create_of_an_image_never_uploaded_writes_nothing);
	tcase_add_test(
	    tc, test_compute_create_of_a_taken_uuid_leaves_the_first_alone);

	TC("compute_delete");
	/* the create/delete race runs 200 rounds: room for a loaded machine
	 * and the sanitizer build */
	tcase_set_timeout(tc, real ? 300 : 120);
	tcase_add_test(tc, test_compute_delete_removes_domain_disks_and_row);
	tcase_add_test(
	    tc, test_compute_delete_finishes_an_instance_left_deleting);
	tcase_add_test(
	    tc, test_compute_delete_of_an_instance_being_built_is_busy);
	tcase_add_test(
	    tc, test_store_cas_state_changes_only_the_expected_state);
	tcase_add_test(tc,
	    test_compute_create_and_delete_racing_never_leave_an_orphan_domain);

	TC("compute_action");
	tcase_add_test(
	    tc, test_compute_actions_drive_the_domain_and_record_the_state);
	tcase_add_test(
	    tc, test_compute_action_on_an_instance_being_built_is_busy);
	tcase_add_test(tc,
	    test_compute_hard_reboot_redefines_the_domain_from_the_database);

	TC("compute_attach");
	tcase_add_test(
	    tc, test_compute_attach_stores_the_bdm_only_if_libvirt_attaches);
	tcase_add_test(
	    tc, test_compute_detach_of_a_volume_not_attached_is_not_found);

	TC("volume_roots");
	tcase_add_test(
	    tc, test_compute_create_takes_volumes_from_the_roots_only);
	tcase_add_test(
	    tc, test_a_root_over_the_state_dir_still_refuses_hyperlets_files);
	tcase_add_test(tc, test_no_volume_roots_means_no_volumes);
	tcase_add_test(
	    tc, test_a_link_directory_root_admits_links_to_block_devices);
	tcase_add_test(
	    tc, test_compute_attach_refuses_a_volume_outside_the_roots);
	tcase_add_test(
	    tc, test_compute_reconcile_does_not_redefine_over_a_swapped_volume);

	TC("config_drive");
	tcase_add_test(tc,
	    test_compute_create_with_a_config_drive_writes_it_and_delete_removes_it);
	tcase_add_test(tc, test_force_config_drive_gives_every_create_a_drive);
	tcase_add_test(tc, test_compute_create_without_a_drive_writes_none);
	tcase_add_test(
	    tc, test_compute_reconcile_rolls_back_a_builds_config_drive);
	tcase_add_test(
	    tc, test_compute_reconcile_writes_the_drive_a_kept_build_lacks);
	tcase_add_test(tc, test_compute_hard_reboot_writes_a_missing_drive);

	TC("compute_reconcile");
	tcase_add_test(
	    tc, test_compute_reconcile_redefines_and_restarts_a_missing_domain);
	tcase_add_test(
	    tc, test_compute_reconcile_redefines_a_domain_with_its_nics);
	tcase_add_test(
	    tc, test_compute_reconcile_settles_nics_against_the_domains_macs);
	tcase_add_test(
	    tc, test_compute_reconcile_rolls_back_a_build_that_never_defined);
	tcase_add_test(
	    tc, test_compute_reconcile_keeps_a_build_whose_domain_was_defined);
	tcase_add_test(tc, test_compute_reconcile_finishes_a_delete);
	tcase_add_test(
	    tc, test_compute_reconcile_reports_a_hyperlet_domain_without_a_row);
	tcase_add_test(tc,
	    test_compute_reconcile_does_not_report_a_lookalike_without_metadata);
	tcase_add_test(tc, test_compute_reconcile_takes_the_state_from_libvirt);
	tcase_add_test(tc,
	    test_compute_reconcile_starts_what_should_run_after_a_host_reboot);
	tcase_add_test(tc,
	    test_compute_reconcile_reads_the_disks_of_unsettled_instances_only);
	/* test:///default makes no disk files and cannot attach */
	if (real) {
		tcase_add_test(tc,
		    test_compute_reconcile_puts_an_instance_whose_root_disk_is_lost_in_error);
		tcase_add_test(tc,
		    test_compute_reconcile_repairs_disks_the_domain_and_the_rows_disagree_on);
		tcase_add_test(tc,
		    test_compute_attach_without_libvirt_keeps_the_bdm_for_reconcile);
	}
	tcase_add_test(tc,
	    test_compute_sweep_removes_a_define_that_landed_after_its_rollback);
	/* test:///default lives in the process that is killed. */
	if (real)
		tcase_add_test(tc,
		    test_compute_create_killed_at_any_step_is_made_whole_by_reconcile);

	TC("ownership");
	tcase_add_test(tc,
	    test_compute_create_over_a_foreign_domain_is_409_and_touches_it_not);
	tcase_add_test(tc,
	    test_compute_create_whose_domain_name_is_taken_leaves_that_domain);
	tcase_add_test(
	    tc, test_compute_sweep_and_delete_never_remove_a_foreign_domain);

	return testutil_run(su);
}
