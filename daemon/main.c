/*
 * hyperletd: options, start-up and teardown order, and the signal loop
 * (style.md 8). Start-up runs top to bottom: configuration, log, signal
 * mask (before any thread), state directories, store (migrated), libvirt,
 * reconciliation, the background online data migration, the API, then
 * READY=1. The main thread then only waits for signals with sigtimedwait
 * and pings the systemd watchdog; every signal is handled here in normal
 * context, never in a handler. Teardown is the reverse order. The `db`
 * subcommands run the store's maintenance without starting anything else.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "api.h"
#include "cfg.h"
#include "compute.h"
#include "events.h"
#include "domevents.h"
#include "hyperlet.h"
#include "placement_sync.h"
#include "log.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "virt.h"

#define MIGRATE_BATCH 50 /* rows per online-migration batch */
#define MIGRATE_PAUSE_MS 50 /* between background batches */
/* compute_sweep after start-up: at 2 s, 10 s, then every 60 s */
#define SWEEP_FIRST_MS 2000
#define SWEEP_SECOND_MS 8000
#define SWEEP_EVERY_MS 60000
/* the libvirt probe that keeps /v1/health's state fresh (virt_alive) */
#define PROBE_EVERY_MS 2000

/* Exit codes of `db online-migrate`, as nova-manage's. */
#define EXIT_MIGRATE_MORE 1 /* --max-count reached, rows remain */
#define EXIT_MIGRATE_ERROR 2

struct options {
	const char *config;
	const char *listen;
	const char *state_dir;
	const char *libvirt_uri;
	const char *virt_type;
	const char *volume_roots;
	bool check_config;
	bool debug;
	long max_count; /* -1: not given */
};

/* The background online data migration (its own store connection). */
struct migrator {
	pthread_t thread;
	bool started;
	atomic_bool stop;
	const char *db_path;
	bool sync_normal;
};

/* The background sweep of rolled-back builds (compute_sweep), on the
 * start-up connection, which serve() hands over once reconciliation is
 * done: one SQLite connection fewer in an idle daemon. */
struct sweeper {
	pthread_t thread;
	bool started;
	atomic_bool stop;
	struct hyperlet *h;
	struct store *store; /* owned; the thread closes it */
};

static void usage(FILE *f);
static int parse_options(int argc, char **argv, struct options *o);
static int load_config(const struct options *o, bool to_log, struct cfg *c);
static int make_dir(const char *path, mode_t mode);
static int db_command(
    const struct cfg *c, const struct options *o, int argc, char **argv);
static int db_version(const struct cfg *c);
static int db_sync(const struct cfg *c);
static int db_online_migrate(const struct cfg *c, long max_count);
static void *migrator_run(void *arg);
static int reconcile(struct hyperlet *h, struct store *s);
static int serve(struct cfg *c, const struct options *o);
static void reload(const struct options *o, struct api *api);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: hyperletd [options]\n"
	    "       hyperletd [options] db version|sync\n"
	    "       hyperletd [options] db online-migrate [--max-count N]\n"
	    "\n"
	    "  -f, --config FILE       configuration file (default: none, "
	    "embedded defaults)\n"
	    "  -l, --listen ADDR:PORT  [api] listen (default " CFG_DEFAULT_LISTEN
	    ")\n"
	    "  -s, --state-dir DIR     [storage] state_dir (default " CFG_DEFAULT_STATE_DIR
	    ")\n"
	    "  -u, --libvirt-uri URI   [libvirt] uri (default " CFG_DEFAULT_URI
	    ")\n"
	    "  -t, --virt-type TYPE    [libvirt] virt_type: kvm or qemu\n"
	    "  -r, --volume-roots LIST [storage] volume_roots (default: none)\n"
	    "  -F, --foreground        accepted for compatibility: hyperletd "
	    "never forks\n"
	    "  -n, --check-config      check the configuration and exit\n"
	    "  -d, --debug             log at debug level\n"
	    "  -m, --max-count N       db online-migrate: at most N rows\n"
	    "  -h, --help              this help\n"
	    "  -V, --version           print the version\n"
	    "\n"
	    "See hyperletd(8) and hyperlet.conf(5).\n");
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'f'},
	    {"listen", required_argument, NULL, 'l'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"libvirt-uri", required_argument, NULL, 'u'},
	    {"virt-type", required_argument, NULL, 't'},
	    {"volume-roots", required_argument, NULL, 'r'},
	    {"foreground", no_argument, NULL, 'F'},
	    {"check-config", no_argument, NULL, 'n'},
	    {"debug", no_argument, NULL, 'd'},
	    {"max-count", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	*o = (struct options){.max_count = -1};
	while ((ch = getopt_long(
		    argc, argv, "f:l:s:u:t:r:Fndm:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o->config = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'u':
			o->libvirt_uri = optarg;
			break;
		case 't':
			o->virt_type = optarg;
			break;
		case 'r':
			o->volume_roots = optarg;
			break;
		case 'F':
			break;
		case 'n':
			o->check_config = true;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'm': {
			char *end;

			errno = 0;
			o->max_count = strtol(optarg, &end, 10);
			if (*end || errno || end == optarg ||
			    o->max_count <= 0 || o->max_count > INT_MAX) {
				fprintf(stderr,
				    "hyperletd: --max-count: expected a "
				    "positive integer, got '%s'\n",
				    optarg);
				return -EINVAL;
			}
			break;
		}
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("hyperletd %s (database schema %d)\n",
			    PACKAGE_VERSION, STORE_SCHEMA_VERSION);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Defaults, the file, then the command line, then cfg_finish. On failure
 * reports the error ("file:line: message") and returns < 0: as a log line
 * when to_log (the daemon: under systemd it gets the err priority), else
 * bare on stderr (--check-config, db commands).
 */
static int
load_config(const struct options *o, bool to_log, struct cfg *c)
{
	static const struct {
		size_t offset;
		const char *section, *name, *flag;
	} overrides[] = {
	    {offsetof(struct options, listen), "api", "listen", "--listen"},
	    {offsetof(struct options, state_dir), "storage", "state_dir",
		"--state-dir"},
	    {offsetof(struct options, libvirt_uri), "libvirt", "uri",
		"--libvirt-uri"},
	    {offsetof(struct options, virt_type), "libvirt", "virt_type",
		"--virt-type"},
	    {offsetof(struct options, volume_roots), "storage", "volume_roots",
		"--volume-roots"},
	};
	const char *flag = NULL; /* the option at fault */
	struct err e = {0};
	int r;

	if ((r = cfg_defaults(c)) < 0) {
		e.code = r;
		snprintf(e.msg, sizeof(e.msg), "out of memory");
		goto fail;
	}
	if (o->config && (r = cfg_load(o->config, c, &e)) < 0)
		goto fail;
	for (size_t i = 0; i < ELEMENTSOF(overrides); i++) {
		const char *v = *(
		    const char *const *)((const char *)o + overrides[i].offset);

		if (!v)
			continue;
		if ((r = cfg_set(c, overrides[i].section, overrides[i].name, v,
			 &e)) < 0) {
			flag = overrides[i].flag;
			goto fail;
		}
	}
	if (o->debug)
		c->log_level = LOG_DEBUG;
	if ((r = cfg_finish(c, &e)) < 0)
		goto fail;
	/* GnuTLS judges it (cfg.c does not link GnuTLS) */
	if ((r = tls_priorities_check(c->tls_priorities, &e)) < 0) {
		struct err ke = {0};

		r = cfg_err_key(
		    c, "api", "tls_priorities", &ke, r, "%s", e.msg);
		e = ke;
		goto fail;
	}
	return 0;
fail:
	if (to_log)
		log_err("%s%s%s", flag ? flag : "", flag ? ": " : "", e.msg);
	else
		fprintf(stderr, "%s%s%s\n", flag ? flag : "", flag ? ": " : "",
		    e.msg);
	return r;
}

/* mkdir -p path; the last component, if made here, gets mode; missing
 * parents 0755 (less the umask). An existing directory is left as is. */
static int
make_dir(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	/* exactly mode, whatever the umask (the unit's is 0027, and QEMU
	 * must traverse the instances and images directories) */
	if (chmod(p, mode) < 0)
		return -errno;
	return 0;
}

static int
db_version(const struct cfg *c)
{
	struct store_opts so = {.no_migrate = true};
	struct store *s = NULL;
	struct err e = {0};
	int v = 0, r;

	/* a query must not create the database: no_migrate does not */
	if ((r = store_open(c->db_path, &so, &s, &e)) == -ENOENT) {
		printf("0\n");
		return EXIT_SUCCESS;
	}
	if (r < 0 || (r = store_schema_version(s, &v, &e)) < 0) {
		fprintf(stderr, "hyperletd: %s: %s\n", c->db_path, e.msg);
		store_close(s);
		return EXIT_FAILURE;
	}
	store_close(s);
	printf("%d\n", v);
	return EXIT_SUCCESS;
}

static int
db_sync(const struct cfg *c)
{
	struct store_opts so = {.sync_normal = c->sync_normal};
	struct store *s = NULL;
	struct err e = {0};
	int64_t pending = 0;
	int r, v;

	if ((r = make_dir(c->state_dir, 0750)) < 0) {
		fprintf(
		    stderr, "hyperletd: %s: %s\n", c->state_dir, strerror(-r));
		return EXIT_FAILURE;
	}
	if ((r = store_open(c->db_path, &so, &s, &e)) < 0 ||
	    (r = v = store_migrate(s, &e)) < 0 ||
	    (r = store_integrity_check(s, &e)) < 0 ||
	    (r = store_online_migrate_pending(s, &pending, &e)) < 0) {
		fprintf(stderr, "hyperletd: %s: %s\n", c->db_path, e.msg);
		store_close(s);
		return EXIT_FAILURE;
	}
	store_close(s);
	printf("schema version %d\n", v);
	if (v < STORE_SCHEMA_VERSION)
		printf("%" PRId64 " block device mappings still need a uuid: "
		       "run `hyperletd db online-migrate` (or start the "
		       "daemon) to reach version %d\n",
		    pending, STORE_SCHEMA_VERSION);
	return EXIT_SUCCESS;
}

/* Batches until nothing is left or max_count rows were considered. */
static int
db_online_migrate(const struct cfg *c, long max_count)
{
	struct store_opts so = {
	    .no_migrate = true, .sync_normal = c->sync_normal};
	struct store *s = NULL;
	struct err e = {0};
	long found = 0, done = 0;
	int64_t pending = 0;
	int r;

	if ((r = store_open(c->db_path, &so, &s, &e)) == -ENOENT) {
		fprintf(stderr,
		    "hyperletd: %s: no database (run `hyperletd "
		    "db sync` first)\n",
		    c->db_path);
		return EXIT_MIGRATE_ERROR;
	}
	if (r < 0)
		goto fail;
	for (;;) {
		int batch = MIGRATE_BATCH, f = 0, d = 0;

		if (max_count > 0 && max_count - found < batch)
			batch = (int)(max_count - found);
		if (batch <= 0)
			break;
		if ((r = store_online_migrate(s, batch, &f, &d, &e)) < 0)
			goto fail;
		found += f;
		done += d;
		if (f == 0)
			break;
	}
	if ((r = store_online_migrate_pending(s, &pending, &e)) < 0)
		goto fail;
	store_close(s);
	printf("found %ld, done %ld\n", found, done);
	if (pending > 0) {
		printf("%" PRId64 " left\n", pending);
		return EXIT_MIGRATE_MORE;
	}
	return EXIT_SUCCESS;
fail:
	if (found > 0) /* what the batches before the error did */
		printf("found %ld, done %ld\n", found, done);
	fprintf(stderr, "hyperletd: %s: %s\n", c->db_path, e.msg);
	store_close(s);
	return EXIT_MIGRATE_ERROR;
}

static int
db_command(const struct cfg *c, const struct options *o, int argc, char **argv)
{
	if (argc == 2 && STREQ(argv[1], "online-migrate"))
		return db_online_migrate(c, o->max_count);
	if (o->max_count >= 0) {
		fprintf(stderr,
		    "hyperletd: --max-count goes with db online-migrate\n");
		return 2;
	}
	if (argc == 2 && STREQ(argv[1], "version"))
		return db_version(c);
	if (argc == 2 && STREQ(argv[1], "sync"))
		return db_sync(c);
	usage(stderr);
	return 2;
}

/*
 * The background online data migration started with the daemon: batches
 * of MIGRATE_BATCH on its own connection until nothing is left or stop is
 * set. A locked database (-EAGAIN) is retried after a pause; any other
 * error ends the thread (logged; the rows are filled on read anyway).
 */
static void *
migrator_run(void *arg)
{
	struct migrator *m = arg;
	struct store_opts so = {
	    .no_migrate = true, .sync_normal = m->sync_normal};
	struct store *s = NULL;
	struct err e = {0};
	long found = 0, done = 0;
	int r;

	util_thread_name("hl-migrator");
	if ((r = store_open(m->db_path, &so, &s, &e)) < 0) {
		log_err("online migration: %s", e.msg);
		return NULL;
	}
	while (!atomic_load(&m->stop)) {
		struct timespec pause = {0, MIGRATE_PAUSE_MS * 1000000L};
		int f = 0, d = 0;

		err_clear(&e);
		r = store_online_migrate(s, MIGRATE_BATCH, &f, &d, &e);
		if (r == -EAGAIN) {
			(void)nanosleep(&pause, NULL);
			continue;
		}
		if (r < 0) {
			log_err("online migration stopped: %s", e.msg);
			break;
		}
		found += f;
		done += d;
		if (f == 0) {
			/* found may be 0: reconciliation loads every
			 * instance, which gives its BDMs their uuids */
			log_info("online migration complete: found %ld, done "
				 "%ld",
			    found, done);
			break;
		}
		log_debug("online migration: batch found %d, done %d", f, d);
		(void)nanosleep(&pause, NULL);
	}
	store_close(s);
	return NULL;
}

/* Sleeps ms in 100 ms steps; false if w->stop was set meanwhile. */
static bool
sweeper_sleep(struct sweeper *w, int ms)
{
	struct timespec step = {0, 100 * 1000000L};

	for (; ms > 0 && !atomic_load(&w->stop); ms -= 100)
		(void)nanosleep(&step, NULL);
	return !atomic_load(&w->stop);
}

/*
 * Sweeps rolled-back builds (compute_sweep) SWEEP_FIRST_MS after start-up,
 * again SWEEP_SECOND_MS later and then every SWEEP_EVERY_MS, on w->store,
 * which it closes when it stops: a define that libvirtd finishes after
 * reconciliation rolled its build back is removed within seconds. Errors
 * are logged and the next sweep tries again. Between sweeps it probes
 * libvirt every PROBE_EVERY_MS (virt_alive), which keeps the state
 * /v1/health reports fresh (and reopens a dropped connection) without a
 * libvirt call on an HTTP thread; a sweep is skipped while libvirt is
 * known to be down, so it does not wait on libvirt holding the lock that
 * creates take (compute's tomb_lock).
 */
static void *
sweeper_run(void *arg)
{
	struct sweeper *w = arg;
	struct store *s = w->store;
	struct err e = {0};
	int ms = SWEEP_FIRST_MS, sweeps = 0;

	util_thread_name("hl-sweeper");
	/* what the sweep removes, a crash left behind */
	store_set_cause(s, STORE_CAUSE_RECONCILE);

	for (;;) {
		size_t n = 0;
		int step = ms < PROBE_EVERY_MS ? ms : PROBE_EVERY_MS;

		if (!sweeper_sleep(w, step))
			break;
		ms -= step;
		(void)virt_alive(w->h->virt);
		if (ms > 0)
			continue;
		if (!virt_health(w->h->virt, NULL)) {
			ms = PROBE_EVERY_MS; /* sweep once libvirt is back */
			continue;
		}
		err_clear(&e);
		if (w->h->node &&
		    node_cache_refresh(w->h->node, w->h->virt, &e) < 0) {
			log_warn("node facts: %s", e.msg);
			err_clear(&e);
		}
		if (compute_sweep(w->h->compute, s, &n, &e) < 0)
			log_warn("rolled-back builds sweep: %s", e.msg);
		if (n)
			log_info("rolled-back builds sweep: removed what %zu "
				 "rolled-back builds left",
			    n);
		ms = sweeps++ == 0 ? SWEEP_SECOND_MS : SWEEP_EVERY_MS;
	}
	w->store = store_close(s);
	return NULL;
}

/* SIGHUP: reopen the log, re-read the level from the file and reload the
 * TLS certificate and key. Other keys need a restart (they size threads
 * and sockets). */
static void
reload(const struct options *o, struct api *api)
{
	struct cfg nc;
	struct err e = {0};

	log_reopen();
	if (api_tls_reload(api, &e) < 0)
		log_err(
		    "SIGHUP: %s; keeping the current TLS certificate", e.msg);
	err_clear(&e);
	if (!o->config || o->debug) {
		log_info("SIGHUP: log reopened (level %s)",
		    log_level_to_string(log_get_level()));
		return;
	}
	if (cfg_defaults(&nc) < 0)
		return;
	if (cfg_load(o->config, &nc, &e) < 0)
		log_err("SIGHUP: %s; keeping the current configuration", e.msg);
	else {
		log_set_level(nc.log_level);
		log_info("SIGHUP: log level %s (other keys apply on restart)",
		    log_level_to_string(nc.log_level));
	}
	cfg_clear(&nc);
}

/* libvirt's lifecycle events into the instances' states (domevents.h),
 * under the API's per-instance claims. Returns 0 or -1 (logged). */
static int
start_domevents(struct hyperlet *h, struct api *api)
{
	struct domevents_opts o = {
	    .virt = h->virt,
	    .db_path = h->db_path,
	    .claim = api_claim_uuid,
	    .release = api_release_uuid,
	    .claim_arg = api,
	};
	struct domevents *d = NULL;
	struct err e = {0};

	if (domevents_start(&o, &d, &e) < 0) {
		log_err("libvirt events: %s", e.msg);
		return -1;
	}
	atomic_store(&h->domevents, d);
	return 0;
}

/*
 * Start-up reconciliation (compute_reconcile) with h->compute, before the
 * API serves: finishes or rolls back what a crash left, redefines missing
 * domains, and reports domains that carry hyperlet metadata but have no
 * row (never deleted; counted in h->reconcile_findings for /metrics). One
 * instance's failure is logged and start-up goes on; failing to list the
 * database or libvirt at all is fatal (systemd restarts us).
 */
static int
reconcile(struct hyperlet *h, struct store *s)
{
	struct compute_report rep = {0};
	struct err e = {0};
	int r;

	/* its changes are events with cause reconcile */
	store_set_cause(s, STORE_CAUSE_RECONCILE);
	r = compute_reconcile(h->compute, s, &rep, &e);
	store_set_cause(s, STORE_CAUSE_API);
	if (r < 0) {
		log_err("reconciliation: %s", e.msg);
		compute_report_clear(&rep);
		return r;
	}
	log_info("reconciliation: %zu instances, %zu redefined (%zu "
		 "restarted), %zu builds kept, %zu rolled back, %zu deletes "
		 "finished, %zu states refreshed, %zu resumed, %zu disks "
		 "compared, %zu attached, %zu detached, %zu detaches "
		 "finished (%zu pending), %zu failed, %zu unknown "
		 "domains, %zu rolled-back builds swept",
	    rep.instances, rep.redefined, rep.restarted, rep.builds_finished,
	    rep.builds_rolled_back, rep.deletes_finished, rep.states_refreshed,
	    rep.resumed, rep.disks_checked, rep.disks_attached,
	    rep.disks_detached, rep.detaches_finished, rep.detaches_pending,
	    rep.failed, rep.n_unknown, rep.swept);
	if (rep.failed)
		log_warn("reconciliation: %zu instances could not be "
			 "reconciled (%zu of them lost a disk: state error "
			 "with a fault); first: %s",
		    rep.failed, rep.lost, rep.first_error);
	for (size_t i = 0; i < rep.n_faults; i++)
		log_err("instance %s: state error: %s", rep.faults[i].uuid,
		    rep.faults[i].msg);
	for (size_t i = 0; i < rep.n_unknown; i++)
		log_warn("domain %s carries hyperlet metadata but has no "
			 "database row: left alone",
		    rep.unknown[i]);
	atomic_store(&h->reconcile_findings, (int64_t)rep.n_unknown);
	compute_report_clear(&rep);
	return 0;
}

/* The daemon proper. Returns the exit status. */
static int
serve(struct cfg *c, const struct options *o)
{
	struct store_opts so = {.sync_normal = c->sync_normal};
	struct virt_opts vo = {
	    .uri = c->libvirt_uri,
	    .virt_type = c->virt_type,
	    .instances_path = c->instances_path,
	    .detach_timeout_ms = c->detach_timeout * 1000,
	    .validate_xml = c->validate_xml,
	};
	struct compute_opts co = {
	    .images_dir = c->images_path,
	    .limits = c->limits,
	    .stop_timeout_ms = c->stop_timeout * 1000,
	    .domxml = {.virt_type = c->virt_type},
	    .volume_roots = c->volume_roots,
	    .state_dir = c->state_dir,
	    .db_path = c->db_path,
	    .resume_guests = c->resume_guests_state_on_host_boot,
	    .force_config_drive = c->force_config_drive,
	    .availability_zone = c->availability_zone,
	};
	struct migrator mig = {
	    .db_path = c->db_path, .sync_normal = c->sync_normal};
	struct hyperlet h = {
	    .cfg = c, .db_path = c->db_path, .images_dir = c->images_path};
	struct sweeper sw = {.h = &h};
	struct store *store = NULL;
	struct api *api = NULL;
	struct err e = {0};
	uint64_t wd_usec = 0;
	bool wd_withheld = false;
	sigset_t set;
	int status = EXIT_FAILURE, r, v = 0;

	/* before any thread (libvirt's, MHD's, the migrator) exists, so all
	 * inherit the mask and the signals reach sigtimedwait below */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if ((r = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0) {
		log_err("pthread_sigmask: %s", strerror(r));
		return EXIT_FAILURE;
	}
	(void)signal(SIGPIPE, SIG_IGN);
	/* glibc would give each request thread its own malloc arena (up to
	 * 8 per core) and keep what large responses freed there: RSS went
	 * 94 -> 270 MiB over list walks before lib/jwriter and the fixed
	 * mmap threshold below. 2 arenas were too few once creates ran on
	 * the 8 job threads beside the 8 MHD workers: libvirt's validated
	 * define parses the RelaxNG schema with thousands of mallocs, and
	 * contended arena locks cost a create 11.3 ms of CPU instead of 8.4
	 * (create_test_c8_cpu in make bench; ratio to the floor 0.70 ->
	 * 0.88). 8 arenas cost 3.5 MiB more after the list walks over
	 * 10,000 instances. An operator's MALLOC_ARENA_MAX still wins. */
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, 8);
	/* glibc raises its mmap threshold to the size of each mmapped block
	 * freed (up to 32 MiB), so after one list page (megabytes of JSON)
	 * every later response buffer came from an arena and stayed there
	 * when freed. A fixed threshold keeps blocks from 256 KiB up in
	 * their own mappings, returned to the kernel by free(). */
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* A fixed mmap threshold also fixes the trim threshold at glibc's
	 * 128 KiB: every free that left more than that at an arena's top
	 * gave it back (madvise, a TLB flush on every core) and the next
	 * request faulted it in again. perf of creates and deletes at
	 * concurrency 8 on a private libvirtd: sysmalloc and its page
	 * faults 8.4 % and madvise 3.2 % of hyperletd's CPU, 0.2 % and none
	 * with 8 MiB. An arena keeps at most that much free at its top (8
	 * arenas: 64 MiB at worst; measured +2.3 MiB RSS after 800 creates
	 * and deletes). */
	if (!getenv("MALLOC_TRIM_THRESHOLD_"))
		(void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);

	if ((r = make_dir(c->state_dir, 0750)) < 0 ||
	    (r = make_dir(c->instances_path, 0751)) < 0 ||
	    (r = make_dir(c->images_path, 0751)) < 0) {
		log_err("cannot create the state directories under %s: %s",
		    c->state_dir, strerror(-r));
		return EXIT_FAILURE;
	}

	/* STATUS= shows in `systemctl status` while start-up runs */
	(void)sd_notify(0, "STATUS=opening and migrating the database");
	if ((r = store_open(c->db_path, &so, &store, &e)) < 0 ||
	    (r = store_schema_version(store, &v, &e)) < 0) {
		log_err("database %s: %s", c->db_path, e.msg);
		goto out;
	}
	log_info("database %s: schema version %d", c->db_path, v);
	{
		int fixed;

		/* the triggers keep it; this finds a trigger dropped by hand */
		if (store_node_usage_verify(store, &fixed, &e) < 0) {
			log_warn("node usage: %s", e.msg);
			err_clear(&e);
		} else if (fixed)
			log_warn(
			    "node usage: the node_usage row disagreed with "
			    "the instance rows; set from them");
	}

	(void)sd_notify(0, "STATUS=connecting to libvirt");
	if ((r = virt_open(&vo, &h.virt, &e)) < 0) {
		log_err("libvirt %s: %s", c->libvirt_uri, e.msg);
		goto out;
	}
	log_info("libvirt %s: connected (virt_type %s)", c->libvirt_uri,
	    c->virt_type);

	/* what libvirt says about the host, cached for GET /v1/node and
	 * the capacity claims (no libvirt call on an HTTP thread); the
	 * sweeper refreshes it. Without an answer creates go unchecked
	 * until the first sweep gets one. */
	if ((r = node_cache_new(c, &h.node, &e)) < 0) {
		log_err("node: %s", e.msg);
		goto out;
	}
	if (node_cache_refresh(h.node, h.virt, &e) < 0) {
		log_warn("libvirt %s: node facts: %s", c->libvirt_uri, e.msg);
		err_clear(&e);
	}
	/* a reserved amount beyond the total is a configuration error
	 * only libvirt's answer reveals (not --check-config) */
	if ((r = node_cache_check(h.node, c, &e)) < 0) {
		log_err("%s", e.msg);
		goto out;
	}
	{
		char nu[UUID_STR_LEN];

		/* drawn once, kept in the database */
		if (store_node_uuid(store, nu, &e) == 0)
			log_info("node uuid %s", nu);
		else {
			log_warn("node uuid: %s", e.msg);
			err_clear(&e);
		}
	}

	/* one compute for reconciliation and then every request thread */
	co.virt = h.virt;
	co.node_limits = node_cache_limits;
	co.node_limits_arg = h.node;
	if ((r = compute_new(&co, &h.compute, &e)) < 0) {
		log_err("compute: %s", e.msg);
		goto out;
	}
	/* before the API serves: requests then see a database that agrees
	 * with libvirt */
	(void)sd_notify(0, "STATUS=reconciling instances with libvirt");
	if ((r = reconcile(&h, store)) < 0)
		goto out;
	(void)api_images_clean(c->images_path, store);

	if (v < STORE_SCHEMA_VERSION) {
		if ((r = pthread_create(
			 &mig.thread, NULL, migrator_run, &mig)) != 0) {
			log_err("cannot start the online migration: %s",
			    strerror(r));
			goto out;
		}
		mig.started = true;
	}

	/* the start-up connection is idle from here on: the sweeper's */
	sw.store = TAKE_PTR(store);
	if ((r = pthread_create(&sw.thread, NULL, sweeper_run, &sw)) != 0) {
		log_err("cannot start the rolled-back builds sweep: %s",
		    strerror(r));
		goto out;
	}
	sw.started = true;

	/* the event stream's hub: follows every commit from here on */
	if ((r = events_new(&(struct events_opts){.db_path = c->db_path,
				.sync_normal = c->sync_normal,
				.retention = c->events_retention,
				.heartbeat_s = c->events_heartbeat,
				.stream_cpu = c->events_stream_cpu},
		 &h.events, &e)) < 0) {
		log_err("events: %s", e.msg);
		goto out;
	}

	/* Placement: the thread's first act is a full reconciliation, after
	 * the one with libvirt above, so it sees the rows that stay */
	if ((r = placement_sync_new(c, c->db_path, h.node, &h.placement, &e)) <
		0 ||
	    (h.placement && (r = placement_sync_start(h.placement, &e)) < 0)) {
		log_err("placement: %s", e.msg);
		goto out;
	}

	if ((r = api_start(&h, &api, &e)) < 0) {
		log_err("cannot serve on %s: %s", c->listen, e.msg);
		goto out;
	}
	/* after the API: an event is handled under the instance's claim */
	if (start_domevents(&h, api) < 0)
		goto out;
	/* once every thread has its connection: what waits for this line
	 * (tests, an operator) may then move the database away */
	log_info("hyperletd %s serving on %s (port %d, %d threads)",
	    PACKAGE_VERSION, c->listen, api_port(api), c->threads);
	/* start-up (migrations, reconciliation, libvirt's and MHD's set-up)
	 * leaves free chunks inside the heap that glibc keeps mapped: give
	 * their pages back before idling (about 0.2 MiB on a new database) */
	(void)malloc_trim(0);
	(void)sd_notifyf(0, "READY=1\nSTATUS=serving on %s\nMAINPID=%lu",
	    c->listen, (unsigned long)getpid());
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;

	for (;;) {
		struct timespec ts;
		siginfo_t si;
		int sig;

		if (wd_usec) {
			/* a job queue that makes no progress (every job
			 * thread stuck) is a hung daemon: let systemd
			 * restart it */
			bool stalled = api_jobs_stalled(api);

			if (!stalled)
				(void)sd_notify(0, "WATCHDOG=1");
			else if (!wd_withheld)
				log_err("api: the job queue makes no progress; "
					"withholding the watchdog ping");
			wd_withheld = stalled;
			ts.tv_sec = (time_t)(wd_usec / 2 / 1000000);
			ts.tv_nsec = (long)(wd_usec / 2 % 1000000) * 1000;
			sig = sigtimedwait(&set, &si, &ts);
		} else
			sig = sigwaitinfo(&set, &si);
		if (sig < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			log_err("sigwait: %s", strerror(errno));
			break;
		}
		if (sig == SIGHUP) {
			reload(o, api);
			continue;
		}
		log_info("%s: stopping (draining requests for up to %d s)",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT", c->drain_timeout);
		(void)sd_notify(0, "STOPPING=1\nSTATUS=draining requests");
		status = EXIT_SUCCESS;
		break;
	}

out:
	/* before the API: the worker takes its claims */
	atomic_store(&h.domevents, domevents_stop(atomic_load(&h.domevents)));
	if (api)
		api_stop(api, c->drain_timeout);
	if (mig.started) {
		atomic_store(&mig.stop, true);
		(void)pthread_join(mig.thread, NULL);
	}
	if (sw.started) {
		atomic_store(&sw.stop, true);
		(void)pthread_join(sw.thread, NULL);
	} else
		sw.store = store_close(sw.store);
	h.events = events_free(h.events);
	h.placement = placement_sync_stop(h.placement);
	h.compute = compute_free(h.compute);
	h.node = node_cache_free(h.node);
	h.virt = virt_close(h.virt);
	store = store_close(store);
	if (status == EXIT_SUCCESS)
		log_info("stopped");
	return status;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct cfg c = {0};
	bool serving;
	int status;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	serving = !o.check_config && optind == argc;
	if (serving)
		log_init(LOG_INFO); /* until the configured level is known */
	if (load_config(&o, serving, &c) < 0) {
		cfg_clear(&c);
		return EXIT_FAILURE;
	}
	if (o.check_config) {
		if (optind < argc) {
			usage(stderr);
			cfg_clear(&c);
			return 2;
		}
		printf("configuration OK\n");
		cfg_clear(&c);
		return EXIT_SUCCESS;
	}
	log_init(c.log_level);
	if (optind < argc && STREQ(argv[optind], "db"))
		status = db_command(&c, &o, argc - optind, argv + optind);
	else if (optind < argc || o.max_count >= 0) {
		usage(stderr);
		status = 2;
	} else
		status = serve(&c, &o);
	cfg_clear(&c);
	return status;
}
