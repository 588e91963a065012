/*
 * check_guest: the end-to-end serial test. hyperlet's own chain (JSON ->
 * bdm -> blockinfo -> domxml -> virt) defines and starts a TCG guest with
 * a root, an ephemeral and a swap on virtio-blk and a volume on
 * virtio-scsi; the guest (a busybox initramfs, tests/guest/init) prints
 * /sys/block/vd*\/serial and each SCSI disk's VPD page 0x80 on its serial
 * console and powers off; the test asserts that the guest saw exactly the
 * serials blockinfo chose. Run without HL_LIBVIRT_URI (as `make check`
 * does), it hands itself to tests/guest/run.sh, which builds the guest kit
 * and starts a private libvirtd around a second run of this program.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"
#include "guestdrive.h"
#include "nic_json.h"
#include "../testutil.h"
#include "virt.h"

#define IMAGE_ID "7c0e6a2b-9f4d-4c1a-8e3b-5d6f7a8b9c0d"
#define VOLUME_ID "3e9a1f64-0b7c-4d2e-9a5f-8c1b2d3e4f50"
#define BOOT_TIMEOUT_MS 240000
/* the guest's NIC: on a bridge the test makes in the private libvirtd's
 * network namespace (nothing touches the host's network) */
#define BRIDGE "hlbr0"
#define GUEST_MAC "fa:16:3e:0a:0b:0c"
#define GUEST_IP "192.0.2.10"
#define HOST_IP "192.0.2.1"

static char *must_asprintf(const char *fmt, ...) _printf_(1, 2);

static char *
must_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
	va_end(ap);
	return s;
}

static void
make_file(const char *path, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(ftruncate(fd, size), 0);
	close(fd);
}

/* Does the console report hold the line "HLG <bus> <dev> <key>=<serial>"
 * for some dev? Counts the matches into *n. */
static int
count_reports(
    const char *report, const char *bus, const char *key, const char *serial)
{
	const char *p = report;
	char head[32], tail[128];
	int n = 0;

	(void)snprintf(head, sizeof(head), "HLG %s ", bus);
	(void)snprintf(tail, sizeof(tail), " %s=%s", key, serial);
	while ((p = strstr(p, head)) != NULL) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		size_t tl = strlen(tail);

		if (len >= tl && memcmp(p + len - tl, tail, tl) == 0)
			n++;
		p += len;
	}
	return n;
}

static int
count_lines(const char *report, const char *prefix)
{
	const char *p = report;
	int n = 0;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

/* The console text with carriage returns dropped (owned). */
static char *
console_text(const char *path)
{
	char *t = testutil_read_file(path, NULL), *r, *w;

	if (t == NULL)
		return NULL;
	for (r = w = t; *r; r++)
		if (*r != '\r')
			*w++ = *r;
	*w = '\0';
	return t;
}

START_TEST(test_guest_sees_exactly_the_serials_hyperlet_reports)
{
	const char *uri = getenv("HL_LIBVIRT_URI");
	const char *hdir = getenv("HL_LIBVIRT_DIR");
	const char *kernel = getenv("HL_GUEST_KERNEL");
	const char *initrd = getenv("HL_GUEST_INITRD");
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	_cleanup_(virt_closep) struct virt *v = NULL;
	_cleanup_free_ char *ipath = NULL, *base = NULL, *vol = NULL,
			    *json = NULL, *dir = NULL, *xml = NULL,
			    *console = NULL, *cmdline = NULL, *report = NULL,
			    *stored = NULL, *ns = NULL, *cmd = NULL;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct virt_opts vo = {0};
	struct domxml_opts dx = {0};
	enum instance_state st = INSTANCE_RUNNING;
	struct err e = {0};
	int64_t t0, t_boot;
	size_t i;
	int n_virtio = 0, n_scsi = 0, ping_rc = -1;

	ck_assert(uri && hdir && kernel && initrd);
	ipath = must_asprintf("%s/instances", hdir);
	ck_assert_int_eq(mkdir(ipath, 0755), 0);
	base = must_asprintf("%s/base.raw", hdir);
	make_file(base, 64 << 20);
	vol = must_asprintf("%s/volume.raw", hdir);
	make_file(vol, 32 << 20);

	vo.uri = uri;
	vo.virt_type = "qemu"; /* TCG: KVM does not work on the CI machines */
	vo.instances_path = ipath;
	ck_assert_msg(virt_open(&vo, &v, &e) == 0, "open: %s", e.msg);

	/* root, ephemeral and swap on the default bus (virtio), the volume
	 * on SCSI; hw_scsi_model makes its controller virtio-scsi (else
	 * libvirt adds an LSI one, as for Nova) */
	json = must_asprintf(
	    "{\"name\": \"guest\", \"flavor\": {\"vcpus\": 1,"
	    " \"memory_mb\": 128, \"root_gb\": 1, \"ephemeral_gb\": 1,"
	    " \"swap\": 16}, \"imageRef\": \"" IMAGE_ID "\","
	    " \"config_drive\": true,"
	    " \"networks\": [{\"bridge\": \"" BRIDGE "\", \"mac\": \"" GUEST_MAC
	    "\", \"tag\": \"lan\", \"ips\": [{\"address\": \"" GUEST_IP
	    "/24\"}]}],"
	    " \"image_meta\": {\"properties\":"
	    " {\"hw_scsi_model\": \"virtio-scsi\","
	    "  \"hw_cdrom_bus\": \"scsi\"}},"
	    " \"block_device_mapping_v2\": ["
	    " {\"boot_index\": 0, \"source_type\": \"image\","
	    "  \"destination_type\": \"local\", \"uuid\": \"" IMAGE_ID "\","
	    "  \"tag\": \"root\"},"
	    " {\"boot_index\": -1, \"source_type\": \"blank\","
	    "  \"destination_type\": \"local\", \"volume_size\": 1,"
	    "  \"tag\": \"scratch\"},"
	    " {\"boot_index\": -1, \"source_type\": \"blank\","
	    "  \"destination_type\": \"local\", \"guest_format\": \"swap\","
	    "  \"volume_size\": 16},"
	    " {\"boot_index\": -1, \"source_type\": \"volume\","
	    "  \"destination_type\": \"volume\", \"uuid\": \"" VOLUME_ID "\","
	    "  \"disk_bus\": \"scsi\", \"tag\": \"data\", \"connection_info\":"
	    "  {\"driver_volume_type\": \"file\","
	    "   \"data\": {\"device_path\": \"%s\"}}}]}",
	    vol);
	ck_assert_msg(bdm_json_parse_create(json, strlen(json), &inst, &e) == 0,
	    "parse: %s: %s", e.field, e.msg);
	ck_assert_msg(bdm_instance_prepare(inst, &lim, &e) == 0,
	    "prepare: %s: %s", e.field, e.msg);
	ck_assert_msg(
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e) == 0,
	    "nic: %s", e.msg);
	ck_assert_msg(blockinfo_build(inst, &lim, &bi, &e) == 0,
	    "blockinfo: %s: %s", e.field, e.msg);
	/* the four disks and the config drive (a cdrom on virtio-scsi) */
	ck_assert_uint_eq(bi->n_disks, 5);
	ck_assert_ptr_nonnull(bi->config_drive);

	ck_assert_int_eq(virt_instance_dir(v, inst->uuid, &dir, &e), 0);
	console = must_asprintf("%s/console.log", dir);
	cmdline = must_asprintf(
	    "console=ttyS0 quiet panic=-1 hl.disks=%zu hl.cd", bi->n_disks - 1);
	dx.virt_type = virt_type(v);
	dx.instance_dir = dir;
	dx.base_image_path = base;
	dx.base_image_format = "raw";
	dx.kernel = kernel;
	dx.initrd = initrd;
	dx.cmdline = cmdline;
	dx.console_log = console;
	dx.on_reboot = "destroy"; /* the guest's reboot -f ends the run */
	ck_assert_msg(domxml_format_domain(inst, bi, &dx, &xml, &e) == 0,
	    "domxml: %s", e.msg);

	ck_assert_msg(
	    virt_create_disks(v, inst, bi, base, "raw", 64 << 20, &e) == 0,
	    "disks: %s", e.msg);
	ck_assert_msg(virt_define(v, xml, &e) == 0, "define: %s", e.msg);
	/* as compute_create: the drive from the defined domain, then start */
	ck_assert_msg(
	    guestdrive_make(v, inst, NULL, &e) == 0, "config drive: %s", e.msg);
	/* the bridge, in libvirtd's network namespace */
	ns = must_asprintf("nsenter -t $(cat '%s/daemon.pid') -n", hdir);
	cmd = must_asprintf("%s sh -c 'ip link add " BRIDGE " type bridge && "
			    "ip addr add " HOST_IP "/24 dev " BRIDGE " && "
			    "ip link set " BRIDGE " up'",
	    ns);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
	t0 = util_now_ms();
	ck_assert_msg(virt_start(v, inst->uuid, &e) == 0, "start: %s", e.msg);
	while (util_now_ms() - t0 < BOOT_TIMEOUT_MS) {
		ck_assert_msg(virt_state(v, inst->uuid, &st, &e) == 0,
		    "state: %s", e.msg);
		if (st != INSTANCE_RUNNING)
			break;
		/* the guest is up on the bridge: the host pings it */
		if (ping_rc < 0) {
			_cleanup_free_ char *t = console_text(console);

			if (t && strstr(t, " ip=" GUEST_IP "\n")) {
				_cleanup_free_ char *p = must_asprintf(
				    "%s busybox ping -c 1 -W 10 " GUEST_IP
				    " >/dev/null 2>&1",
				    ns);

				ping_rc = system(p);
			}
		}
		usleep(100 * 1000);
	}
	t_boot = util_now_ms() - t0;
	report = console_text(console);
	ck_assert_msg(st == INSTANCE_STOPPED,
	    "guest still running after %d s; console:\n%s",
	    BOOT_TIMEOUT_MS / 1000, report ? report : "(none)");
	ck_assert_msg(report && strstr(report, "HLG-END"),
	    "no report from the guest; console:\n%s",
	    report ? report : "(none)");
	printf("check_guest: start to power-off %.1f s\n", t_boot / 1000.0);
	printf("%s", strstr(report, "HLG-BEGIN"));
	fflush(stdout);

	ck_assert_msg(
	    virt_get_xml(v, inst->uuid, true, &stored, &e) == 0, "%s", e.msg);
	for (i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		char want[64];

		if (d->kind == BLOCKINFO_CONFIG_DRIVE)
			continue;
		(void)snprintf(
		    want, sizeof(want), "<serial>%s</serial>", d->serial);
		ck_assert_msg(strstr(stored, want), "libvirt lost %s", want);
		if (d->bus == BDM_BUS_VIRTIO) {
			/* virtio-blk keeps 20 bytes: hyperlet writes 20 */
			ck_assert_uint_eq(strlen(d->serial), 20);
			ck_assert_msg(count_reports(report, "virtio", "serial",
					  d->serial) == 1,
			    "%s (%s): guest did not report serial %s", d->dev,
			    blockinfo_kind_to_string(d->kind), d->serial);
			n_virtio++;
		} else {
			ck_assert_int_eq(d->bus, BDM_BUS_SCSI);
			/* SCSI keeps the whole id */
			ck_assert_str_eq(d->serial, VOLUME_ID);
			ck_assert_msg(count_reports(report, "scsi", "vpd80",
					  d->serial) == 1,
			    "%s: guest did not report VPD 0x80 %s", d->dev,
			    d->serial);
			n_scsi++;
		}
	}
	ck_assert_int_eq(n_virtio, 3);
	ck_assert_int_eq(n_scsi, 1);
	/* exactly: no disk the guest sees that hyperlet does not report */
	ck_assert_int_eq(count_lines(report, "HLG virtio "), n_virtio);
	ck_assert_int_eq(count_lines(report, "HLG scsi "), n_scsi);

	/* the config drive, mounted by label in the guest: its uuid is the
	 * instance's, and every tagged disk of its devices carries the
	 * serial the guest's /sys shows for that disk (matched above with
	 * blockinfo's, which the API reports) */
	{
		char line[256];
		size_t tagged = 0;

		(void)snprintf(line, sizeof(line), " uuid=%s\n", inst->uuid);
		ck_assert_msg(strstr(report, "HLG cd dev=") &&
			strstr(strstr(report, "HLG cd dev="), line),
		    "the guest did not read uuid %s from the config drive",
		    inst->uuid);
		for (i = 0; i < bi->n_disks; i++) {
			const struct blockinfo_disk *d = &bi->disks[i];
			const struct bdm *b = d->bdm_index >= 0
			    ? &inst->bdms[d->bdm_index]
			    : NULL;

			if (b == NULL || b->tag == NULL)
				continue;
			tagged++;
			(void)snprintf(line, sizeof(line),
			    "HLG cd disk tag=%s serial=%s bus=", b->tag,
			    d->serial);
			ck_assert_msg(strstr(report, line),
			    "the drive does not map tag %s to serial %s",
			    b->tag, d->serial);
			ck_assert_int_eq(
			    count_reports(report,
				d->bus == BDM_BUS_VIRTIO ? "virtio" : "scsi",
				d->bus == BDM_BUS_VIRTIO ? "serial" : "vpd80",
				d->serial),
			    1);
		}
		ck_assert_uint_eq(tagged, 3);
		ck_assert_int_eq(count_lines(report, "HLG cd disk "), tagged);
	}

	/* eth0 has the MAC the instance holds, the address the request
	 * gave (read from network_data.json), and answered the host */
	ck_assert_msg(
	    strstr(report, "HLG nic eth0 mac=" GUEST_MAC " ip=" GUEST_IP "\n"),
	    "eth0 is not " GUEST_MAC " with " GUEST_IP);
	ck_assert_str_eq(inst->guest.nics[0].mac, GUEST_MAC);
	ck_assert_msg(
	    ping_rc == 0, "the host could not ping the guest (%d)", ping_rc);
	ck_assert_msg(strstr(report, "HLG nic eth0 echoes=") &&
		!strstr(report, "HLG nic eth0 echoes=0\n"),
	    "the guest saw no echo request");

	ck_assert_msg(virt_undefine(v, inst->uuid, &e) == 0, "%s", e.msg);
	ck_assert_msg(guestdrive_remove(v, inst->uuid, &e) == 0, "%s", e.msg);
	ck_assert_msg(virt_delete_disks(v, inst->uuid, &e) == 0, "%s", e.msg);
	bi = blockinfo_free(bi);
	inst = instance_free(inst);
}
END_TEST

int
main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	(void)argc;
	if (getenv("HL_LIBVIRT_URI") == NULL) {
		/* make check: build the kit, start libvirtd, come back */
		const char *src = getenv("TOP_SRCDIR");
		char *run = NULL;

		if (asprintf(&run, "%s/tests/guest/run.sh",
			src && *src ? src : ".") < 0)
			return 99;
		execl("/bin/sh", "sh", run, argv[0], (char *)NULL);
		perror(run);
		return 99;
	}
	s = suite_create("guest");
	tc = tcase_create("guest");
	tcase_set_timeout(tc, BOOT_TIMEOUT_MS / 1000 + 60);
	tcase_add_test(
	    tc, test_guest_sees_exactly_the_serials_hyperlet_reports);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
