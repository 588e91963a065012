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

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "compute.h"
#include "store.h"
#include "testutil.h"
#include "virt.h"

#define IMAGE_ID "5b0f3c1e-2d4a-4e6f-8a9b-0c1d2e3f4a5b"
#define VOLUME_ID "0b5e3d1c-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
#define BASE_SIZE (INT64_C(64) << 20)

static const char *uri; /* NULL: test:///default */
static bool real;
static char *tmpdir, *images_dir, *inst_path, *base_path, *vol_path;
static char db_path[4096];
static struct virt *v;
static struct store *s;
static struct compute *c;

static void
make_file(const char *path, int64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void
setup(void)
{
	struct virt_opts vo = {.virt_type = "qemu"};
	struct compute_opts co = {.limits = BDM_LIMITS_DEFAULT};
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
	ck_assert_int_ge(asprintf(&vol_path, "%s/vol.img", tmpdir), 0);
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
	co.virt = v;
	co.images_dir = images_dir;
	co.domxml.on_reboot = "destroy";
	ck_assert_msg(compute_new(&co, &c, &e) == 0, "%s", e.msg);
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
	testutil_rm_rf(tmpdir);
	free(tmpdir);
	free(images_dir);
	free(inst_path);
	free(base_path);
	free(vol_path);
	tmpdir = images_dir = inst_path = base_path = vol_path = NULL;
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
		/* libvirt 9.0's test driver cannot attach: the BDM row that
		 * was written first is gone again. */
		ck_assert_int_lt(rc, 0);
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
	ck_assert_int_eq(
	    virt_undefine(v, "0f0f0f0f-0000-4000-8000-000000000003", &e), 0);
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

START_TEST(test_compute_reconcile_takes_the_state_from_libvirt)
{
	struct instance *got = create(true);
	struct compute_report r;
	struct err e = {0};

	ck_assert_int_eq(virt_stop(v, got->uuid, 0, &e), 0);
	reconcile(&r);
	ck_assert_uint_eq(r.states_refreshed, 1);
	ck_assert_int_eq(row_state(got->uuid), INSTANCE_STOPPED);
	compute_report_clear(&r);
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
	    " \"swap\": 16}, \"imageRef\": \"" IMAGE_ID "\"}",
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
			ck_assert_int_ne(l[j]->state, INSTANCE_BUILDING);
			ck_assert_int_ne(l[j]->state, INSTANCE_DELETING);
			ck_assert(dom_exists(l[j]->uuid));
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

	TC("compute_attach");
	tcase_add_test(
	    tc, test_compute_attach_stores_the_bdm_only_if_libvirt_attaches);
	tcase_add_test(
	    tc, test_compute_detach_of_a_volume_not_attached_is_not_found);

	TC("compute_reconcile");
	tcase_add_test(
	    tc, test_compute_reconcile_redefines_and_restarts_a_missing_domain);
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
	    test_compute_sweep_removes_a_define_that_landed_after_its_rollback);
	/* test:///default lives in the process that is killed. */
	if (real)
		tcase_add_test(tc,
		    test_compute_create_killed_at_any_step_is_made_whole_by_reconcile);

	return testutil_run(su);
}
