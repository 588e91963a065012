/*
 * The libvirt seam: connections (each call uses one alone; reopened when
 * libvirt drops them), the instance's local disks as volumes of a
 * transient `dir` storage pool on <instances_path>/<instance uuid>, and
 * the domain life cycle (define, start, stop, reboot, undefine,
 * attach/detach, state, list). A domain's uuid is its instance's, its name
 * "instance-<uuid>"; the XML comes from domxml. lib/virt.c is the only
 * file that includes <libvirt/libvirt.h>.
 *
 * Errors (negative errno, libvirt's message copied into e): -ENOENT no such
 * domain/volume, -EBUSY operation invalid in the domain's state, -EEXIST
 * already exists, -EAGAIN libvirt unreachable (the API answers 503), -EINVAL
 * bad argument (checked before libvirt is called), -EIO anything else.
 *
 * Ownership: every call that changes or removes a domain (undefine, start,
 * stop, reboot, attach, detach) first checks that the domain of that uuid
 * carries hyperlet's <metadata> naming that instance; a domain hyperlet
 * does not own is left untouched and the call returns -EPERM.
 */
#ifndef HYPERLET_VIRT_H
#define HYPERLET_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdm.h"
#include "blockinfo.h"
#include "err.h"
#include "macro.h"
#include "util.h"

#define VIRT_URI_DEFAULT "test:///default"
/* How long a live detach waits for the guest to release the disk (Nova's
 * device_detach_timeout is 20 s). */
#define VIRT_DETACH_TIMEOUT_MS 20000

struct virt; /* opaque; safe to share between threads */

struct virt_opts {
	const char *uri; /* NULL: VIRT_URI_DEFAULT */
	const char *virt_type; /* <domain type=>: "kvm" (NULL) or "qemu" */
	const char *instances_path; /* absolute; required */
	int reconnect_interval_ms; /* min gap between reopen attempts; 0:
				      1000 */
	/* libvirt keepalive: a daemon silent for about interval * (count +
	 * 1) s is taken as gone and its pending calls fail (-EAGAIN).
	 * interval 0: 5 s, < 0: off; count 0: 3. */
	int keepalive_interval_s;
	unsigned int keepalive_count;
	bool lazy; /* succeed even if libvirt is down now: calls then fail
		      with -EAGAIN until a reopen works */
	/* live detach: how long to wait for the guest to release the
	 * disk; 0: VIRT_DETACH_TIMEOUT_MS */
	int detach_timeout_ms;
};

/*
 * Opens the connection described by o (strings are copied). Once per
 * process: installs a quiet libvirt error handler, registers libvirt's
 * default event loop and starts a thread that runs it (for keepalive;
 * call virt_open after blocking signals), and ignores SIGPIPE if
 * its disposition is the default (libvirt writes to its socket with
 * write(); a daemon gone away must not kill the caller). Returns 0 and *ret (owned,
 * virt_close), -EINVAL for bad options, -EAGAIN if libvirt cannot be reached
 * (unless o->lazy), -ENOMEM.
 */
int virt_open(const struct virt_opts *o, struct virt **ret, struct err *e);
/* Closes the connection and frees v; accepts NULL; returns NULL. No call may
 * be running on v. */
struct virt *virt_close(struct virt *v);
DEFINE_FREEP(struct virt, virt_close)

/* Borrowed configuration strings (live as long as v). */
const char *virt_uri(const struct virt *v);
const char *virt_type(const struct virt *v);
const char *virt_instances_path(const struct virt *v);

/* "<instances_path>/<uuid>" into *ret (owned). -EINVAL for a uuid that is
 * not canonical, -ENOMEM. */
int virt_instance_dir(
    const struct virt *v, const char *instance_uuid, char **ret, struct err *e);

/* Probe: true if libvirt answers a round trip now (reopens the connection
 * first when it is down and a reopen is due); updates virt_health's state.
 * May wait for libvirt: never on an HTTP thread. */
bool virt_alive(struct virt *v);
/* Health without a libvirt call: whether the connection is known to work
 * (the last reopen, call, probe or keepalive said so), and since when
 * (util_now_ms) in *ret_since_ms (may be NULL). A hung libvirtd turns it
 * false once the keepalive gives up (about interval * (count + 1) s). */
bool virt_health(const struct virt *v, int64_t *ret_since_ms);
/* How many times the connection was reopened after it dropped (metrics). */
uint64_t virt_reconnects(const struct virt *v);

/*
 * Creates the local disks of bi in <instances_path>/<inst->uuid>/ (the
 * directory is made if missing): `disk` as a qcow2 overlay on base_path
 * (format base_format, "raw" or "qcow2") of root_gb GiB, or of
 * base_virtual_size bytes when root_gb is 0; `disk.eph<N>` (GiB) and
 * `disk.swap` (MiB) as blank qcow2 volumes of their BDM's size. base_path
 * may be NULL when bi has no local_root. The config drive is not created
 * here. On failure the volumes this call made are deleted again. Returns
 * 0, -EINVAL (root smaller than the image, missing base), -EEXIST (a
 * volume already exists), -EAGAIN, -EIO.
 */
int virt_create_disks(struct virt *v, const struct instance *inst,
    const struct blockinfo *bi, const char *base_path, const char *base_format,
    uint64_t base_virtual_size, struct err *e);

/* Deletes every volume in the instance directory and the directory itself.
 * Idempotent: a missing directory is success. Returns 0, -EINVAL, -EAGAIN,
 * -EIO. */
int virt_delete_disks(struct virt *v, const char *instance_uuid, struct err *e);

/* Defines (or redefines, same uuid) a persistent domain from xml with
 * VIR_DOMAIN_DEFINE_VALIDATE. Returns 0, -EEXIST (name taken by another
 * uuid), -EAGAIN, -EIO (XML refused; libvirt's message in e). */
int virt_define(struct virt *v, const char *xml, struct err *e);

/* Destroys the domain if it runs, then undefines it with its managed save,
 * snapshot/checkpoint metadata and NVRAM. Idempotent: no domain is
 * success. A domain of that uuid that is not hyperlet's instance uuid is
 * neither destroyed nor undefined: -EPERM. Returns 0, -EPERM, -EAGAIN,
 * -EIO. */
int virt_undefine(struct virt *v, const char *uuid, struct err *e);

/* Starts a defined domain. Returns 0, -ENOENT, -EBUSY (already running),
 * -EAGAIN, -EIO. */
int virt_start(struct virt *v, const char *uuid, struct err *e);

/* Asks the guest to shut down and waits up to timeout_ms for it, then
 * destroys it (timeout_ms 0: destroy at once). Returns 0, -ENOENT, -EBUSY
 * (not running), -EAGAIN, -EIO. */
int virt_stop(struct virt *v, const char *uuid, int timeout_ms, struct err *e);

/* Asks the guest to reboot (ACPI). Returns 0, -ENOENT, -EBUSY (not
 * running), -EAGAIN, -EIO. */
int virt_reboot(struct virt *v, const char *uuid, struct err *e);

/* The domain's state as an instance state: running (also paused, blocked,
 * shutting down, suspended), stopped (shut off), error (crashed, no state).
 * Returns 0, -ENOENT, -EAGAIN, -EIO. */
int virt_state(
    struct virt *v, const char *uuid, enum instance_state *ret, struct err *e);

/* libvirt's XML of the domain (the live one when running, else the
 * persistent one); inactive = true asks for the persistent definition.
 * *ret_xml is owned (free). Returns 0, -ENOENT, -EAGAIN, -EIO. */
int virt_get_xml(struct virt *v, const char *uuid, bool inactive,
    char **ret_xml, struct err *e);

/* Attaches / detaches one disk (disk_xml from domxml_format_disk) with
 * VIR_DOMAIN_AFFECT_CONFIG, plus AFFECT_LIVE when the domain runs. Detach
 * matches the disk by its <target dev>. A live detach returns 0 only once
 * the disk (its <serial>) is gone from the live domain: libvirt returns
 * when QEMU was asked, and the guest must then release the device. If it
 * has not within detach_timeout_ms, -ETIMEDOUT (the config has lost the
 * disk, the running guest still has it; detaching again waits again).
 * Returns 0, -ENOENT (no domain, or no such disk on detach), -EBUSY,
 * -ETIMEDOUT (detach), -EAGAIN, -EIO. */
int virt_attach_disk(
    struct virt *v, const char *uuid, const char *disk_xml, struct err *e);
int virt_detach_disk(
    struct virt *v, const char *uuid, const char *disk_xml, struct err *e);

/* Attaches (attach true) or detaches one <interface> (nic_xml from
 * domxml_format_interface; libvirt matches a detach by MAC) with
 * VIR_DOMAIN_AFFECT_CONFIG, plus AFFECT_LIVE when the domain runs.
 * Returns 0, -ENOENT (no domain; on detach also: no such interface),
 * -EOPNOTSUPP (the driver cannot, as test:///default), -EBUSY, -EAGAIN,
 * -EIO. */
int virt_interface(struct virt *v, const char *uuid, const char *nic_xml,
    bool attach, struct err *e);

/* One domain as reconciliation sees it. */
struct virt_domain {
	char uuid[UUID_STR_LEN];
	/* named "instance-<uuid>", as hyperlet names its domains: only such
	 * a domain can be hyperlet's (virt_has_metadata tells) */
	bool named;
	bool persistent;
	enum instance_state state;
	enum instance_state observed; /* as virt_observe reads it */
};

/* Every domain libvirt knows (defined or running) with its state, sorted
 * by uuid. A constant number of libvirt calls however many domains there
 * are (virConnectGetAllDomainStats; one call per domain only with a driver
 * that lacks it), so start-up against a remote libvirtd does not pay a
 * round trip per domain. *ret is an owned array (free), *ret_n its length.
 * Returns 0, -EAGAIN, -EIO, -ENOMEM. */
int virt_list(
    struct virt *v, struct virt_domain **ret, size_t *ret_n, struct err *e);

/* Whether the domain of uuid is hyperlet's: its <metadata> (DOMXML_NS)
 * names instance uuid. 1 yes, 0 no (no hyperlet metadata, or another
 * instance's). Two libvirt calls: for the few domains reconciliation cannot
 * match with a row, and the check a create makes before it writes. Returns
 * 1, 0, -EINVAL, -ENOENT (no such domain), -EAGAIN, -EIO. */
int virt_has_metadata(struct virt *v, const char *uuid, struct err *e);

/* Whether the name hyperlet gives instance uuid's domain
 * (instance-<uuid>) is held by a domain of another uuid: 1 yes, 0 no. One
 * lookup by name, for a define that failed. Returns 1, 0, -EINVAL, -EAGAIN,
 * -EIO. */
int virt_name_taken(struct virt *v, const char *uuid, struct err *e);
/* One disk of a domain's persistent definition: its <serial> ("" when
 * it has none: the config drive, a lun, a disk made outside hyperlet) and
 * its <target dev>. A serial names the disk's BDM (blockinfo_serial: the
 * BDM uuid for local disks, the volume id for volumes). */
struct virt_disk {
	char serial[64];
	char dev[32];
};

/* Every <disk> of the domain's persistent (inactive) XML, in document
 * order; one libvirt call. *ret is an owned array (free), *ret_n its
 * length. Returns 0, -ENOENT (no domain), -EAGAIN, -EIO, -ENOMEM. */
int virt_domain_disks(struct virt *v, const char *uuid, struct virt_disk **ret,
    size_t *ret_n, struct err *e);

/* One <interface> of a domain: its MAC (lower case, as libvirt writes
 * it) and the PCI address libvirt gave it ("0000:00:03.0"; "" when it
 * has none, as on the test driver). */
struct virt_nic {
	char mac[18];
	char pci[16];
};

/* Every <interface> of the domain's XML (the live one when it runs),
 * in document order; one libvirt call. *ret is an owned array (free),
 * *ret_n its length. Returns 0, -ENOENT (no domain), -EAGAIN, -EIO,
 * -ENOMEM. */
int virt_domain_nics(struct virt *v, const char *uuid, struct virt_nic **ret,
    size_t *ret_n, struct err *e);

/* Attaches (attach true) or detaches one disk (disk_xml; a detach matches
 * by <target dev>) in the domain's persistent definition only
 * (VIR_DOMAIN_AFFECT_CONFIG), running or not: the running guest is left
 * as it is and gets the change at its next start. Reconciliation's
 * repairs. Returns 0, -EINVAL, -ENOENT (no domain, or no such disk on
 * detach), -EAGAIN, -EIO. */
int virt_disk_config(struct virt *v, const char *uuid, const char *disk_xml,
    bool attach, struct err *e);

/* --- lifecycle events (lib/domevents.c) ------------------------------ */

/* The domain's state as the lifecycle events report it: running (also
 * blocked, shutting down), paused (also pmsuspended), stopped (shut off),
 * crashed (shut off because QEMU died, or crashed with on_crash
 * preserve), error (no state). Returns 0, -ENOENT, -EAGAIN, -EIO. */
int virt_observe(
    struct virt *v, const char *uuid, enum instance_state *ret, struct err *e);

enum virt_event_kind {
	VIRT_EVENT_LIFECYCLE, /* lifecycle (and crashed) say which */
	VIRT_EVENT_REBOOT, /* the guest rebooted */
	VIRT_EVENT_DEVICE_REMOVED, /* the guest released a device */
	VIRT_EVENT_LOST, /* the event connection closed (uuid "") */
};

/* libvirt's virDomainEventType, by name. */
enum virt_lifecycle {
	VIRT_LC_DEFINED = 0,
	VIRT_LC_UNDEFINED,
	VIRT_LC_STARTED,
	VIRT_LC_SUSPENDED,
	VIRT_LC_RESUMED,
	VIRT_LC_STOPPED,
	VIRT_LC_SHUTDOWN,
	VIRT_LC_PMSUSPENDED,
	VIRT_LC_CRASHED,
	VIRT_LC_OTHER,
};

struct virt_event {
	enum virt_event_kind kind;
	char uuid[UUID_STR_LEN];
	bool named; /* "instance-<uuid>": possibly hyperlet's */
	enum virt_lifecycle lifecycle; /* VIRT_EVENT_LIFECYCLE */
	/* stopped with detail crashed (QEMU died), or event crashed */
	bool crashed;
};

/* Runs on libvirt's event loop thread: it must not call libvirt, and
 * should only queue ev (a copy: ev lives for the call). */
typedef void (*virt_event_fn)(void *arg, const struct virt_event *ev);

/*
 * Opens v's event connection (its own, beside the calls' connections)
 * and registers for the lifecycle, reboot and device-removed events of
 * every domain and for the connection's close: fn(arg, ev) gets each,
 * and one VIRT_EVENT_LOST when the connection drops (libvirtd restarted
 * or hung past the keepalive). Calling it again while the connection
 * works does nothing; after a loss it opens a new one. A DEVICE_REMOVED
 * also wakes a live detach waiting in virt_detach_disk at once. Returns
 * 1 (opened now: events between the loss and now were missed), 0 (open
 * already), -EAGAIN (libvirt unreachable), -EIO.
 */
int virt_watch(struct virt *v, virt_event_fn fn, void *arg, struct err *e);
/* True when the event connection is not open or was lost. */
bool virt_watch_lost(struct virt *v);
/* Closes the event connection; after it returns fn is not called again.
 * virt_close calls it too. */
void virt_unwatch(struct virt *v);

/* --- the node (issue 13) --------------------------------------------- */

/* What libvirt says about the host, for GET /v1/node and the inventory.
 * Text fields are "" when libvirt does not say. */
struct virt_node_facts {
	char hypervisor_type[32]; /* virConnectGetType: "QEMU", "TEST" */
	char hypervisor_version[32]; /* "7.2.0" (virConnectGetVersion) */
	char libvirt_version[32]; /* "9.0.0" (virConnectGetLibVersion) */
	char arch[32]; /* capabilities host/cpu/arch, else node info */
	char cpu_model[64]; /* capabilities host/cpu/model ("" for TEST) */
	int sockets; /* all NUMA cells' (virNodeInfo nodes * sockets) */
	int cores; /* per socket */
	int threads; /* per core */
	int64_t cpus; /* active host CPUs */
	int64_t memory_mb; /* host memory, MiB */
};

/* Three libvirt calls (node info, versions and type, capabilities).
 * Returns 0, -EAGAIN (libvirt unreachable), -EIO. */
int virt_node_facts(struct virt *v, struct virt_node_facts *ret, struct err *e);

#endif
