/*
 * bench_rssfloor: the memory floor of an idle hyperletd. It links what
 * hyperletd links (so the dynamic loader maps and initialises the same
 * libraries) and does only what an idle daemon cannot avoid: open the
 * libvirt URI, open the SQLite database and read its schema, listen on a
 * socket with libmicrohttpd (one internal epoll thread). Then it waits a
 * second and prints its VmRSS, RssAnon and RssFile as figures
 * (floor_rss_idle*). BENCH_RSS_STAGES=1 also prints them after each step,
 * BENCH_RSS_STOP=linked|virt|sqlite stops after that step, and
 * BENCH_RSS_HOLD=1 then waits for a signal so /proc/PID/smaps can be read.
 */
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <ini.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/xmlwriter.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uuid/uuid.h>

/* Functions hyperletd calls but an idle daemon never does: referenced so
 * that the linker (--as-needed) keeps the same DT_NEEDED libraries. */
__attribute__((used)) static void *const keep_needed[] = {
    (void *)uuid_generate_random,
    (void *)json_tokener_new_ex,
    (void *)ini_parse,
    (void *)gnutls_hash_fast,
    (void *)xmlNewTextWriterMemory,
    (void *)sd_notify,
};

static void
quiet(void *u, virErrorPtr err)
{
	(void)u;
	(void)err;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **state)
{
	(void)cls, (void)c, (void)url, (void)method, (void)version;
	(void)data, (void)size, (void)state;
	return MHD_NO;
}

/* /proc/self/status as the dynamic loader left it: read before any
 * library's constructor runs (the executable's preinit_array runs first,
 * after every relocation). */
static char status_relocated[4096];

static void
snapshot_relocated(void)
{
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, status_relocated, sizeof(status_relocated) - 1);
	status_relocated[n > 0 ? n : 0] = '\0';
	close(fd);
}

__attribute__((used,
    section(".preinit_array"))) static void (*const preinit_snapshot)(void) =
    snapshot_relocated;

/* Prints the VmRSS, RssAnon and RssFile lines of status (a copy of
 * /proc/self/status; NULL: read it now) as "<name> N KiB",
 * "<name>_anon N KiB", "<name>_file N KiB". */
static void
report(const char *name, const char *status)
{
	static const struct {
		const char *key, *suffix;
	} keys[] = {
	    {"VmRSS:", ""}, {"RssAnon:", "_anon"}, {"RssFile:", "_file"}};
	FILE *f = status ? fmemopen((void *)status, strlen(status), "r")
			 : fopen("/proc/self/status", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f))
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strncmp(line, keys[i].key, strlen(keys[i].key)) ==
			    0)
				printf("%s%s %ld KiB\n", name, keys[i].suffix,
				    strtol(
					line + strlen(keys[i].key), NULL, 10));
	if (f)
		fclose(f);
	fflush(stdout);
}

static bool
stages_wanted(void)
{
	const char *stages = getenv("BENCH_RSS_STAGES");

	return stages && strcmp(stages, "1") == 0;
}

/* After step: the stage figure if asked for; true if the run stops here. */
static bool
stage(const char *step)
{
	const char *stop = getenv("BENCH_RSS_STOP");
	char name[64];

	if (stages_wanted()) {
		snprintf(name, sizeof(name), "floor_rss_after_%s", step);
		report(name, NULL);
	}
	return stop && strcmp(stop, step) == 0;
}

static void
finish(void)
{
	const char *hold = getenv("BENCH_RSS_HOLD");
	sigset_t set;
	int sig;

	sleep(1); /* as run.sh waits before reading hyperletd's */
	report("floor_rss_idle", NULL);
	if (hold && strcmp(hold, "1") == 0) {
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		(void)sigprocmask(SIG_BLOCK, &set, NULL);
		(void)sigwait(&set, &sig);
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct MHD_Daemon *mhd;
	virConnectPtr conn;
	sqlite3_stmt *q = NULL;
	sqlite3 *db = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_rssfloor DB URI\n");
		return 2;
	}
	if (stages_wanted() && status_relocated[0])
		report("floor_rss_after_relocation", status_relocated);
	if (stage("linked"))
		goto out;

	virSetErrorFunc(NULL, quiet);
	if ((conn = virConnectOpen(argv[2])) == NULL) {
		fprintf(stderr, "bench_rssfloor: cannot open %s\n", argv[2]);
		return 1;
	}
	if (stage("virt"))
		goto out;

	/* what every use of the database does first: parse the schema */
	if (sqlite3_open_v2(argv[1], &db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q,
		NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		fprintf(stderr, "bench_rssfloor: %s: %s\n", argv[1],
		    sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_finalize(q);
	if (stage("sqlite"))
		goto out;

	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
	    0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sin,
	    MHD_OPTION_END);
	if (mhd == NULL) {
		fprintf(stderr, "bench_rssfloor: MHD_start_daemon failed\n");
		return 1;
	}
	(void)stage("http");
out:
	finish();
	return 0;
}
