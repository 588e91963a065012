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
	/* Serialises a sweep's removal of one tombstone's leftovers with a
	 * create of the same uuid (check tombstone + write the row). */
	pthread_mutex_t tomb_lock;
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
	if (c == NULL || (c->images_dir = strdup(o->images_dir)) == NULL) {
		free(c);
		return err_set(e, -ENOMEM, "out of memory");
	}
	c->virt = o->virt;
	c->limits = o->limits;
	c->stop_timeout_ms = o->stop_timeout_ms < 0 ? 0 : o->stop_timeout_ms;
	c->domxml = o->domxml;
	(void)pthread_mutex_init(&c->tomb_lock, NULL);
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
	free(c->images_dir);
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

/* Creates and (unless inst->start is false) starts an instance, undoing
 * everything on failure. See compute.h for the steps. Returns 0, -EINVAL,
 * -EEXIST, -EAGAIN, -EIO. */
int
compute_create(struct compute *c, struct store *s, struct instance *inst,
    const char *request_digest, struct instance **ret_inst, struct err *e)
{
	struct plan p = {0};
	struct err ue = {0};
	bool defined = false;
	int rc, tomb = 0;

	/* Everything that can refuse the request runs before the first
	 * write. */
	if ((rc = plan_domain(c, s, inst, &p, e)) < 0)
		goto out;
	/* A rolled-back build of this uuid may have left a domain or disks
	 * (a client retrying with the same uuid): remove them and the
	 * tombstone first, under the lock a sweep holds, so no sweep removes
	 * what this create makes. */
	(void)pthread_mutex_lock(&c->tomb_lock);
	rc = store_tombstone_state(s, inst->uuid, &tomb, e);
	if (rc == 0 && tomb == 1 &&
	    (rc = virt_undefine(c->virt, inst->uuid, e)) == 0 &&
	    (rc = virt_delete_disks(c->virt, inst->uuid, e)) == 0)
		rc = store_tombstone_delete(s, inst->uuid, e);
	if (rc == 0)
		rc = store_instance_create(s, inst, request_digest, e);
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
	if ((rc = virt_define(c->virt, p.xml, e)) < 0)
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
		(void)virt_undefine(c->virt, inst->uuid, &ue);
	if (ue.code == 0)
		(void)virt_delete_disks(c->virt, inst->uuid, &ue);
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
 * to deleting only from the state read, so a create's last step cannot
 * overwrite it. Returns 0, -EINVAL, -ENOENT, -EBUSY, -EAGAIN, -EIO. */
static int
delete_instance(struct compute *c, struct store *s, const char *uuid,
    bool tombstone, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	int rc;

	if ((rc = store_instance_get(s, uuid, &inst, e)) < 0)
		return rc;
	if (inst->state == INSTANCE_BUILDING)
		return err_set(e, -EBUSY,
		    "instance %s is building: delete it once its create "
		    "has answered",
		    uuid);
	if ((rc = store_instance_cas_state(
		 s, uuid, inst->state, INSTANCE_DELETING, e)) < 0)
		return rc;
	if ((rc = virt_undefine(c->virt, uuid, e)) < 0 ||
	    (rc = virt_delete_disks(c->virt, uuid, e)) < 0)
		return rc;
	if (tombstone)
		return store_instance_roll_back(s, uuid, e);
	rc = store_instance_delete(s, uuid, e);
	if (rc == -ENOENT) /* a concurrent delete finished first */
		err_clear(e);
	return rc == -ENOENT ? 0 : rc;
}

int
compute_delete(
    struct compute *c, struct store *s, const char *uuid, struct err *e)
{
	return delete_instance(c, s, uuid, false, e);
}

/* --- actions ----------------------------------------------------------- */

/* "start" | "stop" | "reboot" into *ret. Returns 0 or -EINVAL. */
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
		if (STREQ(names[i], s)) {
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
	if (rc != -ENOENT)
		return rc;
	err_clear(e);
	return err_set(e, -EIO,
	    "the domain of instance %s is missing; restarting hyperletd "
	    "defines it again",
	    uuid);
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
	default:
		return err_set(e, -EINVAL, "unknown action %d", (int)a);
	}
	if (rc < 0)
		return missing_domain(uuid, rc, e);
	if ((rc = store_instance_cas_state(s, uuid, inst->state, to, e)) < 0)
		return rc;
	return reload(s, uuid, ret_inst, e);
}

/* --- volumes ----------------------------------------------------------- */

/* Attaches a volume: BDM row, then libvirt (row removed on failure).
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
	dom_opts(c, dir, NULL, NULL, &o);
	if ((rc = domxml_format_disk(inst, bi, d, &o, &xml, e)) < 0)
		return rc;

	if ((rc = store_bdm_insert(s, uuid, b, e)) < 0)
		return rc;
	if ((rc = virt_attach_disk(c->virt, uuid, xml, e)) < 0) {
		(void)store_bdm_delete(s, uuid, b->uuid, &ue);
		return missing_domain(uuid, rc, e);
	}
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

/* Detaches volume_id: libvirt, then the BDM row. Returns 0, -EINVAL,
 * -ENOENT, -EBUSY, -EAGAIN, -EIO. */
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
	/* libvirt first: a crash after it leaves a row whose disk is gone,
	 * and detaching again then finds nothing (-ENOENT) and removes the
	 * row. The other order would leave a disk no row knows. */
	rc = virt_detach_disk(c->virt, uuid, xml, e);
	if (rc == -ENOENT)
		err_clear(e);
	else if (rc < 0)
		return rc;
	return store_bdm_delete(s, uuid, b->uuid, e);
}

/* --- reconciliation ---------------------------------------------------- */

/* Frees what a report owns and zeroes it. Accepts NULL. */
void
compute_report_clear(struct compute_report *r)
{
	if (r == NULL)
		return;
	free(r->unknown);
	*r = (struct compute_report){0};
}

static int
cmp_domain(const void *k, const void *d)
{
	return strcmp((const char *)k, ((const struct virt_domain *)d)->uuid);
}

/* The domain of an instance whose row says running/stopped/error is
 * missing: define it again from the row (disks recreated when missing),
 * and start it when the row says running. */
static int
redefine(struct compute *c, struct store *s, struct instance *inst,
    struct compute_report *r, struct err *e)
{
	struct plan p = {0};
	struct err se = {0};
	int rc;

	if ((rc = plan_domain(c, s, inst, &p, e)) < 0)
		goto out;
	rc = create_disks(c, inst, &p, e);
	if (rc == -EEXIST) /* the disks outlived the domain: keep them */
		err_clear(e);
	else if (rc < 0)
		goto out;
	if ((rc = virt_define(c->virt, p.xml, e)) < 0)
		goto out;
	r->redefined++;
	if (inst->state == INSTANCE_RUNNING) {
		if ((rc = virt_start(c->virt, inst->uuid, e)) < 0) {
			(void)store_instance_set_state(
			    s, inst->uuid, INSTANCE_ERROR, &se);
			goto out;
		}
		r->restarted++;
	} else if (inst->state == INSTANCE_ERROR) {
		rc = store_instance_set_state(
		    s, inst->uuid, INSTANCE_STOPPED, e);
	}
out:
	plan_clear(&p);
	return rc;
}

/* Sets the row's state to libvirt's when they differ. The state is the
 * one virt_list read a moment ago: no libvirt call per instance (start-up
 * with 10,000 domains compares, it does not look each one up again). */
static int
refresh_state(struct store *s, const struct store_instance_state *row,
    const struct virt_domain *dom, struct compute_report *r, struct err *e)
{
	int rc;

	if (dom->state == row->state)
		return 0;
	if ((rc = store_instance_set_state(s, row->uuid, dom->state, e)) < 0)
		return rc;
	r->states_refreshed++;
	return 0;
}

/* Only the row's uuid and state are read up front: the instance is loaded
 * whole only to define its domain again. */
static int
reconcile_one(struct compute *c, struct store *s,
    const struct store_instance_state *row, const struct virt_domain *dom,
    struct compute_report *r, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	int rc;

	switch (row->state) {
	case INSTANCE_DELETING:
		/* with a tombstone: the delete the crash interrupted (or a
		 * failed create) may have raced a define still in libvirtd */
		if ((rc = delete_instance(c, s, row->uuid, true, e)) < 0)
			return rc;
		r->deletes_finished++;
		return 0;
	case INSTANCE_BUILDING:
		/* virt_define is the create's last step that can leave
		 * nothing half made (disks come before it): with the domain
		 * defined, the instance is complete and kept, in the state
		 * libvirt reports; without it, it is rolled back. */
		if (dom) {
			if ((rc = store_instance_set_state(
				 s, row->uuid, dom->state, e)) < 0)
				return rc;
			r->builds_finished++;
			return 0;
		}
		/* The killed daemon may have sent a define libvirtd has not
		 * finished yet: the tombstone lets later sweeps remove it. */
		if ((rc = virt_delete_disks(c->virt, row->uuid, e)) < 0 ||
		    (rc = store_instance_roll_back(s, row->uuid, e)) < 0)
			return rc;
		r->builds_rolled_back++;
		return 0;
	default:
		if (dom != NULL)
			return refresh_state(s, row, dom, r, e);
		rc = store_instance_get(s, row->uuid, &inst, e);
		if (rc == -ENOENT) { /* deleted since the list was read */
			err_clear(e);
			return 0;
		}
		if (rc < 0)
			return rc;
		return redefine(c, s, inst, r, e);
	}
}

/* One pass over every row and domain. Counters add up across passes;
 * failed, first_error and unknown describe this pass only. */
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
	r->first_error[0] = '\0';
	free(r->unknown);
	r->unknown = NULL;
	r->n_unknown = 0;
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
		if (r->failed == 0 || attempt == COMPUTE_RECONCILE_RETRIES)
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
		if (rc == 0 && st == 1) {
			if ((rc = virt_undefine(c->virt, t[i], &ie)) == 0)
				rc = virt_delete_disks(c->virt, t[i], &ie);
		} else if (rc == 0 && st == 2)
			rc = delete_instance(c, s, t[i], true, &ie);
		(void)pthread_mutex_unlock(&c->tomb_lock);
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
