/*
 * compute: the orchestration of store (SQLite), blockinfo/domxml (pure)
 * and virt (libvirt) behind every instance change and start-up
 * reconciliation. Its one job is ordering: the row is written before
 * anything exists outside the database, and removed after everything
 * outside is gone, so a crash at any point leaves a row whose state tells
 * compute_reconcile what to finish or roll back (see compute.h). Pure
 * checks (mapping, XML) run before the first write, so a bad request
 * writes nothing. Undo paths keep the first error and use their own
 * struct err for the cleanup calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute.h"
#include "guestdrive.h"
#include "nic_json.h"

#define COMPUTE_RECONCILE_RETRIES 3
/* A tombstone is dropped this long after the first sweep that checked it:
 * libvirtd finishes a define within its RPC timeout, far less. */
#define COMPUTE_TOMBSTONE_TTL_MS (10 * 60 * 1000)

struct compute {
	struct virt *virt;
	char *images_dir;
	struct bdm_limits limits;
	int stop_timeout_ms;
	struct domxml_opts domxml;
	char *volume_roots, *state_dir, *db_path; /* owned; may be NULL */
	struct volroot_opts vol; /* points at the strings above */
	struct volroot_real vol_real; /* vol's own paths, resolved once */
	bool resume_guests;
	bool (*node_limits)(void *arg, struct node_limits *ret);
	void *node_limits_arg;
	bool force_config_drive;
	char *availability_zone; /* owned; NULL: "nova" */
	/* Serialises a sweep's removal of one tombstone's leftovers with a
	 * create of the same uuid (check tombstone + write the row). The
	 * sweep does not hold it across its libvirt calls: it names the
	 * uuid it works on in sweeping, and only a create of that uuid
	 * waits (tomb_cond) for it, not every create while libvirt is slow
	 * (issue 17.6). */
	pthread_mutex_t tomb_lock;
	pthread_cond_t tomb_cond;
	char sweeping[UUID_STR_LEN]; /* "" when none */
};

DEFINE_FREEP(struct instance, instance_free)
DEFINE_FREEP(struct blockinfo, blockinfo_free)
DEFINE_FREEP(struct store_image, store_image_free)

/* Copies o into a new compute (*ret owned, compute_free). Returns 0,
 * -EINVAL (no virt, images_dir not absolute), -ENOMEM. */
int
compute_new(const struct compute_opts *o, struct compute **ret, struct err *e)
{
	struct compute *c;

	if (o == NULL || o->virt == NULL)
		return err_set(
		    e, -EINVAL, "compute needs a libvirt connection");
	if (o->images_dir == NULL || !util_path_valid(o->images_dir))
		return err_set(e, -EINVAL,
		    "images directory '%s' is not a normalised absolute path",
		    o->images_dir ? o->images_dir : "(null)");
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->images_dir = strdup(o->images_dir)) == NULL ||
	    (o->volume_roots &&
		(c->volume_roots = strdup(o->volume_roots)) == NULL) ||
	    (o->state_dir && (c->state_dir = strdup(o->state_dir)) == NULL) ||
	    (o->db_path && (c->db_path = strdup(o->db_path)) == NULL) ||
	    (o->availability_zone &&
		(c->availability_zone = strdup(o->availability_zone)) ==
		    NULL)) {
		if (c) {
			free(c->images_dir);
			free(c->volume_roots);
			free(c->state_dir);
			free(c->db_path);
			free(c);
		}
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->vol = (struct volroot_opts){
	    .roots = c->volume_roots,
	    .state_dir = c->state_dir,
	    .images_dir = c->images_dir,
	    .instances_dir = virt_instances_path(o->virt),
	    .db_path = c->db_path,
	};
	/* the state directories exist by now (made before compute) */
	volroot_real_resolve(&c->vol, &c->vol_real);
	c->vol.real = &c->vol_real;
	c->virt = o->virt;
	c->limits = o->limits;
	c->stop_timeout_ms = o->stop_timeout_ms < 0 ? 0 : o->stop_timeout_ms;
	c->domxml = o->domxml;
	c->resume_guests = o->resume_guests;
	c->node_limits = o->node_limits;
	c->node_limits_arg = o->node_limits_arg;
	c->force_config_drive = o->force_config_drive;
	(void)pthread_mutex_init(&c->tomb_lock, NULL);
	(void)pthread_cond_init(&c->tomb_cond, NULL);
	*ret = c;
	return 0;
}

/* Frees c (not the virt it borrows). Accepts NULL; returns NULL. */
struct compute *
compute_free(struct compute *c)
{
	if (c == NULL)
		return NULL;
	(void)pthread_mutex_destroy(&c->tomb_lock);
	(void)pthread_cond_destroy(&c->tomb_cond);
	volroot_real_clear(&c->vol_real);
	free(c->images_dir);
	free(c->volume_roots);
	free(c->state_dir);
	free(c->db_path);
	free(c->availability_zone);
	free(c);
	return NULL;
}

/* --- shared steps ------------------------------------------------------ */

/* The id of the image the root disk is made from: the root BDM's
 * image_id, else the instance's imageRef. NULL without a local root. */
static const char *
root_image_id(const struct instance *inst, const struct blockinfo *bi)
{
	const struct bdm *b;

	if (bi->local_root == NULL)
		return NULL;
	if (bi->local_root->bdm_index >= 0 &&
	    (size_t)bi->local_root->bdm_index < inst->n_bdms) {
		b = &inst->bdms[bi->local_root->bdm_index];
		if (b->image_id)
			return b->image_id;
	}
	return inst->image_ref;
}

/* Looks the root disk's base image up: *ret_img and *ret_path (owned) or
 * both NULL when the instance has no local root. -EINVAL if the image
 * was never uploaded. */
static int
base_image(struct compute *c, struct store *s, const struct instance *inst,
    const struct blockinfo *bi, struct store_image **ret_img, char **ret_path,
    struct err *e)
{
	_cleanup_(store_image_freep) struct store_image *img = NULL;
	const char *id = root_image_id(inst, bi);
	char *path;
	int rc;

	if (id == NULL) {
		if (bi->local_root)
			return err_set_field(e, -EINVAL, "imageRef",
			    "the root disk needs an image (imageRef)");
		*ret_img = NULL;
		*ret_path = NULL;
		return 0;
	}
	rc = store_image_get(s, id, &img, e);
	if (rc == -ENOENT || rc == -EINVAL) {
		err_clear(e);
		return err_set_field(e, -EINVAL, "imageRef",
		    "image %.40s has not been uploaded", id);
	}
	if (rc < 0)
		return rc;
	if (asprintf(&path, "%s/%s", c->images_dir, img->id) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	*ret_img = TAKE_PTR(img);
	*ret_path = path;
	return 0;
}

/* The domxml options for one instance. */
static void
dom_opts(const struct compute *c, const char *dir,
    const struct store_image *img, const char *base, struct domxml_opts *o)
{
	*o = c->domxml;
	o->virt_type = virt_type(c->virt);
	o->instance_dir = dir;
	o->base_image_path = base;
	o->base_image_format = img ? img->format : NULL;
}

/* Everything a domain definition needs, computed without side effects. */
struct plan {
	struct blockinfo *bi;
	struct store_image *img;
	char *base;
	char *dir;
	char *xml;
};

static void
plan_clear(struct plan *p)
{
	blockinfo_free(p->bi);
	store_image_free(p->img);
	free(p->base);
	free(p->dir);
	free(p->xml);
	*p = (struct plan){0};
}

#define VOLUME_PATH_FIELD "connection_info.data.device_path"

/* The host path of a volume disk of bi against the volume roots; field
 * names it. */
static int
check_volume(struct compute *c, const struct blockinfo_disk *d,
    const char *field, struct err *e)
{
	if (d->conn_path == NULL)
		return 0; /* a local disk */
	return volroot_check(&c->vol, d->conn_type, d->conn_path, field, e);
}

/* Every volume of bi. The error names block_device_mapping_v2 only: after
 * bdm_instance_prepare the request's index of a BDM is not known (an image
 * root may have been put in front); the API names it exactly first
 * (compute_check_volumes). */
static int
check_volumes(struct compute *c, const struct blockinfo *bi, struct err *e)
{
	int rc;

	for (size_t i = 0; i < bi->n_disks; i++)
		if ((rc = check_volume(
			 c, &bi->disks[i], "block_device_mapping_v2", e)) < 0)
			return rc;
	return 0;
}

/* Checks the request's volumes as parsed. See compute.h. */
int
compute_check_volumes(
    struct compute *c, const struct instance *inst, struct err *e)
{
	char field[ERR_FIELD_MAX];
	int rc;

	for (size_t i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];

		if (b->destination_type != BDM_DEST_VOLUME ||
		    b->conn_path == NULL)
			continue;
		(void)snprintf(field, sizeof(field),
		    "block_device_mapping_v2[%zu]." VOLUME_PATH_FIELD, i);
		if ((rc = volroot_check(
			 &c->vol, b->conn_type, b->conn_path, field, e)) < 0)
			return rc;
	}
	return 0;
}

/* Builds the mapping (writing device names into inst's BDMs), finds the
 * base image and formats the domain XML. Pure apart from reading the
 * store. */
static int
plan_domain(struct compute *c, struct store *s, struct instance *inst,
    struct plan *p, struct err *e)
{
	struct domxml_opts o;
	int rc;

	if ((rc = blockinfo_build(inst, &c->limits, &p->bi, e)) < 0 ||
	    (rc = base_image(c, s, inst, p->bi, &p->img, &p->base, e)) < 0 ||
	    (rc = virt_instance_dir(c->virt, inst->uuid, &p->dir, e)) < 0)
		return rc;
	dom_opts(c, p->dir, p->img, p->base, &o);
	return domxml_format_domain(inst, p->bi, &o, &p->xml, e);
}

static int
create_disks(struct compute *c, const struct instance *inst,
    const struct plan *p, struct err *e)
{
	return virt_create_disks(c->virt, inst, p->bi, p->base,
	    p->img ? p->img->format : NULL,
	    p->img && p->img->virtual_size > 0 ? (uint64_t)p->img->virtual_size
					       : 0,
	    e);
}

/* The instance's directory with everything in it: its local disks, its
 * config drive and any drive a crash left half-written (localdisk
 * removes every entry, so the drive needs no pass of its own). */
static int
delete_disks(struct compute *c, const char *uuid, struct err *e)
{
	return virt_delete_disks(c->virt, uuid, e);
}

/* Loads the instance for a change: -EBUSY while it is being built or
 * deleted. */
static int
load_for_change(
    struct store *s, const char *uuid, struct instance **ret, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	int rc;

	if ((rc = store_instance_get(s, uuid, &inst, e)) < 0)
		return rc;
	if (inst->state == INSTANCE_BUILDING ||
	    inst->state == INSTANCE_DELETING)
		return err_set(e, -EBUSY, "instance %s is %s", uuid,
		    instance_state_to_string(inst->state));
	*ret = TAKE_PTR(inst);
	return 0;
}

/* The disk of bi that belongs to BDM uuid, or NULL. */
static const struct blockinfo_disk *
disk_of(const struct blockinfo *bi, const char *bdm_uuid)
{
	size_t i;

	for (i = 0; i < bi->n_disks; i++)
		if (STREQ(bi->disks[i].uuid, bdm_uuid))
			return &bi->disks[i];
	return NULL;
}

static int
reload(struct store *s, const char *uuid, struct instance **ret, struct err *e)
{
	if (ret == NULL)
		return 0;
	return store_instance_get(s, uuid, ret, e);
}

/* --- create / delete --------------------------------------------------- */

/* virt_undefine of an instance's domain, where a domain of that uuid that
 * hyperlet does not own (-EPERM: left untouched) counts as no domain of
 * the instance's. */
static int
undefine_own(struct compute *c, const char *uuid, struct err *e)
{
	int rc = virt_undefine(c->virt, uuid, e);

	if (rc == -EPERM) {
		err_clear(e);
		return 0;
	}
	return rc;
}

/* Before a create writes anything: a uuid libvirt already has a domain for
 * is taken (one lookup by uuid). Returns 0 (no domain), 1 (hyperlet's own
 * domain of this instance: a leftover a tombstone lets the create remove,
 * or the instance itself), -EEXIST (a domain hyperlet does not own),
 * -EAGAIN, -EIO. */
static int
uuid_free_in_libvirt(struct compute *c, const char *uuid, struct err *e)
{
	int rc = virt_has_metadata(c->virt, uuid, e);

	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc == 0)
		return err_set_field(e, -EEXIST, "uuid",
		    "uuid %s is taken by a libvirt domain that is not a "
		    "hyperlet instance",
		    uuid);
	return rc;
}

/* Creates and (unless inst->start is false) starts an instance, undoing
 * everything on failure. See compute.h for the steps. Returns 0, -EINVAL,
 * -EEXIST, -EAGAIN, -EIO. */
int
compute_create(struct compute *c, struct store *s, struct instance *inst,
    const char *request_digest, struct instance **ret_inst, struct err *e)
{
	struct plan p = {0};
	struct err ue = {0}, ne = {0};
	bool defined = false;
	int rc, tomb = 0, own;

	if (c->force_config_drive)
		inst->config_drive = true;
	/* Everything that can refuse the request runs before the first
	 * write. */
	if ((rc = plan_domain(c, s, inst, &p, e)) < 0 ||
	    (rc = check_volumes(c, p.bi, e)) < 0 ||
	    (rc = own = uuid_free_in_libvirt(c, inst->uuid, e)) < 0)
		goto out;
	/* A rolled-back build of this uuid may have left a domain or disks
	 * (a client retrying with the same uuid): remove them and the
	 * tombstone first, under the lock a sweep holds, so no sweep removes
	 * what this create makes. */
	(void)pthread_mutex_lock(&c->tomb_lock);
	while (STREQ(c->sweeping, inst->uuid)) /* a sweep removes its rest */
		(void)pthread_cond_wait(&c->tomb_cond, &c->tomb_lock);
	rc = store_tombstone_state(s, inst->uuid, &tomb, e);
	if (rc == 0 && tomb == 1 &&
	    (rc = undefine_own(c, inst->uuid, e)) == 0 &&
	    (rc = delete_disks(c, inst->uuid, e)) == 0)
		rc = store_tombstone_delete(s, inst->uuid, e);
	/* hyperlet's domain of this uuid without a tombstone: the instance
	 * (its row makes the create below fail) or one reconcile reports */
	if (rc == 0 && tomb != 1 && own == 1)
		rc = err_set_field(e, -EEXIST, "uuid",
		    "uuid %s is taken by a hyperlet domain", inst->uuid);
	if (rc == 0) {
		struct node_limits nl;

		/* The building row's commit is not synced: the final state's
		 * commit below is, before the answer, and syncs the WAL that
		 * holds both (a kill -9 loses neither; see store_lazy_next) */
		store_lazy_next(s, true);
		if (c->node_limits && c->node_limits(c->node_limits_arg, &nl))
			rc = store_instance_claim(
			    s, inst, request_digest, &nl, e);
		else
			rc = store_instance_create(s, inst, request_digest, e);
		store_lazy_next(s, false);
	}
	(void)pthread_mutex_unlock(&c->tomb_lock);
	if (rc < 0)
		goto out;
	/* From here the row (state building) exists: a crash leaves it for
	 * reconcile, an error undoes below. */
	if ((rc = create_disks(c, inst, &p, e)) < 0)
		goto undo;
	/* set before the call: a define that failed because libvirtd went
	 * away may still have happened */
	defined = true;
	if ((rc = virt_define(c->virt, p.xml, e)) < 0 &&
	    virt_name_taken(c->virt, inst->uuid, &ne) == 1) {
		/* the name instance-<uuid> is another uuid's domain: its
		 * uuid differs, so the undo below cannot touch it */
		err_clear(e);
		rc = err_set_field(e, -EEXIST, "uuid",
		    "the domain name of instance %s is taken by another "
		    "libvirt domain",
		    inst->uuid);
	}
	if (rc < 0)
		goto undo;
	/* the drive carries the addresses libvirt gave the defined domain;
	 * a crash before it is written leaves a kept build without one:
	 * reconcile writes it (ensure_drive) */
	if (inst->config_drive &&
	    (rc = guestdrive_make(c->virt, inst, c->availability_zone, e)) < 0)
		goto undo;
	if (inst->start && (rc = virt_start(c->virt, inst->uuid, e)) < 0)
		goto undo;
	/* only from building: a change that came first (none should: a
	 * delete refuses a building instance) is never overwritten */
	if ((rc = store_instance_cas_state(s, inst->uuid, INSTANCE_BUILDING,
		 inst->start ? INSTANCE_RUNNING : INSTANCE_STOPPED, e)) < 0)
		goto undo;
	plan_clear(&p);
	return reload(s, inst->uuid, ret_inst, e);

undo:
	/* Reverse order; the row goes with a tombstone (libvirtd may still
	 * finish a define or a volume it was sent: later sweeps remove
	 * them). If the domain or the disks cannot be removed (libvirtd
	 * away), the row is set to deleting with a tombstone: never shown as
	 * a live instance, finished by the next sweep or reconciliation (or a
	 * DELETE). If only the row cannot be removed it stays building, with
	 * nothing outside, and reconcile rolls it back. */
	if (defined)
		(void)undefine_own(c, inst->uuid, &ue);
	if (ue.code == 0)
		(void)delete_disks(c, inst->uuid, &ue);
	if (ue.code == 0)
		(void)store_instance_roll_back(s, inst->uuid, &ue);
	else {
		struct err se = {0};

		(void)store_instance_cas_state(
		    s, inst->uuid, INSTANCE_BUILDING, INSTANCE_DELETING, &se);
		(void)store_tombstone_add(s, inst->uuid, &se);
	}
out:
	plan_clear(&p);
	return rc;
}

/* Deletes an instance: deleting, domain, disks, row. Idempotent. A
 * building instance is refused (-EBUSY): its create is still running (or,
 * after a crash, reconcile finishes or rolls it back), and deleting under
 * it would let it define a domain after its row is gone. The state moves
 * to deleting in one statement that refuses building, so a create's last
 * step (from building only) cannot overwrite it; generation > 0: only
 * from that generation. Returns 0, -EINVAL, -ENOENT, -EBUSY, -EAGAIN,
 * -EIO. */
static int
delete_instance(struct compute *c, struct store *s, const char *uuid,
    int64_t generation, bool tombstone, struct err *e)
{
	int rc;

	/* not synced: the row's delete (or roll-back) below is */
	store_lazy_next(s, true);
	rc = store_instance_mark_deleting(s, uuid, generation, e);
	store_lazy_next(s, false);
	if (rc < 0)
		return rc;
	if ((rc = undefine_own(c, uuid, e)) < 0 ||
	    (rc = delete_disks(c, uuid, e)) < 0)
		return rc;
	if (tombstone)
		return store_instance_roll_back(s, uuid, e);
	rc = store_instance_delete(s, uuid, e);
	if (rc == -ENOENT) /* a concurrent delete finished first */
		err_clear(e);
	return rc == -ENOENT ? 0 : rc;
}

int
compute_delete_if(struct compute *c, struct store *s, const char *uuid,
    int64_t generation, struct err *e)
{
	return delete_instance(c, s, uuid, generation, false, e);
}

int
compute_delete(
    struct compute *c, struct store *s, const char *uuid, struct err *e)
{
	return delete_instance(c, s, uuid, 0, false, e);
}

/* --- actions ----------------------------------------------------------- */

/* "start" | "stop" | "reboot" into *ret (COMPUTE_REBOOT_HARD has no
 * name). Returns 0 or -EINVAL. */
int
compute_action_from_string(const char *s, enum compute_action *ret)
{
	static const char *const names[] = {
	    [COMPUTE_START] = "start",
	    [COMPUTE_STOP] = "stop",
	    [COMPUTE_REBOOT] = "reboot",
	};
	size_t i;

	for (i = 0; s && i < ELEMENTSOF(names); i++)
		if (names[i] && STREQ(names[i], s)) {
			*ret = (enum compute_action)i;
			return 0;
		}
	return -EINVAL;
}

/* A virt call that found no domain for a row: the domain went missing
 * behind our back; start-up reconciliation defines it again. */
static int
missing_domain(const char *uuid, int rc, struct err *e)
{
	if (rc == -EPERM) {
		err_clear(e);
		return err_set(e, -EIO,
		    "the uuid of instance %s is held by a libvirt domain that "
		    "is not hyperlet's; it was left alone",
		    uuid);
	}
	if (rc != -ENOENT)
		return rc;
	err_clear(e);
	return err_set(e, -EIO,
	    "the domain of instance %s is missing; restarting hyperletd "
	    "defines it again",
	    uuid);
}

static int ensure_drive(
    struct compute *c, const struct instance *inst, struct err *e);

/* Nova's hard reboot of inst (loaded for the change): the XML made from
 * the row as compute_create makes it, then destroy + undefine (hyperlet's
 * own domain only; none at all is fine), define, the config drive written
 * again if it went missing, start. A start that
 * fails puts the instance in state error with the reason as its fault
 * (Nova's ERROR after a failed reboot). Returns 0, -EINVAL, -EPERM (a
 * domain of the uuid that is not hyperlet's: untouched), -EAGAIN, -EIO. */
static int
hard_reboot(
    struct compute *c, struct store *s, struct instance *inst, struct err *e)
{
	struct plan p = {0};
	struct err fe = {0};
	int rc;

	/* everything that can refuse runs before the domain is touched */
	if ((rc = plan_domain(c, s, inst, &p, e)) < 0 ||
	    (rc = check_volumes(c, p.bi, e)) < 0)
		goto out;
	/* undefine, not only destroy: a define over a domain renamed
	 * behind our back would be refused, and a managed save would be
	 * resumed instead of booting afresh */
	if ((rc = virt_undefine(c->virt, inst->uuid, e)) < 0 ||
	    (rc = virt_define(c->virt, p.xml, e)) < 0 ||
	    (rc = ensure_drive(c, inst, e)) < 0)
		goto out;
	/* the fault is best effort: the client gets the error either way */
	if ((rc = virt_start(c->virt, inst->uuid, e)) < 0 && rc != -EAGAIN)
		(void)store_instance_set_error(s, inst->uuid, e->msg, &fe);
out:
	plan_clear(&p);
	return rc;
}

/* Runs one action and records the new state (*ret_inst owned, may be
 * NULL). Returns 0, -EINVAL, -ENOENT, -EBUSY, -EAGAIN, -EIO. */
int
compute_action(struct compute *c, struct store *s, const char *uuid,
    enum compute_action a, struct instance **ret_inst, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	enum instance_state to;
	int rc;

	if ((rc = load_for_change(s, uuid, &inst, e)) < 0)
		return rc;
	switch (a) {
	case COMPUTE_START:
		rc = virt_start(c->virt, uuid, e);
		to = INSTANCE_RUNNING;
		break;
	case COMPUTE_STOP:
		rc = virt_stop(c->virt, uuid, c->stop_timeout_ms, e);
		to = INSTANCE_STOPPED;
		break;
	case COMPUTE_REBOOT:
		rc = virt_reboot(c->virt, uuid, e);
		to = INSTANCE_RUNNING;
		break;
	case COMPUTE_REBOOT_HARD:
		rc = hard_reboot(c, s, inst, e);
		to = INSTANCE_RUNNING;
		break;
	default:
		return err_set(e, -EINVAL, "unknown action %d", (int)a);
	}
	if (rc < 0)
		return missing_domain(uuid, rc, e);
	/* what the client asked for, apart from what libvirt shows: a
	 * start-up after a host reboot starts what should run */
	if ((rc = store_instance_set_desired(s, uuid, to, e)) < 0)
		return rc;
	if ((rc = store_instance_cas_state(s, uuid, inst->state, to, e)) < 0)
		return rc;
	return reload(s, uuid, ret_inst, e);
}

/* --- volumes ----------------------------------------------------------- */

/* Attaches a volume: BDM row (attach_state attaching), then libvirt, then
 * the row settled (row removed on a failure libvirt answered, kept
 * attaching when it may have attached: -EAGAIN).
 * Returns 0, -EINVAL, -ENOENT, -EEXIST, -EBUSY, -EAGAIN, -EIO. */
int
compute_attach(struct compute *c, struct store *s, const char *uuid,
    struct bdm *b, struct instance **ret_inst, size_t *ret_index, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(instance_freep) struct instance *after = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	_cleanup_free_ char *dir = NULL, *xml = NULL;
	const struct blockinfo_disk *d;
	struct domxml_opts o;
	struct bdm *nb;
	struct err ue = {0};
	size_t i;
	int rc;

	if ((rc = load_for_change(s, uuid, &inst, e)) < 0 ||
	    (rc = bdm_prepare_attach(inst, b, &c->limits, e)) < 0 ||
	    (rc = blockinfo_pick_attach(inst, b, &c->limits, e)) < 0)
		return rc;
	/* The disk XML comes from the mapping of the instance with the new
	 * BDM, as it will be stored. */
	if ((rc = instance_bdm_append(inst, &nb, e)) < 0)
		return rc;
	if ((rc = bdm_copy(b, nb, e)) < 0) {
		inst->n_bdms--;
		return rc;
	}
	if ((rc = blockinfo_build(inst, &c->limits, &bi, e)) < 0 ||
	    (rc = virt_instance_dir(c->virt, uuid, &dir, e)) < 0)
		return rc;
	if ((d = disk_of(bi, b->uuid)) == NULL)
		return err_set(
		    e, -EIO, "the mapping has no disk for BDM %s", b->uuid);
	if ((rc = check_volume(c, d, VOLUME_PATH_FIELD, e)) < 0)
		return rc;
	dom_opts(c, dir, NULL, NULL, &o);
	if ((rc = domxml_format_disk(inst, bi, d, &o, &xml, e)) < 0)
		return rc;

	/* attaching until libvirt confirms: a crash in between leaves a row
	 * start-up reconciliation knows to compare with the domain */
	b->attach_state = BDM_ATTACH_ATTACHING;
	rc = store_bdm_insert(s, uuid, b, e);
	b->attach_state = BDM_ATTACH_SETTLED;
	if (rc < 0)
		return rc;
	if ((rc = virt_attach_disk(c->virt, uuid, xml, e)) < 0) {
		/* libvirt unreachable (the connection dropped mid-call): it
		 * may have attached the disk. The row stays attaching, as
		 * Nova's BDM does once written: start-up reconciliation
		 * compares the domain's disks with the rows by serial and
		 * attaches it if the domain lacks it; a detach in between
		 * finds no disk and removes the row. Only a clear refusal
		 * rolls back. */
		if (rc == -EAGAIN)
			return rc;
		(void)store_bdm_delete(s, uuid, b->uuid, &ue);
		return missing_domain(uuid, rc, e);
	}
	/* Confirmed. Should the store fail now, the row stays attaching
	 * and reconciliation settles it (the disk is there): the attach
	 * itself succeeded, so it is not reported as failed. */
	if (store_bdm_set_attach_state(
		s, uuid, b->uuid, BDM_ATTACH_SETTLED, &ue) < 0)
		err_clear(&ue);
	if (ret_inst == NULL && ret_index == NULL)
		return 0;
	if ((rc = store_instance_get(s, uuid, &after, e)) < 0)
		return rc;
	for (i = 0; i < after->n_bdms; i++)
		if (STREQ(after->bdms[i].uuid, b->uuid))
			break;
	if (i == after->n_bdms)
		return err_set(
		    e, -EIO, "BDM %s vanished after attach", b->uuid);
	if (ret_index)
		*ret_index = i;
	if (ret_inst)
		*ret_inst = TAKE_PTR(after);
	return 0;
}

/* Detaches volume_id: the BDM row marked detaching, libvirt, then the
 * row deleted. Returns 0, -EINVAL, -ENOENT, -EBUSY (also: the running
 * guest has not released the disk in time; the row stays detaching),
 * -EAGAIN (the row stays detaching), -EIO. */
int
compute_detach(struct compute *c, struct store *s, const char *uuid,
    const char *volume_id, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	_cleanup_free_ char *dir = NULL, *xml = NULL;
	const struct blockinfo_disk *d;
	const struct bdm *b = NULL;
	struct domxml_opts o;
	size_t i;
	int rc;

	if (volume_id == NULL || *volume_id == '\0')
		return err_set_field(
		    e, -EINVAL, "volume_id", "volume_id is required");
	if ((rc = load_for_change(s, uuid, &inst, e)) < 0)
		return rc;
	for (i = 0; i < inst->n_bdms; i++)
		if (inst->bdms[i].destination_type == BDM_DEST_VOLUME &&
		    inst->bdms[i].volume_id &&
		    STREQ(inst->bdms[i].volume_id, volume_id)) {
			b = &inst->bdms[i];
			break;
		}
	if (b == NULL)
		return err_set(e, -ENOENT, "instance %s has no volume %.64s",
		    uuid, volume_id);
	if ((rc = blockinfo_build(inst, &c->limits, &bi, e)) < 0 ||
	    (rc = virt_instance_dir(c->virt, uuid, &dir, e)) < 0)
		return rc;
	if ((d = disk_of(bi, b->uuid)) == NULL)
		return err_set(
		    e, -EIO, "the mapping has no disk for BDM %s", b->uuid);
	dom_opts(c, dir, NULL, NULL, &o);
	if ((rc = domxml_format_disk(inst, bi, d, &o, &xml, e)) < 0)
		return rc;
	/* The row is marked detaching first, then libvirt, then the row
	 * deleted: a crash after libvirt leaves a detaching row whose disk
	 * is gone, which start-up reconciliation (or detaching again:
	 * -ENOENT) removes. Deleting first would leave a disk no row knows.
	 * A running guest that has not released the disk (-ETIMEDOUT after
	 * virt's detach timeout) keeps its row, detaching: the volume is
	 * still in use, and must not be attached elsewhere; detaching again
	 * waits again. */
	if ((rc = store_bdm_set_attach_state(
		 s, uuid, b->uuid, BDM_ATTACH_DETACHING, e)) < 0)
		return rc;
	rc = virt_detach_disk(c->virt, uuid, xml, e);
	if (rc == -ENOENT)
		err_clear(e);
	else if (rc == -ETIMEDOUT) {
		struct err be = {0};

		err_set_field(&be, -EBUSY, "volume_id",
		    "volume %.64s is still detaching (%s); detach again to "
		    "wait again",
		    volume_id, e ? e->msg : "");
		if (e)
			*e = be;
		return -EBUSY;
	} else if (rc == -EAGAIN) /* may have been sent: stays detaching */
		return rc;
	else if (rc < 0) {
		/* libvirt refused: nothing changed, and the row goes back
		 * to the state it had (settled, or attaching for
		 * reconciliation) */
		struct err ue = {0};

		(void)store_bdm_set_attach_state(
		    s, uuid, b->uuid, b->attach_state, &ue);
		return rc;
	}
	return store_bdm_delete(s, uuid, b->uuid, e);
}

/* --- interfaces -------------------------------------------------------- */

/* Attaches NIC n (parsed by nic_json_parse_attach: port_id, mac and
 * target_dev set): its row first, attaching (a port_id or MAC on the node
 * is -EEXIST before anything reaches libvirt), then libvirt, live and
 * persistent, then the row settled with interface.attached; the row goes
 * again if libvirt refuses. See compute.h. */
int
compute_attach_interface(struct compute *c, struct store *s, const char *uuid,
    const struct nic *n, struct instance **ret_inst, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_free_ char *xml = NULL;
	struct nic an = *n; /* shallow: only attach_state differs */
	struct err ue = {0};
	int rc;

	if ((rc = load_for_change(s, uuid, &inst, e)) < 0 ||
	    (rc = domxml_format_interface(n, &xml, e)) < 0)
		return rc;
	if (inst->guest.n_nics >= NIC_JSON_MAX_NICS)
		return err_set(e, -EINVAL,
		    "instance %s has %d interfaces, the most it may have", uuid,
		    NIC_JSON_MAX_NICS);
	/* attaching until libvirt confirms: a crash in between leaves a row
	 * start-up reconciliation compares with the domain's MACs */
	an.attach_state = NIC_ATTACH_ATTACHING;
	if ((rc = store_nic_insert(s, uuid, &an, e)) < 0)
		return rc;
	if ((rc = virt_interface(c->virt, uuid, xml, true, e)) < 0) {
		/* libvirt unreachable mid-call may have attached it: the
		 * row stays attaching for reconciliation (or a detach) to
		 * settle. Only a clear refusal rolls back (no event: none
		 * was written for the attach). */
		if (rc == -EAGAIN)
			return rc;
		(void)store_nic_delete(s, uuid, n->port_id, &ue);
		return missing_domain(uuid, rc, e);
	}
	/* Confirmed. Should the store fail now, the row stays attaching
	 * and reconciliation settles it (the NIC is there). */
	if (store_nic_set_attach_state(
		s, uuid, n->port_id, NIC_ATTACH_SETTLED, &ue) < 0)
		err_clear(&ue);
	if (ret_inst == NULL)
		return 0;
	return store_instance_get(s, uuid, ret_inst, e);
}

/* Detaches NIC port_id: the row marked detaching, libvirt (an interface
 * already gone is fine), then the row deleted. See compute.h. */
int
compute_detach_interface(struct compute *c, struct store *s, const char *uuid,
    const char *port_id, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_free_ char *xml = NULL;
	const struct nic *n = NULL;
	struct err ue = {0};
	int rc;

	if ((rc = load_for_change(s, uuid, &inst, e)) < 0)
		return rc;
	for (size_t i = 0; i < inst->guest.n_nics; i++)
		if (STREQ(inst->guest.nics[i].port_id, port_id)) {
			n = &inst->guest.nics[i];
			break;
		}
	if (n == NULL)
		return err_set_field(e, -ENOENT, "port_id",
		    "instance %s has no interface %.64s", uuid, port_id);
	if ((rc = domxml_format_interface(n, &xml, e)) < 0)
		return rc;
	/* detaching first: a crash after libvirt leaves a detaching row
	 * whose NIC is gone, which reconciliation (or detaching again)
	 * removes; deleting first would leave a NIC no row knows */
	if ((rc = store_nic_set_attach_state(
		 s, uuid, port_id, NIC_ATTACH_DETACHING, e)) < 0)
		return rc;
	rc = virt_interface(c->virt, uuid, xml, false, e);
	if (rc == -ENOENT && strstr(e ? e->msg : "", "interface") != NULL)
		err_clear(e); /* gone already (a retry after a crash) */
	else if (rc == -EAGAIN) /* may have been sent: stays detaching */
		return rc;
	else if (rc < 0) {
		/* libvirt refused: nothing changed, the row goes back to
		 * the state it had */
		(void)store_nic_set_attach_state(
		    s, uuid, port_id, n->attach_state, &ue);
		return missing_domain(uuid, rc, e);
	}
	return store_nic_delete(s, uuid, port_id, e);
}

/* --- reconciliation ---------------------------------------------------- */

/* Frees what a report owns and zeroes it. Accepts NULL. */
void
compute_report_clear(struct compute_report *r)
{
	if (r == NULL)
		return;
	free(r->unknown);
	free(r->faults);
	*r = (struct compute_report){0};
}

static int
cmp_domain(const void *k, const void *d)
{
	return strcmp((const char *)k, ((const struct virt_domain *)d)->uuid);
}

/* Records that uuid is in state error because of msg (stored as its
 * fault, listed in r->faults for the log). */
static void
fault(struct store *s, const char *uuid, const char *msg,
    struct compute_report *r)
{
	struct compute_fault *nf;
	struct err se = {0};

	(void)store_instance_set_error(s, uuid, msg, &se);
	nf = reallocarray(r->faults, r->n_faults + 1, sizeof(*nf));
	if (nf == NULL)
		return;
	r->faults = nf;
	memcpy(nf[r->n_faults].uuid, uuid, UUID_STR_LEN);
	(void)snprintf(nf[r->n_faults].msg, sizeof(nf->msg), "%s", msg);
	r->n_faults++;
}

/* Starts the domain of an instance meant to run and records running.
 * A start libvirt refuses puts the instance in error with the reason;
 * libvirt unreachable (-EAGAIN) leaves it for the next pass. */
static int
resume(struct compute *c, struct store *s, const char *uuid,
    struct compute_report *r, struct err *e)
{
	char msg[ERR_MSG_MAX];
	int rc;

	rc = virt_start(c->virt, uuid, e);
	if (rc == -EBUSY) /* started meanwhile */
		err_clear(e);
	else if (rc == -EAGAIN)
		return rc;
	else if (rc < 0) {
		(void)snprintf(msg, sizeof(msg),
		    "could not be started at start-up: %.200s", e->msg);
		fault(s, uuid, msg, r);
		return rc;
	}
	return store_instance_set_state(s, uuid, INSTANCE_RUNNING, e);
}

/* Whether the instance's local disks are files this process can look at:
 * libvirt's test driver only pretends to create them. */
static bool
disks_are_files(const struct compute *c)
{
	return strncmp(virt_uri(c->virt), "test:", 5) != 0;
}

/* 1 if <dir>/<name> exists, 0 if not, or -errno when it cannot be told. */
static int
disk_exists(const char *dir, const char *name)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* The disks of a domain being defined again: a missing root or ephemeral
 * disk is lost data, never made again from the base image or blank (the
 * instance goes to error, returned -ENOENT); a missing swap is made
 * again. */
static int
remake_disks(struct compute *c, const struct instance *inst,
    const struct plan *p, struct err *e)
{
	struct blockinfo only_swap;
	size_t i;
	int rc;

	if (!disks_are_files(c)) {
		rc = create_disks(c, inst, p, e);
		if (rc == -EEXIST)
			err_clear(e);
		return rc == -EEXIST ? 0 : rc;
	}
	for (i = 0; i <= p->bi->n_ephemerals; i++) {
		const struct blockinfo_disk *d =
		    i == 0 ? p->bi->local_root : p->bi->ephemerals[i - 1];

		if (d == NULL)
			continue;
		if ((rc = disk_exists(p->dir, d->name)) < 0)
			return err_set(e, -EIO, "%s/%s: %s", p->dir, d->name,
			    strerror(-rc));
		if (rc == 0)
			return err_set(e, -ENOENT,
			    "the %s disk %s/%s is missing: its data is lost; "
			    "not made again from the image (restore the file "
			    "and restart hyperletd, or delete the instance)",
			    i == 0 ? "root" : "ephemeral", p->dir, d->name);
	}
	if (p->bi->swap == NULL)
		return 0;
	if ((rc = disk_exists(p->dir, p->bi->swap->name)) < 0)
		return err_set(e, -EIO, "%s/%s: %s", p->dir, p->bi->swap->name,
		    strerror(-rc));
	if (rc == 1)
		return 0;
	only_swap = *p->bi;
	only_swap.local_root = NULL;
	only_swap.n_ephemerals = 0;
	return virt_create_disks(c->virt, inst, &only_swap, NULL, NULL, 0, e);
}

/* A defined instance that should have a config drive and has none (a
 * create killed between define and the drive's write, or a directory
 * emptied behind our back): written now, before anything starts it. */
static int
ensure_drive(struct compute *c, const struct instance *inst, struct err *e)
{
	int rc;

	if (!inst->config_drive)
		return 0;
	if ((rc = guestdrive_exists(c->virt, inst->uuid, e)) != 0)
		return rc < 0 ? rc : 0;
	return guestdrive_make(c->virt, inst, c->availability_zone, e);
}

/* The domain of an instance whose row says running/stopped/error is
 * missing: define it again from the row if its disks are there (see
 * remake_disks), and start it when it should run. */
static int
redefine(struct compute *c, struct store *s, struct instance *inst,
    struct compute_report *r, struct err *e)
{
	struct plan p = {0};
	int rc;

	if ((rc = plan_domain(c, s, inst, &p, e)) < 0)
		goto out;
	/* a volume path the roots no longer admit: not defined again */
	if ((rc = check_volumes(c, p.bi, e)) < 0) {
		fault(s, inst->uuid, e->msg, r);
		goto out;
	}
	if ((rc = remake_disks(c, inst, &p, e)) < 0) {
		if (rc == -ENOENT) {
			fault(s, inst->uuid, e->msg, r);
			r->lost++;
		}
		goto out;
	}
	if ((rc = virt_define(c->virt, p.xml, e)) < 0 ||
	    (rc = ensure_drive(c, inst, e)) < 0)
		goto out;
	r->redefined++;
	if (c->resume_guests && inst->desired_state == INSTANCE_RUNNING) {
		if ((rc = resume(c, s, inst->uuid, r, e)) < 0)
			goto out;
		r->restarted++;
	} else if (inst->state != INSTANCE_STOPPED)
		rc = store_instance_set_state(
		    s, inst->uuid, INSTANCE_STOPPED, e);
out:
	plan_clear(&p);
	return rc;
}

/* Sets the row's state to libvirt's when they differ. The state is the
 * one virt_list read a moment ago: no libvirt call per instance for the
 * state. Paused and crashed apart, as the lifecycle events write them
 * (domevents.h), so that its re-read after start-up finds nothing to
 * change. */
static int
refresh_state(struct store *s, const struct store_instance_state *row,
    const struct virt_domain *dom, struct compute_report *r, struct err *e)
{
	int rc;

	if (dom->observed == row->state)
		return 0;
	/* instance.updated: cause reconcile, as main sets the connection's */
	if ((rc = store_instance_set_state(s, row->uuid, dom->observed, e)) < 0)
		return rc;
	r->states_refreshed++;
	return 0;
}

/* A disk element that names only its target: what a detach matches by. */
static int
detach_xml(const char *dev, char **ret, struct err *e)
{
	const char *p;

	for (p = dev; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return err_set(
			    e, -EIO, "unexpected target dev '%.31s'", dev);
	if (asprintf(ret,
		"<disk type='file' device='disk'><target dev='%s'/>"
		"</disk>",
		dev) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* Deletes the row of a detach reconciliation finished; gone already is
 * fine. */
static int
finish_detach(struct store *s, const char *uuid, const struct bdm *b,
    struct compute_report *r, struct err *e)
{
	int rc = store_bdm_delete(s, uuid, b->uuid, e);

	if (rc == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (rc == 0)
		r->detaches_finished++;
	return rc;
}

/*
 * Run only for an instance with an unsettled BDM (store_instance_states'
 * flag; every instance on a schema older than 6): reading the domain's
 * disks is one libvirt call, and a node of settled instances makes none
 * (a disk an operator attaches or detaches by hand on a settled instance
 * is not looked at; see README). Compares the domain's persistent disks
 * with the instance's BDM rows by serial (blockinfo_serial: the BDM uuid
 * for local disks, the volume id for volumes) and repairs the persistent
 * definition (a running guest is left alone and gets it at its next
 * start):
 *  - attaching row: the disk is attached if the domain lacks it, then the
 *    row is settled;
 *  - detaching row: the user asked for the detach, so it is finished: the
 *    disk is detached from the definition if still there and the row is
 *    deleted. A running domain may still hold the disk live (a detach
 *    that timed out took it from the definition only), so there the row
 *    stays detaching (the volume is in use): detaching again waits for
 *    the guest, a start-up with the domain shut off finishes it;
 *  - settled row (on a flagged instance): a volume whose disk the domain
 *    lacks is attached again, a local disk missing is reported (-EIO);
 *  - a disk whose serial no row knows is detached.
 * Disks without a serial (config drive, lun) are not compared.
 */
static int
reconcile_disks(struct compute *c, struct store *s, const char *uuid,
    const struct virt_domain *dom, struct compute_report *r, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	_cleanup_free_ struct virt_disk *dd = NULL;
	_cleanup_free_ char *dir = NULL;
	struct domxml_opts o;
	size_t nd = 0, i, k;
	int rc, first = 0;

	rc = store_instance_get(s, uuid, &inst, e);
	if (rc == -ENOENT) { /* deleted since the list was read */
		err_clear(e);
		return 0;
	}
	if (rc < 0 || (rc = blockinfo_build(inst, &c->limits, &bi, e)) < 0 ||
	    (rc = virt_instance_dir(c->virt, uuid, &dir, e)) < 0)
		return rc;
	r->disks_checked++;
	if ((rc = virt_domain_disks(c->virt, uuid, &dd, &nd, e)) < 0)
		return rc;
	dom_opts(c, dir, NULL, NULL, &o);
	for (i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		const struct bdm *b =
		    d->bdm_index >= 0 ? &inst->bdms[d->bdm_index] : NULL;
		enum bdm_attach_state st =
		    b ? b->attach_state : BDM_ATTACH_SETTLED;
		_cleanup_free_ char *xml = NULL;
		struct err de = {0};

		if (d->serial[0] == '\0')
			continue;
		for (k = 0; k < nd; k++)
			if (STREQ(dd[k].serial, d->serial))
				break;
		rc = 0;
		if (st == BDM_ATTACH_DETACHING) {
			if (k < nd &&
			    (rc = detach_xml(dd[k].dev, &xml, &de)) == 0 &&
			    (rc = virt_disk_config(
				 c->virt, uuid, xml, false, &de)) == 0)
				r->disks_detached++;
			if (rc == -ENOENT) { /* gone meanwhile */
				err_clear(&de);
				rc = 0;
			}
			if (rc == 0 && dom->state == INSTANCE_RUNNING)
				r->detaches_pending++;
			else if (rc == 0)
				rc = finish_detach(s, uuid, b, r, &de);
		} else if (k == nd &&
		    (b == NULL || b->destination_type != BDM_DEST_VOLUME))
			rc = err_set(&de, -EIO,
			    "the domain lacks its local disk %s (serial %s)",
			    d->dev, d->serial);
		else if (k == nd &&
		    (rc = domxml_format_disk(inst, bi, d, &o, &xml, &de)) ==
			0 &&
		    (rc = virt_disk_config(c->virt, uuid, xml, true, &de)) == 0)
			r->disks_attached++;
		if (rc == 0 && st == BDM_ATTACH_ATTACHING &&
		    (rc = store_bdm_set_attach_state(
			 s, uuid, b->uuid, BDM_ATTACH_SETTLED, &de)) == 0)
			r->attaches_settled++;
		if (rc < 0 && first == 0)
			first = err_set(e, rc, "%s", de.msg);
	}
	for (k = 0; k < nd; k++) {
		_cleanup_free_ char *xml = NULL;
		struct err de = {0};

		if (dd[k].serial[0] == '\0')
			continue;
		for (i = 0; i < bi->n_disks; i++)
			if (STREQ(bi->disks[i].serial, dd[k].serial))
				break;
		if (i < bi->n_disks)
			continue;
		rc = detach_xml(dd[k].dev, &xml, &de);
		if (rc == 0)
			rc = virt_disk_config(c->virt, uuid, xml, false, &de);
		if (rc == -ENOENT) /* gone meanwhile */
			rc = 0;
		else if (rc == 0)
			r->disks_detached++;
		if (rc < 0 && first == 0)
			first = err_set(e, rc,
			    "detaching disk %s (serial %s, no BDM): %s",
			    dd[k].dev, dd[k].serial, de.msg);
	}
	return first;
}

/*
 * Run with reconcile_disks (an instance flagged unsettled). Compares each
 * unsettled NIC row with the domain's interfaces by MAC (virt_domain_nics:
 * the live XML when it runs, the persistent one otherwise) and settles it
 * as reconcile_disks does a BDM:
 *  - attaching, present: settled (interface.attached written then);
 *  - attaching, absent: the attach never happened: the row deleted;
 *  - detaching, present: the user asked for the detach, so it is
 *    finished: detached again (live and persistent), then the row
 *    deleted; a refusal is reported and the row stays detaching;
 *  - detaching, absent: the row deleted.
 * Settled rows are not compared.
 */
static int
reconcile_nics(struct compute *c, struct store *s, const char *uuid,
    struct compute_report *r, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_free_ struct virt_nic *vn = NULL;
	size_t nv = 0, i, k;
	int rc, first = 0;

	rc = store_instance_get(s, uuid, &inst, e);
	if (rc == -ENOENT) { /* deleted since the list was read */
		err_clear(e);
		return 0;
	}
	if (rc < 0)
		return rc;
	for (i = 0; i < inst->guest.n_nics; i++)
		if (inst->guest.nics[i].attach_state != NIC_ATTACH_SETTLED)
			break;
	if (i == inst->guest.n_nics) /* only BDMs are unsettled */
		return 0;
	if ((rc = virt_domain_nics(c->virt, uuid, &vn, &nv, e)) < 0)
		return rc;
	for (i = 0; i < inst->guest.n_nics; i++) {
		const struct nic *n = &inst->guest.nics[i];
		_cleanup_free_ char *xml = NULL;
		struct err de = {0};

		if (n->attach_state == NIC_ATTACH_SETTLED)
			continue;
		for (k = 0; k < nv; k++)
			if (STREQ(vn[k].mac, n->mac))
				break;
		rc = 0;
		if (n->attach_state == NIC_ATTACH_ATTACHING && k < nv) {
			if ((rc = store_nic_set_attach_state(s, uuid,
				 n->port_id, NIC_ATTACH_SETTLED, &de)) == 0)
				r->nic_attaches_settled++;
		} else if (n->attach_state == NIC_ATTACH_ATTACHING) {
			if ((rc = store_nic_delete(s, uuid, n->port_id, &de)) ==
			    0)
				r->nic_attaches_undone++;
		} else {
			if (k < nv &&
			    (rc = domxml_format_interface(n, &xml, &de)) == 0 &&
			    (rc = virt_interface(
				 c->virt, uuid, xml, false, &de)) == -ENOENT) {
				err_clear(&de); /* gone meanwhile */
				rc = 0;
			}
			if (rc == 0 &&
			    (rc = store_nic_delete(s, uuid, n->port_id, &de)) ==
				0)
				r->nic_detaches_finished++;
		}
		if (rc == -ENOENT) { /* the row went meanwhile */
			err_clear(&de);
			rc = 0;
		}
		if (rc < 0 && first == 0)
			first = err_set(e, rc, "interface %s (MAC %s): %s",
			    n->port_id, n->mac, de.msg);
	}
	return first;
}

/* Only the row's uuid, state and desired state are read up front: the
 * instance is loaded whole to compare its disks or define its domain. */
static int
reconcile_one(struct compute *c, struct store *s,
    const struct store_instance_state *row, const struct virt_domain *dom,
    struct compute_report *r, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct err de = {0};
	int rc, drc;

	switch (row->state) {
	case INSTANCE_DELETING:
		/* with a tombstone: the delete the crash interrupted (or a
		 * failed create) may have raced a define still in libvirtd */
		if ((rc = delete_instance(c, s, row->uuid, 0, true, e)) < 0)
			return rc;
		r->deletes_finished++;
		return 0;
	case INSTANCE_BUILDING:
		/* virt_define is the create's last step that can leave
		 * nothing half made (disks come before it): with the domain
		 * defined, the instance is complete and kept, in the state
		 * libvirt reports (started below if it should run); without
		 * it, it is rolled back. */
		if (dom) {
			if ((rc = store_instance_get(s, row->uuid, &inst, e)) <
				0 ||
			    (rc = ensure_drive(c, inst, e)) < 0 ||
			    (rc = store_instance_set_state(
				 s, row->uuid, dom->state, e)) < 0)
				return rc;
			r->builds_finished++;
			break;
		}
		/* The killed daemon may have sent a define libvirtd has not
		 * finished yet: the tombstone lets later sweeps remove it. */
		if ((rc = delete_disks(c, row->uuid, e)) < 0 ||
		    (rc = store_instance_roll_back(s, row->uuid, e)) < 0)
			return rc;
		r->builds_rolled_back++;
		return 0;
	default:
		if (dom != NULL) {
			if ((rc = refresh_state(s, row, dom, r, e)) < 0)
				return rc;
			break;
		}
		rc = store_instance_get(s, row->uuid, &inst, e);
		if (rc == -ENOENT) { /* deleted since the list was read */
			err_clear(e);
			return 0;
		}
		if (rc < 0)
			return rc;
		return redefine(c, s, inst, r, e);
	}
	/* The domain exists: its disks against the rows when an attach or
	 * detach is unsettled (no libvirt call otherwise), then start what
	 * should run (a volume attached again is there at boot). A disk that
	 * cannot be repaired is reported and does not keep the guest off. */
	drc =
	    row->unsettled ? reconcile_disks(c, s, row->uuid, dom, r, &de) : 0;
	if (drc == -ENOENT) /* undefined meanwhile */
		return 0;
	if (row->unsettled) {
		struct err ne = {0};
		int nrc = reconcile_nics(c, s, row->uuid, r, &ne);

		if (nrc == -ENOENT) /* undefined meanwhile */
			return 0;
		if (nrc < 0 && drc == 0) {
			drc = nrc;
			de = ne;
		}
	}
	if (c->resume_guests && row->desired == INSTANCE_RUNNING &&
	    dom->state != INSTANCE_RUNNING) {
		if ((rc = resume(c, s, row->uuid, r, e)) < 0)
			return rc;
		r->resumed++;
	}
	if (drc < 0)
		return err_set(e, drc, "%s", de.msg);
	return 0;
}

/* A row whose uuid libvirt has a domain for that is not named as hyperlet
 * names its domains: not the instance's domain, so never refreshed from,
 * defined over or removed. A deleting or building row goes on as if it
 * had no domain (the removal skips a domain hyperlet does not own); the
 * others are set to error: their domain is gone and cannot be defined
 * again while the uuid is taken. Returns 0 (*dom cleared) or -EEXIST. */
static int
foreign_domain(struct store *s, const struct store_instance_state *row,
    const struct virt_domain **dom, struct err *e)
{
	struct err se = {0};

	if (row->state == INSTANCE_DELETING ||
	    row->state == INSTANCE_BUILDING) {
		*dom = NULL;
		return 0;
	}
	if (row->state != INSTANCE_ERROR)
		(void)store_instance_set_state(
		    s, row->uuid, INSTANCE_ERROR, &se);
	return err_set(e, -EEXIST,
	    "its uuid is held by a libvirt domain that is not hyperlet's; "
	    "state error, the domain left alone");
}

/* One pass over every row and domain. Counters add up across passes;
 * failed, lost, first_error, faults and unknown describe this pass
 * only. */
static int
reconcile_pass(
    struct compute *c, struct store *s, struct compute_report *r, struct err *e)
{
	_cleanup_free_ struct virt_domain *doms = NULL;
	_cleanup_free_ struct store_instance_state *v = NULL;
	_cleanup_free_ bool *seen = NULL;
	size_t nd = 0, n = 0, i, nu = 0;
	int rc;

	r->failed = 0;
	r->lost = 0;
	r->first_error[0] = '\0';
	free(r->unknown);
	r->unknown = NULL;
	r->n_unknown = 0;
	free(r->faults);
	r->faults = NULL;
	r->n_faults = 0;
	if ((rc = virt_list(c->virt, &doms, &nd, e)) < 0)
		return rc;
	if ((rc = store_instance_states(s, &v, &n, e)) < 0)
		return rc;
	seen = calloc(nd ? nd : 1, sizeof(*seen));
	if (seen == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	r->instances = n;
	for (i = 0; i < n; i++) {
		const struct virt_domain *dom = NULL;
		struct err ie = {0};

		if (nd)
			dom = bsearch(
			    v[i].uuid, doms, nd, sizeof(*doms), cmp_domain);
		if (dom)
			seen[dom - doms] = true;
		if (dom && !dom->named &&
		    foreign_domain(s, &v[i], &dom, &ie) < 0) {
			if (r->failed++ == 0)
				(void)snprintf(r->first_error,
				    sizeof(r->first_error),
				    "instance %s: %.200s", v[i].uuid, ie.msg);
			continue;
		}
		if (reconcile_one(c, s, &v[i], dom, r, &ie) < 0) {
			if (r->failed++ == 0)
				(void)snprintf(r->first_error,
				    sizeof(r->first_error),
				    "instance %s: %.200s", v[i].uuid, ie.msg);
		}
	}

	/* Domains without a row: only those named as hyperlet names its
	 * domains can be hyperlet's, and only they cost a metadata read (a
	 * node whose domains all have rows reads none). */
	for (i = 0; i < nd; i++)
		nu += doms[i].named && !seen[i];
	if (nu) {
		r->unknown = calloc(nu, sizeof(*r->unknown));
		if (r->unknown == NULL)
			return err_set(e, -ENOMEM, "out of memory");
	}
	for (i = 0; nu && i < nd; i++) {
		if (!doms[i].named || seen[i])
			continue;
		rc = virt_has_metadata(c->virt, doms[i].uuid, e);
		if (rc == -ENOENT) { /* undefined meanwhile */
			err_clear(e);
			continue;
		}
		if (rc < 0)
			return rc;
		if (rc == 1)
			memcpy(r->unknown[r->n_unknown++], doms[i].uuid,
			    UUID_STR_LEN);
	}
	return 0;
}

/* Reconciles every row with libvirt (see compute.h); *r filled, owned
 * parts freed by compute_report_clear. A pass that leaves failures is
 * repeated after 0.5, 1 and 2 s: work a killed client started can still
 * be running in libvirtd (a volume being created keeps its pool busy), and
 * every step of a pass is idempotent. Returns 0, -EAGAIN, -EIO, -ENOMEM. */
int
compute_reconcile(
    struct compute *c, struct store *s, struct compute_report *r, struct err *e)
{
	struct err se = {0};
	int rc, attempt;

	*r = (struct compute_report){0};
	for (attempt = 0;; attempt++) {
		if ((rc = reconcile_pass(c, s, r, e)) < 0) {
			compute_report_clear(r);
			return rc;
		}
		/* an instance put in error (a lost disk, a start libvirt
		 * refused) fails the same way again: no reason to wait */
		if (r->failed <= r->n_faults ||
		    attempt == COMPUTE_RECONCILE_RETRIES)
			break;
		(void)usleep((useconds_t)(500000u << attempt));
	}
	/* leftovers of builds rolled back by earlier runs */
	if (compute_sweep(c, s, &r->swept, &se) < 0 && r->failed++ == 0)
		(void)snprintf(r->first_error, sizeof(r->first_error),
		    "rolled-back builds: %.200s", se.msg);
	return 0;
}

/* 1 if the instance directory of uuid exists, else 0. */
static int
has_dir(struct compute *c, const char *uuid)
{
	_cleanup_free_ char *dir = NULL;
	struct err e = {0};
	struct stat st;

	if (virt_instance_dir(c->virt, uuid, &dir, &e) < 0)
		return 1; /* cannot tell: look */
	return stat(dir, &st) == 0;
}

/* Removes what is left of rolled-back builds (see compute.h). */
int
compute_sweep(
    struct compute *c, struct store *s, size_t *ret_removed, struct err *e)
{
	_cleanup_free_ struct virt_domain *doms = NULL;
	_cleanup_free_ char(*t)[UUID_STR_LEN] = NULL;
	size_t nd = 0, nt = 0, i, removed = 0;
	int64_t now = util_now_ms();
	int rc = 0, first = 0;

	if ((rc = store_tombstone_list(s, &t, &nt, e)) < 0)
		return rc;
	if (nt && (rc = virt_list(c->virt, &doms, &nd, e)) < 0)
		return rc;
	for (i = 0; i < nt; i++) {
		struct err ie = {0};
		int st = 0;

		if ((nd == 0 ||
			!bsearch(t[i], doms, nd, sizeof(*doms), cmp_domain)) &&
		    !has_dir(c, t[i]))
			continue;
		(void)pthread_mutex_lock(&c->tomb_lock);
		rc = store_tombstone_state(s, t[i], &st, &ie);
		if (rc == 0 && st)
			memcpy(c->sweeping, t[i], sizeof(c->sweeping));
		(void)pthread_mutex_unlock(&c->tomb_lock);
		if (rc == 0 && st == 1) {
			if ((rc = undefine_own(c, t[i], &ie)) == 0)
				rc = delete_disks(c, t[i], &ie);
		} else if (rc == 0 && st == 2)
			rc = delete_instance(c, s, t[i], 0, true, &ie);
		if (st) {
			(void)pthread_mutex_lock(&c->tomb_lock);
			c->sweeping[0] = '\0';
			(void)pthread_cond_broadcast(&c->tomb_cond);
			(void)pthread_mutex_unlock(&c->tomb_lock);
		}
		if (rc < 0 && first == 0) {
			first = rc;
			err_set(e, rc, "%s: %s", t[i], ie.msg);
		} else if (rc == 0 && st)
			removed++;
	}
	if (ret_removed)
		*ret_removed += removed;
	if (first)
		return first;
	return store_tombstone_sweep_done(
	    s, now, now - COMPUTE_TOMBSTONE_TTL_MS, NULL, e);
}
