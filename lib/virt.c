/*
 * virt: every libvirt call of hyperlet. Each call takes a connection for
 * itself (virt_conn_get) and gives it back at its end (virt_conn_put),
 * which keeps it idle for the next call or, when it died or an older
 * generation of connections was found dead, closes it: a connection is
 * never closed while a call uses it, and never has two threads waiting in
 * it (struct virt_conn tells why: libvirt 9.0's client crashed when its
 * keepalive closed a connection several threads were waiting on). The
 * lock guards only the lists and the reopen bookkeeping, never a libvirt
 * call that may wait, so a slow call (starting a guest) never blocks
 * another thread.
 * Health: v->alive says whether libvirt is known to work, kept by
 * what the calls and the event loop thread see (a reopen, a call failing
 * on a dead connection, libvirt's close callback when the keepalive gives
 * up) and by virt_alive's probe; virt_health reads it without a libvirt
 * call.
 * A dead connection is noticed by virConnectIsAlive after any failed call
 * and before each use; a daemon that hangs is noticed by libvirt's
 * keepalive (run by an event loop thread started once per process), which
 * closes the connection and fails its pending call. Either ends the
 * connection's generation: its idle connections are closed, busy ones as
 * their calls give them back. Then one thread at a time reopens, at most
 * once per reconnect interval; the others fail fast with -EAGAIN.
 * Local disks are files hyperlet writes itself (lib/localdisk.c): no
 * storage pool, no libvirt call.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domxml.h"
#include "localdisk.h"
#include "virt.h"
#include "xwriter.h"

#define VIRT_POLL_MS 50
#define VIRT_DETACH_POLL_MS 200
/* idle connections kept per struct virt (about the request threads that
 * call libvirt at once) */
#define VIRT_IDLE_MAX 16

struct virt {
	char *uri;
	char *virt_type;
	char *instances_path;
	int reconnect_interval_ms;
	int keepalive_interval_s; /* 0: no keepalive */
	unsigned int keepalive_count;
	int detach_timeout_ms;
	bool validate_xml;

	/* Guarded by virt_conns_lock (with the connections' list): */
	bool connecting; /* a thread reopens after a drop */
	bool ever_connected;
	int64_t next_attempt_ms; /* no reopen before this time */
	/* the first connection, held open until virt_close and used by no
	 * call: test:///default keeps its state only while a connection
	 * of the process is open */
	struct virt_conn *keeper;
	/* Atomics (read without the lock): */
	uint64_t generation; /* bumped when a connection is found dead */
	uint64_t reconnects;
	bool alive; /* the health state, and since when (util_now_ms) */
	int64_t alive_since_ms;
	/* virt_undefine's first flag set the driver has not refused (a
	 * driver's flags do not change under one URI; two deletes racing
	 * may store it out of order: one refused call more, no harm) */
	unsigned int undefine_from;

	/* The event connection (virt_watch): its own, used by no call, so
	 * its callbacks never wait behind one. watch_lock guards the
	 * members below it; the callbacks (on libvirt's event loop thread)
	 * read watch_fn/watch_arg, which are set before registering and
	 * cleared only after deregistering. */
	pthread_mutex_t watch_lock;
	virConnectPtr watch;
	int watch_ids[3]; /* lifecycle, reboot, device removed; -1: none */
	bool watch_close_cb;
	virt_event_fn watch_fn;
	void *watch_arg;
	bool watch_lost; /* atomic: the close callback said so */
	int watch_live; /* atomic: registrations libvirt has not freed */
	/* DEVICE_REMOVED wakes a live detach (virt_detach_live) */
	pthread_mutex_t removed_lock;
	pthread_cond_t removed_cond; /* CLOCK_MONOTONIC */
	uint64_t removed; /* device-removed events seen */
};

/*
 * One connection of a struct virt. Used by one call at a time (busy), so
 * no two threads ever wait in libvirt's client on the same connection:
 * libvirt 9.0's client (virNetClientIOEventLoop) leaves a socket watch
 * pointing into a waiting thread's stack attached to the connection's
 * GMainContext whenever another thread wakes it; when the keepalive
 * closed a connection that several threads were waiting on, the next
 * waiter dispatched those watches once libvirtd answered again (SIGCONT)
 * and hyperletd died with SIGSEGV in virNetClientIOEventFD. Idle
 * connections are kept for the next call; one of an older generation, or
 * dead, is closed by the call that releases it.
 */
struct virt_conn {
	virConnectPtr c;
	struct virt *v;
	uint64_t generation; /* v's when opened */
	bool busy;
	bool close_cb; /* virt_conn_closed registered */
	struct virt_conn *next;
};

/* Guards every struct virt_conn list and the fields of struct virt marked
 * so; never held around a libvirt call that may wait (only the local
 * virConnectIsAlive). */
static pthread_mutex_t virt_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct virt_conn *virt_conns;

static int virt_list_ident(virDomainPtr d, struct virt_domain *out);

static pthread_once_t virt_once = PTHREAD_ONCE_INIT;
static int virt_init_rc;
static bool virt_event_loop_running;

static void
virt_quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

static void
virt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* libvirt's default event loop: it sends and checks the keepalive pings
 * that find a daemon that stopped answering, and runs for the life of the
 * process (libvirt has one event implementation per process). */
static void *
virt_event_loop(void *arg)
{
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "hl-virtevents");
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			virt_sleep_ms(100);
	return NULL;
}

static void
virt_init_once(void)
{
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t t;

	/* before any thread: libvirt's validating define parses RelaxNG,
	 * whose libxml2 type tables are otherwise built racily on first use
	 * (check_virt's threads test leaked one under ASan) */
	xwriter_global_init();
	virt_init_rc = virInitialize();
	virSetErrorFunc(NULL, virt_quiet);
	if (virt_init_rc == 0 && virEventRegisterDefaultImpl() == 0 &&
	    pthread_attr_init(&attr) == 0) {
		(void)pthread_attr_setdetachstate(
		    &attr, PTHREAD_CREATE_DETACHED);
		virt_event_loop_running =
		    pthread_create(&t, &attr, virt_event_loop, NULL) == 0;
		(void)pthread_attr_destroy(&attr);
	}
	/* libvirt's RPC writes to its socket with write(): a daemon that
	 * went away would kill us with SIGPIPE. Ignore it unless the
	 * program chose a disposition of its own. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		(void)signal(SIGPIPE, SIG_IGN);
}

/* Sets the health state; since changes only when the state does. */
static void
virt_set_alive(struct virt *v, bool alive)
{
	if (__atomic_exchange_n(&v->alive, alive, __ATOMIC_ACQ_REL) != alive)
		__atomic_store_n(
		    &v->alive_since_ms, util_now_ms(), __ATOMIC_RELEASE);
}

/* A connection of generation gen was found dead: every connection of it
 * is to be closed, and the health state is down. */
static void
virt_mark_dead(struct virt *v, uint64_t gen)
{
	uint64_t expected = gen;

	if (__atomic_compare_exchange_n(&v->generation, &expected, gen + 1,
		false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		virt_set_alive(v, false);
}

/* libvirt's close callback (on the event loop thread: the keepalive gave
 * up, or the socket closed). Atomics only: the connection itself is
 * closed by the call that releases it. */
static void
virt_conn_closed(virConnectPtr c, int reason, void *opaque)
{
	struct virt_conn *k = opaque;

	(void)c;
	(void)reason;
	virt_mark_dead(k->v, k->generation);
}

/* Closes a connection no call uses any more. */
static void
virt_conn_free(struct virt_conn *k)
{
	if (k == NULL)
		return;
	/* libvirt serialises this with a callback running */
	if (k->close_cb &&
	    virConnectUnregisterCloseCallback(k->c, virt_conn_closed) < 0)
		virResetLastError();
	(void)virConnectClose(k->c);
	free(k);
}

/* Unlinks k from virt_conns (lock held). */
static void
virt_conn_unlink_locked(struct virt_conn *k)
{
	struct virt_conn **pp;

	for (pp = &virt_conns; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			k->next = NULL;
			return;
		}
}

/* Releases the connection a call used: kept idle for the next call if it
 * is alive and of the current generation, else closed. */
static void
virt_conn_put(virConnectPtr c)
{
	struct virt_conn *k, *dead = NULL;
	size_t idle = 0;

	if (c == NULL)
		return;
	pthread_mutex_lock(&virt_conns_lock);
	for (k = virt_conns; k && k->c != c; k = k->next)
		;
	if (k) {
		struct virt_conn *o;

		for (o = virt_conns; o; o = o->next)
			idle += o->v == k->v && !o->busy && o != k->v->keeper;
		k->busy = false;
		if (k->generation !=
			__atomic_load_n(&k->v->generation, __ATOMIC_ACQUIRE) ||
		    idle >= VIRT_IDLE_MAX || virConnectIsAlive(c) != 1) {
			virt_conn_unlink_locked(k);
			dead = k;
		}
	}
	pthread_mutex_unlock(&virt_conns_lock);
	virt_conn_free(dead);
}

static void
virt_conn_unrefp(virConnectPtr *c)
{
	virt_conn_put(*c);
	*c = NULL;
}

static void
virt_dom_freep(virDomainPtr *d)
{
	if (*d)
		(void)virDomainFree(*d);
}

/* libvirt's last error code on this thread (VIR_ERR_OK when none). */
static int
virt_last_code(void)
{
	virErrorPtr le = virGetLastError();

	return le ? le->code : VIR_ERR_OK;
}

static int
virt_code_to_errno(int code)
{
	switch (code) {
	case VIR_ERR_NO_DOMAIN:
	case VIR_ERR_NO_STORAGE_POOL:
	case VIR_ERR_NO_STORAGE_VOL:
	case VIR_ERR_DEVICE_MISSING:
		return -ENOENT;
	case VIR_ERR_OPERATION_INVALID:
		return -EBUSY;
	case VIR_ERR_DOM_EXIST:
	case VIR_ERR_STORAGE_VOL_EXIST:
		return -EEXIST;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
		return -EAGAIN;
	/* the connected driver lacks the feature (test:///default has no
	 * device attach): a definite refusal, the API's 501 */
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_OPERATION_UNSUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/* c was found dead: its generation goes (the next call reopens at once). */
static void
virt_conn_drop(struct virt *v, virConnectPtr c)
{
	struct virt_conn *k;
	uint64_t gen = 0;
	bool found = false;

	pthread_mutex_lock(&virt_conns_lock);
	for (k = virt_conns; k; k = k->next)
		if (k->c == c) {
			gen = k->generation;
			found = true;
			break;
		}
	if (found)
		v->next_attempt_ms = 0;
	pthread_mutex_unlock(&virt_conns_lock);
	if (found)
		virt_mark_dead(v, gen);
}

/*
 * After a failed libvirt call on c: maps libvirt's last error to a negative
 * errno and copies its message into e, prefixed by what. A connection that
 * died on the way is dropped and reported as -EAGAIN.
 */
static int
virt_fail(struct virt *v, virConnectPtr c, struct err *e, const char *what)
{
	virErrorPtr le = virGetLastError();
	char msg[ERR_MSG_MAX];
	int code = virt_code_to_errno(le ? le->code : VIR_ERR_INTERNAL_ERROR);

	/* copied first: the next public call (IsAlive) resets the error */
	(void)snprintf(msg, sizeof(msg), "%s",
	    le && le->message ? le->message : "unknown error");
	if (c && virConnectIsAlive(c) != 1) {
		virt_conn_drop(v, c);
		code = -EAGAIN;
	}
	if (code == -EAGAIN)
		return err_set(
		    e, -EAGAIN, "libvirt unreachable: %s: %s", what, msg);
	return err_set(e, code, "%s: %s", what, msg);
}

/*
 * Returns a connection for the caller's use alone (release it with
 * virt_conn_put): an idle one, or a new one. After a drop only one thread
 * at a time reopens, at most once per reconnect interval; the others fail
 * fast. Returns 0, or -EAGAIN when libvirt is unreachable.
 */
static int
virt_conn_get(struct virt *v, virConnectPtr *ret, struct err *e)
{
	struct virt_conn *k, **pp, *dead = NULL, *nk;
	uint64_t gen;
	bool reopen;
	virErrorPtr le;

	pthread_mutex_lock(&virt_conns_lock);
	gen = __atomic_load_n(&v->generation, __ATOMIC_ACQUIRE);
	for (pp = &virt_conns; (k = *pp) != NULL;) {
		if (k->v != v || k->busy || k == v->keeper) {
			pp = &k->next;
			continue;
		}
		if (k->generation == gen && virConnectIsAlive(k->c) == 1) {
			k->busy = true;
			*ret = k->c;
			pthread_mutex_unlock(&virt_conns_lock);
			while ((k = dead) != NULL) {
				dead = k->next;
				virt_conn_free(k);
			}
			return 0;
		}
		*pp = k->next; /* dead or of an older generation */
		k->next = dead;
		dead = k;
	}
	/* none idle: open one more, in parallel while libvirt is known to
	 * work, else one thread at a time */
	reopen = !__atomic_load_n(&v->alive, __ATOMIC_ACQUIRE);
	if (reopen && (v->connecting || util_now_ms() < v->next_attempt_ms)) {
		pthread_mutex_unlock(&virt_conns_lock);
		while ((k = dead) != NULL) {
			dead = k->next;
			virt_conn_free(k);
		}
		return err_set(e, -EAGAIN, "libvirt unreachable (%s)", v->uri);
	}
	if (reopen)
		v->connecting = true;
	pthread_mutex_unlock(&virt_conns_lock);
	while ((k = dead) != NULL) {
		dead = k->next;
		virt_conn_free(k);
	}

	nk = calloc(1, sizeof(*nk));
	if (nk && (nk->c = virConnectOpen(v->uri)) != NULL) {
		nk->v = v;
		nk->generation = gen;
		nk->busy = true;
		/* without it a daemon that hangs (not dies) hangs every
		 * call */
		if (v->keepalive_interval_s > 0 && virt_event_loop_running &&
		    virConnectSetKeepAlive(
			nk->c, v->keepalive_interval_s, v->keepalive_count) < 0)
			virResetLastError(); /* the test driver has none */
		/* the event loop thread tells when the keepalive gives up */
		if (virt_event_loop_running &&
		    virConnectRegisterCloseCallback(
			nk->c, virt_conn_closed, nk, NULL) == 0)
			nk->close_cb = true;
		else
			virResetLastError();
	}

	pthread_mutex_lock(&virt_conns_lock);
	if (reopen)
		v->connecting = false;
	if (nk == NULL || nk->c == NULL) {
		v->next_attempt_ms = util_now_ms() + v->reconnect_interval_ms;
		pthread_mutex_unlock(&virt_conns_lock);
		if (nk == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		free(nk);
		virt_set_alive(v, false);
		le = virGetLastError();
		return err_set(e, -EAGAIN, "libvirt unreachable: %s",
		    le && le->message ? le->message : v->uri);
	}
	nk->next = virt_conns;
	virt_conns = nk;
	if (reopen && v->ever_connected)
		__atomic_add_fetch(&v->reconnects, 1, __ATOMIC_RELAXED);
	v->ever_connected = true;
	if (v->keeper == NULL) {
		/* the first connection stays open, idle, until virt_close;
		 * the caller gets a second one */
		v->keeper = nk;
		nk->busy = false;
		pthread_mutex_unlock(&virt_conns_lock);
		virt_set_alive(v, true);
		return virt_conn_get(v, ret, e);
	}
	/* a connection that works, of the generation current when we
	 * began: the state is up again (unless it was dropped meanwhile) */
	if (__atomic_load_n(&v->generation, __ATOMIC_ACQUIRE) == gen)
		virt_set_alive(v, true);
	pthread_mutex_unlock(&virt_conns_lock);
	*ret = nk->c;
	return 0;
}

static int
virt_check_uuid(const char *uuid, struct err *e)
{
	if (uuid == NULL || !util_uuid_is_canonical(uuid))
		return err_set(e, -EINVAL, "'%s' is not a canonical uuid",
		    uuid ? uuid : "(null)");
	return 0;
}

/* Connection and domain of uuid, each with a reference of the caller's. */
static int
virt_dom_get(struct virt *v, const char *uuid, virConnectPtr *ret_c,
    virDomainPtr *ret_d, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	virDomainPtr d;
	int r;

	if ((r = virt_check_uuid(uuid, e)) < 0)
		return r;
	if ((r = virt_conn_get(v, &c, e)) < 0)
		return r;
	d = virDomainLookupByUUIDString(c, uuid);
	if (d == NULL)
		return virt_fail(v, c, e, "domain lookup");
	*ret_c = TAKE_PTR(c);
	*ret_d = d;
	return 0;
}

/*
 * 1 if d carries hyperlet's <metadata> naming instance uuid (the uuid
 * attribute of its <hyperlet:instance> start tag), 0 if it carries none or
 * names another, or a negative errno (-ENOENT: the domain vanished).
 */
static int
virt_dom_owned(struct virt *v, virConnectPtr c, virDomainPtr d,
    const char *uuid, struct err *e)
{
	char want[UUID_STR_LEN + 8], *md, *end;
	int owned;

	md = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS, 0);
	if (md == NULL) {
		if (virt_last_code() == VIR_ERR_NO_DOMAIN_METADATA) {
			virResetLastError();
			return 0;
		}
		return virt_fail(v, c, e, "domain metadata");
	}
	/* only the start tag: a disk's bdm_uuid="..." must not count */
	if ((end = strchr(md, '>')) != NULL)
		*end = '\0';
	(void)snprintf(want, sizeof(want), " uuid=\"%s\"", uuid);
	owned = strstr(md, want) != NULL;
	if (!owned) {
		(void)snprintf(want, sizeof(want), " uuid='%s'", uuid);
		owned = strstr(md, want) != NULL;
	}
	free(md);
	return owned;
}

/*
 * virt_dom_get for a call that changes or removes the domain: the domain
 * must be hyperlet's instance uuid (virt_dom_owned). A domain of that uuid
 * hyperlet does not own is left untouched: -EPERM.
 */
static int
virt_own_dom_get(struct virt *v, const char *uuid, virConnectPtr *ret_c,
    virDomainPtr *ret_d, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if ((r = virt_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if ((r = virt_dom_owned(v, c, d, uuid, e)) < 0)
		return r;
	if (r == 0)
		return err_set(e, -EPERM,
		    "domain %s is not a hyperlet instance: left alone", uuid);
	*ret_c = TAKE_PTR(c);
	*ret_d = TAKE_PTR(d);
	return 0;
}

/* --- lifecycle events (virt_watch) ---------------------------------- */

static void
virt_watch_init(struct virt *v)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&v->watch_lock, NULL);
	pthread_mutex_init(&v->removed_lock, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->removed_cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < ELEMENTSOF(v->watch_ids); i++)
		v->watch_ids[i] = -1;
}

/* Waits up to ms for a DEVICE_REMOVED event after the seen-th. */
static void
virt_removed_wait(struct virt *v, uint64_t seen, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&v->removed_lock);
	while (__atomic_load_n(&v->removed, __ATOMIC_ACQUIRE) == seen)
		if (pthread_cond_timedwait(
			&v->removed_cond, &v->removed_lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&v->removed_lock);
}

/* The callbacks below run on libvirt's event loop thread. They read the
 * domain's uuid and name (local: no round trip), hand one struct
 * virt_event to watch_fn and never call libvirt otherwise. */
static void
virt_watch_emit(struct virt *v, virDomainPtr dom, struct virt_event *ev)
{
	struct virt_domain id;

	if (virt_list_ident(dom, &id) < 0) {
		virResetLastError();
		return;
	}
	memcpy(ev->uuid, id.uuid, sizeof(ev->uuid));
	ev->named = id.named;
	v->watch_fn(v->watch_arg, ev);
}

static enum virt_lifecycle
virt_lifecycle_of(int event)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED:
		return VIRT_LC_DEFINED;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		return VIRT_LC_UNDEFINED;
	case VIR_DOMAIN_EVENT_STARTED:
		return VIRT_LC_STARTED;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		return VIRT_LC_SUSPENDED;
	case VIR_DOMAIN_EVENT_RESUMED:
		return VIRT_LC_RESUMED;
	case VIR_DOMAIN_EVENT_STOPPED:
		return VIRT_LC_STOPPED;
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		return VIRT_LC_SHUTDOWN;
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		return VIRT_LC_PMSUSPENDED;
	case VIR_DOMAIN_EVENT_CRASHED:
		return VIRT_LC_CRASHED;
	default:
		return VIRT_LC_OTHER;
	}
}

static int
virt_watch_lifecycle(
    virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct virt_event ev = {.kind = VIRT_EVENT_LIFECYCLE};

	(void)c;
	ev.lifecycle = virt_lifecycle_of(event);
	/* a QEMU that died (stopped, detail crashed), or a guest that
	 * panicked with on_crash preserve (event crashed) */
	ev.crashed = (event == VIR_DOMAIN_EVENT_STOPPED &&
			 detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED) ||
	    event == VIR_DOMAIN_EVENT_CRASHED;
	virt_watch_emit(opaque, dom, &ev);
	return 0;
}

static void
virt_watch_reboot(virConnectPtr c, virDomainPtr dom, void *opaque)
{
	struct virt_event ev = {.kind = VIRT_EVENT_REBOOT};

	(void)c;
	virt_watch_emit(opaque, dom, &ev);
}

static void
virt_watch_removed(
    virConnectPtr c, virDomainPtr dom, const char *alias, void *opaque)
{
	struct virt *v = opaque;
	struct virt_event ev = {.kind = VIRT_EVENT_DEVICE_REMOVED};

	(void)c;
	(void)alias;
	pthread_mutex_lock(&v->removed_lock);
	__atomic_add_fetch(&v->removed, 1, __ATOMIC_ACQ_REL);
	pthread_cond_broadcast(&v->removed_cond);
	pthread_mutex_unlock(&v->removed_lock);
	virt_watch_emit(v, dom, &ev);
}

static void
virt_watch_closed(virConnectPtr c, int reason, void *opaque)
{
	struct virt *v = opaque;
	struct virt_event ev = {.kind = VIRT_EVENT_LOST};

	(void)c;
	(void)reason;
	if (!__atomic_exchange_n(&v->watch_lost, true, __ATOMIC_ACQ_REL))
		v->watch_fn(v->watch_arg, &ev);
}

/* libvirt frees a registration once no dispatch uses it any more. */
static void
virt_watch_freecb(void *opaque)
{
	struct virt *v = opaque;

	pthread_mutex_lock(&v->removed_lock);
	__atomic_sub_fetch(&v->watch_live, 1, __ATOMIC_ACQ_REL);
	pthread_cond_broadcast(&v->removed_cond);
	pthread_mutex_unlock(&v->removed_lock);
}

/* Deregisters and closes the event connection (watch_lock held). */
static void
virt_watch_drop_locked(struct virt *v)
{
	if (v->watch == NULL)
		return;
	for (size_t i = 0; i < ELEMENTSOF(v->watch_ids); i++)
		if (v->watch_ids[i] >= 0) {
			if (virConnectDomainEventDeregisterAny(
				v->watch, v->watch_ids[i]) < 0)
				virResetLastError(); /* a dead connection */
			v->watch_ids[i] = -1;
		}
	if (v->watch_close_cb &&
	    virConnectUnregisterCloseCallback(v->watch, virt_watch_closed) < 0)
		virResetLastError();
	v->watch_close_cb = false;
	(void)virConnectClose(v->watch);
	v->watch = NULL;
}

/* Opens the event connection and registers the callbacks. See virt.h. */
int
virt_watch(struct virt *v, virt_event_fn fn, void *arg, struct err *e)
{
	static const int ids[] = {VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED};
	virConnectDomainEventGenericCallback cbs[] = {
	    VIR_DOMAIN_EVENT_CALLBACK(virt_watch_lifecycle),
	    VIR_DOMAIN_EVENT_CALLBACK(virt_watch_reboot),
	    VIR_DOMAIN_EVENT_CALLBACK(virt_watch_removed)};
	virErrorPtr le;
	int r = 1;

	if (fn == NULL)
		return err_set(e, -EINVAL, "no event function");
	if (!virt_event_loop_running)
		return err_set(e, -EIO, "libvirt's event loop is not running");
	pthread_mutex_lock(&v->watch_lock);
	if (v->watch && !__atomic_load_n(&v->watch_lost, __ATOMIC_ACQUIRE) &&
	    virConnectIsAlive(v->watch) == 1) {
		pthread_mutex_unlock(&v->watch_lock);
		return 0;
	}
	virt_watch_drop_locked(v);
	v->watch_fn = fn;
	v->watch_arg = arg;
	__atomic_store_n(&v->watch_lost, false, __ATOMIC_RELEASE);
	if ((v->watch = virConnectOpen(v->uri)) == NULL) {
		le = virGetLastError();
		r = err_set(e, -EAGAIN, "libvirt unreachable: %s",
		    le && le->message ? le->message : v->uri);
		goto out;
	}
	if (v->keepalive_interval_s > 0 &&
	    virConnectSetKeepAlive(
		v->watch, v->keepalive_interval_s, v->keepalive_count) < 0)
		virResetLastError(); /* the test driver has none */
	if (virConnectRegisterCloseCallback(
		v->watch, virt_watch_closed, v, NULL) == 0)
		v->watch_close_cb = true;
	else
		virResetLastError(); /* the test driver never closes */
	for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
		v->watch_ids[i] = virConnectDomainEventRegisterAny(
		    v->watch, NULL, ids[i], cbs[i], v, virt_watch_freecb);
		if (v->watch_ids[i] >= 0)
			__atomic_add_fetch(&v->watch_live, 1, __ATOMIC_ACQ_REL);
		else if (i > 0) /* reboot, device removed: nice to have */
			virResetLastError();
		else {
			r = virt_fail(v, NULL, e, "domain event registration");
			virt_watch_drop_locked(v);
			goto out;
		}
	}
out:
	pthread_mutex_unlock(&v->watch_lock);
	return r;
}

/* Whether the event connection is down. See virt.h. */
bool
virt_watch_lost(struct virt *v)
{
	bool lost;

	pthread_mutex_lock(&v->watch_lock);
	lost = v->watch == NULL ||
	    __atomic_load_n(&v->watch_lost, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&v->watch_lock);
	return lost;
}

/* Closes the event connection. See virt.h. */
void
virt_unwatch(struct virt *v)
{
	int64_t deadline = util_now_ms() + 2000;

	if (v == NULL)
		return;
	pthread_mutex_lock(&v->watch_lock);
	virt_watch_drop_locked(v);
	pthread_mutex_unlock(&v->watch_lock);
	/* no callback may run once the caller frees what watch_arg points
	 * to: wait (boundedly) until libvirt has freed every registration,
	 * which it does after a dispatch in progress has returned */
	while (__atomic_load_n(&v->watch_live, __ATOMIC_ACQUIRE) > 0 &&
	    util_now_ms() < deadline)
		virt_sleep_ms(10);
}

/* Opens a connection as o describes. See virt.h. */
int
virt_open(const struct virt_opts *o, struct virt **ret, struct err *e)
{
	_cleanup_(virt_closep) struct virt *v = NULL;
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	const char *type = o->virt_type ? o->virt_type : "kvm";
	int r;

	if (o->instances_path == NULL || !util_path_valid(o->instances_path))
		return err_set(e, -EINVAL,
		    "instances_path '%s': expected a normalised absolute path",
		    o->instances_path ? o->instances_path : "(null)");
	if (!STREQ(type, "kvm") && !STREQ(type, "qemu"))
		return err_set(
		    e, -EINVAL, "virt_type '%s': expected kvm or qemu", type);
	if (o->reconnect_interval_ms < 0)
		return err_set(e, -EINVAL, "reconnect_interval_ms < 0");
	if (o->keepalive_interval_s > 3600 || o->keepalive_count > 100)
		return err_set(e, -EINVAL, "keepalive out of range");
	if (o->detach_timeout_ms < 0)
		return err_set(e, -EINVAL, "detach_timeout_ms < 0");

	(void)pthread_once(&virt_once, virt_init_once);
	if (virt_init_rc < 0)
		return err_set(e, -EIO, "virInitialize failed");

	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	virt_watch_init(v);
	v->uri = strdup(o->uri ? o->uri : VIRT_URI_DEFAULT);
	v->virt_type = strdup(type);
	v->instances_path = strdup(o->instances_path);
	if (!v->uri || !v->virt_type || !v->instances_path)
		return err_set(e, -ENOMEM, "out of memory");
	v->reconnect_interval_ms =
	    o->reconnect_interval_ms ? o->reconnect_interval_ms : 1000;
	v->keepalive_interval_s =
	    o->keepalive_interval_s ? o->keepalive_interval_s : 5;
	v->keepalive_count = o->keepalive_count ? o->keepalive_count : 3;
	v->validate_xml = o->validate_xml;
	v->detach_timeout_ms = o->detach_timeout_ms ? o->detach_timeout_ms
						    : VIRT_DETACH_TIMEOUT_MS;
	v->alive_since_ms = util_now_ms();

	r = virt_conn_get(v, &c, e);
	if (r < 0 && !o->lazy)
		return r;
	if (r < 0)
		err_clear(e);
	*ret = TAKE_PTR(v);
	return 0;
}

/* Closes every connection of v (no call may be running). */
static void
virt_close_conns(struct virt *v)
{
	struct virt_conn *k, **pp, *mine = NULL;

	pthread_mutex_lock(&virt_conns_lock);
	for (pp = &virt_conns; (k = *pp) != NULL;)
		if (k->v == v) {
			*pp = k->next;
			k->next = mine;
			mine = k;
		} else
			pp = &k->next;
	v->keeper = NULL;
	pthread_mutex_unlock(&virt_conns_lock);
	while ((k = mine) != NULL) {
		mine = k->next;
		virt_conn_free(k);
	}
}

/* Closes and frees v. See virt.h. */
struct virt *
virt_close(struct virt *v)
{
	if (v == NULL)
		return NULL;
	virt_unwatch(v);
	virt_close_conns(v);
	pthread_mutex_destroy(&v->watch_lock);
	pthread_mutex_destroy(&v->removed_lock);
	pthread_cond_destroy(&v->removed_cond);
	free(v->uri);
	free(v->virt_type);
	free(v->instances_path);
	free(v);
	return NULL;
}

const char *
virt_uri(const struct virt *v)
{
	return v->uri;
}

const char *
virt_type(const struct virt *v)
{
	return v->virt_type;
}

const char *
virt_instances_path(const struct virt *v)
{
	return v->instances_path;
}

/* The directory of an instance's local disks. See virt.h. */
int
virt_instance_dir(
    const struct virt *v, const char *instance_uuid, char **ret, struct err *e)
{
	char *p;
	int r;

	if ((r = virt_check_uuid(instance_uuid, e)) < 0)
		return r;
	if (asprintf(&p, "%s%s%s", v->instances_path,
		STREQ(v->instances_path, "/") ? "" : "/", instance_uuid) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	*ret = p;
	return 0;
}

/* Probe: one round trip to libvirt. See virt.h. */
bool
virt_alive(struct virt *v)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	unsigned long ver;

	if (virt_conn_get(v, &c, NULL) < 0)
		return false;
	if (virConnectGetLibVersion(c, &ver) < 0) {
		(void)virt_fail(v, c, NULL, "version");
		virt_set_alive(v, false);
		return false;
	}
	virt_set_alive(v, true);
	return true;
}

/* The health state, no libvirt call. See virt.h. */
bool
virt_health(const struct virt *v, int64_t *ret_since_ms)
{
	if (ret_since_ms)
		*ret_since_ms =
		    __atomic_load_n(&v->alive_since_ms, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&v->alive, __ATOMIC_ACQUIRE);
}

uint64_t
virt_reconnects(const struct virt *v)
{
	return __atomic_load_n(&v->reconnects, __ATOMIC_RELAXED);
}

/* --- local disks -------------------------------------------------------- */

/* The instance's local disks, in process (lib/localdisk.c): no storage
 * pool, no libvirt call. See virt.h. */
int
virt_create_disks(struct virt *v, const struct instance *inst,
    const struct blockinfo *bi, const char *base_path, const char *base_format,
    uint64_t base_virtual_size, struct err *e)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	if ((r = virt_instance_dir(v, inst->uuid, &dir, e)) < 0)
		return r;
	return localdisk_create(
	    dir, inst, bi, base_path, base_format, base_virtual_size, e);
}

/* Removes the instance directory with its disks. See virt.h. */
int
virt_delete_disks(struct virt *v, const char *instance_uuid, struct err *e)
{
	_cleanup_free_ char *dir = NULL;
	int r;

	if ((r = virt_instance_dir(v, instance_uuid, &dir, e)) < 0)
		return r;
	return localdisk_delete(dir, e);
}

/* --- domains --------------------------------------------------------- */

/* Defines a domain from xml. See virt.h. */
int
virt_define(struct virt *v, const char *xml, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	virDomainPtr d;
	int r;

	if (xml == NULL)
		return err_set(e, -EINVAL, "no domain XML");
	if ((r = virt_conn_get(v, &c, e)) < 0)
		return r;
	d = virDomainDefineXMLFlags(
	    c, xml, v->validate_xml ? VIR_DOMAIN_DEFINE_VALIDATE : 0);
	if (d == NULL)
		return virt_fail(v, c, e, "define");
	(void)virDomainFree(d);
	return 0;
}

/* Destroys (if running) and undefines. See virt.h. */
int
virt_undefine(struct virt *v, const char *uuid, struct err *e)
{
	/* Richest first; drivers refuse flags they do not know (the test
	 * driver knows neither NVRAM nor checkpoints). */
	static const unsigned int flag_sets[] = {
	    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
		VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
		VIR_DOMAIN_UNDEFINE_NVRAM,
	    VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
		VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
	    0,
	};
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	size_t i;
	int r;

	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r == -ENOENT ? (err_clear(e), 0) : r;
	/* Whether it runs (or is paused) without a call of its own: the
	 * handle the lookup returned carries the domain's id (libvirt's
	 * lookup answers name, uuid and id; -1 for an inactive domain), as
	 * virDomainIsActive would have said then. The ownership check is
	 * virDomainGetMetadata, for which libvirtd formats only hyperlet's
	 * element. */
	if (virDomainGetID(d) != (unsigned int)-1 && virDomainDestroy(d) < 0) {
		int code = virt_last_code();

		/* It may have stopped, or vanished if transient, meanwhile. */
		if (code == VIR_ERR_NO_DOMAIN)
			return 0;
		if (code != VIR_ERR_OPERATION_INVALID)
			return virt_fail(v, c, e, "destroy");
	}
	/* skip the sets this driver refused before: the test driver
	 * refuses the first, and each refusal is a call */
	i = __atomic_load_n(&v->undefine_from, __ATOMIC_RELAXED);
	for (; i < ELEMENTSOF(flag_sets); i++) {
		if (virDomainUndefineFlags(d, flag_sets[i]) == 0)
			return 0;
		switch (virt_last_code()) {
		case VIR_ERR_NO_DOMAIN:
			return 0;
		case VIR_ERR_INVALID_ARG:
		case VIR_ERR_NO_SUPPORT:
			if (i + 1 < ELEMENTSOF(flag_sets))
				__atomic_store_n(&v->undefine_from,
				    (unsigned int)(i + 1), __ATOMIC_RELAXED);
			continue;
		case VIR_ERR_OPERATION_INVALID:
			/* a transient domain is gone once destroyed */
			if (virDomainIsPersistent(d) != 1)
				return 0;
			return virt_fail(v, c, e, "undefine");
		default:
			return virt_fail(v, c, e, "undefine");
		}
	}
	return virt_fail(v, c, e, "undefine");
}

/* Starts a defined domain. See virt.h. */
int
virt_start(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	/* drivers differ in how they refuse this (qemu: operation invalid,
	 * test: internal error) */
	if (virDomainIsActive(d) == 1)
		return err_set(e, -EBUSY, "start: domain is already running");
	if (virDomainCreate(d) < 0)
		return virt_fail(v, c, e, "start");
	return 0;
}

static bool
virt_dom_shutoff(virDomainPtr d)
{
	int st, reason;

	if (virDomainGetState(d, &st, &reason, 0) < 0)
		return virt_last_code() == VIR_ERR_NO_DOMAIN;
	return st == VIR_DOMAIN_SHUTOFF;
}

/* Graceful shutdown, then destroy. See virt.h. */
int
virt_stop(struct virt *v, const char *uuid, int timeout_ms, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int64_t deadline;
	int r;

	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if (virDomainIsActive(d) != 1)
		return err_set(e, -EBUSY, "stop: domain is not running");
	if (timeout_ms > 0) {
		if (virDomainShutdown(d) < 0) {
			if (virt_last_code() != VIR_ERR_OPERATION_INVALID)
				return virt_fail(v, c, e, "shutdown");
			if (virt_dom_shutoff(d))
				return 0;
		}
		deadline = util_now_ms() + timeout_ms;
		while (util_now_ms() < deadline) {
			if (virt_dom_shutoff(d))
				return 0;
			virt_sleep_ms(VIRT_POLL_MS);
		}
	}
	if (virDomainDestroy(d) < 0) {
		if (virt_dom_shutoff(d))
			return 0;
		return virt_fail(v, c, e, "destroy");
	}
	return 0;
}

/* Asks the guest to reboot. See virt.h. */
int
virt_reboot(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if (virDomainIsActive(d) != 1)
		return err_set(e, -EBUSY, "reboot: domain is not running");
	if (virDomainReboot(d, 0) < 0)
		return virt_fail(v, c, e, "reboot");
	return 0;
}

static enum instance_state
virt_map_state(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_SHUTDOWN:
	case VIR_DOMAIN_PMSUSPENDED:
		return INSTANCE_RUNNING;
	case VIR_DOMAIN_SHUTOFF:
		return INSTANCE_STOPPED;
	default:
		return INSTANCE_ERROR;
	}
}

/* What a domain's state and reason show, finer than virt_map_state:
 * paused and crashed apart (the lifecycle events' states). */
static enum instance_state
virt_observed_state(int st, int reason)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
	case VIR_DOMAIN_SHUTDOWN: /* shutting down: still running */
		return INSTANCE_RUNNING;
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_PMSUSPENDED:
		return INSTANCE_PAUSED;
	case VIR_DOMAIN_SHUTOFF:
		return reason == VIR_DOMAIN_SHUTOFF_CRASHED ? INSTANCE_CRASHED
							    : INSTANCE_STOPPED;
	case VIR_DOMAIN_CRASHED:
		return INSTANCE_CRASHED;
	default:
		return INSTANCE_ERROR;
	}
}

/* libvirt's state and reason for uuid's domain: 0, -ENOENT, -EIO. */
static int
dom_state(struct virt *v, const char *uuid, int *st, int *reason, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if ((r = virt_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if (virDomainGetState(d, st, reason, 0) < 0)
		return virt_fail(v, c, e, "state");
	return 0;
}

/* The state as lifecycle events report it. See virt.h. */
int
virt_observe(
    struct virt *v, const char *uuid, enum instance_state *ret, struct err *e)
{
	int st, reason, r;

	if ((r = dom_state(v, uuid, &st, &reason, e)) < 0)
		return r;
	*ret = virt_observed_state(st, reason);
	return 0;
}

/* The domain's state. See virt.h. */
int
virt_state(
    struct virt *v, const char *uuid, enum instance_state *ret, struct err *e)
{
	int st, reason, r;

	if ((r = dom_state(v, uuid, &st, &reason, e)) < 0)
		return r;
	*ret = virt_map_state(st);
	return 0;
}

/* libvirt's domain XML. See virt.h. */
int
virt_get_xml(struct virt *v, const char *uuid, bool inactive, char **ret_xml,
    struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	char *xml;
	int r;

	if ((r = virt_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	xml = virDomainGetXMLDesc(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
	if (xml == NULL)
		return virt_fail(v, c, e, "dumpxml");
	*ret_xml = xml;
	return 0;
}

/*
 * What identifies disk_xml's disk in libvirt's XML of the domain: its
 * "<serial>S</serial>" (a disk's serial names its BDM), else its
 * "<target dev='D'" (libvirt's quoting). *ret owned. -EINVAL, -ENOMEM.
 */
static int
virt_disk_needle(const char *disk_xml, char **ret, struct err *e)
{
	const char *a, *b;
	char q;
	int n;

	if ((a = strstr(disk_xml, "<serial>")) != NULL &&
	    (b = strstr(a, "</serial>")) != NULL) {
		n = (int)(b - a) + (int)strlen("</serial>");
		if ((*ret = strndup(a, (size_t)n)) == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		return 0;
	}
	if ((a = strstr(disk_xml, "<target dev=")) == NULL ||
	    ((q = a[12]) != '"' && q != '\'') ||
	    (b = strchr(a + 13, q)) == NULL)
		return err_set(e, -EINVAL, "disk XML without serial or target");
	if (asprintf(ret, "<target dev='%.*s'", (int)(b - a - 13), a + 13) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* 1 if libvirt's XML of d (live, or inactive) holds needle, 0 if not. */
static int
virt_dom_has(struct virt *v, virConnectPtr c, virDomainPtr d, bool inactive,
    const char *needle, struct err *e)
{
	char *xml =
	    virDomainGetXMLDesc(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
	int r;

	if (xml == NULL)
		return virt_fail(v, c, e, "dumpxml");
	r = strstr(xml, needle) != NULL;
	free(xml);
	return r;
}

/*
 * Detach from a running domain: from the config (if it still has the
 * disk) and live, then wait until the disk is gone from the live domain.
 * libvirt's live detach returns once QEMU asked the guest (or after its
 * own unplug wait) even when the guest never releases the device; the
 * volume is free only when the live XML lost it (what Nova waits for as
 * DEVICE_REMOVED). Reads the live XML again when a DEVICE_REMOVED event
 * arrives (virt_watch), else every VIRT_DETACH_POLL_MS, up to
 * v->detach_timeout_ms, then -ETIMEDOUT. A detach repeated after that
 * asks (live only: the config lost the disk already) and waits again.
 */
static int
virt_detach_live(struct virt *v, virConnectPtr c, virDomainPtr d,
    const char *disk_xml, struct err *e)
{
	_cleanup_free_ char *needle = NULL;
	unsigned int flags = 0;
	int64_t deadline;
	uint64_t seen;
	int r, in_live, in_cfg;

	if ((r = virt_disk_needle(disk_xml, &needle, e)) < 0)
		return r;
	if ((in_live = virt_dom_has(v, c, d, false, needle, e)) < 0 ||
	    (in_cfg = virt_dom_has(v, c, d, true, needle, e)) < 0)
		return in_live < 0 ? in_live : in_cfg;
	if (!in_live && !in_cfg)
		return err_set(
		    e, -ENOENT, "detach: the domain has no such disk");
	if (in_cfg)
		flags |= VIR_DOMAIN_AFFECT_CONFIG;
	if (in_live)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	if (virDomainDetachDeviceFlags(d, disk_xml, flags) < 0) {
		/* live only, after an earlier -ETIMEDOUT: QEMU may refuse a
		 * second unplug request while the first is pending; wait
		 * for that one like for this one */
		if (in_cfg || virConnectIsAlive(c) != 1)
			return virt_fail(v, c, e, "detach");
		virResetLastError();
	}
	if (!in_live)
		return 0;
	deadline = util_now_ms() + v->detach_timeout_ms;
	seen = __atomic_load_n(&v->removed, __ATOMIC_ACQUIRE);
	for (;;) {
		/* a domain that stopped meanwhile answers its inactive XML,
		 * which lost the disk above */
		if ((r = virt_dom_has(v, c, d, false, needle, e)) <= 0)
			return r;
		if (util_now_ms() >= deadline)
			break;
		virt_removed_wait(v, seen, VIRT_DETACH_POLL_MS);
		seen = __atomic_load_n(&v->removed, __ATOMIC_ACQUIRE);
	}
	return err_set(e, -ETIMEDOUT,
	    "the guest has not released the disk within %d s",
	    (v->detach_timeout_ms + 999) / 1000);
}

static int
virt_device(struct virt *v, const char *uuid, const char *disk_xml, bool attach,
    struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
	int r, active;

	if (disk_xml == NULL)
		return err_set(e, -EINVAL, "no disk XML");
	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if ((active = virDomainIsActive(d)) < 0)
		return virt_fail(v, c, e, "state");
	if (active && !attach)
		return virt_detach_live(v, c, d, disk_xml, e);
	if (active)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	r = attach ? virDomainAttachDeviceFlags(d, disk_xml, flags)
		   : virDomainDetachDeviceFlags(d, disk_xml, flags);
	if (r < 0)
		return virt_fail(v, c, e, attach ? "attach" : "detach");
	return 0;
}

/* Attaches one disk, persistently and live. See virt.h. */
int
virt_attach_disk(
    struct virt *v, const char *uuid, const char *disk_xml, struct err *e)
{
	return virt_device(v, uuid, disk_xml, true, e);
}

/* Detaches one disk, persistently and live. See virt.h. */
int
virt_detach_disk(
    struct virt *v, const char *uuid, const char *disk_xml, struct err *e)
{
	return virt_device(v, uuid, disk_xml, false, e);
}

/* Attaches or detaches one <interface>, persistently and live. See
 * virt.h. */
int
virt_interface(struct virt *v, const char *uuid, const char *nic_xml,
    bool attach, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
	int r, active;

	if (nic_xml == NULL)
		return err_set(e, -EINVAL, "no interface XML");
	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	if ((active = virDomainIsActive(d)) < 0)
		return virt_fail(v, c, e, "state");
	if (active)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	r = attach ? virDomainAttachDeviceFlags(d, nic_xml, flags)
		   : virDomainDetachDeviceFlags(d, nic_xml, flags);
	if (r == 0)
		return 0;
	if (!attach && virt_last_code() == VIR_ERR_DEVICE_MISSING) {
		virResetLastError();
		return err_set(e, -ENOENT,
		    "detach: the domain has no such "
		    "interface");
	}
	r = virt_fail(
	    v, c, e, attach ? "interface attach" : "interface detach");
	if (r == -EOPNOTSUPP) {
		err_clear(e);
		return err_set(e, -EOPNOTSUPP,
		    "interface %s is not supported by the libvirt driver of %s",
		    attach ? "attach" : "detach", v->uri);
	}
	return r;
}

static int
virt_domain_cmp(const void *a, const void *b)
{
	return strcmp(((const struct virt_domain *)a)->uuid,
	    ((const struct virt_domain *)b)->uuid);
}

/* uuid, and whether d is named as hyperlet names its domains. */
static int
virt_list_ident(virDomainPtr d, struct virt_domain *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[VIR_UUID_BUFLEN];
	char name[DOMXML_NAME_MAX], *p = out->uuid;
	const char *got;

	/* both local: a virDomainPtr carries its uuid and name. The uuid is
	 * formatted here: virDomainGetUUIDString's g_snprintf was a tenth of
	 * a 10,000-domain reconciliation. */
	if (virDomainGetUUID(d, raw) < 0 || (got = virDomainGetName(d)) == NULL)
		return -1;
	for (size_t i = 0; i < VIR_UUID_BUFLEN; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[raw[i] >> 4];
		*p++ = hex[raw[i] & 15];
	}
	*p = '\0';
	domxml_domain_name(out->uuid, name);
	out->named = STREQ(got, name);
	return 0;
}

/*
 * The domains matching filter (persistent or transient) with their state,
 * from virConnectGetAllDomainStats(VIR_DOMAIN_STATS_STATE): one round trip
 * for all of them, however many there are. Appends to *out (grown as
 * needed; *n and *cap its length and size). Returns 0, -ENOTSUP when the
 * driver lacks the call (the caller falls back), -EAGAIN, -EIO, -ENOMEM.
 */
static int
virt_list_stats(struct virt *v, virConnectPtr c, unsigned int filter,
    struct virt_domain **out, size_t *n, size_t *cap, struct err *e)
{
	virDomainStatsRecordPtr *recs = NULL;
	struct virt_domain *grown;
	int nr, i, st, reason, r = 0;

	nr = virConnectGetAllDomainStats(
	    c, VIR_DOMAIN_STATS_STATE, &recs, filter);
	if (nr < 0) {
		/* no such call, or no such filter: the per-domain way */
		if (virt_last_code() == VIR_ERR_NO_SUPPORT ||
		    virt_last_code() == VIR_ERR_INVALID_ARG) {
			virResetLastError();
			return -ENOTSUP;
		}
		return virt_fail(v, c, e, "domain stats");
	}
	if (*n + (size_t)nr > *cap) {
		grown = realloc(*out, (*n + (size_t)nr + 1) * sizeof(**out));
		if (grown == NULL) {
			virDomainStatsRecordListFree(recs);
			return err_set(e, -ENOMEM, "out of memory");
		}
		*out = grown;
		*cap = *n + (size_t)nr + 1;
	}
	for (i = 0; i < nr; i++) {
		struct virt_domain *d = &(*out)[*n];

		if (virt_list_ident(recs[i]->dom, d) < 0) {
			r = virt_fail(v, c, e, "domain uuid");
			break;
		}
		if (virTypedParamsGetInt(recs[i]->params, recs[i]->nparams,
			"state.state", &st) != 1)
			st = VIR_DOMAIN_NOSTATE;
		if (virTypedParamsGetInt(recs[i]->params, recs[i]->nparams,
			"state.reason", &reason) != 1)
			reason = 0;
		d->state = virt_map_state(st);
		d->observed = virt_observed_state(st, reason);
		d->persistent = filter == VIR_CONNECT_LIST_DOMAINS_PERSISTENT;
		(*n)++;
	}
	virDomainStatsRecordListFree(recs);
	return r;
}

/* Reads one domain into out; returns 1 when it vanished meanwhile. Two
 * round trips (state, persistence) per domain: only for drivers without
 * virConnectGetAllDomainStats. */
static int
virt_list_one(struct virt *v, virConnectPtr c, virDomainPtr d,
    struct virt_domain *out, struct err *e)
{
	int st, reason, p;

	if (virt_list_ident(d, out) < 0)
		return virt_fail(v, c, e, "domain uuid");
	if (virDomainGetState(d, &st, &reason, 0) < 0 ||
	    (p = virDomainIsPersistent(d)) < 0)
		return virt_last_code() == VIR_ERR_NO_DOMAIN
		    ? 1
		    : virt_fail(v, c, e, "domain state");
	out->state = virt_map_state(st);
	out->observed = virt_observed_state(st, reason);
	out->persistent = p == 1;
	return 0;
}

/* virt_list for drivers without virConnectGetAllDomainStats. */
static int
virt_list_each(struct virt *v, virConnectPtr c, struct virt_domain **ret,
    size_t *ret_n, struct err *e)
{
	_cleanup_free_ struct virt_domain *out = NULL;
	virDomainPtr *doms = NULL;
	size_t n_out = 0;
	int n, i, r;

	n = virConnectListAllDomains(c, &doms, 0);
	if (n < 0)
		return virt_fail(v, c, e, "list domains");
	out = calloc(n > 0 ? (size_t)n : 1, sizeof(*out));
	r = out ? 0 : err_set(e, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (r >= 0) {
			r = virt_list_one(v, c, doms[i], &out[n_out], e);
			if (r == 0)
				n_out++;
			else if (r == 1)
				r = 0;
		}
		(void)virDomainFree(doms[i]);
	}
	free(doms);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(out);
	*ret_n = n_out;
	return 0;
}

/* Every domain, for reconciliation. See virt.h. */
int
virt_list(
    struct virt *v, struct virt_domain **ret, size_t *ret_n, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_free_ struct virt_domain *out = NULL;
	size_t n = 0, cap = 0, i, k;
	int r;

	if ((r = virt_conn_get(v, &c, e)) < 0)
		return r;
	/* persistent and transient apart: the records do not say which */
	r = virt_list_stats(
	    v, c, VIR_CONNECT_LIST_DOMAINS_PERSISTENT, &out, &n, &cap, e);
	if (r == 0)
		r = virt_list_stats(v, c, VIR_CONNECT_LIST_DOMAINS_TRANSIENT,
		    &out, &n, &cap, e);
	if (r == -ENOTSUP) {
		free(TAKE_PTR(out));
		n = 0;
		r = virt_list_each(v, c, &out, &n, e);
	}
	if (r < 0)
		return r;
	if (out == NULL && (out = calloc(1, sizeof(*out))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	qsort(out, n, sizeof(*out), virt_domain_cmp);
	/* a domain made persistent between the two calls is in both */
	for (i = k = 0; i < n; i++)
		if (k == 0 || !STREQ(out[k - 1].uuid, out[i].uuid))
			out[k++] = out[i];
	*ret = TAKE_PTR(out);
	*ret_n = k;
	return 0;
}

/* Whether instance uuid's domain name is another uuid's. See virt.h. */
int
virt_name_taken(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	char name[DOMXML_NAME_MAX], got[VIR_UUID_STRING_BUFLEN];
	int r;

	if ((r = virt_check_uuid(uuid, e)) < 0 ||
	    (r = virt_conn_get(v, &c, e)) < 0)
		return r;
	domxml_domain_name(uuid, name);
	if ((d = virDomainLookupByName(c, name)) == NULL) {
		if (virt_last_code() == VIR_ERR_NO_DOMAIN) {
			virResetLastError();
			return 0;
		}
		return virt_fail(v, c, e, "domain lookup");
	}
	if (virDomainGetUUIDString(d, got) < 0)
		return virt_fail(v, c, e, "domain uuid");
	return strcasecmp(got, uuid) != 0;
}

/* Whether the domain carries hyperlet's metadata. See virt.h. */
int
virt_has_metadata(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if ((r = virt_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	return virt_dom_owned(v, c, d, uuid, e);
}

/* --- a domain's disks (reconciliation) --------------------------------- */

/* The text of the attribute "name='" ... "'" or element "<name>" ...
 * "</name>" between p and end into out (at most outsz - 1 bytes). Returns
 * 1 when found and it fits, 0 otherwise. libvirt formats its XML itself:
 * attributes in single quotes, text escaped (a serial with an entity in it
 * is copied as escaped, so it matches no serial hyperlet writes). */
static int
virt_xml_between(const char *p, const char *end, const char *open,
    const char *close, char *out, size_t outsz)
{
	const char *a, *b;

	a = strstr(p, open);
	if (a == NULL || a >= end)
		return 0;
	a += strlen(open);
	b = strstr(a, close);
	if (b == NULL || b > end || (size_t)(b - a) >= outsz)
		return 0;
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
	return 1;
}

/* The serial and target of every <disk> of the domain's persistent
 * definition. See virt.h. */
int
virt_domain_disks(struct virt *v, const char *uuid, struct virt_disk **ret,
    size_t *ret_n, struct err *e)
{
	_cleanup_free_ char *xml = NULL;
	_cleanup_free_ struct virt_disk *out = NULL;
	size_t n = 0, cap = 0;
	const char *p, *end;
	int r;

	if ((r = virt_get_xml(v, uuid, true, &xml, e)) < 0)
		return r;
	for (p = strstr(xml, "<disk "); p; p = strstr(end, "<disk ")) {
		struct virt_disk d = {0};
		const char *t;

		end = strstr(p, "</disk>");
		if (end == NULL)
			return err_set(e, -EIO,
			    "domain %s: a <disk> without its end", uuid);
		t = strstr(p, "<target ");
		if (t == NULL || t >= end ||
		    !virt_xml_between(
			t, end, "dev='", "'", d.dev, sizeof(d.dev)))
			continue;
		(void)virt_xml_between(p, end, "<serial>", "</serial>",
		    d.serial, sizeof(d.serial));
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct virt_disk *nv =
			    reallocarray(out, ncap, sizeof(*nv));

			if (nv == NULL)
				return err_set(e, -ENOMEM, "out of memory");
			out = nv;
			cap = ncap;
		}
		out[n++] = d;
	}
	if (out == NULL && (out = calloc(1, sizeof(*out))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	*ret = TAKE_PTR(out);
	*ret_n = n;
	return 0;
}

/* The hex value of attribute name (" name='0x..'") within [p, end), or
 * -1. */
static long
virt_xml_hex_attr(const char *p, const char *end, const char *name)
{
	char key[32], val[16], *stop;
	long v;

	(void)snprintf(key, sizeof(key), " %s='", name);
	if (!virt_xml_between(p, end, key, "'", val, sizeof(val)))
		return -1;
	v = strtol(val, &stop, 0);
	if (*stop != '\0' || v < 0)
		return -1;
	return v;
}

/* The MAC and PCI address of every <interface> of the domain. See
 * virt.h. */
int
virt_domain_nics(struct virt *v, const char *uuid, struct virt_nic **ret,
    size_t *ret_n, struct err *e)
{
	_cleanup_free_ char *xml = NULL;
	_cleanup_free_ struct virt_nic *out = NULL;
	size_t n = 0, cap = 0;
	const char *p, *end;
	int r;

	if ((r = virt_get_xml(v, uuid, false, &xml, e)) < 0)
		return r;
	for (p = strstr(xml, "<interface "); p;
	     p = strstr(end, "<interface ")) {
		struct virt_nic d = {0};
		const char *a;

		end = strstr(p, "</interface>");
		if (end == NULL)
			return err_set(e, -EIO,
			    "domain %s: an <interface> without its end", uuid);
		if (!virt_xml_between(
			p, end, "<mac address='", "'", d.mac, sizeof(d.mac)))
			continue;
		a = strstr(p, "<address type='pci'");
		if (a != NULL && a < end) {
			const char *ae = strstr(a, "/>");
			long dom, bus, slot, fn;

			if (ae == NULL || ae > end)
				ae = end;
			dom = virt_xml_hex_attr(a, ae, "domain");
			bus = virt_xml_hex_attr(a, ae, "bus");
			slot = virt_xml_hex_attr(a, ae, "slot");
			fn = virt_xml_hex_attr(a, ae, "function");
			if (dom >= 0 && dom <= 0xffff && bus >= 0 &&
			    bus <= 0xff && slot >= 0 && slot <= 0x1f &&
			    fn >= 0 && fn <= 7)
				(void)snprintf(d.pci, sizeof(d.pci),
				    "%04lx:%02lx:%02lx.%lx", dom, bus, slot,
				    fn);
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct virt_nic *nv =
			    reallocarray(out, ncap, sizeof(*nv));

			if (nv == NULL)
				return err_set(e, -ENOMEM, "out of memory");
			out = nv;
			cap = ncap;
		}
		out[n++] = d;
	}
	if (out == NULL && (out = calloc(1, sizeof(*out))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	*ret = TAKE_PTR(out);
	*ret_n = n;
	return 0;
}

/* Attaches or detaches one disk in the persistent definition only. See
 * virt.h. */
int
virt_disk_config(struct virt *v, const char *uuid, const char *disk_xml,
    bool attach, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_(virt_dom_freep) virDomainPtr d = NULL;
	int r;

	if (disk_xml == NULL)
		return err_set(e, -EINVAL, "no disk XML");
	if ((r = virt_own_dom_get(v, uuid, &c, &d, e)) < 0)
		return r;
	r = attach
	    ? virDomainAttachDeviceFlags(d, disk_xml, VIR_DOMAIN_AFFECT_CONFIG)
	    : virDomainDetachDeviceFlags(d, disk_xml, VIR_DOMAIN_AFFECT_CONFIG);
	if (r < 0)
		return virt_fail(
		    v, c, e, attach ? "attach (config)" : "detach (config)");
	return 0;
}

/* --- the node (issue 13) --------------------------------------------- */

/* libvirt's packed version (major * 1000000 + minor * 1000 + release) as
 * text. */
static void
virt_version_text(unsigned long ver, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "%lu.%lu.%lu", ver / 1000000,
	    (ver / 1000) % 1000, ver % 1000);
}

/* Facts about the host. See virt.h. */
int
virt_node_facts(struct virt *v, struct virt_node_facts *ret, struct err *e)
{
	_cleanup_(virt_conn_unrefp) virConnectPtr c = NULL;
	_cleanup_free_ char *caps = NULL;
	struct virt_node_facts f = {0};
	virNodeInfo ni;
	unsigned long ver = 0;
	const char *type, *host, *cpu, *cend;
	int r;

	if ((r = virt_conn_get(v, &c, e)) < 0)
		return r;
	if (virNodeGetInfo(c, &ni) < 0)
		return virt_fail(v, c, e, "node info");
	f.cpus = ni.cpus;
	f.memory_mb = (int64_t)(ni.memory / 1024);
	f.sockets = (int)(ni.nodes * ni.sockets);
	f.cores = (int)ni.cores;
	f.threads = (int)ni.threads;
	(void)snprintf(f.arch, sizeof(f.arch), "%s", ni.model);
	if ((type = virConnectGetType(c)) == NULL)
		return virt_fail(v, c, e, "hypervisor type");
	(void)snprintf(
	    f.hypervisor_type, sizeof(f.hypervisor_type), "%s", type);
	if (virConnectGetVersion(c, &ver) < 0)
		return virt_fail(v, c, e, "hypervisor version");
	virt_version_text(
	    ver, f.hypervisor_version, sizeof(f.hypervisor_version));
	if (virConnectGetLibVersion(c, &ver) < 0)
		return virt_fail(v, c, e, "libvirt version");
	virt_version_text(ver, f.libvirt_version, sizeof(f.libvirt_version));
	if ((caps = virConnectGetCapabilities(c)) == NULL)
		return virt_fail(v, c, e, "capabilities");
	/* <capabilities><host>...<cpu><arch>x86_64</arch><model>EPYC-Rome
	 * </model>...</cpu>: the first <cpu> of <host>, a text scan as in
	 * virt_domain_disks (libvirt formats it itself) */
	if ((host = strstr(caps, "<host>")) != NULL &&
	    (cpu = strstr(host, "<cpu>")) != NULL &&
	    (cend = strstr(cpu, "</cpu>")) != NULL) {
		(void)virt_xml_between(
		    cpu, cend, "<arch>", "</arch>", f.arch, sizeof(f.arch));
		(void)virt_xml_between(cpu, cend, "<model>", "</model>",
		    f.cpu_model, sizeof(f.cpu_model));
	}
	*ret = f;
	return 0;
}
