/*
 * check_domevents: libvirt's lifecycle events into the instances' states,
 * on test:///default. The test driver's domains live in the process and
 * are shared by every connection it has open at once, and it emits
 * lifecycle events to each connection's callbacks: the test changes a
 * domain through a connection of its own (the operator's virsh, behind
 * hyperlet's back) and watches the state in a real SQLite file. A QEMU
 * that crashes cannot be made on the test driver: its mapping is checked
 * directly here and the rest on the private libvirtd
 * (tests/libvirtd/check_lifecycle.sh).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "bdm_json.h"
#include "blockinfo.h"
#include "domevents.h"
#include "store.h"
#include "testutil.h"
#include "util.h"
#include "virt.h"

static char *tmpdir;
static char dbpath[4096];
static struct virt *v;
static struct store *s;
static virConnectPtr op; /* the operator's connection */

static const char body[] =
    "{\"name\": \"ev-1\","
    " \"flavor\": {\"vcpus\": 1, \"memory_mb\": 128, \"root_gb\": 1,"
    "  \"ephemeral_gb\": 0, \"swap\": 0},"
    " \"imageRef\": \"5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b\"}";

static void
setup(void)
{
	struct virt_opts vo = {.uri = "test:///default", .virt_type = "qemu"};
	struct err e = {0};

	tmpdir = testutil_mkdtemp("check_domevents");
	ck_assert_ptr_nonnull(tmpdir);
	(void)snprintf(dbpath, sizeof(dbpath), "%s/hyperlet.db", tmpdir);
	vo.instances_path = tmpdir;
	ck_assert_msg(virt_open(&vo, &v, &e) == 0, "%s", e.msg);
	ck_assert_msg(store_open(dbpath, NULL, &s, &e) == 0, "%s", e.msg);
	op = virConnectOpen("test:///default");
	ck_assert_ptr_nonnull(op);
}

static void
teardown(void)
{
	(void)virConnectClose(op);
	s = store_close(s);
	v = virt_close(v);
	testutil_rm_rf(tmpdir);
	free(tmpdir);
}

/* An instance row in state st and, when domain_name is not NULL, a
 * running domain of its uuid with that name ("" for hyperlet's own
 * instance-<uuid>), defined and started through the operator's
 * connection. Returns the row's uuid in uuid. */
static void
make(enum instance_state st, const char *domain_name, char *uuid)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct err e = {0};
	char xml[1024], name[64];
	virDomainPtr d;

	ck_assert_int_eq(
	    bdm_json_parse_create(body, strlen(body), &inst, &e), 0);
	ck_assert_int_eq(bdm_instance_prepare(inst, &lim, &e), 0);
	ck_assert_msg(
	    store_instance_create(s, inst, NULL, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_set_state(s, inst->uuid, st, &e), 0);
	memcpy(uuid, inst->uuid, UUID_STR_LEN);
	instance_free(inst);
	if (domain_name == NULL)
		return;
	if (domain_name[0] == '\0')
		(void)snprintf(name, sizeof(name), "instance-%s", uuid);
	else
		(void)snprintf(name, sizeof(name), "%s", domain_name);
	(void)snprintf(xml, sizeof(xml),
	    "<domain type='test'><name>%s</name><uuid>%s</uuid>"
	    "<memory>131072</memory><os><type>hvm</type></os></domain>",
	    name, uuid);
	d = virDomainDefineXML(op, xml);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(virDomainCreate(d), 0);
	virDomainFree(d);
}

static virDomainPtr
dom(const char *uuid)
{
	virDomainPtr d = virDomainLookupByUUIDString(op, uuid);

	ck_assert_ptr_nonnull(d);
	return d;
}

static enum instance_state
state_of(const char *uuid, int64_t *ret_gen)
{
	struct instance *got = NULL;
	struct err e = {0};
	enum instance_state st;

	ck_assert_int_eq(store_instance_get(s, uuid, &got, &e), 0);
	st = got->state;
	if (ret_gen)
		*ret_gen = got->generation;
	instance_free(got);
	return st;
}

/* Polls the row for up to 1 s (the design's promise) for state want. */
static bool
becomes(const char *uuid, enum instance_state want)
{
	for (int i = 0; i < 100; i++) {
		if (state_of(uuid, NULL) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static struct domevents *
start(int (*claim)(void *, const char *), void (*release)(void *, const char *),
    void *arg)
{
	struct domevents_opts o = {.virt = v,
	    .db_path = dbpath,
	    .claim = claim,
	    .release = release,
	    .claim_arg = arg};
	struct domevents *d = NULL;
	struct err e = {0};

	ck_assert_msg(domevents_start(&o, &d, &e) == 0, "%s", e.msg);
	ck_assert(domevents_settle(d, 5000));
	return d;
}

START_TEST(test_domevents_maps_each_lifecycle_event_to_a_state)
{
	static const struct {
		enum virt_lifecycle lc;
		bool crashed;
		int rc;
		enum instance_state want;
	} cases[] = {
	    {VIRT_LC_STARTED, false, 0, INSTANCE_RUNNING},
	    {VIRT_LC_RESUMED, false, 0, INSTANCE_RUNNING},
	    {VIRT_LC_SUSPENDED, false, 0, INSTANCE_PAUSED},
	    {VIRT_LC_PMSUSPENDED, false, 0, INSTANCE_PAUSED},
	    {VIRT_LC_STOPPED, false, 0, INSTANCE_STOPPED},
	    {VIRT_LC_SHUTDOWN, false, 0, INSTANCE_STOPPED},
	    {VIRT_LC_STOPPED, true, 0, INSTANCE_CRASHED},
	    {VIRT_LC_CRASHED, true, 0, INSTANCE_CRASHED},
	    {VIRT_LC_CRASHED, false, 0, INSTANCE_CRASHED},
	    {VIRT_LC_DEFINED, false, -ENOENT, INSTANCE_ERROR},
	    {VIRT_LC_UNDEFINED, false, -ENOENT, INSTANCE_ERROR},
	    {VIRT_LC_OTHER, false, -ENOENT, INSTANCE_ERROR},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum instance_state got = INSTANCE_ERROR;

		ck_assert_int_eq(
		    domevents_state_of(cases[i].lc, cases[i].crashed, &got),
		    cases[i].rc);
		ck_assert_msg(got == cases[i].want, "case %zu: %s", i,
		    instance_state_to_string(got));
	}
}
END_TEST

START_TEST(test_domevents_destroy_behind_hyperlets_back_stops_the_instance)
{
	struct domevents *d;
	struct domevents_stats st;
	char uuid[UUID_STR_LEN];
	virDomainPtr x;
	int64_t g0, g1;

	make(INSTANCE_RUNNING, "", uuid);
	d = start(NULL, NULL, NULL);
	ck_assert_int_eq(state_of(uuid, &g0), INSTANCE_RUNNING);
	x = dom(uuid);
	ck_assert_int_eq(virDomainDestroy(x), 0);
	ck_assert(becomes(uuid, INSTANCE_STOPPED));
	ck_assert_int_eq(state_of(uuid, &g1), INSTANCE_STOPPED);
	ck_assert_int_eq(g1, g0 + 1); /* the ETag changes */
	/* started again behind its back: running */
	ck_assert_int_eq(virDomainCreate(x), 0);
	ck_assert(becomes(uuid, INSTANCE_RUNNING));
	virDomainFree(x);
	ck_assert(domevents_settle(d, 2000));
	domevents_stats(d, &st);
	ck_assert_uint_ge(st.events, 2);
	ck_assert_uint_ge(st.handled, 2);
	ck_assert_uint_eq(st.changed, 2);
	domevents_stop(d);
}
END_TEST

START_TEST(test_domevents_suspend_and_resume_pause_and_run_the_instance)
{
	struct domevents *d;
	char uuid[UUID_STR_LEN];
	virDomainPtr x;
	int64_t g0, g1;

	make(INSTANCE_RUNNING, "", uuid);
	d = start(NULL, NULL, NULL);
	(void)state_of(uuid, &g0);
	x = dom(uuid);
	ck_assert_int_eq(virDomainSuspend(x), 0);
	ck_assert(becomes(uuid, INSTANCE_PAUSED));
	ck_assert_int_eq(virDomainResume(x), 0);
	ck_assert(becomes(uuid, INSTANCE_RUNNING));
	ck_assert(domevents_settle(d, 2000));
	(void)state_of(uuid, &g1);
	ck_assert_int_eq(g1, g0 + 2);
	virDomainFree(x);
	domevents_stop(d);
}
END_TEST

/* A claim a "change in progress" holds. */
struct claims {
	char held[UUID_STR_LEN];
	int refused;
};

static int
claim(void *arg, const char *uuid)
{
	struct claims *c = arg;

	if (STREQ(c->held, uuid)) {
		__atomic_add_fetch(&c->refused, 1, __ATOMIC_SEQ_CST);
		return -EBUSY;
	}
	return 0;
}

static void
release(void *arg, const char *uuid)
{
	(void)arg;
	(void)uuid;
}

START_TEST(test_domevents_an_event_waits_for_the_change_that_holds_the_claim)
{
	static struct claims c;
	struct domevents *d;
	char uuid[UUID_STR_LEN];
	virDomainPtr x;

	make(INSTANCE_RUNNING, "", uuid);
	d = start(claim, release, &c);
	memcpy(c.held, uuid, UUID_STR_LEN);
	x = dom(uuid);
	ck_assert_int_eq(virDomainDestroy(x), 0);
	usleep(300000);
	/* the change in progress writes; the event does not overwrite */
	ck_assert_int_gt(__atomic_load_n(&c.refused, __ATOMIC_SEQ_CST), 1);
	ck_assert_int_eq(state_of(uuid, NULL), INSTANCE_RUNNING);
	/* the change ends: what the domain shows then is written */
	__atomic_store_n(&c.held[0], '\0', __ATOMIC_SEQ_CST);
	ck_assert(becomes(uuid, INSTANCE_STOPPED));
	virDomainFree(x);
	domevents_stop(d);
}
END_TEST

START_TEST(test_domevents_ignores_domains_and_rows_that_are_not_its_own)
{
	struct domevents *d;
	char foreign[UUID_STR_LEN], deleting[UUID_STR_LEN];
	virDomainPtr x;
	int64_t g0, g1, h0, h1;

	/* a row whose uuid libvirt has under another name */
	make(INSTANCE_RUNNING, "someone-elses", foreign);
	/* a row the delete owns */
	make(INSTANCE_DELETING, "", deleting);
	d = start(NULL, NULL, NULL);
	(void)state_of(foreign, &g0);
	(void)state_of(deleting, &h0);
	x = dom(foreign);
	ck_assert_int_eq(virDomainDestroy(x), 0);
	virDomainFree(x);
	x = dom(deleting);
	ck_assert_int_eq(virDomainDestroy(x), 0);
	virDomainFree(x);
	usleep(200000);
	ck_assert(domevents_settle(d, 2000));
	ck_assert_int_eq(state_of(foreign, &g1), INSTANCE_RUNNING);
	ck_assert_int_eq(g1, g0);
	ck_assert_int_eq(state_of(deleting, &h1), INSTANCE_DELETING);
	ck_assert_int_eq(h1, h0);
	domevents_stop(d);
}
END_TEST

START_TEST(test_domevents_reads_every_state_again_when_it_starts)
{
	struct domevents *d;
	struct domevents_stats st;
	char gone[UUID_STR_LEN], paused[UUID_STR_LEN], same[UUID_STR_LEN];
	virDomainPtr x;

	/* what changed while no one listened (hyperletd down, libvirt
	 * connection lost) */
	make(INSTANCE_RUNNING, "", paused);
	make(INSTANCE_RUNNING, NULL, gone); /* no domain at all */
	make(INSTANCE_RUNNING, "", same);
	x = dom(paused);
	ck_assert_int_eq(virDomainSuspend(x), 0);
	virDomainFree(x);
	d = start(NULL, NULL, NULL);
	ck_assert_int_eq(state_of(paused, NULL), INSTANCE_PAUSED);
	ck_assert_int_eq(state_of(gone, NULL), INSTANCE_STOPPED);
	ck_assert_int_eq(state_of(same, NULL), INSTANCE_RUNNING);
	domevents_stats(d, &st);
	ck_assert_uint_eq(st.resyncs, 1);
	ck_assert_uint_eq(st.reconciled, 2);
	ck_assert_uint_eq(st.changed, 0);
	domevents_stop(d);
}
END_TEST

static Suite *
domevents_suite(void)
{
	Suite *su = suite_create("domevents");
	TCase *tc;

	tc = tcase_create("domevents_state_of");
	tcase_add_test(tc, test_domevents_maps_each_lifecycle_event_to_a_state);
	suite_add_tcase(su, tc);

	tc = tcase_create("domevents_worker");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    test_domevents_destroy_behind_hyperlets_back_stops_the_instance);
	tcase_add_test(
	    tc, test_domevents_suspend_and_resume_pause_and_run_the_instance);
	tcase_add_test(tc,
	    test_domevents_an_event_waits_for_the_change_that_holds_the_claim);
	tcase_add_test(
	    tc, test_domevents_ignores_domains_and_rows_that_are_not_its_own);
	tcase_add_test(
	    tc, test_domevents_reads_every_state_again_when_it_starts);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	return testutil_run(domevents_suite());
}
