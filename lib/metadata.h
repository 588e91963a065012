/*
 * metadata: what the config drive says, in Nova 26's layout
 * (nova/api/metadata/base.py metadata_for_config_drive): for every
 * version Nova 26 writes (2012-08-10 ... 2020-10-14) and "latest", the
 * directory openstack/<version>/ with the files that version has:
 *   meta_data.json     every version: uuid, name, hostname (as is),
 *                      launch_index 0, availability_zone, meta (the
 *                      instance's metadata, when not empty), public_keys
 *                      and keys (every key), random_seed (2013-04-04 on),
 *                      devices (2016-06-30 on), dedicated_cpus [] (2020-10-14
 *                      on). Nova's project_id is left out: there is none.
 *   user_data          every version, when given (the decoded bytes)
 *   vendor_data.json   2013-10-17 on: {} (Nova's StaticJSON with no file)
 *   network_data.json  2015-10-15 on: netinfo.h
 *   vendor_data2.json  2016-10-06 on: {"static": {}}
 * `devices` is Nova's device-role tagging (the libvirt driver's
 * _build_device_metadata): in the domain's device order, every disk
 * whose BDM has a tag and every NIC with a tag, as {"type": "disk"|"nic",
 * "bus", "address", "tags": [tag]}, disks with "serial" (the domain's
 * <serial>: the BDM uuid for local disks, which Nova never had, the
 * volume id for volumes), NICs with "mac" (and "vf_trusted": false from
 * 2018-08-27 on, as Nova). bus is "pci" for a PCI address, else the
 * disk's target bus when scsi, ide or usb, else "none"; address is the
 * PCI address ("0000:00:05.0") or drive address ("0:0:0:1") libvirt
 * assigned, "none" when it assigned none. Nova's ec2/ tree is not written.
 */
#ifndef HYPERLET_METADATA_H
#define HYPERLET_METADATA_H

#include <stddef.h>

#include "bdm.h"
#include "configdrive.h"
#include "domaddr.h"
#include "err.h"

/* Nova 26's OPENSTACK_VERSIONS, oldest first; then "latest". */
#define METADATA_N_VERSIONS 10
extern const char *const metadata_versions[METADATA_N_VERSIONS];

struct metadata_opts {
	const char *availability_zone; /* NULL: "nova", Nova's default */
};

/* Every file of the drive for inst (its guest data included) into d.
 * dom: the defined domain's devices (NULL: none known, every address
 * "none"). Returns 0, -EINVAL (user_data that is not base64, a bad
 * address), -ENOMEM. */
int metadata_build(const struct instance *inst, const struct domaddr *dom,
    const struct metadata_opts *o, struct configdrive *d, struct err *e);

/* meta_data.json of one version of metadata_versions, with random_seed
 * (base64 text) as given. *ret owned. Returns 0, -EINVAL (no such
 * version), -ENOMEM. */
int metadata_meta_data(const struct instance *inst, const struct domaddr *dom,
    const struct metadata_opts *o, const char *version, const char *random_seed,
    char **ret, size_t *ret_len, struct err *e);

#endif /* HYPERLET_METADATA_H */
