/*
 * node: inventory arithmetic in Placement's and Nova's terms. See node.h.
 */
#include <math.h>
#include <stddef.h>

#include "node.h"

static const char *const rc_names[NODE_N_RC] = {
    [NODE_VCPU] = "VCPU",
    [NODE_MEMORY_MB] = "MEMORY_MB",
    [NODE_DISK_GB] = "DISK_GB",
};

const char *
node_rc_name(enum node_rc rc)
{
	return (unsigned)rc < NODE_N_RC ? rc_names[rc] : "?";
}

/* MiB to GiB rounded up (Nova's convert_mb_to_ceil_gb). */
static int64_t
mb_to_ceil_gb(int64_t mb)
{
	return mb > 0 ? (mb + 1023) / 1024 : 0;
}

void
node_inventories(const struct node_totals *t, const struct node_conf *c,
    struct node_inventory ret[NODE_N_RC])
{
	ret[NODE_VCPU] = (struct node_inventory){
	    t->cpus, c->reserved_host_cpus, c->cpu_allocation_ratio};
	ret[NODE_MEMORY_MB] = (struct node_inventory){
	    t->memory_mb, c->reserved_host_memory_mb, c->ram_allocation_ratio};
	ret[NODE_DISK_GB] = (struct node_inventory){
	    t->disk_bytes > 0 ? t->disk_bytes / (1024LL * 1024 * 1024) : 0,
	    mb_to_ceil_gb(c->reserved_host_disk_mb), c->disk_allocation_ratio};
}

int64_t
node_capacity(const struct node_inventory *inv)
{
	double cap =
	    floor((double)(inv->total - inv->reserved) * inv->allocation_ratio);

	if (!(cap > 0))
		return 0;
	if (cap >= 9.0e18)
		return INT64_MAX;
	return (int64_t)cap;
}

void
node_limits_from(
    const struct node_inventory inv[NODE_N_RC], struct node_limits *ret)
{
	for (size_t i = 0; i < NODE_N_RC; i++)
		ret->capacity[i] = node_capacity(&inv[i]);
}

void
node_flavor_usage(
    const struct flavor *f, bool volume_backed, int64_t ret[NODE_N_RC])
{
	ret[NODE_VCPU] = f->vcpus;
	ret[NODE_MEMORY_MB] = f->memory_mb;
	ret[NODE_DISK_GB] = (volume_backed ? 0 : f->root_gb) + f->ephemeral_gb +
	    mb_to_ceil_gb(f->swap);
}

bool
node_volume_backed(const struct instance *inst)
{
	for (size_t i = 0; i < inst->n_bdms; i++)
		if (inst->bdms[i].boot_index == 0)
			return bdm_is_volume(&inst->bdms[i]);
	return false;
}

int
node_first_short(const struct node_limits *l, const int64_t usage[NODE_N_RC],
    const int64_t want[NODE_N_RC])
{
	for (int i = 0; i < NODE_N_RC; i++)
		if (l->capacity[i] >= 0 && want[i] > 0 &&
		    usage[i] + want[i] > l->capacity[i])
			return i;
	return -1;
}
