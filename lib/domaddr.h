/*
 * domaddr: the disks and network interfaces of a domain's XML as libvirt
 * gives it back after a define, with the addresses libvirt assigned them
 * (Nova's _build_device_metadata reads the same: the config drive's
 * `devices` need them). Parses with libxml2; pure otherwise.
 */
#ifndef HYPERLET_DOMADDR_H
#define HYPERLET_DOMADDR_H

#include <stddef.h>

#include "err.h"
#include "macro.h"

enum domaddr_kind {
	DOMADDR_DISK = 0,
	DOMADDR_NIC,
};

/* One <disk> or <interface>, in document order. Strings are owned; NULL
 * when the XML does not say. */
struct domaddr_dev {
	enum domaddr_kind kind;
	char *target_dev; /* <target dev>: "vda", "sda", "tap0123abcd-ef" */
	char *target_bus; /* disks: <target bus> ("virtio", "scsi", ...) */
	char *device; /* disks: "disk", "cdrom", "lun" */
	char *serial; /* disks: <serial> */
	char *mac; /* interfaces: <mac address>, lower case */
	char *addr_type; /* <address type>: "pci", "drive", ... */
	/* The address in Nova's form: "0000:00:05.0" (pci: domain, bus,
	 * slot, function without their 0x), "0:0:1:0" (drive: controller,
	 * bus, target, unit); NULL for no address or another type. */
	char *address;
};

struct domaddr {
	struct domaddr_dev *devs;
	size_t n;
};

/* Parses a domain's XML. Returns 0 and *ret (owned, domaddr_free),
 * -EINVAL (not a domain's XML), -ENOMEM. */
int domaddr_parse(const char *xml, struct domaddr **ret, struct err *e);
struct domaddr *domaddr_free(struct domaddr *a);
DEFINE_FREEP(struct domaddr, domaddr_free)

/* The disk whose <target dev> is dev ("vdb", no /dev/), the interface
 * whose MAC is mac (any case), or NULL. Borrowed. */
const struct domaddr_dev *domaddr_disk(
    const struct domaddr *a, const char *dev);
const struct domaddr_dev *domaddr_nic(const struct domaddr *a, const char *mac);

#endif /* HYPERLET_DOMADDR_H */
