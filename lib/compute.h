/*
 * compute: the orchestration behind the instance routes and start-up. It
 * owns the order of the steps that touch the database (store), the disks
 * and the domain (virt), so that a kill -9 between any two steps leaves
 * something compute_reconcile() can finish or roll back:
 *   create  row (building) -> disks -> define -> start -> state
 *   delete  state deleting -> destroy+undefine -> disks -> row
 *   attach  BDM row -> live+config attach        (row removed on failure,
 *                                                 kept when ambiguous)
 *   detach  live+config detach -> BDM row        (a missing disk is fine)
 * A failed call undoes what it made and returns the first error.
 *
 * Only hyperlet's own domains are ever changed or removed: virt refuses a
 * domain whose <metadata> does not name the instance (-EPERM), a create
 * of a uuid libvirt already has a domain for is -EEXIST before anything
 * is written, and removals (delete, rollback, sweep) pass over a foreign
 * domain of the uuid as if there were none. Volume host paths come from
 * [storage] volume_roots only (volroot.h).
 *
 * struct compute holds configuration only and may be shared by threads;
 * each call takes the calling thread's store connection. Callers serialise
 * changes to one instance (the API's striped per-instance lock;
 * compute_reconcile runs before the API serves).
 *
 * Errors (negative errno, message in e): -EINVAL bad request (imageRef of
 * no image, a bad disk combination), -ENOENT no such instance/volume,
 * -EEXIST uuid taken, -EBUSY wrong state for the action (building,
 * deleting, already running/stopped), -EAGAIN database busy or libvirt
 * unreachable, -EIO anything else.
 */
#ifndef HYPERLET_COMPUTE_H
#define HYPERLET_COMPUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdm.h"
#include "blockinfo.h"
#include "domxml.h"
#include "err.h"
#include "node.h"
#include "store.h"
#include "virt.h"
#include "volroot.h"

struct compute;

struct compute_opts {
	struct virt *virt; /* borrowed; must outlive the compute */
	const char *images_dir; /* base images: <images_dir>/<image id> */
	struct bdm_limits limits;
	int stop_timeout_ms; /* ACPI shutdown before destroy; 0 = destroy */
	/* Extra domain XML settings (direct kernel boot, on_reboot,
	 * disk_cache, console_log) copied by value; their strings are
	 * borrowed. virt_type, instance_dir and base_image_* are filled per
	 * instance and ignored here. */
	struct domxml_opts domxml;
	/* Where volume host paths may come from ([storage] volume_roots,
	 * volroot.h; NULL: nowhere, every volume is refused) and the state
	 * directory and database they must stay out of (images_dir and the
	 * virt's instances path are excluded too). Copied. */
	const char *volume_roots;
	const char *state_dir;
	const char *db_path;
	/* [guest] resume_guests_state_on_host_boot: compute_reconcile
	 * starts the instances whose desired state is running and whose
	 * domain is not */
	bool resume_guests;
	/* The node's capacity for compute_create's claim (issue 13): called
	 * on each create, it fills *ret (node_limits_from) and returns true,
	 * or false when the totals are not known (no check). NULL: creates
	 * are never refused for room. Must not call libvirt (it runs under
	 * no lock but on the create's path). */
	bool (*node_limits)(void *arg, struct node_limits *ret);
	void *node_limits_arg;
	/* [guest] force_config_drive: every create gets a config drive
	 * (inst->config_drive set true); availability_zone (copied; NULL:
	 * "nova") for its meta_data.json */
	bool force_config_drive;
	const char *availability_zone;
};

/* Copies o (images_dir duplicated). Returns 0 and *ret (compute_free),
 * -EINVAL (no virt, images_dir not absolute), -ENOMEM. */
int compute_new(
    const struct compute_opts *o, struct compute **ret, struct err *e);
struct compute *compute_free(struct compute *c);

/*
 * Creates an instance: inst has been through bdm_instance_prepare;
 * blockinfo_build runs here (it writes device_name/disk_bus into inst's
 * BDMs, which are stored so). Then: the image (inst->image_ref, or the root
 * BDM's image_id) is looked up, the row is written (state building, all
 * BDMs, request_digest), the local disks are created, the domain defined,
 * started unless inst->start is false, and the state set to running or
 * stopped. With inst->config_drive (or force_config_drive), the config
 * drive (guestdrive.h) is written between define and start, from the
 * addresses libvirt gave the defined domain. Every volume's host path must pass volroot_check (-EINVAL on
 * field block_device_mapping_v2, nothing written). On failure everything made is undone (domain undefined, disks
 * deleted, row deleted) and the error returned. On success *ret_inst (may
 * be NULL) receives the instance as stored (owned, instance_free).
 * With o->node_limits, the row is written by store_instance_claim: an
 * instance that does not fit is -ENOSPC (field: the resource class) and
 * nothing is made.
 * Returns 0, -EINVAL (image unknown or unusable, bad mapping), -EEXIST
 * (instance or BDM uuid taken: the caller compares digests for PUT),
 * -ENOSPC, -EAGAIN, -EIO.
 */
int compute_create(struct compute *c, struct store *s, struct instance *inst,
    const char *request_digest, struct instance **ret_inst, struct err *e);

/*
 * Checks the host path of every volume BDM of a request as parsed (before
 * bdm_instance_prepare, so BDM i is the request's
 * block_device_mapping_v2[i]) against the volume roots (volroot.h).
 * compute_create checks again; this is for a caller that wants the
 * request's own indexes in the error. Returns 0, -EINVAL naming
 * block_device_mapping_v2[i].connection_info.data.device_path, -ENOMEM.
 */
int compute_check_volumes(
    struct compute *c, const struct instance *inst, struct err *e);

/*
 * Deletes an instance: state deleting first (so a crash leaves a row that
 * reconcile finishes), then destroy + undefine, delete the local disks,
 * delete the row and its BDMs. Idempotent: an instance left in deleting is
 * finished. A building instance is refused: its create may still define
 * the domain. Every state change of create and action is a
 * compare-and-set on the state it expects (store_instance_cas_state), and
 * a delete's first write refuses building (store_instance_mark_deleting),
 * so a delete racing a create never leaves a domain without a row.
 * Returns 0, -EINVAL, -ENOENT (no such instance), -EBUSY (building),
 * -EAGAIN, -EIO (the row stays, in state deleting, and a retry
 * continues).
 */
int compute_delete(
    struct compute *c, struct store *s, const char *uuid, struct err *e);
/* compute_delete only while the instance has that generation (> 0; 0:
 * any), as the API checked an If-Match against: -EBUSY if a change came
 * since. */
int compute_delete_if(struct compute *c, struct store *s, const char *uuid,
    int64_t generation, struct err *e);

enum compute_action {
	COMPUTE_START = 0,
	COMPUTE_STOP,
	COMPUTE_REBOOT, /* soft: ACPI */
	COMPUTE_REBOOT_HARD, /* Nova's hard reboot (below) */
};

/* "start" | "stop" | "reboot" (soft; a hard reboot has no name of its
 * own: the API's {"action": "reboot", "type": "hard"}). Returns 0 or
 * -EINVAL. */
int compute_action_from_string(const char *s, enum compute_action *ret);

/*
 * Starts, stops (ACPI shutdown for stop_timeout_ms, then destroy) or
 * reboots an instance and records the new state. *ret_inst (may be NULL)
 * receives the instance as stored afterwards. Returns 0, -EINVAL, -ENOENT,
 * -EBUSY (building or deleting; start of a running or stop/reboot of a
 * stopped instance), -EAGAIN, -EIO.
 *
 * COMPUTE_REBOOT_HARD is Nova's hard reboot, allowed from running,
 * stopped and error: the domain XML is made again from the database
 * exactly as compute_create makes it, the domain destroyed and undefined
 * (a domain of the uuid hyperlet does not own is left alone: -EIO naming
 * it, nothing done), defined from that XML (whatever was changed behind
 * hyperlet's back is gone; a domain that was undefined is back), its
 * config drive written again if it went missing, and started; the
 * instance ends running. Local disks are not made again: a
 * start that fails leaves the new definition shut off and the instance in
 * state error with the reason as its fault. Killed halfway, the row says
 * what it said before, and start-up reconciliation defines a missing
 * domain again.
 */
int compute_action(struct compute *c, struct store *s, const char *uuid,
    enum compute_action a, struct instance **ret_inst, struct err *e);

/*
 * Attaches a volume to an instance, live (when running) and persistent. b
 * is the parsed attach body (bdm_json_parse_attach); it is validated and
 * completed here (bdm_prepare_attach draws bdm_uuid, blockinfo_pick_attach
 * picks bus and device name) and stays the caller's. The BDM row is
 * written first and removed again if libvirt refuses. On success
 * *ret_inst (may be NULL) receives the instance as stored, whose BDM
 * *ret_index is the new one. The volume's host path must pass
 * volroot_check (-EINVAL on connection_info.data.device_path, nothing
 * written). Returns 0, -EINVAL, -ENOENT, -EEXIST (volume
 * already attached, bdm_uuid taken), -EBUSY (building/deleting), -EAGAIN,
 * -EIO.
 */
int compute_attach(struct compute *c, struct store *s, const char *uuid,
    struct bdm *b, struct instance **ret_inst, size_t *ret_index,
    struct err *e);

/*
 * Attaches NIC n (nic_json_parse_attach's, port_id and mac drawn) to an
 * instance, live (when running) and persistent: the NIC row first,
 * attaching, in the transaction that bumps the generation; libvirt next;
 * then the row settled with interface.attached. The row is removed
 * again if libvirt refuses; on -EAGAIN (libvirt unreachable mid-call) it
 * stays attaching for start-up reconciliation to settle against the
 * domain's MACs. On success *ret_inst (may be NULL)
 * receives the instance as stored, n last of its NICs. Returns 0,
 * -EINVAL, -ENOENT, -EEXIST (port_id or mac used on the node, field
 * "port_id" / "mac"), -EBUSY (building/deleting), -EOPNOTSUPP (the
 * libvirt driver cannot attach, as test:///default), -EAGAIN, -EIO.
 */
int compute_attach_interface(struct compute *c, struct store *s,
    const char *uuid, const struct nic *n, struct instance **ret_inst,
    struct err *e);

/*
 * Detaches NIC port_id from an instance, live and persistent: the row
 * marked detaching, libvirt (an interface the domain no longer has is
 * fine), then the row deleted. A refusal puts the row's state back;
 * -EAGAIN leaves it detaching for reconciliation (or a detach again).
 * Returns 0, -EINVAL, -ENOENT (no such instance, or no such interface on
 * it), -EBUSY, -EOPNOTSUPP, -EAGAIN, -EIO.
 */
int compute_detach_interface(struct compute *c, struct store *s,
    const char *uuid, const char *port_id, struct err *e);

/*
 * Detaches the volume volume_id (its BDM with destination volume) from an
 * instance: libvirt first (a disk already gone is fine), then the BDM row.
 * Returns 0, -EINVAL, -ENOENT (no such instance, or no such volume on it),
 * -EBUSY, -EAGAIN, -EIO.
 */
int compute_detach(struct compute *c, struct store *s, const char *uuid,
    const char *volume_id, struct err *e);

/* What compute_reconcile found and did. */
struct compute_report {
	size_t instances; /* rows looked at */
	size_t redefined; /* domain missing: defined again from the row */
	size_t restarted; /* of those, started again (row said running) */
	size_t builds_finished; /* building, domain defined: kept */
	size_t builds_rolled_back; /* building, no domain: disks + row gone */
	size_t deletes_finished; /* deleting: domain, disks, row gone */
	size_t states_refreshed; /* row state differed from libvirt's */
	size_t resumed; /* desired running, domain defined but not running:
			   started (resume_guests) */
	size_t disks_attached; /* BDM row whose disk the domain lacked */
	size_t disks_detached; /* domain disk whose serial no row knows, or
				  of a detaching row */
	size_t disks_checked; /* instances whose domain disks were read (one
				 libvirt call each): those with an unsettled
				 BDM */
	size_t attaches_settled; /* attaching rows settled */
	size_t detaches_finished; /* detaching rows deleted */
	size_t detaches_pending; /* detaching rows kept: the domain runs and
				    may still hold the disk live */
	size_t nic_attaches_settled; /* attaching NIC rows the domain has */
	size_t nic_attaches_undone; /* attaching NIC rows it lacks: deleted */
	size_t nic_detaches_finished; /* detaching NIC rows deleted (the
					 NIC detached again if present) */
	size_t lost; /* root/ephemeral disk missing: state error, fault
			(this pass, like failed) */
	size_t swept; /* rolled-back builds whose leftovers were removed */
	size_t failed; /* instances that could not be reconciled */
	char first_error[ERR_MSG_MAX]; /* message of the first failure */
	/* Instances this pass put in state error, with the fault stored
	 * (a disk lost, a start that failed): for the log. */
	size_t n_faults;
	struct compute_fault {
		char uuid[UUID_STR_LEN];
		char msg[ERR_MSG_MAX];
	} * faults; /* owned; compute_report_clear */
	/* Domains that carry hyperlet metadata but have no row: reported,
	 * never deleted. */
	size_t n_unknown;
	char (*unknown)[UUID_STR_LEN]; /* owned; compute_report_clear */
};

/*
 * Start-up reconciliation of the database with libvirt:
 *  - deleting: finished (destroy, undefine, disks, row);
 *  - building: if libvirt has the domain, the create got past define, so
 *    it is kept and its state taken from libvirt (a create that had not
 *    started it yet is started like any instance meant to run, below);
 *    otherwise rolled back (disks, row);
 *  - running/stopped/error without a domain: if the root or an ephemeral
 *    disk is missing, the instance goes to state error with a fault
 *    naming the disk (nothing is made from the image: that would be data
 *    loss reported as success; r->lost); a volume path the roots no
 *    longer admit is not defined either (state error with a fault);
 *    otherwise the swap disk is made again if missing, the domain
 *    redefined from the row, and started if its desired state is running
 *    and resume_guests is set;
 *  - a row whose uuid libvirt has a domain for that hyperlet did not name
 *    (not instance-<uuid>): never refreshed from or defined over; state
 *    error (deleting and building rows go on as without a domain);
 *  - with a domain: the row's (observed) state set to libvirt's when they
 *    differ; the domain's persistent disks compared with the BDM rows by
 *    serial: a volume BDM whose disk the domain lacks is attached again
 *    (the row is the truth once written: an attach killed before libvirt
 *    or failed ambiguously), a disk with a serial no row knows is
 *    detached (both in the persistent definition only: a running guest
 *    gets the change at its next start); then, with resume_guests,
 *    an instance whose desired state is running and whose domain is not
 *    running is started;
 *  - an instance that should run but cannot be started goes to state
 *    error with the reason as its fault (store_instance_set_error; it
 *    stays desired running, so the next start-up tries again); libvirt
 *    unreachable (-EAGAIN) is retried instead;
 *  - domains with hyperlet metadata and no row: listed in r->unknown;
 *  - building rows rolled back and deleting rows finished leave a
 *    tombstone, and a final compute_sweep removes leftovers of earlier
 *    rollbacks (r->swept).
 * One instance's failure does not stop the others (r->failed). *r is
 * filled (clear it with compute_report_clear). Returns 0, or -EAGAIN/-EIO
 * when the database or libvirt cannot be listed at all.
 */
int compute_reconcile(struct compute *c, struct store *s,
    struct compute_report *r, struct err *e);
void compute_report_clear(struct compute_report *r);

/*
 * Removes what is left of rolled-back builds. A build rolled back (by
 * reconcile, or by a failed create's undo) leaves a tombstone in the store
 * (store_instance_roll_back): libvirtd may still finish a define or a disk
 * volume the rolled-back request had sent (a daemon killed mid-call), after
 * the rollback. For every tombstone without a row that has a domain or an
 * instance directory, the domain is destroyed + undefined and the disks
 * deleted; a tombstone whose row is deleting (a failed create libvirt was
 * away for) is deleted through. Tombstones expire 10 minutes after the
 * first sweep that checked them. Domains with hyperlet metadata but
 * neither row nor tombstone are never touched (compute_reconcile reports
 * them). compute_reconcile ends with a sweep; the daemon runs one a few
 * seconds after start and then periodically, on its own store connection
 * (s is the caller's). Safe against a concurrent compute_create of the same
 * uuid (an internal lock; a create of a tombstoned uuid removes the
 * leftovers itself first). *ret_removed (may be NULL) is increased by the
 * number of builds cleaned. Returns 0, or the first error (-EAGAIN, -EIO;
 * the other tombstones are still handled).
 */
int compute_sweep(
    struct compute *c, struct store *s, size_t *ret_removed, struct err *e);

#endif
