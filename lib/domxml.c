/*
 * domxml: formats libvirt domain XML from an instance and its blockinfo,
 * through xwriter (never string pasting). Pure: no I/O, no libvirt.
 * Element and child order follow libvirt's own formatter (and, inside
 * <disk>, Nova's LibvirtConfigGuestDisk): a domain read back with
 * virDomainGetXMLDesc differs from ours only by what libvirt adds.
 * Combinations libvirt or QEMU would refuse (a lun that is not a SCSI
 * block device, a virtio cdrom, IDE on q35) are refused here first, with
 * -EINVAL naming the disk, so nothing half-formed reaches libvirt.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "domxml.h"
#include "xwriter.h"

#define DOMXML_PATH_MAX 1100 /* util_path_valid allows 1024 */
#define DOMXML_SERIAL_SHORT 20 /* what non-SCSI buses keep */

/* Everything about one disk that goes into its <disk> element. */
struct domxml_disk {
	const char *type; /* "file" | "block" */
	const char *device; /* "disk" | "cdrom" | "lun" */
	const char *format; /* "qcow2" | "raw" */
	const char *source; /* path */
	const char *bus;
	bool backing; /* write the root overlay's <backingStore> */
	char path[DOMXML_PATH_MAX];
};

static bool
domxml_one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (STREQ(s, *set))
			return true;
	return false;
}

static bool
domxml_is_local(const struct blockinfo_disk *d)
{
	switch (d->kind) {
	case BLOCKINFO_LOCAL_ROOT:
	case BLOCKINFO_EPHEMERAL:
	case BLOCKINFO_SWAP:
	case BLOCKINFO_CONFIG_DRIVE:
		return true;
	default:
		return false;
	}
}

/*
 * Writes dir "/" prefix name into out (as snprintf "%s/%s%s" would, without
 * its cost). Returns the length, or -1 if it does not fit in out.
 */
static int
domxml_path_join(char out[DOMXML_PATH_MAX], const char *dir, const char *prefix,
    const char *name)
{
	const char *part[] = {dir, "/", prefix, name};
	size_t n = 0;

	for (size_t i = 0; i < ELEMENTSOF(part); i++) {
		size_t len = strlen(part[i]);

		if (len >= DOMXML_PATH_MAX - n)
			return -1;
		memcpy(out + n, part[i], len);
		n += len;
	}
	out[n] = '\0';
	return (int)n;
}

/*
 * util_path_valid(path) for path = dir "/" rest of length len, where dir
 * already passed util_path_valid (domxml_check_opts). When dir is not "/"
 * and rest is not empty, path is valid exactly when "/" rest is (its
 * rules hold component by component) and path is not too long, so only
 * the new part is scanned; otherwise the whole path is.
 */
static bool
domxml_joined_path_valid(const char *path, const char *dir, int len)
{
	size_t dlen = strlen(dir);

	if (dlen > 1 && path[dlen + 1] != '\0' && len <= 1024)
		return util_path_valid(path + dlen);
	return util_path_valid(path);
}

/* Checks the options common to domain and disk XML. */
static int
domxml_check_opts(const struct domxml_opts *o, struct err *e)
{
	static const char *const caches[] = {"none", "writethrough",
	    "writeback", "directsync", "unsafe", "default", NULL};
	static const char *const formats[] = {"qcow2", "raw", "iso", NULL};

	if (o == NULL)
		return err_set(e, -EINVAL, "domain xml: no options given");
	if (o->disk_cache != NULL && !domxml_one_of(o->disk_cache, caches))
		return err_set(e, -EINVAL,
		    "domain xml: unknown disk cache mode '%s'", o->disk_cache);
	if (o->base_image_format != NULL &&
	    !domxml_one_of(o->base_image_format, formats))
		return err_set(e, -EINVAL,
		    "domain xml: base image format '%s': expected qcow2, raw "
		    "or iso",
		    o->base_image_format);
	if (o->instance_dir != NULL && !util_path_valid(o->instance_dir))
		return err_set(e, -EINVAL,
		    "domain xml: instance directory is not a normalised "
		    "absolute path");
	if (o->base_image_path != NULL && !util_path_valid(o->base_image_path))
		return err_set(e, -EINVAL,
		    "domain xml: base image is not a normalised absolute path");
	return 0;
}

/*
 * Works out type, device, format and source path of disk d, refusing
 * what libvirt or QEMU would refuse. Fills *out; returns 0 or -EINVAL.
 */
static int
domxml_disk_resolve(const struct blockinfo *bi, const struct blockinfo_disk *d,
    const struct domxml_opts *o, struct domxml_disk *out, struct err *e)
{
	const char *dev = d->dev;
	int n;

	if (dev[0] == '\0')
		return err_set(e, -EINVAL, "disk %s: no target device",
		    d->name ? d->name : d->uuid);
	out->bus = bdm_bus_to_string(d->bus);
	out->device = bdm_device_type_to_string(d->type);
	if (out->bus == NULL || d->bus == BDM_BUS_UNSET)
		return err_set(e, -EINVAL, "disk %s: no bus", dev);
	if (out->device == NULL || d->type == BDM_DEVICE_UNSET)
		return err_set(e, -EINVAL, "disk %s: no device type", dev);
	out->backing = false;

	if (domxml_is_local(d)) {
		if (o->instance_dir == NULL || d->name == NULL)
			return err_set(e, -EINVAL,
			    "disk %s: a local disk needs the instance directory",
			    dev);
		n = domxml_path_join(out->path, o->instance_dir,
		    o->disk_prefix ? o->disk_prefix : "", d->name);
		if (n < 0)
			return err_set(e, -EINVAL,
			    "disk %s: local disk path too long", dev);
		if (!domxml_joined_path_valid(out->path, o->instance_dir, n))
			return err_set(e, -EINVAL,
			    "disk %s: local disk path is not a normalised "
			    "absolute path",
			    dev);
		out->type = "file";
		out->source = out->path;
		if (d->kind == BLOCKINFO_CONFIG_DRIVE)
			out->format = "raw";
		else {
			out->format = "qcow2";
			out->backing = d->kind == BLOCKINFO_LOCAL_ROOT &&
			    o->base_image_path != NULL;
		}
	} else {
		if (d->conn_type == NULL || d->conn_path == NULL)
			return err_set(e, -EINVAL,
			    "disk %s: volume without a connection source", dev);
		if (!STREQ(d->conn_type, "file") &&
		    !STREQ(d->conn_type, "block"))
			return err_set(e, -EINVAL,
			    "disk %s: driver_volume_type: expected file or "
			    "block",
			    dev);
		if (!util_path_valid(d->conn_path))
			return err_set(e, -EINVAL,
			    "disk %s: volume path is not a normalised absolute "
			    "path",
			    dev);
		out->type = d->conn_type;
		out->source = d->conn_path;
		out->format = "raw";
	}

	/* What libvirt's schema or its QEMU driver would refuse. */
	if (d->type == BDM_DEVICE_LUN &&
	    (d->bus != BDM_BUS_SCSI || !STREQ(out->type, "block")))
		return err_set(e, -EINVAL,
		    "disk %s: a lun must be a block volume on the scsi bus",
		    dev);
	if (d->type == BDM_DEVICE_CDROM && d->bus == BDM_BUS_VIRTIO)
		return err_set(e, -EINVAL,
		    "disk %s: a cdrom cannot use the virtio bus", dev);
	if (d->bus == BDM_BUS_IDE && bi != NULL && bi->q35)
		return err_set(
		    e, -EINVAL, "disk %s: the q35 machine has no IDE bus", dev);
	if (d->type == BDM_DEVICE_LUN && d->serial[0] != '\0')
		return err_set(e, -EINVAL,
		    "disk %s: a lun reports its own serial; none may be set",
		    dev);
	if (d->bus != BDM_BUS_SCSI &&
	    strnlen(d->serial, sizeof(d->serial)) > DOMXML_SERIAL_SHORT)
		return err_set(e, -EINVAL,
		    "disk %s: serial longer than the %d characters bus %s "
		    "keeps",
		    dev, DOMXML_SERIAL_SHORT, out->bus);
	if (d->serial[0] != '\0' && !util_serial_valid(d->serial))
		return err_set(e, -EINVAL,
		    "disk %s: serial holds characters outside [A-Za-z0-9_.+-]",
		    dev);
	return 0;
}

/* Writes one <disk> element, in the order of Nova's format_dom. */
static void
domxml_write_disk(struct xwriter *w, const struct blockinfo_disk *d,
    const struct domxml_disk *x, const struct domxml_opts *o)
{
	xwriter_start(w, "disk");
	xwriter_attr(w, "type", x->type);
	xwriter_attr(w, "device", x->device);

	xwriter_start(w, "driver");
	xwriter_attr(w, "name", "qemu");
	xwriter_attr(w, "type", x->format);
	xwriter_attr(w, "cache", o->disk_cache ? o->disk_cache : "none");
	xwriter_end(w);

	xwriter_start(w, "source");
	if (STREQ(x->type, "block"))
		xwriter_attr(w, "dev", x->source);
	else
		xwriter_attr(w, "file", x->source);
	xwriter_end(w);

	if (x->backing) {
		xwriter_start(w, "backingStore");
		xwriter_attr(w, "type", "file");
		xwriter_start(w, "format");
		/* an ISO 9660 image is read as raw (Nova's images.py) */
		xwriter_attr(w, "type",
		    !o->base_image_format ? "qcow2"
			: STREQ(o->base_image_format, "iso")
			? "raw"
			: o->base_image_format);
		xwriter_end(w);
		xwriter_start(w, "source");
		xwriter_attr(w, "file", o->base_image_path);
		xwriter_end(w);
		xwriter_end(w);
	}

	xwriter_start(w, "target");
	xwriter_attr(w, "dev", d->dev);
	xwriter_attr(w, "bus", x->bus);
	xwriter_end(w);

	if (d->serial[0] != '\0')
		xwriter_element_text(w, "serial", d->serial);
	if (d->type == BDM_DEVICE_CDROM) {
		/* libvirt adds it anyway; saying so keeps our XML and its
		 * stored copy alike */
		xwriter_start(w, "readonly");
		xwriter_end(w);
	}
	if (d->boot_order > 0) {
		xwriter_start(w, "boot");
		xwriter_attr_int(w, "order", d->boot_order);
		xwriter_end(w);
	}
	xwriter_end(w);
}

/* A NIC must carry what the XML names it by: its port_id (the tap
 * device) and MAC (nic_json draws both) and one source. */
static int
domxml_nic_check(const struct nic *n, struct err *e)
{
	if (!util_uuid_is_canonical(n->port_id) ||
	    strlen(n->mac) != NIC_MAC_LEN - 1)
		return err_set(e, -EINVAL,
		    "interface xml: a NIC without its port_id or MAC");
	if ((n->bridge == NULL) == (n->network == NULL))
		return err_set(e, -EINVAL,
		    "interface %s: exactly one of bridge and network",
		    n->port_id);
	if (nic_model_to_string(n->model) == NULL)
		return err_set(
		    e, -EINVAL, "interface %s: unknown model", n->port_id);
	return 0;
}

/* Writes one <interface>, as Nova's LibvirtConfigGuestInterface
 * format_dom orders it: mac, model, source, mtu, target. The tap device
 * is Nova's name: "tap" + the first 11 characters of the port id. */
static void
domxml_write_interface(struct xwriter *w, const struct nic *n)
{
	char tap[NIC_TARGET_DEV_LEN];

	(void)snprintf(tap, sizeof(tap), "tap%.11s", n->port_id);
	xwriter_start(w, "interface");
	xwriter_attr(w, "type", n->bridge ? "bridge" : "network");
	xwriter_start(w, "mac");
	xwriter_attr(w, "address", n->mac);
	xwriter_end(w);
	xwriter_start(w, "model");
	xwriter_attr(w, "type", nic_model_to_string(n->model));
	xwriter_end(w);
	xwriter_start(w, "source");
	if (n->bridge)
		xwriter_attr(w, "bridge", n->bridge);
	else
		xwriter_attr(w, "network", n->network);
	xwriter_end(w);
	if (n->mtu > 0) {
		xwriter_start(w, "mtu");
		xwriter_attr_int(w, "size", n->mtu);
		xwriter_end(w);
	}
	xwriter_start(w, "target");
	xwriter_attr(w, "dev", tap);
	xwriter_end(w);
	xwriter_end(w);
}

/* "instance-<uuid>" into out. */
void
domxml_domain_name(const char *uuid, char out[DOMXML_NAME_MAX])
{
	const size_t plen = sizeof(DOMXML_NAME_PREFIX) - 1;
	size_t n = strnlen(uuid, DOMXML_NAME_MAX - plen - 1);

	/* snprintf "%s%s" would do; this is on every domain's path */
	memcpy(out, DOMXML_NAME_PREFIX, plen);
	memcpy(out + plen, uuid, n);
	out[plen + n] = '\0';
}

static void
domxml_write_metadata(
    struct xwriter *w, const struct instance *inst, const struct blockinfo *bi)
{
	xwriter_start(w, "metadata");
	xwriter_start(w, "hyperlet:instance");
	xwriter_attr(w, "xmlns:hyperlet", DOMXML_NS);
	xwriter_attr(w, "uuid", inst->uuid);
	xwriter_element_text(w, "hyperlet:name", inst->name);
	for (size_t i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];

		if (d->uuid[0] == '\0')
			continue; /* the config drive has no BDM */
		xwriter_start(w, "hyperlet:disk");
		xwriter_attr(w, "bdm_uuid", d->uuid);
		xwriter_attr(w, "kind", blockinfo_kind_to_string(d->kind));
		xwriter_attr(w, "dev", d->dev);
		xwriter_attr(w, "serial", d->serial[0] ? d->serial : NULL);
		xwriter_end(w);
	}
	xwriter_end(w);
	xwriter_end(w);
}

/*
 * Formats the whole <domain> of inst with disks bi. Returns 0 and
 * *ret_xml (owned, free()), -EINVAL naming what is wrong, -ENOMEM.
 * *ret_xml is untouched on failure.
 */
int
domxml_format_domain(const struct instance *inst, const struct blockinfo *bi,
    const struct domxml_opts *o, char **ret_xml, struct err *e)
{
	_cleanup_(xwriter_freep) struct xwriter *w = NULL;
	struct domxml_disk x;
	char name[DOMXML_NAME_MAX], path[DOMXML_PATH_MAX];
	const char *virt_type, *console = NULL;
	int r;

	if (inst == NULL || bi == NULL)
		return err_set(e, -EINVAL, "domain xml: no instance");
	if ((r = domxml_check_opts(o, e)) < 0)
		return r;
	virt_type = o->virt_type ? o->virt_type : "kvm";
	if (!STREQ(virt_type, "kvm") && !STREQ(virt_type, "qemu"))
		return err_set(e, -EINVAL,
		    "domain xml: virt_type '%s': expected kvm or qemu",
		    virt_type);
	if (o->on_reboot != NULL && !STREQ(o->on_reboot, "restart") &&
	    !STREQ(o->on_reboot, "destroy"))
		return err_set(e, -EINVAL,
		    "domain xml: on_reboot '%s': expected restart or destroy",
		    o->on_reboot);
	if (!util_uuid_is_canonical(inst->uuid))
		return err_set(e, -EINVAL,
		    "domain xml: instance uuid '%s' is "
		    "not canonical",
		    inst->uuid);
	if (inst->flavor.memory_mb <= 0 || inst->flavor.vcpus <= 0)
		return err_set(e, -EINVAL,
		    "domain xml: flavor needs memory_mb and vcpus above 0");
	if (o->console_log != NULL)
		console = o->console_log;
	else if (o->instance_dir != NULL) {
		r = domxml_path_join(path, o->instance_dir, "", "console.log");
		if (r < 0)
			return err_set(e, -EINVAL,
			    "domain xml: console log path too long");
		console = path;
	}
	if (console != NULL &&
	    !(console == path
		    ? domxml_joined_path_valid(path, o->instance_dir, r)
		    : util_path_valid(console)))
		return err_set(e, -EINVAL,
		    "domain xml: console log is not a normalised absolute path");
	w = xwriter_new();
	if (w == NULL)
		return err_set(e, -ENOMEM, "domain xml: out of memory");
	domxml_domain_name(inst->uuid, name);

	xwriter_start(w, "domain");
	xwriter_attr(w, "type", virt_type);
	xwriter_element_text(w, "name", name);
	xwriter_element_text(w, "uuid", inst->uuid);
	domxml_write_metadata(w, inst, bi);
	xwriter_start(w, "memory");
	xwriter_attr(w, "unit", "MiB");
	xwriter_text_int(w, inst->flavor.memory_mb);
	xwriter_end(w);
	xwriter_start(w, "vcpu");
	xwriter_text_int(w, inst->flavor.vcpus);
	xwriter_end(w);

	xwriter_start(w, "os");
	xwriter_start(w, "type");
	xwriter_attr(w, "arch", "x86_64");
	xwriter_attr(w, "machine",
	    inst->props.hw_machine_type ? inst->props.hw_machine_type : "pc");
	xwriter_text(w, "hvm");
	xwriter_end(w);
	xwriter_element_text(w, "kernel", o->kernel);
	xwriter_element_text(w, "initrd", o->initrd);
	xwriter_element_text(w, "cmdline", o->cmdline);
	xwriter_end(w);

	xwriter_start(w, "features");
	xwriter_start(w, "acpi");
	xwriter_end(w);
	xwriter_start(w, "apic");
	xwriter_end(w);
	xwriter_end(w);
	xwriter_start(w, "clock");
	xwriter_attr(w, "offset", "utc");
	xwriter_end(w);
	xwriter_element_text(w, "on_poweroff", "destroy");
	xwriter_element_text(
	    w, "on_reboot", o->on_reboot ? o->on_reboot : "restart");
	xwriter_element_text(w, "on_crash", "destroy");

	xwriter_start(w, "devices");
	for (size_t i = 0; i < bi->n_disks; i++) {
		/* A refused disk drops the half-written document; the error
		 * is the same as if the disks had been resolved first, since
		 * the writer's own errors are only reported by
		 * xwriter_finish. */
		if ((r = domxml_disk_resolve(bi, &bi->disks[i], o, &x, e)) < 0)
			return r;
		domxml_write_disk(w, &bi->disks[i], &x, o);
	}
	if (bi->virtio_scsi) {
		xwriter_start(w, "controller");
		xwriter_attr(w, "type", "scsi");
		xwriter_attr(w, "index", "0");
		xwriter_attr(w, "model", "virtio-scsi");
		xwriter_end(w);
	}
	for (size_t i = 0; i < inst->guest.n_nics; i++) {
		if ((r = domxml_nic_check(&inst->guest.nics[i], e)) < 0)
			return r;
		domxml_write_interface(w, &inst->guest.nics[i]);
	}
	if (console != NULL) {
		xwriter_start(w, "serial");
		xwriter_attr(w, "type", "file");
		xwriter_start(w, "source");
		xwriter_attr(w, "path", console);
		xwriter_end(w);
		xwriter_start(w, "target");
		xwriter_attr(w, "port", "0");
		xwriter_end(w);
		xwriter_end(w);
		xwriter_start(w, "console");
		xwriter_attr(w, "type", "file");
		xwriter_start(w, "source");
		xwriter_attr(w, "path", console);
		xwriter_end(w);
		xwriter_start(w, "target");
		xwriter_attr(w, "type", "serial");
		xwriter_attr(w, "port", "0");
		xwriter_end(w);
		xwriter_end(w);
	}
	xwriter_end(w);
	xwriter_end(w);
	return xwriter_finish(w, ret_xml, e);
}

/*
 * Formats the <disk> of d (which points into bi->disks) for attaching.
 * Returns 0 and *ret_xml (owned, free()), -EINVAL, -ENOMEM; *ret_xml is
 * untouched on failure.
 */
int
domxml_format_disk(const struct instance *inst, const struct blockinfo *bi,
    const struct blockinfo_disk *d, const struct domxml_opts *o, char **ret_xml,
    struct err *e)
{
	_cleanup_(xwriter_freep) struct xwriter *w = NULL;
	struct domxml_disk x;
	int r;

	(void)inst;
	if (bi == NULL || d == NULL || d < bi->disks ||
	    d >= bi->disks + bi->n_disks)
		return err_set(e, -EINVAL, "disk xml: disk not in the mapping");
	if ((r = domxml_check_opts(o, e)) < 0)
		return r;
	if ((r = domxml_disk_resolve(bi, d, o, &x, e)) < 0)
		return r;
	w = xwriter_new();
	if (w == NULL)
		return err_set(e, -ENOMEM, "disk xml: out of memory");
	domxml_write_disk(w, d, &x, o);
	return xwriter_finish(w, ret_xml, e);
}

/*
 * Formats the <interface> of n, as for virDomainAttachDeviceFlags (and,
 * matched by its MAC, for detaching). Returns 0 and *ret_xml (owned,
 * free()), -EINVAL (no port_id or MAC, not one source), -ENOMEM;
 * *ret_xml is untouched on failure.
 */
int
domxml_format_interface(const struct nic *n, char **ret_xml, struct err *e)
{
	_cleanup_(xwriter_freep) struct xwriter *w = NULL;
	int r;

	if ((r = domxml_nic_check(n, e)) < 0)
		return r;
	if ((w = xwriter_new()) == NULL)
		return err_set(e, -ENOMEM, "interface xml: out of memory");
	domxml_write_interface(w, n);
	return xwriter_finish(w, ret_xml, e);
}
