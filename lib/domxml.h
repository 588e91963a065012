/*
 * domxml: the libvirt domain XML of an instance, and the <disk> XML of one
 * disk (for attach). A pure formatter: model in, string out; no I/O, no
 * libvirt. Every disk carries the <serial> blockinfo chose, and
 * <metadata> names the instance and the BDM uuid of every disk.
 */
#ifndef HYPERLET_DOMXML_H
#define HYPERLET_DOMXML_H

#include "bdm.h"
#include "blockinfo.h"
#include "err.h"
#include "util.h"

/* The namespace of hyperlet's <metadata> element, for
 * virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS, 0).
 * The element is <hyperlet:instance uuid="..."> holding
 * <hyperlet:name>user's name</hyperlet:name> and one
 * <hyperlet:disk bdm_uuid="..." kind="local_root" dev="vda"
 * serial="..."/> per disk that has a BDM. */
#define DOMXML_NS "https://hyperlet.dev/xmlns/libvirt/instance/1.0"
#define DOMXML_NS_PREFIX "hyperlet"

/* Domain names are "instance-<uuid>": unique and safe whatever the user
 * named the instance (the user's name lives in the metadata). */
#define DOMXML_NAME_PREFIX "instance-"
#define DOMXML_NAME_MAX (sizeof(DOMXML_NAME_PREFIX) - 1 + UUID_STR_LEN)

struct domxml_opts {
	const char *virt_type; /* "kvm" | "qemu"; NULL = "kvm" */
	/* Local disk d lives at <instance_dir>/<disk_prefix><d->name>;
	 * usually instance_dir = <instances_path>/<uuid>, disk_prefix NULL. */
	const char *instance_dir; /* required when there is a local disk */
	const char *disk_prefix; /* optional */
	/* The root overlay's <backingStore> (optional; format default
	 * "qcow2" when a path is given). */
	const char *base_image_path;
	const char *base_image_format;
	/* Optional direct kernel boot. */
	const char *kernel, *initrd, *cmdline;
	/* Serial console file; NULL = <instance_dir>/console.log, and no
	 * console at all when instance_dir is NULL too. */
	const char *console_log;
	const char *disk_cache; /* <driver cache=>; NULL = "none" */
	const char *on_reboot; /* NULL = "restart"; tests use "destroy" */
};

/* "instance-<uuid>" into out. */
void domxml_domain_name(const char *uuid, char out[DOMXML_NAME_MAX]);

/*
 * Formats the whole <domain> of inst, whose disks are bi (from
 * blockinfo_build of the same instance). Returns 0 and *ret_xml (owned,
 * free()), or -EINVAL naming what is wrong (a disk combination libvirt
 * refuses, e.g. a lun that is not a SCSI block device; a missing path;
 * text that is not UTF-8 or holds control characters), -ENOMEM.
 */
int domxml_format_domain(const struct instance *inst,
    const struct blockinfo *bi, const struct domxml_opts *o, char **ret_xml,
    struct err *e);

/*
 * Formats one <disk> (d must point into bi->disks), as for
 * virDomainAttachDeviceFlags. Same ownership and errors as
 * domxml_format_domain.
 */
int domxml_format_disk(const struct instance *inst, const struct blockinfo *bi,
    const struct blockinfo_disk *d, const struct domxml_opts *o, char **ret_xml,
    struct err *e);

/*
 * Formats one <interface> (Nova's element: mac, model, source bridge or
 * network, mtu, target dev "tap" + port_id[0..10]), as for
 * virDomainAttachDeviceFlags. Returns 0 and *ret_xml (owned, free()),
 * -EINVAL, -ENOMEM.
 */
int domxml_format_interface(const struct nic *n, char **ret_xml, struct err *e);

#endif
