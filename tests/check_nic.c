/*
 * check_nic: the create body's guest fields (hostname, user_data, keys,
 * networks) through the daemon's own parser, bdm_json_parse_create, and
 * nic_json_prepare: what is kept and how it is canonicalised, what is
 * drawn, and for every rule a refusal that names its field. The
 * interface-attach body and the instance JSON's guest members too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "jwriter.h"
#include "nic.h"
#include "nic_json.h"
#include "store.h"
#include "testutil.h"

#define ED25519                                                            \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINWmHyBHLSndKrqxdm1xGFZEvn+E" \
	"NZFaE691TkXm/QE+ ops@example"
#define HEAD                                                        \
	"{\"name\": \"Web 1.example\", \"flavor\": {\"vcpus\": 1, " \
	"\"memory_mb\": 64, \"root_gb\": 1}, \"imageRef\": "        \
	"\"155d900f-4e14-4e4c-a73d-069cbf4541e6\""

static struct instance *
parse_ok(const char *body)
{
	struct instance *inst = NULL;
	struct err e = {0};
	int r = bdm_json_parse_create(body, strlen(body), &inst, &e);

	ck_assert_msg(r == 0, "%s: %s", body, e.msg);
	util_uuid_generate(inst->uuid);
	r = nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e);
	ck_assert_msg(r == 0, "%s: %s", body, e.msg);
	return inst;
}

/* Parses HEAD + tail + "}" and expects code naming field. */
static void
refused(const char *tail, int code, const char *field)
{
	char body[4096];
	struct instance *inst = NULL;
	struct err e = {0};
	int r;

	(void)snprintf(body, sizeof(body), HEAD "%s}", tail);
	r = bdm_json_parse_create(body, strlen(body), &inst, &e);
	if (r == 0) {
		util_uuid_generate(inst->uuid);
		r = nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e);
		inst = instance_free(inst);
	}
	ck_assert_msg(
	    r == code, "%s: got %d (%s), want %d", tail, r, e.msg, code);
	ck_assert_msg(STREQ(e.field, field), "%s: field '%s' (%s), want '%s'",
	    tail, e.field, e.msg, field);
}

START_TEST(test_a_full_nic_is_kept_canonicalised)
{
	struct instance *inst = parse_ok(HEAD
	    ", \"hostname\": \"web-1\", \"user_data\": \"aGVsbG8=\","
	    " \"keys\": [{\"name\": \"ops\", \"type\": \"ssh\", \"data\": \"" ED25519
	    "\"}],"
	    " \"networks\": [{\"port_id\": \"6B6F1D1A-5C5E-4A35-9A0E-2F2F4C1D9E01\","
	    " \"mac\": \"FA:16:3E:AB:CD:EF\", \"bridge\": \"br-ex\", \"model\":"
	    " \"e1000\", \"mtu\": 9000, \"tag\": \"public\", \"ips\":"
	    " [{\"address\": \"192.0.2.10/24\", \"gateway\": \"192.0.2.1\"},"
	    " {\"address\": \"2001:DB8:0:0::10/64\", \"gateway\": \"2001:db8::1\"}],"
	    " \"dns\": [\"192.0.2.53\", \"2001:0db8::53\"]},"
	    " {\"network\": \"default\"}]}");
	const struct guest_data *g = &inst->guest;
	const struct nic *n = &g->nics[0];

	ck_assert_str_eq(g->hostname, "web-1");
	ck_assert_str_eq(g->user_data, "aGVsbG8=");
	ck_assert_uint_eq(g->n_keys, 1);
	ck_assert_str_eq(g->keys[0].type, "ssh");
	ck_assert_uint_eq(g->n_nics, 2);
	ck_assert_str_eq(n->port_id, "6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01");
	ck_assert_str_eq(n->mac, "fa:16:3e:ab:cd:ef");
	ck_assert_str_eq(n->bridge, "br-ex");
	ck_assert_ptr_null(n->network);
	ck_assert_int_eq(n->model, NIC_MODEL_E1000);
	ck_assert_int_eq(n->mtu, 9000);
	ck_assert_str_eq(n->tag, "public");
	ck_assert_uint_eq(n->n_ips, 2);
	ck_assert_str_eq(n->ips[0].address, "192.0.2.10/24");
	ck_assert_str_eq(n->ips[0].gateway, "192.0.2.1");
	ck_assert_str_eq(n->ips[1].address, "2001:db8::10/64");
	ck_assert_str_eq(n->dns[1], "2001:db8::53");
	ck_assert_str_eq(n->target_dev, "tap6b6f1d1a-5c");
	/* the second: drawn port_id and fa:16:3e MAC, virtio, DHCP */
	n = &g->nics[1];
	ck_assert_str_eq(n->network, "default");
	ck_assert(util_uuid_is_canonical(n->port_id));
	ck_assert_int_eq(strncmp(n->mac, "fa:16:3e:", 9), 0);
	ck_assert_uint_eq(strlen(n->mac), 17);
	ck_assert_int_eq(n->model, NIC_MODEL_VIRTIO);
	ck_assert_uint_eq(n->n_ips, 0);
	ck_assert_int_eq(strncmp(n->target_dev, "tap", 3), 0);
	ck_assert_int_eq(strncmp(n->target_dev + 3, n->port_id, 11), 0);
	instance_free(inst);
}
END_TEST

START_TEST(test_the_hostname_defaults_to_novas_sanitized_name)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
	    {"Web 1.example", "web-1-example"},
	    {"..__a_b..", "a-b"},
	    {"caf\xc3\xa9 bar", "caf-bar"},
	    {"x\xe2\x82\xac"
	     "y",
		"xy"},
	    {"!!!", ""},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLM"
	     "NOPQ",
		"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *h = nic_json_sanitize_hostname(cases[i].name);

		ck_assert_str_eq(h, cases[i].want);
		free(h);
	}
}
END_TEST

START_TEST(test_a_name_with_nothing_left_gets_server_uuid)
{
	struct guest_data g = {0};
	struct err e = {0};

	ck_assert_int_eq(nic_json_prepare(&g, "%%%",
			     "6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01", &e),
	    0);
	ck_assert_str_eq(
	    g.hostname, "Server-6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01");
	guest_data_clear(&g);
}
END_TEST

START_TEST(test_user_data_may_reach_novas_limit_and_no_further)
{
	size_t n = NIC_JSON_USER_DATA_MAX / 4 * 4; /* 65532 */
	size_t cap = n + 200;
	char *body = malloc(cap + 8);
	struct instance *inst;
	int len;

	len = snprintf(body, cap, HEAD ", \"user_data\": \"");
	memset(body + len, 'A', n);
	strcpy(body + len + n, "\"}");
	inst = parse_ok(body);
	ck_assert_uint_eq(strlen(inst->guest.user_data), n);
	instance_free(inst);
	/* 65536 characters: refused by name */
	memset(body + len, 'A', n + 4);
	strcpy(body + len + n + 4, "\"}");
	{
		struct err e = {0};

		inst = NULL;
		ck_assert_int_eq(
		    bdm_json_parse_create(body, strlen(body), &inst, &e),
		    -EINVAL);
		ck_assert_str_eq(e.field, "user_data");
	}
	free(body);
}
END_TEST

START_TEST(test_base64_decodes_with_line_breaks_only)
{
	unsigned char *out = NULL;
	size_t n = 0;

	ck_assert_int_eq(nic_base64_decode("aGVs\nbG8=", &out, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq((char *)out, "hello");
	free(out);
	ck_assert_int_eq(nic_base64_decode("", &out, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(out);
	ck_assert_int_eq(nic_base64_decode("aGVsbG8", NULL, NULL), -EINVAL);
	ck_assert_int_eq(nic_base64_decode("aGVs bG8=", NULL, NULL), -EINVAL);
	ck_assert_int_eq(nic_base64_decode("a===", NULL, NULL), -EINVAL);
	ck_assert_int_eq(nic_base64_decode("aG=s", NULL, NULL), -EINVAL);
	ck_assert_int_eq(nic_base64_decode("aGVs\rbG8=", NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_every_rule_refuses_naming_its_field)
{
#define NET(x) ", \"networks\": [{\"bridge\": \"br0\"}, {" x "}]"
	refused(NET("\"bridge\": \"br0\", \"mac\": \"fa:16:3e:00:00\""),
	    -EINVAL, "networks[1].mac");
	refused(NET("\"bridge\": \"br0\", \"mac\": \"fa-16-3e-00-00-01\""),
	    -EINVAL, "networks[1].mac");
	refused(NET("\"bridge\": \"br0\", \"mac\": \"01:00:5e:00:00:01\""),
	    -EINVAL, "networks[1].mac");
	refused(NET("\"bridge\": \"br0\", \"mac\": \"00:00:00:00:00:00\""),
	    -EINVAL, "networks[1].mac");
	refused(NET("\"bridge\": \"br0\", \"network\": \"default\""), -EINVAL,
	    "networks[1].network");
	refused(NET("\"model\": \"virtio\""), -EINVAL, "networks[1].bridge");
	refused(NET("\"bridge\": \"abcdefghijklmnop\""), -EINVAL,
	    "networks[1].bridge");
	refused(NET("\"bridge\": \"br 0\""), -EINVAL, "networks[1].bridge");
	refused(NET("\"bridge\": \"br'><x\""), -EINVAL, "networks[1].bridge");
	refused(NET("\"bridge\": \"br0\", \"mtu\": 67"), -EINVAL,
	    "networks[1].mtu");
	refused(NET("\"bridge\": \"br0\", \"mtu\": 65536"), -EINVAL,
	    "networks[1].mtu");
	refused(NET("\"bridge\": \"br0\", \"mtu\": \"1500\""), -EINVAL,
	    "networks[1].mtu");
	refused(NET("\"bridge\": \"br0\", \"model\": \"ne2k\""), -EINVAL,
	    "networks[1].model");
	refused(NET("\"bridge\": \"br0\", \"port_id\": \"nope\""), -EINVAL,
	    "networks[1].port_id");
	refused(NET("\"bridge\": \"br0\", \"tag\": \"a/b\""), -EINVAL,
	    "networks[1].tag");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"192.0.2.10\"}]"),
	    -EINVAL, "networks[1].ips[0].address");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"192.0.2.10/33\"}]"),
	    -EINVAL, "networks[1].ips[0].address");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"192.0.2.300/24\"}]"),
	    -EINVAL, "networks[1].ips[0].address");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"192.0.2.10/24\", \"gateway\": \"192.0.3.1\"}]"),
	    -EINVAL, "networks[1].ips[0].gateway");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"2001:db8::10/64\", \"gateway\": \"2001:db9::1\"}]"),
	    -EINVAL, "networks[1].ips[0].gateway");
	refused(NET("\"bridge\": \"br0\", \"ips\": [{\"address\": "
		    "\"2001:db8::10/64\", \"gateway\": \"192.0.2.1\"}]"),
	    -EINVAL, "networks[1].ips[0].gateway");
	refused(NET("\"bridge\": \"br0\", \"dns\": [\"dns.example\"]"), -EINVAL,
	    "networks[1].dns[0]");
	refused(NET("\"bridge\": \"br0\", \"vlan\": 5"), -EINVAL,
	    "networks[1].vlan");
	refused(", \"networks\": [{\"bridge\": \"br0\", \"mac\": "
		"\"fa:16:3e:00:00:01\"}, {\"bridge\": \"br1\", \"mac\": "
		"\"FA:16:3E:00:00:01\"}]",
	    -EEXIST, "networks[1].mac");
	refused(", \"networks\": [{\"bridge\": \"br0\", \"port_id\": "
		"\"6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01\"}, {\"bridge\": "
		"\"br1\", \"port_id\": "
		"\"6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01\"}]",
	    -EEXIST, "networks[1].port_id");
	refused(", \"user_data\": \"aGVsbG8\"", -EINVAL, "user_data");
	refused(", \"user_data\": \"aGVs bG8=\"", -EINVAL, "user_data");
	refused(", \"user_data\": 5", -EINVAL, "user_data");
	refused(", \"keys\": [{\"name\": \"a\", \"type\": \"pgp\", \"data\": "
		"\"x\"}]",
	    -EINVAL, "keys[0].type");
	refused(", \"keys\": [{\"name\": \"a\", \"type\": \"ssh\", \"data\": "
		"\"ssh-ed25519 AAAA ops\"}]",
	    -EINVAL, "keys[0].data");
	refused(", \"keys\": [{\"name\": \"a\", \"type\": \"ssh\", \"data\": "
		"\"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINWmHyBHLSndKrqxdm1xGFZEvn+E"
		"NZFaE691TkXm/QE+ ops\"}]",
	    -EINVAL, "keys[0].data");
	refused(", \"keys\": [{\"name\": \"a\", \"type\": \"ssh\", \"data\": "
		"\"" ED25519 "\\nssh-ed25519 AAAA\"}]",
	    -EINVAL, "keys[0].data");
	refused(", \"keys\": [{\"type\": \"ssh\", \"data\": \"" ED25519 "\"}]",
	    -EINVAL, "keys[0].name");
	refused(", \"keys\": [{\"name\": \"a\", \"type\": \"x509\", \"data\": "
		"\"not a cert\"}]",
	    -EINVAL, "keys[0].data");
	refused(", \"hostname\": \"-web\"", -EINVAL, "hostname");
	refused(", \"hostname\": \"web_1\"", -EINVAL, "hostname");
	refused(", \"hostname\": \"web.example\"", -EINVAL, "hostname");
	refused(", \"hostname\": \"\"", -EINVAL, "hostname");
	refused(
	    ", \"hostname\": "
	    "\"a234567890123456789012345678901234567890123456789012345678901"
	    "234\"",
	    -EINVAL, "hostname");
#undef NET
}
END_TEST

START_TEST(test_an_attach_body_is_one_nic_with_draws)
{
	static const char body[] =
	    "{\"bridge\": \"br0\", \"model\": \"rtl8139\"}";
	struct nic n = {0};
	struct err e = {0};

	ck_assert_int_eq(nic_json_parse_attach(body, strlen(body), &n, &e), 0);
	ck_assert_int_eq(n.model, NIC_MODEL_RTL8139);
	ck_assert(util_uuid_is_canonical(n.port_id));
	ck_assert_int_eq(strncmp(n.mac, "fa:16:3e:", 9), 0);
	nic_clear(&n);
	ck_assert_int_eq(
	    nic_json_parse_attach("{\"mtu\": 1500}", 13, &n, &e), -EINVAL);
	ck_assert_str_eq(e.field, "bridge");
}
END_TEST

START_TEST(test_the_instance_json_carries_interfaces_but_never_user_data)
{
	struct instance *inst = parse_ok(HEAD
	    ", \"user_data\": \"c2VjcmV0\", \"networks\": [{\"bridge\":"
	    " \"br0\", \"port_id\": \"6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01\","
	    " \"mac\": \"fa:16:3e:00:00:01\"}]}");
	struct jwriter w = {0};
	char *text = NULL;
	size_t len;

	jwriter_obj_begin(&w);
	nic_json_write_guest(&w, &inst->guest);
	jwriter_obj_end(&w);
	ck_assert_int_eq(jwriter_finish(&w, &text, &len), 0);
	ck_assert_str_eq(text,
	    "{\"hostname\":\"web-1-example\",\"keys\":[],\"interfaces\":[{"
	    "\"port_id\":\"6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01\",\"mac\":"
	    "\"fa:16:3e:00:00:01\",\"bridge\":\"br0\",\"model\":\"virtio\","
	    "\"mtu\":null,\"tag\":null,\"ips\":[],\"dns\":[],\"target_dev\":"
	    "\"tap6b6f1d1a-5c\",\"pci_address\":null}]}");
	ck_assert_ptr_null(strstr(text, "c2VjcmV0"));
	free(text);
	instance_free(inst);
}
END_TEST

/* ---- the store ---------------------------------------------------- */

static char *tmpdir;
static char dbpath[512];

static void
setup(void)
{
	tmpdir = testutil_mkdtemp("check_nic");
	ck_assert_ptr_nonnull(tmpdir);
	(void)snprintf(dbpath, sizeof(dbpath), "%s/hyperlet.db", tmpdir);
}

static void
teardown(void)
{
	testutil_rm_rf(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

/* A prepared instance as the API makes it. */
static struct instance *
prepared(const char *body)
{
	struct instance *inst = NULL;
	struct err e = {0};

	ck_assert_msg(bdm_json_parse_create(body, strlen(body), &inst, &e) == 0,
	    "%s", e.msg);
	ck_assert_msg(bdm_instance_prepare(inst, NULL, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e) == 0,
	    "%s", e.msg);
	return inst;
}

#define PORT1 "6b6f1d1a-5c5e-4a35-9a0e-2f2f4c1d9e01"
#define GUEST_BODY                                                                    \
	HEAD                                                                          \
	    ", \"hostname\": \"web-1\", \"user_data\": \"aGVsbG8=\","                 \
	    " \"keys\": [{\"name\": \"ops\", \"type\": \"ssh\", \"data\": \"" ED25519 \
	    "\"}, {\"name\": \"k2\", \"type\": \"ssh\", \"data\": \"" ED25519         \
	    "\"}], \"networks\": [{\"port_id\": \"" PORT1 "\","                       \
	    " \"mac\": \"fa:16:3e:00:00:01\", \"bridge\": \"br-ex\","                 \
	    " \"mtu\": 1400, \"tag\": \"pub\", \"ips\": [{\"address\":"               \
	    " \"192.0.2.10/24\", \"gateway\": \"192.0.2.1\"}, {\"address\":"          \
	    " \"2001:db8::10/64\"}], \"dns\": [\"192.0.2.53\"]},"                     \
	    " {\"network\": \"default\", \"model\": \"e1000e\"}]}"

START_TEST(test_the_store_keeps_guest_data_and_nics_in_order)
{
	struct instance *inst = prepared(GUEST_BODY), *got = NULL;
	struct store *s = NULL;
	struct instance **v = NULL;
	size_t n = 0;
	struct err e = {0};
	const struct nic *a, *b;

	ck_assert_msg(store_open(dbpath, NULL, &s, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    store_instance_create(s, inst, NULL, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_str_eq(got->guest.hostname, "web-1");
	ck_assert_str_eq(got->guest.user_data, "aGVsbG8=");
	ck_assert_uint_eq(got->guest.n_keys, 2);
	ck_assert_str_eq(got->guest.keys[1].name, "k2");
	ck_assert_str_eq(got->guest.keys[0].data, ED25519);
	ck_assert_uint_eq(got->guest.n_nics, 2);
	a = &got->guest.nics[0];
	b = &got->guest.nics[1];
	ck_assert_str_eq(a->port_id, PORT1);
	ck_assert_str_eq(a->mac, "fa:16:3e:00:00:01");
	ck_assert_str_eq(a->bridge, "br-ex");
	ck_assert_int_eq(a->mtu, 1400);
	ck_assert_str_eq(a->tag, "pub");
	ck_assert_uint_eq(a->n_ips, 2);
	ck_assert_str_eq(a->ips[0].address, "192.0.2.10/24");
	ck_assert_str_eq(a->ips[0].gateway, "192.0.2.1");
	ck_assert_ptr_null(a->ips[1].gateway);
	ck_assert_uint_eq(a->n_dns, 1);
	ck_assert_str_eq(a->dns[0], "192.0.2.53");
	ck_assert_str_eq(a->target_dev, "tap6b6f1d1a-5c");
	ck_assert_str_eq(b->network, "default");
	ck_assert_int_eq(b->model, NIC_MODEL_E1000E);
	ck_assert_str_eq(b->mac, inst->guest.nics[1].mac);
	ck_assert_int_eq(b->mtu, 0);
	got = instance_free(got);
	/* the list carries them too */
	ck_assert_int_eq(store_instance_list(s, NULL, 0, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0]->guest.n_nics, 2);
	ck_assert_str_eq(v[0]->guest.hostname, "web-1");
	store_instance_list_free(v, n);
	/* delete takes the NICs: their port_id and MAC are free again */
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), 0);
	util_uuid_generate(inst->uuid);
	ck_assert_msg(
	    store_instance_create(s, inst, NULL, &e) == 0, "%s", e.msg);
	store_close(s);
	instance_free(inst);
}
END_TEST

START_TEST(test_a_port_id_or_mac_used_on_the_node_is_409_and_nothing_written)
{
	struct instance *inst = prepared(GUEST_BODY);
	struct instance *again = prepared(GUEST_BODY);
	struct store *s = NULL;
	struct instance **v = NULL;
	size_t n = 0;
	struct err e = {0};
	struct nic extra = {0};

	ck_assert_msg(store_open(dbpath, NULL, &s, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	/* the same port_id */
	ck_assert_int_eq(store_instance_create(s, again, NULL, &e), -EEXIST);
	ck_assert_str_eq(e.field, "networks[0].port_id");
	err_clear(&e);
	/* another port_id, the same MAC */
	util_uuid_generate(again->guest.nics[0].port_id);
	ck_assert_int_eq(store_instance_create(s, again, NULL, &e), -EEXIST);
	ck_assert_str_eq(e.field, "networks[0].mac");
	err_clear(&e);
	/* the second NIC's drawn MAC is free; its port_id is not */
	memcpy(again->guest.nics[0].mac, "fa:16:3e:00:00:02", 18);
	memcpy(again->guest.nics[1].port_id, PORT1, UUID_STR_LEN);
	ck_assert_int_eq(store_instance_create(s, again, NULL, &e), -EEXIST);
	ck_assert_str_eq(e.field, "networks[1].port_id");
	err_clear(&e);
	ck_assert_int_eq(store_instance_list(s, NULL, 0, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	store_instance_list_free(v, n);

	/* attach: a MAC on the node is 409 "mac"; a new NIC goes last */
	extra.bridge = strdup("br0");
	memcpy(extra.mac, "fa:16:3e:00:00:01", 18);
	nic_json_fill(&extra);
	ck_assert_int_eq(store_nic_insert(s, inst->uuid, &extra, &e), -EEXIST);
	ck_assert_str_eq(e.field, "mac");
	err_clear(&e);
	memcpy(extra.mac, "fa:16:3e:00:00:09", 18);
	ck_assert_int_eq(store_nic_insert(s, inst->uuid, &extra, &e), 0);
	{
		struct instance *got = NULL;

		ck_assert_int_eq(
		    store_instance_get(s, inst->uuid, &got, &e), 0);
		ck_assert_uint_eq(got->guest.n_nics, 3);
		ck_assert_str_eq(got->guest.nics[2].port_id, extra.port_id);
		ck_assert_int_eq(got->generation, 2);
		instance_free(got);
	}
	ck_assert_int_eq(store_nic_delete(s, inst->uuid, PORT1, &e), 0);
	ck_assert_int_eq(store_nic_delete(s, inst->uuid, PORT1, &e), -ENOENT);
	{
		struct instance *got = NULL;

		ck_assert_int_eq(
		    store_instance_get(s, inst->uuid, &got, &e), 0);
		ck_assert_uint_eq(got->guest.n_nics, 2);
		ck_assert_str_eq(got->guest.nics[1].port_id, extra.port_id);
		instance_free(got);
	}
	nic_clear(&extra);
	store_close(s);
	instance_free(inst);
	instance_free(again);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("nic");
	TCase *tc;

	tc = tcase_create("nic_json_parse_field");
	tcase_add_test(tc, test_a_full_nic_is_kept_canonicalised);
	tcase_add_test(tc, test_user_data_may_reach_novas_limit_and_no_further);
	tcase_add_test(tc, test_every_rule_refuses_naming_its_field);
	suite_add_tcase(s, tc);
	tc = tcase_create("nic_json_prepare");
	tcase_add_test(tc, test_the_hostname_defaults_to_novas_sanitized_name);
	tcase_add_test(tc, test_a_name_with_nothing_left_gets_server_uuid);
	suite_add_tcase(s, tc);
	tc = tcase_create("nic_base64_decode");
	tcase_add_test(tc, test_base64_decodes_with_line_breaks_only);
	suite_add_tcase(s, tc);
	tc = tcase_create("nic_json_parse_attach");
	tcase_add_test(tc, test_an_attach_body_is_one_nic_with_draws);
	suite_add_tcase(s, tc);
	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_the_store_keeps_guest_data_and_nics_in_order);
	tcase_add_test(tc,
	    test_a_port_id_or_mac_used_on_the_node_is_409_and_nothing_written);
	suite_add_tcase(s, tc);
	tc = tcase_create("nic_json_write_guest");
	tcase_add_test(
	    tc, test_the_instance_json_carries_interfaces_but_never_user_data);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
