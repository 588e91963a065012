/*
 * node: what this hypervisor offers to instances and what they take, in
 * Placement's terms (resource classes VCPU, MEMORY_MB, DISK_GB). Pure
 * arithmetic, no I/O: the totals come from libvirt (virt_node_facts) and
 * the file system of instances_path, the reserved amounts and allocation
 * ratios from [node] (cfg.h), the usage from the database
 * (store_node_usage).
 *
 * Nova's rules, kept so that a Placement fed by hyperlet agrees with it:
 *   capacity = floor((total - reserved) * allocation_ratio)
 *     (placement/objects/allocation.py _check_capacity_exceeded)
 *   an instance takes VCPU = vcpus, MEMORY_MB = memory_mb,
 *     DISK_GB = root_gb + ephemeral_gb + ceil(swap MiB / 1024), without
 *     root_gb when its root disk is a volume
 *     (nova/scheduler/utils.py resources_from_flavor), whatever its state.
 */
#ifndef HYPERLET_NODE_H
#define HYPERLET_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "bdm.h"

enum node_rc {
	NODE_VCPU,
	NODE_MEMORY_MB,
	NODE_DISK_GB,
	NODE_N_RC,
};

/* "VCPU", "MEMORY_MB", "DISK_GB" (Placement's standard classes). */
const char *node_rc_name(enum node_rc rc);

/* One resource class's inventory record, as Placement's. */
struct node_inventory {
	int64_t total;
	int64_t reserved;
	double allocation_ratio;
};

/* The most instances may take of each class; capacity[rc] < 0 means no
 * limit (the totals are not known). Passed to store_instance_claim. */
struct node_limits {
	int64_t capacity[NODE_N_RC];
};

/* What [node] says (cfg.h keys of the same names). */
struct node_conf {
	double cpu_allocation_ratio;
	double ram_allocation_ratio;
	double disk_allocation_ratio;
	int64_t reserved_host_cpus;
	int64_t reserved_host_memory_mb;
	int64_t reserved_host_disk_mb;
};

/* The totals the host reports: CPUs and memory from libvirt's node info,
 * disk_bytes the size of instances_path's file system. */
struct node_totals {
	int64_t cpus;
	int64_t memory_mb;
	int64_t disk_bytes;
};

/*
 * The inventory of each class from the totals and [node]: DISK_GB's total
 * is the file system's size in whole GiB (rounded down) and its reserved
 * amount reserved_host_disk_mb in GiB rounded up (as Nova's
 * compute_utils.convert_mb_to_ceil_gb).
 */
void node_inventories(const struct node_totals *t, const struct node_conf *c,
    struct node_inventory ret[NODE_N_RC]);

/* floor((total - reserved) * allocation_ratio), at least 0. */
int64_t node_capacity(const struct node_inventory *inv);

/* The limits for store_instance_claim: node_capacity of each class. */
void node_limits_from(
    const struct node_inventory inv[NODE_N_RC], struct node_limits *ret);

/* What an instance of flavor f takes (resources_from_flavor); the root
 * disk is left out when volume_backed. */
void node_flavor_usage(
    const struct flavor *f, bool volume_backed, int64_t ret[NODE_N_RC]);

/* True when the instance's root disk (the BDM of boot index 0) is a
 * volume. */
bool node_volume_backed(const struct instance *inst);

/*
 * The first class (in enum order) whose usage plus want would go past its
 * capacity, or -1 when all fit. Classes whose capacity is < 0 are not
 * checked.
 */
int node_first_short(const struct node_limits *l,
    const int64_t usage[NODE_N_RC], const int64_t want[NODE_N_RC]);

#endif
