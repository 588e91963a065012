/*
 * api_node: GET /v1/node and the node facts it serves (issue 13).
 *
 * libvirt is never called on an HTTP thread: what libvirt says about the
 * host (virt_node_facts) is cached here, filled by main at start-up and
 * refreshed by the sweeper thread at each sweep. A request reads the
 * cache under its mutex, the file system size of instances_path
 * (statvfs) and the usage from its own store connection. The same cache
 * gives compute_create its capacity limits (node_cache_limits).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api.h"
#include "api_impl.h"
#include "cfg.h"
#include "node.h"
#include "placement_sync.h"
#include "store.h"
#include "util.h"
#include "virt.h"

static void
json_putp(struct json_object **p)
{
	if (*p)
		json_object_put(*p);
}

struct node_cache {
	pthread_mutex_t lock;
	struct node_conf conf; /* [node], immutable */
	char *instances_path; /* owned, immutable */
	char hostname[256]; /* at start-up, immutable */
	/* guarded by lock: */
	bool have; /* facts holds what libvirt said */
	struct virt_node_facts facts;
};

int
node_cache_new(const struct cfg *c, struct node_cache **ret, struct err *e)
{
	struct node_cache *n = calloc(1, sizeof(*n));

	if (n == NULL ||
	    (n->instances_path = strdup(c->instances_path)) == NULL) {
		free(n);
		return err_set(e, -ENOMEM, "out of memory");
	}
	(void)pthread_mutex_init(&n->lock, NULL);
	n->conf = (struct node_conf){
	    .cpu_allocation_ratio = c->cpu_allocation_ratio,
	    .ram_allocation_ratio = c->ram_allocation_ratio,
	    .disk_allocation_ratio = c->disk_allocation_ratio,
	    .reserved_host_cpus = c->reserved_host_cpus,
	    .reserved_host_memory_mb = c->reserved_host_memory_mb,
	    .reserved_host_disk_mb = c->reserved_host_disk_mb,
	};
	if (gethostname(n->hostname, sizeof(n->hostname) - 1) < 0)
		(void)snprintf(n->hostname, sizeof(n->hostname), "localhost");
	*ret = n;
	return 0;
}

struct node_cache *
node_cache_free(struct node_cache *n)
{
	if (n == NULL)
		return NULL;
	(void)pthread_mutex_destroy(&n->lock);
	free(n->instances_path);
	free(n);
	return NULL;
}

/* Asks libvirt (the caller's thread: main or the sweeper). See api.h. */
int
node_cache_refresh(struct node_cache *n, struct virt *v, struct err *e)
{
	struct virt_node_facts f;
	int rc;

	if ((rc = virt_node_facts(v, &f, e)) < 0)
		return rc;
	(void)pthread_mutex_lock(&n->lock);
	n->facts = f;
	n->have = true;
	(void)pthread_mutex_unlock(&n->lock);
	return 0;
}

/* The facts and the inventory of the moment; false when libvirt has not
 * answered yet (inventory unknown). */
static bool
node_cache_get(const struct node_cache *cn, struct virt_node_facts *ret_f,
    struct node_inventory inv[NODE_N_RC])
{
	struct node_cache *n = (struct node_cache *)cn;
	struct node_totals t = {0};
	struct statvfs sv;
	bool have;

	(void)pthread_mutex_lock(&n->lock);
	have = n->have;
	*ret_f = n->facts;
	(void)pthread_mutex_unlock(&n->lock);
	if (!have)
		return false;
	t.cpus = ret_f->cpus;
	t.memory_mb = ret_f->memory_mb;
	if (statvfs(n->instances_path, &sv) == 0)
		t.disk_bytes = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
	node_inventories(&t, &n->conf, inv);
	return true;
}

/* Reserved amounts beyond libvirt's totals. See api.h. */
int
node_cache_check(const struct node_cache *n, const struct cfg *c, struct err *e)
{
	static const char *const keys[NODE_N_RC] = {
	    [NODE_VCPU] = "reserved_host_cpus",
	    [NODE_MEMORY_MB] = "reserved_host_memory_mb",
	    [NODE_DISK_GB] = "reserved_host_disk_mb",
	};
	struct node_inventory inv[NODE_N_RC];
	struct virt_node_facts f;

	if (!node_cache_get(n, &f, inv))
		return 0;
	for (int i = 0; i < NODE_N_RC; i++)
		if (inv[i].reserved > inv[i].total)
			return cfg_err_key(c, "node", keys[i], e, -EINVAL,
			    "%s: more %s reserved (%" PRId64
			    ") than the node has (%" PRId64 ")",
			    keys[i], node_rc_name(i), inv[i].reserved,
			    inv[i].total);
	return 0;
}

/* compute_opts.node_limits. See api.h. */
bool
node_cache_limits(void *arg, struct node_limits *ret)
{
	struct node_inventory inv[NODE_N_RC];
	struct virt_node_facts f;

	if (!node_cache_get(arg, &f, inv))
		return false;
	node_limits_from(inv, ret);
	return true;
}

static struct json_object *
str_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

/* The inventory for the Placement sync. See api.h. */
bool
node_cache_inventory(const struct node_cache *n, struct node_inventory *ret)
{
	struct virt_node_facts f;

	return node_cache_get(n, &f, ret);
}

const char *
node_cache_hostname(const struct node_cache *n)
{
	return n->hostname;
}

/* The "placement" object of GET /v1/node (design.md). */
static struct json_object *
placement_json(struct placement_sync *ps, const struct cfg *c)
{
	struct json_object *pl = json_object_new_object();
	struct placement_sync_status st;
	char when[32];

	placement_sync_status(ps, &st);
	if (!st.enabled) {
		json_object_object_add(
		    pl, "status", json_object_new_string("disabled"));
		return pl;
	}
	json_object_object_add(pl, "url", str_or_null(c->placement_url));
	json_object_object_add(pl, "provider", str_or_null(st.provider));
	if (st.last_sync_ms)
		util_rfc3339(st.last_sync_ms, when);
	json_object_object_add(pl, "last_sync",
	    st.last_sync_ms ? json_object_new_string(when) : NULL);
	json_object_object_add(
	    pl, "status", json_object_new_string(st.ok ? "ok" : "behind"));
	json_object_object_add(
	    pl, "pending", json_object_new_int64(st.pending));
	json_object_object_add(pl, "last_error", str_or_null(st.last_error));
	return pl;
}

/* GET /v1/node: design.md "Node and Placement". */
void
api_node_get(struct api_req *r)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	struct node_cache *n = r->h->node;
	struct node_inventory inv[NODE_N_RC];
	struct virt_node_facts f;
	int64_t usage[NODE_N_RC], total = 0, by_state[STORE_N_STATES];
	struct json_object *hv, *cpu, *jinv, *ju, *ji, *pl;
	char uuid[UUID_STR_LEN];
	struct err e = {0};
	struct store *s;
	bool have;
	int rc;

	if (n == NULL) {
		err_set(&e, -EAGAIN, "the node facts are not available");
		api_reply_error(r, &e);
		return;
	}
	if ((s = api_store(r, &e)) == NULL ||
	    store_node_usage(s, usage, &total, &e) < 0 ||
	    store_count_by_state(s, by_state, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	rc = store_node_uuid(s, uuid, &e);
	if (rc < 0 && rc != -ENOENT) {
		api_reply_error(r, &e);
		return;
	}
	have = node_cache_get(n, &f, inv);

	json_object_object_add(o, "uuid", rc == 0 ? str_or_null(uuid) : NULL);
	json_object_object_add(o, "hostname", str_or_null(n->hostname));
	hv = json_object_new_object();
	json_object_object_add(hv, "type", str_or_null(f.hypervisor_type));
	json_object_object_add(
	    hv, "version", str_or_null(f.hypervisor_version));
	json_object_object_add(
	    hv, "libvirt_version", str_or_null(f.libvirt_version));
	json_object_object_add(
	    hv, "virt_type", str_or_null(r->h->cfg->virt_type));
	json_object_object_add(o, "hypervisor", hv);
	cpu = json_object_new_object();
	json_object_object_add(cpu, "arch", have ? str_or_null(f.arch) : NULL);
	json_object_object_add(
	    cpu, "model", have ? str_or_null(f.cpu_model) : NULL);
	json_object_object_add(
	    cpu, "sockets", have ? json_object_new_int(f.sockets) : NULL);
	json_object_object_add(
	    cpu, "cores", have ? json_object_new_int(f.cores) : NULL);
	json_object_object_add(
	    cpu, "threads", have ? json_object_new_int(f.threads) : NULL);
	json_object_object_add(o, "cpu", cpu);
	jinv = json_object_new_object();
	ju = json_object_new_object();
	for (int i = 0; i < NODE_N_RC; i++) {
		json_object_object_add(
		    ju, node_rc_name(i), json_object_new_int64(usage[i]));
		if (!have)
			continue;
		struct json_object *ri = json_object_new_object();

		json_object_object_add(
		    ri, "total", json_object_new_int64(inv[i].total));
		json_object_object_add(
		    ri, "reserved", json_object_new_int64(inv[i].reserved));
		json_object_object_add(ri, "allocation_ratio",
		    json_object_new_double(inv[i].allocation_ratio));
		json_object_object_add(jinv, node_rc_name(i), ri);
	}
	json_object_object_add(o, "inventory", have ? jinv : NULL);
	if (!have)
		json_object_put(jinv);
	json_object_object_add(o, "usage", ju);
	ji = json_object_new_object();
	json_object_object_add(ji, "total", json_object_new_int64(total));
	for (int st = 0; st < STORE_N_STATES; st++)
		json_object_object_add(ji,
		    instance_state_to_string((enum instance_state)st),
		    json_object_new_int64(by_state[st]));
	json_object_object_add(o, "instances", ji);
	pl = placement_json(r->h->placement, r->h->cfg);
	json_object_object_add(o, "placement", pl);
	api_reply_json(r, 200, o);
}
