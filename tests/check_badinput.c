/*
 * Hostile and broken requests against the real hyperletd over real HTTP
 * (raw sockets, so that every byte is ours: NULs, bad percent-encoding, a
 * missing Content-Length, slow headers). One table row per request, each
 * with the statuses it may get; after every row the test checks that
 * nothing changed: the same instance/BDM/image rows in the database (read
 * with SQLite directly), the same list through the API, no new file under
 * the instances directory, and the daemon still healthy. Rows that may be
 * accepted (XML metacharacters in names) must then give well-formed domain
 * XML (libxml2), and are deleted again. A second case covers slow clients
 * and a flood of idle connections.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <libxml/parser.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "testutil.h"

#define TOKEN "badinput-test-token-0123456789"
#define IMG "6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f"
#define CONN_LIMIT 64
#define CONN_TIMEOUT 3

static char *state_dir;
static char db_path[512], instances_dir[512], log_path[512];
/* The test dir (state_dir above) replaces "@T@" in a case's body: volume
 * paths are real files under <test dir>/vols, a volume root. */
#define T "@T@"
static pid_t daemon_pid;
static int port;

/* --- HTTP over a raw socket ------------------------------------------------ */

struct resp {
	int status; /* 0: no status line (connection closed or reset) */
	char *raw; /* headers and body, owned */
	size_t len;
	const char *body; /* into raw */
};

static void
resp_clear(struct resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static int
connect_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads what the server sends until it closes, or timeout_s passes. */
static void
read_all(int fd, struct resp *r, double timeout_s)
{
	double end = now_s() + timeout_s;
	size_t cap = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ms = (int)((end - now_s()) * 1000);
		ssize_t n;

		if (ms <= 0 || poll(&p, 1, ms) <= 0)
			break;
		if (r->len + 65536 > cap) {
			cap = cap ? cap * 2 : 131072;
			r->raw = realloc(r->raw, cap + 1);
			ck_assert_ptr_nonnull(r->raw);
		}
		n = recv(fd, r->raw + r->len, cap - r->len, 0);
		if (n <= 0)
			break;
		r->len += (size_t)n;
	}
	if (r->raw == NULL)
		return;
	r->raw[r->len] = '\0';
	if (r->len > 12 && strncmp(r->raw, "HTTP/1.", 7) == 0)
		r->status = atoi(r->raw + 9);
	r->body = strstr(r->raw, "\r\n\r\n");
	r->body = r->body ? r->body + 4 : r->raw + r->len;
}

/* Sends req[len] and reads the answer. If the server answers (or closes)
 * before the whole request is sent, sending stops: a 413 may come early. */
static void
http_raw(const char *req, size_t len, struct resp *r)
{
	int fd = connect_port();
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	ck_assert_msg(fd >= 0, "cannot connect to port %d", port);
	while (off < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			break;
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	read_all(fd, r, 20);
	close(fd);
}

enum { AUTH_GOOD, AUTH_NONE };

/* Builds and sends one request; body may hold NULs (body_len). */
static void
http(const char *method, const char *path, const char *headers, int auth,
    const char *ctype, const char *body, size_t body_len, struct resp *r)
{
	char *req = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&req, &len);

	fprintf(f, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
	    method, path);
	if (auth == AUTH_GOOD)
		fprintf(f, "Authorization: Bearer " TOKEN "\r\n");
	if (ctype)
		fprintf(f, "Content-Type: %s\r\n", ctype);
	if (body)
		fprintf(f, "Content-Length: %zu\r\n", body_len);
	if (headers)
		fputs(headers, f);
	fputs("\r\n", f);
	if (body)
		fwrite(body, 1, body_len, f);
	fclose(f);
	http_raw(req, len, r);
	free(req);
}

static int
http_get(const char *path, struct resp *r)
{
	http("GET", path, NULL, AUTH_GOOD, NULL, NULL, 0, r);
	return r->status;
}

/* --- the daemon ---------------------------------------------------------- */

static int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		abort();
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static void
daemon_start(void)
{
	const char *bin = getenv("HYPERLETD");
	char conf[512], token[512], text[2048];
	struct resp r;
	double end;

	signal(SIGPIPE, SIG_IGN);
	state_dir = testutil_mkdtemp("hl-badinput");
	if (state_dir == NULL || bin == NULL)
		abort();
	port = free_port();
	snprintf(conf, sizeof(conf), "%s/hyperlet.conf", state_dir);
	snprintf(token, sizeof(token), "%s/token", state_dir);
	snprintf(db_path, sizeof(db_path), "%s/state/hyperlet.db", state_dir);
	snprintf(instances_dir, sizeof(instances_dir), "%s/state/instances",
	    state_dir);
	snprintf(log_path, sizeof(log_path), "%s/hyperletd.log", state_dir);
	write_file(token, TOKEN "\n");
	snprintf(text, sizeof(text),
	    "[api]\nlisten = 127.0.0.1:%d\nthreads = 4\n"
	    "auth_token_file = %s\nconnection_limit = %d\n"
	    "connection_timeout = %d\n"
	    "[libvirt]\nuri = test:///default\n"
	    "[storage]\nstate_dir = %s/state\n"
	    /* the state dir is a root too: its files stay refused */
	    "volume_roots = %s/vols, %s/state\n"
	    /* no capacity claims (test:///default is a 3 GiB node) */
	    "[node]\nram_allocation_ratio = 1000000\n"
	    "cpu_allocation_ratio = 1000000\n"
	    "disk_allocation_ratio = 1000000\n"
	    "[log]\nlevel = warn\n",
	    port, token, CONN_LIMIT, CONN_TIMEOUT, state_dir, state_dir,
	    state_dir);
	write_file(conf, text);
	{
		char p[600], q[600];

		(void)snprintf(p, sizeof(p), "%s/vols", state_dir);
		if (mkdir(p, 0755) < 0)
			abort();
		(void)snprintf(p, sizeof(p), "%s/vols/vol", state_dir);
		write_file(p, "a volume");
		/* inside the root, to inside it: fine */
		(void)snprintf(q, sizeof(q), "%s/vols/in", state_dir);
		if (symlink("vol", q) < 0)
			abort();
		/* inside the root, to outside it: refused */
		(void)snprintf(q, sizeof(q), "%s/vols/out", state_dir);
		if (symlink("/etc/passwd", q) < 0)
			abort();
		(void)snprintf(q, sizeof(q), "%s/vols/dir", state_dir);
		if (mkdir(q, 0755) < 0)
			abort();
	}
	daemon_pid = fork();
	if (daemon_pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		testutil_child_allow_core(state_dir);
		execl(bin, "hyperletd", "--config", conf, (char *)NULL);
		_exit(127);
	}
	for (end = now_s() + 30; now_s() < end; usleep(20000)) {
		int fd = connect_port();

		if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
			daemon_pid = 0;
			break;
		}
		if (fd < 0)
			continue;
		close(fd);
		http_get("/v1/health", &r);
		resp_clear(&r);
		break;
	}
	if (daemon_pid <= 0) {
		char *l = testutil_read_file(log_path, NULL);

		fprintf(stderr, "hyperletd did not start: %s\n", l ? l : "");
		free(l);
		abort();
	}
	/* The base image every create below refers to. */
	http("PUT", "/v1/images/" IMG, NULL, AUTH_GOOD,
	    "application/octet-stream", "\0\0\0\0\0\0\0\0", 8, &r);
	if (r.status != 201) {
		fprintf(stderr, "image upload: %d %s\n", r.status,
		    r.raw ? r.raw : "");
		abort();
	}
	resp_clear(&r);
}

static void
daemon_stop(void)
{
	if (daemon_pid > 0) {
		int st = 0;

		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, &st, 0);
		/* A sanitizer report or a bad exit of the daemon fails the
		 * run (an unchecked fixture's failure is an error). */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char *l = testutil_read_file(log_path, NULL);

			fprintf(stderr,
			    "hyperletd exited with status %#x:\n%s\n", st,
			    l ? l : "");
			free(l);
			if (WIFSIGNALED(st))
				(void)testutil_core_report(
				    getenv("HYPERLETD"), state_dir);
			ck_abort_msg("hyperletd did not exit 0 on SIGTERM");
		}
	}
	daemon_pid = 0;
	if (getenv("KEEP_STATE") == NULL)
		testutil_rm_rf(state_dir);
	free(state_dir);
	state_dir = NULL;
}

/* --- what must not change ------------------------------------------------- */

struct snap {
	int64_t instances, bdms, images, nics;
	int files;
	int image_files; /* entries in the images directory */
	int listed;
};

static int64_t
count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return n;
}

static int n_files;

static int
count_file(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)p;
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		n_files++;
	return 0;
}

static void
snap_take(struct snap *s)
{
	sqlite3 *db = NULL;
	struct json_object *o = NULL, *arr;
	struct resp r;

	ck_assert_int_eq(
	    sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	s->instances = count_rows(db, "SELECT count(*) FROM instances");
	s->bdms = count_rows(db, "SELECT count(*) FROM block_device_mappings");
	s->images = count_rows(db, "SELECT count(*) FROM images");
	s->nics = count_rows(db, "SELECT count(*) FROM nics");
	sqlite3_close(db);
	n_files = 0;
	(void)nftw(instances_dir, count_file, 16, FTW_PHYS);
	s->files = n_files;
	{
		char images_dir[600];

		snprintf(images_dir, sizeof(images_dir), "%s/state/images",
		    state_dir);
		n_files = 0;
		(void)nftw(images_dir, count_file, 16, FTW_PHYS);
		s->image_files = n_files;
	}
	ck_assert_int_eq(http_get("/v1/instances?limit=1000", &r), 200);
	o = json_tokener_parse(r.body);
	ck_assert_msg(o && json_object_object_get_ex(o, "instances", &arr),
	    "list answered %s", r.body);
	s->listed = (int)json_object_array_length(arr);
	json_object_put(o);
	resp_clear(&r);
}

static struct snap baseline;

/* The resident instance: its NIC's MAC and port_id are taken on the
 * node for every row (409 cases), and its interfaces route is there to
 * attach to. */
#define RES_UUID "4d2e6c1a-8b3f-4e5d-9a7c-1b2c3d4e5f60"
#define RES_PORT "5e3f7d2b-9c4a-4f6e-8b8d-2c3d4e5f6a71"
#define RES_MAC "fa:16:3e:aa:bb:cc"

static void
baseline_take(void)
{
	static const char body[] =
	    "{\"uuid\":\"" RES_UUID "\",\"name\":\"resident\","
	    "\"flavor\":{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1},"
	    "\"imageRef\":\"" IMG "\",\"start\":false,\"networks\":"
	    "[{\"bridge\":\"br0\",\"port_id\":\"" RES_PORT "\",\"mac\":"
	    "\"" RES_MAC "\"}]}";
	struct resp r;

	daemon_start();
	http("POST", "/v1/instances", NULL, AUTH_GOOD, "application/json", body,
	    sizeof(body) - 1, &r);
	if (r.status != 201) {
		fprintf(stderr, "resident instance: %d %s\n", r.status,
		    r.raw ? r.raw : "");
		abort();
	}
	resp_clear(&r);
	snap_take(&baseline);
}

static void
assert_unchanged(const char *what)
{
	struct snap s;
	struct resp r;

	ck_assert_msg(kill(daemon_pid, 0) == 0, "%s: the daemon died", what);
	ck_assert_msg(http_get("/v1/health", &r) == 200,
	    "%s: health answered %d", what, r.status);
	resp_clear(&r);
	snap_take(&s);
	ck_assert_msg(s.instances == baseline.instances &&
		s.bdms == baseline.bdms && s.images == baseline.images &&
		s.nics == baseline.nics,
	    "%s: rows changed: instances %lld->%lld bdms %lld->%lld images "
	    "%lld->%lld nics %lld->%lld",
	    what, (long long)baseline.instances, (long long)s.instances,
	    (long long)baseline.bdms, (long long)s.bdms,
	    (long long)baseline.images, (long long)s.images,
	    (long long)baseline.nics, (long long)s.nics);
	ck_assert_msg(s.files == baseline.files,
	    "%s: %d files under %s, was %d (the resident instance's)", what,
	    s.files, instances_dir, baseline.files);
	ck_assert_msg(s.listed == baseline.listed, "%s: list %d -> %d", what,
	    baseline.listed, s.listed);
	ck_assert_msg(s.image_files == baseline.image_files,
	    "%s: %d files in the images directory, was %d", what, s.image_files,
	    baseline.image_files);
}

/* --- the table ------------------------------------------------------------ */

#define FLAVOR "\"flavor\":{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1}"
#define BASE \
	"\"name\":\"x\"," FLAVOR ",\"imageRef\":\"" IMG "\",\"start\":false"
#define ROOT                                                                \
	"{\"boot_index\":0,\"source_type\":\"image\",\"destination_type\":" \
	"\"local\",\"uuid\":\"" IMG "\"}"
#define VOLP(id, path)                                                        \
	"{\"boot_index\":-1,\"source_type\":\"volume\",\"destination_type\":" \
	"\"volume\",\"uuid\":\"" id "\",\"connection_info\":{"                \
	"\"driver_volume_type\":\"file\",\"data\":{\"device_path\":\"" path   \
	"\"}}}"
#define VOL(id) VOLP(id, T "/vols/vol")
#define VOLB(id, path)                                                        \
	"{\"boot_index\":-1,\"source_type\":\"volume\",\"destination_type\":" \
	"\"volume\",\"uuid\":\"" id "\",\"connection_info\":{"                \
	"\"driver_volume_type\":\"block\",\"data\":{\"device_path\":\"" path  \
	"\"}}}"
/* The flavor of BDMS() has room for an ephemeral disk and a swap disk. */
#define FLAVOR_EPH                                                \
	"\"flavor\":{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1," \
	"\"ephemeral_gb\":1,\"swap\":64}"
#define BDMS(...)                                            \
	"{\"name\":\"x\"," FLAVOR_EPH ",\"imageRef\":\"" IMG \
	"\",\"start\":false,"                                \
	"\"block_device_mapping_v2\":[" __VA_ARGS__ "]}"
#define V1 "0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0a01"
#define V2 "1c7d69c9-1f1b-4c9f-8d66-4a4cae4d1b02"

enum {
	F_NOAUTH = 1 << 0, /* no Authorization header (headers may add one) */
	F_MAYCREATE = 1 << 1, /* 201 allowed: XML checked, then deleted */
	F_NOCT = 1 << 2, /* no Content-Type */
	F_RAW = 1 << 3, /* gen() returns the whole request */
	F_IMAGE = 1 << 4, /* an image upload: application/octet-stream; a
			     201 is deleted again */
};

struct bad_case {
	const char *name;
	const char *method; /* NULL: POST */
	const char *path; /* NULL: /v1/instances */
	const char *body; /* NULL: none unless gen */
	size_t body_len; /* 0: strlen(body) */
	char *(*gen)(size_t *ret_len);
	const char *headers;
	unsigned flags;
	int status[4]; /* acceptable statuses, 0-terminated */
	const char *detail; /* in the answer, when set (why it was refused) */
};

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail,
    size_t *ret_len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	*ret_len = hl + ul * n + tl;
	return s;
}

static char *
gen_10mb(size_t *l)
{
	return repeat("{" BASE ",\"metadata\":{\"k\":\"", "AAAAAAAAAA",
	    1024 * 1024, "\"}}", l);
}

static char *
gen_10mb_spaces(size_t *l)
{
	return repeat("{" BASE, "          ", 1024 * 1024, "}", l);
}

static char *
gen_deep_arrays(size_t *l)
{
	char *a, *b, *s;
	size_t la, lb;

	a = repeat("{" BASE ",\"metadata\":{\"k\":", "[", 10000, "", &la);
	b = repeat("", "]", 10000, "}}", &lb);
	s = malloc(la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	free(a);
	free(b);
	*l = la + lb;
	return s;
}

static char *
gen_deep_objects(size_t *l)
{
	char *a, *b, *s;
	size_t la, lb;

	a = repeat("{" BASE ",\"metadata\":", "{\"a\":", 40, "1", &la);
	b = repeat("", "}", 40, "}", &lb);
	s = malloc(la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	free(a);
	free(b);
	*l = la + lb;
	return s;
}

static char *
gen_1000_bdms(size_t *l)
{
	return repeat("{\"name\":\"x\"," FLAVOR ",\"imageRef\":\"" IMG
		      "\",\"start\":false,\"block_device_mapping_v2\":[" ROOT,
	    ",{\"source_type\":\"blank\",\"destination_type\":\"local\","
	    "\"volume_size\":1}",
	    1000, "]}", l);
}

static char *
gen_100_bdms_small(size_t *l)
{
	/* Under the 128 KiB body limit, over max_bdms (64). */
	return repeat("{\"name\":\"x\"," FLAVOR ",\"imageRef\":\"" IMG
		      "\",\"start\":false,\"block_device_mapping_v2\":[" ROOT,
	    ",{\"source_type\":\"blank\",\"destination_type\":\"local\"}", 100,
	    "]}", l);
}

static char *
gen_long_url(size_t *l)
{
	return repeat("GET /v1/instances?marker=", "a", 200000,
	    " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
	    "Bearer " TOKEN "\r\n\r\n",
	    l);
}

static char *
gen_long_header(size_t *l)
{
	return repeat("GET /v1/instances HTTP/1.1\r\nHost: x\r\nConnection: "
		      "close\r\nAuthorization: Bearer " TOKEN "\r\nX-Junk: ",
	    "b", 200000, "\r\n\r\n", l);
}

static char *
gen_many_headers(size_t *l)
{
	return repeat("GET /v1/instances HTTP/1.1\r\nHost: x\r\nConnection: "
		      "close\r\nAuthorization: Bearer " TOKEN "\r\n",
	    "X-A: b\r\n", 20000, "\r\n", l);
}

static char *
gen_raw(const char *s, size_t *l)
{
	*l = strlen(s);
	return strdup(s);
}

static char *
gen_upload_no_length(size_t *l)
{
	return gen_raw("PUT /v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0aff "
		       "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		       "Authorization: Bearer " TOKEN "\r\n"
		       "Content-Type: application/octet-stream\r\n\r\n"
		       "QFI\xfb\x00\x00\x00\x03",
	    l);
}

static char *
gen_bad_chunked(size_t *l)
{
	return gen_raw(
	    "POST /v1/instances HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\nAuthorization: Bearer " TOKEN
	    "\r\nContent-Type: application/json\r\n"
	    "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
	    l);
}

static char *
gen_negative_length(size_t *l)
{
	return gen_raw("POST /v1/instances HTTP/1.1\r\nHost: x\r\n"
		       "Connection: close\r\nAuthorization: Bearer " TOKEN
		       "\r\nContent-Type: application/json\r\n"
		       "Content-Length: -1\r\n\r\n{}",
	    l);
}

static char *
gen_huge_length(size_t *l)
{
	return gen_raw("POST /v1/instances HTTP/1.1\r\nHost: x\r\n"
		       "Connection: close\r\nAuthorization: Bearer " TOKEN
		       "\r\nContent-Type: application/json\r\n"
		       "Content-Length: 1000000000000\r\n\r\n{}",
	    l);
}

static char *
gen_garbage_line(size_t *l)
{
	return gen_raw("\x01\x02 GARBAGE\r\n\r\n", l);
}

static char *
gen_nul_in_path(size_t *l)
{
	static const char r[] = "GET /v1/instances/" IMG "\0/../x HTTP/1.1\r\n"
				"Host: x\r\nConnection: close\r\n"
				"Authorization: Bearer " TOKEN "\r\n\r\n";

	char *s = malloc(sizeof(r));

	memcpy(s, r, sizeof(r));
	*l = sizeof(r) - 1;
	return s;
}

static char *
gen_http2_preface(size_t *l)
{
	return gen_raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", l);
}

/* --- crafted image files ---------------------------------------------------
 * A small valid qcow2 v3 (512-byte clusters: header, refcount table,
 * refcount block, L1 table; 1 MiB virtual) that each row bends one way. */

struct q2 {
	uint32_t version, backing_size, cluster_bits, crypt, l1_size;
	uint32_t reftable_clusters, snapshots, refcount_order, header_length;
	uint64_t backing_off, size, l1_off, reftable_off, snapshots_off;
	uint64_t incompat, autoclear;
	int compression; /* -1: none written */
	const char *ext; /* header extensions (bytes) at header_length */
	size_t ext_len;
	size_t file_len;
	bool iso; /* an ISO 9660 signature at 32769 too */
};

#define Q2_BASE                                                          \
	{                                                                \
		.version = 3, .cluster_bits = 9, .l1_size = 32,          \
		.reftable_clusters = 1, .refcount_order = 4,             \
		.header_length = 104, .size = 1 << 20, .l1_off = 1536,   \
		.reftable_off = 512, .compression = -1, .file_len = 2048 \
	}

static void
put_be(unsigned char *p, uint64_t v, int n)
{
	while (n-- > 0) {
		p[n] = (unsigned char)v;
		v >>= 8;
	}
}

static char *
q2_make(const struct q2 *q, size_t *ret_len)
{
	size_t len = q->iso ? 34816 : q->file_len;
	unsigned char *h = calloc(1, len < 4096 ? 4096 : len);

	memcpy(h, "QFI\xfb", 4);
	put_be(h + 4, q->version, 4);
	put_be(h + 8, q->backing_off, 8);
	put_be(h + 16, q->backing_size, 4);
	put_be(h + 20, q->cluster_bits, 4);
	put_be(h + 24, q->size, 8);
	put_be(h + 32, q->crypt, 4);
	put_be(h + 36, q->l1_size, 4);
	put_be(h + 40, q->l1_off, 8);
	put_be(h + 48, q->reftable_off, 8);
	put_be(h + 56, q->reftable_clusters, 4);
	put_be(h + 60, q->snapshots, 4);
	put_be(h + 64, q->snapshots_off, 8);
	if (q->version >= 3) {
		put_be(h + 72, q->incompat, 8);
		put_be(h + 88, q->autoclear, 8);
		put_be(h + 96, q->refcount_order, 4);
		put_be(h + 100, q->header_length, 4);
	}
	if (q->compression >= 0)
		h[104] = (unsigned char)q->compression;
	if (q->ext)
		memcpy(h + (q->version >= 3 ? q->header_length : 72), q->ext,
		    q->ext_len);
	if (q->iso)
		memcpy(h + 32768,
		    "\x01"
		    "CD001\x01",
		    7);
	*ret_len = len;
	return (char *)h;
}

/* header extensions: type, length, data padded to 8 */
#define EXT_DATA_FILE "\x44\x41\x54\x41\0\0\0\x0b/etc/shadow\0\0\0\0\0"
#define EXT_BACKING_FMT "\xe2\x79\x2a\xca\0\0\0\x03raw\0\0\0\0\0"
#define EXT_CRYPTO \
	"\x05\x37\xbe\x77\0\0\0\x10\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x10\0"
#define EXT_UNKNOWN "\x12\x34\x56\x78\0\0\0\x08\0\0\0\0\0\0\0\0"
#define EXT_HUGE "\x68\x03\xf8\x57\xff\xff\xff\xf0"
#define EXT(x) q.ext = x, q.ext_len = sizeof(x) - 1

/* gen_q_<name>: the base qcow2 with the statements of ... applied */
#define QGEN(name, ...)                \
	static char *name(size_t *l)   \
	{                              \
		struct q2 q = Q2_BASE; \
                                       \
		__VA_ARGS__;           \
		return q2_make(&q, l); \
	}

QGEN(gen_q_valid, (void)0)
QGEN(gen_q_datafile, q.incompat = 1 << 2; EXT(EXT_DATA_FILE))
QGEN(gen_q_datafile_ext_only, EXT(EXT_DATA_FILE))
QGEN(gen_q_datafile_bit_only, q.incompat = 1 << 2)
QGEN(gen_q_datafile_raw_bit, q.autoclear = 1 << 1)
QGEN(gen_q_v2_datafile_ext, q.version = 2; EXT(EXT_DATA_FILE))
QGEN(gen_q_dirty, q.incompat = 1 << 0)
QGEN(gen_q_corrupt, q.incompat = 1 << 1)
QGEN(gen_q_unknown_bit5, q.incompat = 1 << 5)
QGEN(gen_q_unknown_bit63, q.incompat = 1ull << 63)
QGEN(gen_q_backing, q.backing_off = 256; q.backing_size = 11)
QGEN(gen_q_backing_size_only, q.backing_size = 11)
QGEN(gen_q_backing_fmt_ext, EXT(EXT_BACKING_FMT))
QGEN(gen_q_crypto_ext, EXT(EXT_CRYPTO))
QGEN(gen_q_aes, q.crypt = 1)
QGEN(gen_q_luks, q.crypt = 2)
QGEN(gen_q_unknown_ext, EXT(EXT_UNKNOWN))
QGEN(gen_q_huge_ext, EXT(EXT_HUGE))
QGEN(gen_q_cluster_bits_8, q.cluster_bits = 8)
QGEN(gen_q_cluster_bits_22, q.cluster_bits = 22)
QGEN(gen_q_cluster_bits_64, q.cluster_bits = 64)
QGEN(gen_q_header_length_100, q.header_length = 100)
QGEN(gen_q_header_length_108, q.header_length = 108)
QGEN(gen_q_header_length_1024, q.header_length = 1024)
QGEN(gen_q_size_0, q.size = 0)
QGEN(gen_q_size_2_63, q.size = 1ull << 63)
QGEN(gen_q_size_1_ei, q.size = 1ull << 60)
QGEN(gen_q_l1_too_small, q.l1_size = 1)
QGEN(gen_q_l1_huge, q.l1_size = 0xffffffffu)
QGEN(gen_q_l1_past_the_end, q.l1_off = 1u << 30)
QGEN(gen_q_l1_unaligned, q.l1_off = 1540)
QGEN(gen_q_l1_in_the_header, q.l1_off = 0)
QGEN(gen_q_reftable_past_the_end, q.reftable_clusters = 100000)
QGEN(gen_q_reftable_none, q.reftable_off = 0)
QGEN(gen_q_version_1, q.version = 1)
QGEN(gen_q_version_4, q.version = 4)
QGEN(gen_q_refcount_order_7, q.refcount_order = 7)
QGEN(gen_q_snapshots_70000, q.snapshots = 70000; q.snapshots_off = 1024)
QGEN(gen_q_compression_2, q.header_length = 112; q.compression = 2;
     q.incompat = 1 << 3)
QGEN(gen_q_compression_bit_no_type, q.incompat = 1 << 3)
QGEN(gen_q_extl2_small_clusters, q.incompat = 1 << 4)
QGEN(gen_q_truncated, q.file_len = 50)
QGEN(gen_q_also_iso, q.iso = true)

static char *
gen_q_endless_ext(size_t *l)
{
	struct q2 q = Q2_BASE;
	char ext[512];

	/* empty feature tables to the end of the cluster, no end marker */
	for (size_t i = 0; i < sizeof(ext); i += 8)
		memcpy(ext + i, "\x68\x03\xf8\x57\0\0\0\0", 8);
	q.ext = ext;
	q.ext_len = 512 - 104;
	return q2_make(&q, l);
}

static char *
gen_bytes(const char *head, size_t head_len, size_t off, size_t *ret_len)
{
	char *b = calloc(1, 1024);

	memcpy(b + off, head, head_len);
	*ret_len = 1024;
	return b;
}

static char *
gen_vmdk_descriptor(size_t *l)
{
	static const char d[] = "# Disk DescriptorFile\nversion=1\n"
				"createType=\"monolithicFlat\"\n"
				"RW 2048 FLAT \"/etc/shadow\" 0\n";

	return gen_bytes(d, sizeof(d) - 1, 0, l);
}

static char *
gen_vmdk_sparse(size_t *l)
{
	return gen_bytes("KDMV\x03\0\0\0", 8, 0, l);
}

static char *
gen_vhd(size_t *l)
{
	return gen_bytes("conectix", 8, 0, l);
}

static char *
gen_vhdx(size_t *l)
{
	return gen_bytes("vhdxfile", 8, 0, l);
}

static char *
gen_vdi(size_t *l)
{
	return gen_bytes("\x7f\x10\xda\xbe", 4, 0x40, l);
}

static char *
gen_qed(size_t *l)
{
	return gen_bytes("QED\0", 4, 0, l);
}

/* A create whose user_data is 65536 base64 characters: one past Nova's
 * limit, inside the body limit. */
static char *
gen_user_data_too_long(size_t *l)
{
	static const char head[] = "{" BASE ",\"user_data\":\"";
	size_t n = 65536, hl = sizeof(head) - 1;
	char *b = malloc(hl + n + 3);

	if (b == NULL)
		return NULL;
	memcpy(b, head, hl);
	memset(b + hl, 'A', n);
	memcpy(b + hl + n, "\"}", 3);
	*l = hl + n + 2;
	return b;
}

#define S(...)                 \
	{                      \
		__VA_ARGS__, 0 \
	}

#define NETS(...) "{" BASE ",\"networks\":[" __VA_ARGS__ "]}"
#define BR "{\"bridge\":\"br0\"}"
#define FIELD(f) "\"field\":\"" f "\""
#define KEY(type, data)                                              \
	"{" BASE ",\"keys\":[{\"name\":\"k\",\"type\":\"" type "\"," \
	"\"data\":\"" data "\"}]}"
#define ED25519                                                            \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINWmHyBHLSndKrqxdm1xGFZEvn+E" \
	"NZFaE691TkXm/QE+ ops@example"
#define RES_IFS "/v1/instances/" RES_UUID "/interfaces"

static const struct bad_case cases[] = {
    /* control rows: the harness itself works */
    {"a valid create is accepted (control)", .body = "{" BASE "}",
	.flags = F_MAYCREATE, .status = S(201)},
    {"a valid create with 5 BDMs is accepted (control)",
	.body =
	    BDMS(ROOT ",{\"boot_index\":-1,\"source_type\":\"blank\","
		      "\"destination_type\":\"local\",\"volume_size\":1}," VOL(
			  V1) "," VOL(V2)),
	.flags = F_MAYCREATE, .status = S(201)},

    {"a valid create with NICs, keys and user_data (control)",
	.body = "{" BASE ",\"hostname\":\"web-1\",\"user_data\":"
		"\"aGVsbG8=\",\"keys\":[{\"name\":\"k\",\"type\":\"ssh\","
		"\"data\":\"" ED25519 "\"}],\"networks\":[{\"bridge\":"
		"\"br-ex\",\"mtu\":1400,\"ips\":[{\"address\":"
		"\"192.0.2.10/24\",\"gateway\":\"192.0.2.1\"}]},"
		"{\"network\":\"default\",\"model\":\"e1000\"}]}",
	.flags = F_MAYCREATE, .status = S(201)},

    /* NICs (issue 11): every rule names its field */
    {"a MAC too short",
	.body = NETS(BR ",{\"bridge\":\"br0\",\"mac\":"
			"\"fa:16:3e:00:00\"}"),
	.status = S(400), .detail = FIELD("networks[1].mac")},
    {"a MAC with dashes",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"fa-16-3e-00-00-01\"}"),
	.status = S(400), .detail = FIELD("networks[0].mac")},
    {"a MAC with XML in it",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"fa:16:3e:00:0'/>\"}"),
	.status = S(400), .detail = FIELD("networks[0].mac")},
    {"a multicast MAC",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"01:00:5e:00:00:01\"}"),
	.status = S(400), .detail = FIELD("networks[0].mac")},
    {"the broadcast MAC",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"ff:ff:ff:ff:ff:ff\"}"),
	.status = S(400), .detail = FIELD("networks[0].mac")},
    {"an all-zero MAC",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"00:00:00:00:00:00\"}"),
	.status = S(400), .detail = FIELD("networks[0].mac")},
    {"a MAC already used on the node",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"FA:16:3E:AA:BB:CC\"}"),
	.status = S(409), .detail = FIELD("networks[0].mac")},
    {"a port_id already used on the node",
	.body = NETS(BR ",{\"bridge\":\"br0\",\"port_id\":\"" RES_PORT "\"}"),
	.status = S(409), .detail = FIELD("networks[1].port_id")},
    {"one MAC on two NICs of a request",
	.body = NETS("{\"bridge\":\"br0\",\"mac\":\"fa:16:3e:00:00:01\"},"
		     "{\"bridge\":\"br1\",\"mac\":\"fa:16:3e:00:00:01\"}"),
	.status = S(409), .detail = FIELD("networks[1].mac")},
    {"one port_id on two NICs of a request",
	.body = NETS("{\"bridge\":\"br0\",\"port_id\":\"" V1 "\"},"
		     "{\"bridge\":\"br1\",\"port_id\":\"" V1 "\"}"),
	.status = S(409), .detail = FIELD("networks[1].port_id")},
    {"a port_id that is no uuid",
	.body = NETS("{\"bridge\":\"br0\",\"port_id\":\"../x\"}"),
	.status = S(400), .detail = FIELD("networks[0].port_id")},
    {"both bridge and network",
	.body = NETS("{\"bridge\":\"br0\",\"network\":\"default\"}"),
	.status = S(400), .detail = FIELD("networks[0].network")},
    {"neither bridge nor network", .body = NETS("{\"model\":\"virtio\"}"),
	.status = S(400), .detail = FIELD("networks[0].bridge")},
    {"a bridge name of 16 bytes",
	.body = NETS("{\"bridge\":\"abcdefghijklmnop\"}"), .status = S(400),
	.detail = FIELD("networks[0].bridge")},
    {"a bridge name with XML in it", .body = NETS("{\"bridge\":\"b'/><x\"}"),
	.status = S(400), .detail = FIELD("networks[0].bridge")},
    {"a bridge name with a space", .body = NETS("{\"bridge\":\"br 0\"}"),
	.status = S(400), .detail = FIELD("networks[0].bridge")},
    {"a bridge name with a slash", .body = NETS("{\"bridge\":\"br/0\"}"),
	.status = S(400), .detail = FIELD("networks[0].bridge")},
    {"a bridge name of non-ASCII letters",
	.body = NETS("{\"bridge\":\"br\u00e9\"}"), .status = S(400),
	.detail = FIELD("networks[0].bridge")},
    {"an empty bridge name", .body = NETS("{\"bridge\":\"\"}"),
	.status = S(400), .detail = FIELD("networks[0].bridge")},
    {"a network name with XML in it (escaped, or refused)",
	.body = NETS("{\"network\":\"n'<x>&\\\"\"}"), .flags = F_MAYCREATE,
	.status = S(201, 400)},
    {"an mtu of 67", .body = NETS("{\"bridge\":\"br0\",\"mtu\":67}"),
	.status = S(400), .detail = FIELD("networks[0].mtu")},
    {"an mtu of 65536", .body = NETS("{\"bridge\":\"br0\",\"mtu\":65536}"),
	.status = S(400), .detail = FIELD("networks[0].mtu")},
    {"an mtu as a string",
	.body = NETS("{\"bridge\":\"br0\",\"mtu\":\"1500\"}"), .status = S(400),
	.detail = FIELD("networks[0].mtu")},
    {"an unknown model",
	.body = NETS("{\"bridge\":\"br0\",\"model\":\"ne2k_pci\"}"),
	.status = S(400), .detail = FIELD("networks[0].model")},
    {"an unknown NIC field", .body = NETS("{\"bridge\":\"br0\",\"vlan\":5}"),
	.status = S(400), .detail = FIELD("networks[0].vlan")},
    {"an address without a prefix",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"192.0.2.10\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].address")},
    {"an IPv4 prefix of 33",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"192.0.2.10/33\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].address")},
    {"an IPv6 prefix of 129",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"2001:db8::10/129\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].address")},
    {"an address that is a name",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"host.example/24\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].address")},
    {"an address with an octet over 255",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"192.0.2.256/24\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].address")},
    {"a gateway outside the IPv4 prefix",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"192.0.2.10/24\",\"gateway\":\"192.0.3.1\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].gateway")},
    {"a gateway outside the IPv6 prefix",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"2001:db8::10/64\",\"gateway\":\"2001:db8:1::1\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].gateway")},
    {"an IPv4 gateway for an IPv6 address",
	.body = NETS("{\"bridge\":\"br0\",\"ips\":[{\"address\":"
		     "\"2001:db8::10/64\",\"gateway\":\"192.0.2.1\"}]}"),
	.status = S(400), .detail = FIELD("networks[0].ips[0].gateway")},
    {"a DNS server that is a name",
	.body = NETS("{\"bridge\":\"br0\",\"dns\":[\"ns.example\"]}"),
	.status = S(400), .detail = FIELD("networks[0].dns[0]")},
    {"networks an object", .body = "{" BASE ",\"networks\":" BR "}",
	.status = S(400), .detail = FIELD("networks")},

    /* guest data (issue 11) */
    {"user_data that is not base64",
	.body = "{" BASE ",\"user_data\":\"#!/bin/sh\"}", .status = S(400),
	.detail = FIELD("user_data")},
    {"user_data without its padding",
	.body = "{" BASE ",\"user_data\":\"aGVsbG8\"}", .status = S(400),
	.detail = FIELD("user_data")},
    {"user_data of 65536 characters", .gen = gen_user_data_too_long,
	.status = S(400), .detail = FIELD("user_data")},
    {"user_data a number", .body = "{" BASE ",\"user_data\":5}",
	.status = S(400), .detail = FIELD("user_data")},
    {"a key of an unknown type", .body = KEY("pgp", "x"), .status = S(400),
	.detail = FIELD("keys[0].type")},
    {"an ssh key that is no key line", .body = KEY("ssh", "hello"),
	.status = S(400), .detail = FIELD("keys[0].data")},
    {"an ssh key with options in front",
	.body = KEY("ssh", "command=\\\"x\\\" " ED25519), .status = S(400),
	.detail = FIELD("keys[0].data")},
    {"an ssh key whose blob holds another type",
	.body = KEY("ssh",
	    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINWmHyBHLSndKrqx"
	    "dm1xGFZEvn+ENZFaE691TkXm/QE+"),
	.status = S(400), .detail = FIELD("keys[0].data")},
    {"two ssh keys on two lines", .body = KEY("ssh", ED25519 "\\n" ED25519),
	.status = S(400), .detail = FIELD("keys[0].data")},
    {"an x509 key that is no certificate", .body = KEY("x509", "hello"),
	.status = S(400), .detail = FIELD("keys[0].data")},
    {"a key without a name",
	.body =
	    "{" BASE ",\"keys\":[{\"type\":\"ssh\",\"data\":\"" ED25519 "\"}]}",
	.status = S(400), .detail = FIELD("keys[0].name")},
    {"a hostname beginning with a hyphen",
	.body = "{" BASE ",\"hostname\":\"-web\"}", .status = S(400),
	.detail = FIELD("hostname")},
    {"a hostname with an underscore",
	.body = "{" BASE ",\"hostname\":\"web_1\"}", .status = S(400),
	.detail = FIELD("hostname")},
    {"a hostname with a dot (an FQDN, not a label)",
	.body = "{" BASE ",\"hostname\":\"web.example\"}", .status = S(400),
	.detail = FIELD("hostname")},
    {"a hostname of 64 characters",
	.body = "{" BASE ",\"hostname\":\"a23456789012345678901234567890123456"
		"7890123456789012345678901234\"}",
	.status = S(400), .detail = FIELD("hostname")},
    {"an empty hostname", .body = "{" BASE ",\"hostname\":\"\"}",
	.status = S(400), .detail = FIELD("hostname")},

    /* interface attach to the resident instance */
    {"attach: a malformed MAC", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"mac\":\"fa:16:3e\"}", .status = S(400),
	.detail = FIELD("mac")},
    {"attach: a multicast MAC", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"mac\":\"33:33:00:00:00:01\"}",
	.status = S(400), .detail = FIELD("mac")},
    {"attach: a MAC already used on the node", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"mac\":\"" RES_MAC "\"}",
	.status = S(409), .detail = FIELD("mac")},
    {"attach: a port_id already used on the node", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"port_id\":\"" RES_PORT "\"}",
	.status = S(409), .detail = FIELD("port_id")},
    {"attach: both bridge and network", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"network\":\"default\"}",
	.status = S(400), .detail = FIELD("network")},
    {"attach: a bridge name of 16 bytes", .path = RES_IFS,
	.body = "{\"bridge\":\"abcdefghijklmnop\"}", .status = S(400),
	.detail = FIELD("bridge")},
    {"attach: an mtu of 65536", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"mtu\":65536}", .status = S(400),
	.detail = FIELD("mtu")},
    {"attach: a gateway outside the prefix", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\",\"ips\":[{\"address\":\"10.0.0.2/8\","
		"\"gateway\":\"11.0.0.1\"}]}",
	.status = S(400), .detail = FIELD("ips[0].gateway")},
    {"attach: the test driver cannot (nothing written)", .path = RES_IFS,
	.body = "{\"bridge\":\"br0\"}", .status = S(501)},
    {"detach: a port_id that is no uuid", .method = "DELETE",
	.path = RES_IFS "/x'y", .status = S(400, 404)},
    {"detach: an unknown port_id", .method = "DELETE", .path = RES_IFS "/" V1,
	.status = S(404), .detail = FIELD("port_id")},

    /* malformed and truncated JSON */
    {"an empty body", .body = "", .status = S(400)},
    {"a lone brace", .body = "{", .status = S(400)},
    {"a body cut mid-string", .body = "{\"name\":\"x", .status = S(400)},
    {"a body cut after a comma", .body = "{" BASE ",", .status = S(400)},
    {"a top-level array", .body = "[{" BASE "}]", .status = S(400)},
    {"a top-level string", .body = "\"x\"", .status = S(400)},
    {"a top-level null", .body = "null", .status = S(400)},
    {"garbage after the object", .body = "{" BASE "} xyz", .status = S(400)},
    {"two objects", .body = "{" BASE "}{" BASE "}", .status = S(400)},
    {"single-quoted keys", .body = "{'name':'x'}", .status = S(400)},
    {"only whitespace", .body = " \n\t ", .status = S(400)},
    {"an unterminated escape", .body = "{\"name\":\"\\u12\"}",
	.status = S(400)},

    /* wrong types */
    {"vcpus \"12abc\"",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":\"12abc\",\"memory_mb\":"
		"64,\"root_gb\":1},\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"vcpus as a numeric string",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":\"1\",\"memory_mb\":64,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"memory_mb a float",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":64.5,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"vcpus 1.0",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1.0,\"memory_mb\":64,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"start as the string \"false\"",
	.body = "{\"name\":\"x\"," FLAVOR ",\"imageRef\":\"" IMG
		"\",\"start\":\"false\"}",
	.status = S(400)},
    {"config_drive as 1", .body = "{" BASE ",\"config_drive\":1}",
	.status = S(400)},
    {"boot_index a string that is no integer",
	.body = BDMS("{\"boot_index\":\"0x\",\"source_type\":\"image\","
		     "\"destination_type\":\"local\",\"uuid\":\"" IMG "\"}"),
	.status = S(400)},
    {"volume_size true",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":true}"),
	.status = S(400)},
    {"flavor an array",
	.body = "{\"name\":\"x\",\"flavor\":[1,64,1],\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"block_device_mapping_v2 an object",
	.body = "{" BASE ",\"block_device_mapping_v2\":" ROOT "}",
	.status = S(400)},
    {"metadata an array", .body = "{" BASE ",\"metadata\":[\"a\"]}",
	.status = S(400)},
    {"metadata a nested object",
	.body = "{" BASE ",\"metadata\":{\"a\":{\"b\":1}}}", .status = S(400)},
    {"name a number",
	.body = "{\"name\":5," FLAVOR ",\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"name null", .body = "{\"name\":null," FLAVOR ",\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"imageRef a number", .body = "{\"name\":\"x\"," FLAVOR ",\"imageRef\":1}",
	.status = S(400)},
    {"no flavor", .body = "{\"name\":\"x\",\"imageRef\":\"" IMG "\"}",
	.status = S(400)},

    /* duplicate and unknown keys */
    {"a duplicate top-level key", .body = "{" BASE ",\"name\":\"y\"}",
	.status = S(400)},
    {"a duplicate key inside a BDM",
	.body = BDMS("{\"boot_index\":0,\"boot_index\":-1,\"source_type\":"
		     "\"image\",\"destination_type\":\"local\",\"uuid\":"
		     "\"" IMG "\"}"),
	.status = S(400)},
    {"an unknown top-level field", .body = "{" BASE ",\"evil\":1}",
	.status = S(400)},
    {"an unknown flavor field",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":64,"
		"\"root_gb\":1,\"gpus\":1},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"an unknown BDM field",
	.body = BDMS("{\"boot_index\":0,\"source_type\":\"image\","
		     "\"destination_type\":\"local\",\"uuid\":\"" IMG "\","
		     "\"evil\":true}"),
	.status = S(400)},

    /* huge and negative numbers */
    {"vcpus 1e400",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1e400,\"memory_mb\":64,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"memory_mb past int64",
	.body =
	    "{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":"
	    "99999999999999999999999,\"root_gb\":1},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"vcpus 2^31",
	.body =
	    "{\"name\":\"x\",\"flavor\":{\"vcpus\":2147483648,\"memory_mb\":"
	    "64,\"root_gb\":1},\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"volume_size INT64_MAX",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":9223372036854775807}"),
	.status = S(400)},
    {"boot_index 1e10",
	.body = BDMS("{\"boot_index\":10000000000,\"source_type\":\"image\","
		     "\"destination_type\":\"local\",\"uuid\":\"" IMG "\"}"),
	.status = S(400)},
    {"memory_mb -1",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":-1,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"root_gb -5",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":64,"
		"\"root_gb\":-5},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"vcpus 0",
	.body = "{\"name\":\"x\",\"flavor\":{\"vcpus\":0,\"memory_mb\":64,"
		"\"root_gb\":1},\"imageRef\":\"" IMG "\"}",
	.status = S(400)},
    {"a negative ephemeral size",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":-1}"),
	.status = S(400)},
    {"a negative swap size",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"guest_format\":\"swap\","
			  "\"volume_size\":-64}"),
	.status = S(400)},

    /* size and depth */
    {"a 10 MB body", .gen = gen_10mb, .status = S(413)},
    {"a 10 MB body of whitespace", .gen = gen_10mb_spaces, .status = S(413)},
    {"10,000 nested arrays", .gen = gen_deep_arrays, .status = S(400)},
    {"40 nested objects", .gen = gen_deep_objects, .status = S(400)},
    {"1,000 BDMs", .gen = gen_1000_bdms, .status = S(400, 413)},
    {"101 BDMs under the body limit", .gen = gen_100_bdms_small,
	.status = S(400)},

    /* NUL bytes, invalid UTF-8, controls */
    {"a raw NUL inside a string",
	.body = "{\"name\":\"a\0b\"," FLAVOR ",\"imageRef\":\"" IMG "\"}",
	.body_len =
	    sizeof("{\"name\":\"a\0b\"," FLAVOR ",\"imageRef\":\"" IMG "\"}") -
	    1,
	.status = S(400)},
    {"an escaped NUL in the name",
	.body = "{\"name\":\"a\\u0000b\"," FLAVOR ",\"imageRef\":\"" IMG
		"\",\"start\":false}",
	.status = S(400)},
    {"invalid UTF-8 in the name",
	.body = "{\"name\":\"a\xff\xfe"
		"b\"," FLAVOR ",\"imageRef\":\"" IMG "\",\"start\":false}",
	.status = S(400)},
    {"overlong UTF-8 in the name",
	.body = "{\"name\":\"\xc0\xaf\"," FLAVOR ",\"imageRef\":\"" IMG
		"\",\"start\":false}",
	.status = S(400)},
    {"a lone surrogate in the name",
	.body = "{\"name\":\"\\ud800\"," FLAVOR ",\"imageRef\":\"" IMG
		"\",\"start\":false}",
	.flags = F_MAYCREATE, .status = S(400, 201)},
    {"a control character in metadata",
	.body = "{" BASE ",\"metadata\":{\"k\":\"a\\u0001b\"}}",
	.flags = F_MAYCREATE, .status = S(400, 201)},
    {"invalid UTF-8 in a metadata key",
	.body = "{" BASE ",\"metadata\":{\"\xed\xa0\x80\":\"v\"}}",
	.status = S(400)},

    /* XML metacharacters: accepted safely or refused */
    {"XML markup and ]]> in the name",
	.body = "{\"name\":\"<x a='1'>&amp;]]></x>\"," FLAVOR
		",\"imageRef\":\"" IMG "\",\"start\":false}",
	.flags = F_MAYCREATE, .status = S(201, 400)},
    {"quotes and a comment opener in the name",
	.body = "{\"name\":\"\\\"'><!--\"," FLAVOR ",\"imageRef\":\"" IMG
		"\",\"start\":false}",
	.flags = F_MAYCREATE, .status = S(201, 400)},
    {"]]> and an entity in metadata",
	.body = "{" BASE ",\"metadata\":{\"k\":\"]]><!ENTITY x SYSTEM "
		"'file:///etc/passwd'>&x;\"}}",
	.flags = F_MAYCREATE, .status = S(201, 400)},
    {"markup in a metadata key",
	.body = "{" BASE ",\"metadata\":{\"<a b='c'>\":\"v\"}}",
	.flags = F_MAYCREATE, .status = S(201, 400)},
    {"markup in a BDM tag",
	.body =
	    BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
		      "\"local\",\"volume_size\":1,\"tag\":\"</disk>]]>\"}"),
	.flags = F_MAYCREATE, .status = S(201, 400)},

    /* path traversal */
    {"imageRef ../../etc/passwd",
	.body = "{\"name\":\"x\"," FLAVOR ",\"imageRef\":\"../../etc/passwd\"}",
	.status = S(400)},
    {"a root BDM image uuid ../x",
	.body = BDMS("{\"boot_index\":0,\"source_type\":\"image\","
		     "\"destination_type\":\"local\",\"uuid\":\"../x\"}"),
	.status = S(400)},
    {"an image upload to ../../etc/passwd", .method = "PUT",
	.path = "/v1/images/..%2f..%2fetc%2fpasswd", .body = "x",
	.status = S(400, 404)},
    {"an image upload to a dotted path", .method = "PUT",
	.path = "/v1/images/../../etc/passwd", .body = "x",
	.status = S(400, 404)},
    {"a relative device_path", .body = BDMS(ROOT "," VOLP(V1, "vol/x")),
	.status = S(400)},
    {"a device_path with ..",
	.body = BDMS(ROOT "," VOLP(V1, "/var/lib/../../etc/shadow")),
	.status = S(400)},
    {"a device_path with //", .body = BDMS(ROOT "," VOLP(V1, "/var//x")),
	.status = S(400)},
    {"a device_path with a newline",
	.body = BDMS(ROOT "," VOLP(V1, "/var/x\\n<disk>")), .status = S(400)},

    /* host paths as volumes ([storage] volume_roots) */
    {"/etc/shadow as a volume", .body = BDMS(ROOT "," VOLP(V1, "/etc/shadow")),
	.status = S(400)},
    {"/etc/shadow as a block volume",
	.body = BDMS(ROOT "," VOLB(V1, "/etc/shadow")), .status = S(400)},
    {"the database as a volume",
	.body = BDMS(ROOT "," VOLP(V1, T "/state/hyperlet.db")),
	.status = S(400)},
    {"the database as a block volume",
	.body = BDMS(ROOT "," VOLB(V1, T "/state/hyperlet.db")),
	.status = S(400)},
    {"an image file as a volume",
	.body = BDMS(ROOT "," VOLP(V1, T "/state/images/" IMG)),
	.status = S(400)},
    {"a volume under the instances directory",
	.body = BDMS(ROOT "," VOLP(V1, T "/state/instances/vol")),
	.status = S(400)},
    {"a symlink in a root to outside it",
	.body = BDMS(ROOT "," VOLP(V1, T "/vols/out")), .status = S(400)},
    {"a block volume that is a regular file",
	.body = BDMS(ROOT "," VOLB(V1, T "/vols/vol")), .status = S(400)},
    {"a file volume that is a directory",
	.body = BDMS(ROOT "," VOLP(V1, T "/vols/dir")), .status = S(400)},
    {"a volume that does not exist",
	.body = BDMS(ROOT "," VOLP(V1, T "/vols/none")), .status = S(400)},
    {"a symlink in a root to inside it is accepted (control)",
	.body = BDMS(ROOT "," VOLP(V1, T "/vols/in")), .flags = F_MAYCREATE,
	.status = S(201)},
    {"a device_name outside /dev",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":1,\"device_name\":"
			  "\"/etc/passwd\"}"),
	.status = S(400)},
    {"a device_name with ../",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":1,\"device_name\":"
			  "\"/dev/../vdb\"}"),
	.status = S(400)},

    /* serials and ids */
    {"a volume id with spaces and quotes",
	.body = BDMS(ROOT "," VOL("vol 1'\\\"<>")), .status = S(400)},
    {"a volume id with a slash", .body = BDMS(ROOT "," VOL("a/b")),
	.status = S(400)},
    {"a volume id with a newline", .body = BDMS(ROOT "," VOL("a\\nb")),
	.status = S(400)},
    {"the same volume twice", .body = BDMS(ROOT "," VOL(V1) "," VOL(V1)),
	.status = S(409)},
    {"two volumes whose serials collide",
	.body =
	    BDMS(ROOT "," VOL("0b6c58b8-0f0a-4b8e-9aaa-aaaaaaaaaaaa") "," VOL(
		"0b6c58b8-0f0a-4b8e-9bbb-bbbbbbbbbbbb")),
	.status = S(409)},
    {"the same bdm_uuid twice",
	.body = BDMS(
	    ROOT ",{\"source_type\":\"blank\",\"destination_type\":\"local\","
		 "\"volume_size\":1,\"bdm_uuid\":\"" V1
		 "\"},{\"source_type\":\"blank\",\"destination_type\":"
		 "\"local\",\"guest_format\":\"swap\",\"volume_size\":1,"
		 "\"bdm_uuid\":\"" V1 "\"}"),
	.status = S(409, 400)},
    {"bdm_uuid not a uuid",
	.body = BDMS(ROOT ",{\"source_type\":\"blank\",\"destination_type\":"
			  "\"local\",\"volume_size\":1,\"bdm_uuid\":\"x\"}"),
	.status = S(400)},

    /* uuids in every wrong form */
    {"instance uuid without dashes",
	.body = "{\"uuid\":\"0c3a9d527f1e4b2a9d3c5b1f0e2a7c11\"," BASE "}",
	.status = S(400)},
    {"instance uuid in braces",
	.body =
	    "{\"uuid\":\"{0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11}\"," BASE "}",
	.status = S(400)},
    {"instance uuid as a urn",
	.body =
	    "{\"uuid\":\"urn:uuid:0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11\"," BASE
	    "}",
	.status = S(400)},
    {"instance uuid one character short",
	.body = "{\"uuid\":\"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c1\"," BASE "}",
	.status = S(400)},
    {"instance uuid one character long",
	.body = "{\"uuid\":\"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c111\"," BASE "}",
	.status = S(400)},
    {"instance uuid with a non-hex digit",
	.body = "{\"uuid\":\"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c1g\"," BASE "}",
	.status = S(400)},
    {"instance uuid with dashes misplaced",
	.body = "{\"uuid\":\"0c3a9d527-f1e-4b2a-9d3c-5b1f0e2a7c11\"," BASE "}",
	.status = S(400)},
    {"instance uuid empty", .body = "{\"uuid\":\"\"," BASE "}",
	.status = S(400)},
    {"instance uuid a number", .body = "{\"uuid\":5," BASE "}",
	.status = S(400)},
    {"imageRef not a uuid",
	.body = "{\"name\":\"x\"," FLAVOR ",\"imageRef\":\"cirros\"}",
	.status = S(400)},
    {"GET of an instance by a malformed uuid", .method = "GET",
	.path = "/v1/instances/not-a-uuid", .status = S(400, 404)},
    {"PUT under a malformed uuid", .method = "PUT",
	.path = "/v1/instances/0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c1Z",
	.body = "{" BASE "}", .status = S(400, 404)},
    {"DELETE with a traversal", .method = "DELETE",
	.path = "/v1/instances/../../v1/health", .status = S(400, 404)},
    {"a list marker that is not a uuid", .method = "GET",
	.path = "/v1/instances?marker=zzz", .status = S(400, 404)},
    {"a negative list limit", .method = "GET", .path = "/v1/instances?limit=-1",
	.status = S(400)},
    {"a list limit of 12abc", .method = "GET",
	.path = "/v1/instances?limit=12abc", .status = S(400)},

    /* headers and URLs */
    {"a 200 KB URL", .gen = gen_long_url, .flags = F_RAW,
	.status = S(400, 414, 431)},
    {"a 200 KB header", .gen = gen_long_header, .flags = F_RAW,
	.status = S(400, 413, 431)},
    {"20,000 headers", .gen = gen_many_headers, .flags = F_RAW,
	.status = S(400, 413, 431)},
    {"bad percent-encoding", .method = "GET", .path = "/v1/instances/%zz%",
	.status = S(400, 404)},
    {"an encoded NUL in the path", .method = "GET",
	.path = "/v1/instances/" IMG "%00", .status = S(400, 404)},
    {"a raw NUL in the request line", .gen = gen_nul_in_path, .flags = F_RAW,
	.status = S(400, 404)},
    {"an image upload without Content-Length", .gen = gen_upload_no_length,
	.flags = F_RAW, .status = S(400, 411)},
    {"a broken chunked body", .gen = gen_bad_chunked, .flags = F_RAW,
	.status = S(400)},
    {"Content-Length -1", .gen = gen_negative_length, .flags = F_RAW,
	.status = S(400)},
    {"Content-Length 10^12", .gen = gen_huge_length, .flags = F_RAW,
	.status = S(413, 400)},
    {"a garbage request line", .gen = gen_garbage_line, .flags = F_RAW,
	.status = S(400)},
    {"an HTTP/2 preface", .gen = gen_http2_preface, .flags = F_RAW,
	.status = S(400, 505)},
    {"text/plain", .body = "{" BASE "}", .headers = NULL,
	.flags = F_NOCT | F_MAYCREATE, .status = S(415)},
    {"an unknown method", .method = "BREW", .path = "/v1/instances",
	.status = S(405, 400, 501)},
    {"POST to an instance", .method = "POST",
	.path = "/v1/instances/0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11",
	.body = "{" BASE "}", .status = S(405, 404)},

/* image formats (16.3): CVE-2024-32498's qcow2 with an external data
     * file, every other header trick, and the formats hyperlet does not
     * take; each 400 with no file and no row */
#define IMGROW(name, g, why)                                                   \
	{                                                                      \
		name,                                                          \
		    .method = "PUT",                                           \
		    .path = "/v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0a99", \
		    .gen = g, .flags = F_IMAGE, .status = S(400),              \
		    .detail = why                                              \
	}
    {"a valid crafted qcow2 (control)", .method = "PUT",
	.path = "/v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0a99",
	.gen = gen_q_valid, .flags = F_IMAGE, .status = S(201)},
    IMGROW("qcow2 with an external data file (bit and extension)",
	gen_q_datafile, "external data file"),
    IMGROW("qcow2 with only the data file extension", gen_q_datafile_ext_only,
	"external data file"),
    IMGROW("qcow2 with only the data file bit", gen_q_datafile_bit_only,
	"external data file"),
    IMGROW("qcow2 with the raw external data bit", gen_q_datafile_raw_bit,
	"external data file"),
    IMGROW("qcow2 v2 with a data file extension", gen_q_v2_datafile_ext,
	"external data file"),
    IMGROW("qcow2 marked dirty", gen_q_dirty, "dirty"),
    IMGROW("qcow2 marked corrupt", gen_q_corrupt, "corrupt"),
    IMGROW("qcow2 with incompatible bit 5", gen_q_unknown_bit5,
	"unknown incompatible"),
    IMGROW("qcow2 with incompatible bit 63", gen_q_unknown_bit63,
	"unknown incompatible"),
    IMGROW("qcow2 with a backing file", gen_q_backing, "backing file"),
    IMGROW("qcow2 with only a backing file size", gen_q_backing_size_only,
	"backing file"),
    IMGROW("qcow2 with a backing format extension", gen_q_backing_fmt_ext,
	"backing file format"),
    IMGROW("qcow2 with a LUKS extension", gen_q_crypto_ext, "encryption"),
    IMGROW("qcow2 encrypted with AES", gen_q_aes, "encryption"),
    IMGROW("qcow2 encrypted with LUKS", gen_q_luks, "encryption"),
    IMGROW("qcow2 with an unknown header extension", gen_q_unknown_ext,
	"unknown header extension"),
    IMGROW("qcow2 with a 4 GiB header extension", gen_q_huge_ext,
	"past the first cluster"),
    IMGROW("qcow2 with extensions and no end marker", gen_q_endless_ext,
	"past the first cluster"),
    IMGROW("qcow2 with cluster_bits 8", gen_q_cluster_bits_8, "cluster_bits"),
    IMGROW("qcow2 with cluster_bits 22", gen_q_cluster_bits_22, "cluster_bits"),
    IMGROW("qcow2 with cluster_bits 64", gen_q_cluster_bits_64, "cluster_bits"),
    IMGROW("qcow2 with header_length 100", gen_q_header_length_100,
	"header_length"),
    IMGROW("qcow2 with header_length 108", gen_q_header_length_108,
	"header_length"),
    IMGROW("qcow2 with a header longer than its cluster",
	gen_q_header_length_1024, "header_length"),
    IMGROW("qcow2 of size 0", gen_q_size_0, "virtual size"),
    IMGROW("qcow2 of size 2^63", gen_q_size_2_63, "virtual size"),
    IMGROW("qcow2 of 1 EiB with a 32-entry L1", gen_q_size_1_ei, "L1"),
    IMGROW("qcow2 with an L1 table too small", gen_q_l1_too_small, "L1"),
    IMGROW("qcow2 with 2^32-1 L1 entries", gen_q_l1_huge, "L1"),
    IMGROW("qcow2 with its L1 table past the end", gen_q_l1_past_the_end, "L1"),
    IMGROW("qcow2 with an unaligned L1 table", gen_q_l1_unaligned, "L1"),
    IMGROW(
	"qcow2 with its L1 table in the header", gen_q_l1_in_the_header, "L1"),
    IMGROW("qcow2 with its refcount table past the end",
	gen_q_reftable_past_the_end, "refcount table"),
    IMGROW("qcow2 without a refcount table", gen_q_reftable_none,
	"refcount table"),
    IMGROW("qcow2 version 1", gen_q_version_1, "version 1"),
    IMGROW("qcow2 version 4", gen_q_version_4, "version 4"),
    IMGROW("qcow2 with refcount_order 7", gen_q_refcount_order_7,
	"refcount_order"),
    IMGROW("qcow2 with 70000 snapshots", gen_q_snapshots_70000, "snapshots"),
    IMGROW("qcow2 with compression type 2", gen_q_compression_2, "compression"),
    IMGROW("qcow2 with the compression bit and zlib",
	gen_q_compression_bit_no_type, "compression"),
    IMGROW("qcow2 with extended L2 on 512-byte clusters",
	gen_q_extl2_small_clusters, "extended L2"),
    IMGROW("a qcow2 header cut at 50 bytes", gen_q_truncated, "truncated"),
    IMGROW("a qcow2 that is also an ISO", gen_q_also_iso, "qcow2 and iso"),
    IMGROW("a vmdk descriptor naming /etc/shadow", gen_vmdk_descriptor, "vmdk"),
    IMGROW("a sparse vmdk", gen_vmdk_sparse, "vmdk"),
    IMGROW("a vhd", gen_vhd, "vhd"),
    IMGROW("a vhdx", gen_vhdx, "vhdx"),
    IMGROW("a vdi", gen_vdi, "vdi"),
    IMGROW("a qed", gen_qed, "qed"),
#undef IMGROW

    /* tokens */
    {"no token", .body = "{" BASE "}", .flags = F_NOAUTH, .status = S(401)},
    {"a wrong token", .body = "{" BASE "}", .flags = F_NOAUTH,
	.headers = "Authorization: Bearer wrong\r\n", .status = S(401)},
    {"the token with a suffix", .body = "{" BASE "}", .flags = F_NOAUTH,
	.headers = "Authorization: Bearer " TOKEN "x\r\n", .status = S(401)},
    {"a token prefix", .body = "{" BASE "}", .flags = F_NOAUTH,
	.headers = "Authorization: Bearer badinput\r\n", .status = S(401)},
    {"Bearer and nothing", .body = "{" BASE "}", .flags = F_NOAUTH,
	.headers = "Authorization: Bearer\r\n", .status = S(401)},
    {"Basic credentials", .body = "{" BASE "}", .flags = F_NOAUTH,
	.headers = "Authorization: Basic YWRtaW46YWRtaW4=\r\n",
	.status = S(401)},
    {"a list without a token", .method = "GET", .path = "/v1/instances",
	.flags = F_NOAUTH, .status = S(401)},
    {"an image upload without a token", .method = "PUT",
	.path = "/v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0aee",
	.body = "xxxxxxxx", .flags = F_NOAUTH, .status = S(401)},
    {"two Authorization headers, one wrong", .body = "{" BASE "}",
	.flags = F_NOAUTH,
	.headers = "Authorization: Bearer wrong\r\nAuthorization: Bearer " TOKEN
		   "\r\n",
	.status = S(401, 400)},
};

/* After a 201: the domain XML is well-formed and the instance keeps the
 * name it was given; then the instance is deleted. */
static void
check_created(const struct bad_case *c, struct resp *r)
{
	struct json_object *o = json_tokener_parse(r->body), *v;
	char path[128], uuid[40];
	struct resp x;
	xmlDocPtr doc;

	ck_assert_msg(o && json_object_object_get_ex(o, "uuid", &v),
	    "%s: 201 without a uuid: %s", c->name, r->body);
	snprintf(uuid, sizeof(uuid), "%s", json_object_get_string(v));
	json_object_put(o);
	snprintf(path, sizeof(path), "/v1/instances/%s/domain", uuid);
	ck_assert_msg(http_get(path, &x) == 200, "%s: GET domain: %d %s",
	    c->name, x.status, x.raw);
	doc = xmlReadMemory(x.body, (int)strlen(x.body), "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	ck_assert_msg(
	    doc != NULL, "%s: ill-formed domain XML:\n%s", c->name, x.body);
	xmlFreeDoc(doc);
	resp_clear(&x);
	snprintf(path, sizeof(path), "/v1/instances/%s", uuid);
	http("DELETE", path, NULL, AUTH_GOOD, NULL, NULL, 0, &x);
	ck_assert_msg(
	    x.status == 204, "%s: DELETE answered %d", c->name, x.status);
	resp_clear(&x);
}

/* body with every "@T@" replaced by the test dir (owned). */
static char *
expand_test_dir(const char *body)
{
	size_t n = strlen(body), dl = strlen(state_dir);
	char *out = malloc(n * (dl + 1) + 1), *o = out;
	const char *p;

	ck_assert_ptr_nonnull(out);
	for (p = body; *p;) {
		if (strncmp(p, T, 3) == 0) {
			memcpy(o, state_dir, dl);
			o += dl;
			p += 3;
		} else
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

START_TEST(test_hostile_request_gets_its_status_and_changes_nothing)
{
	const struct bad_case *c = &cases[_i];
	struct resp r;
	char *gen = NULL;
	size_t len = 0;
	bool ok = false;

	if (c->gen) {
		gen = c->gen(&len);
		ck_assert_ptr_nonnull(gen);
	}
	if (c->flags & F_RAW)
		http_raw(gen, len, &r);
	else {
		const char *body = gen ? gen : c->body;

		if (!gen && body && strstr(body, T)) {
			gen = expand_test_dir(body);
			body = gen;
		}
		if (!gen && body)
			len = c->body_len ? c->body_len : strlen(body);
		else if (gen && !(c->gen))
			len = strlen(gen);
		http(c->method ? c->method : "POST",
		    c->path ? c->path : "/v1/instances", c->headers,
		    (c->flags & F_NOAUTH) ? AUTH_NONE : AUTH_GOOD,
		    (c->flags & F_NOCT)        ? "text/plain"
			: (c->flags & F_IMAGE) ? "application/octet-stream"
			: body                 ? "application/json"
					       : NULL,
		    body, len, &r);
	}
	free(gen);
	for (int i = 0; c->status[i]; i++)
		ok = ok || r.status == c->status[i];
	if (getenv("BADINPUT_VERBOSE"))
		fprintf(stderr, "%3d  %s\n", r.status, c->name);
	ck_assert_msg(ok, "%s: got %d, want %d%s: %.400s", c->name, r.status,
	    c->status[0], c->status[1] ? " (or another listed)" : "",
	    r.raw ? r.raw : "(nothing)");
	if (c->detail)
		ck_assert_msg(r.raw && strstr(r.raw, c->detail),
		    "%s: the answer does not say '%s': %.400s", c->name,
		    c->detail, r.raw ? r.raw : "(nothing)");
	if (r.status == 201 && (c->flags & F_MAYCREATE))
		check_created(c, &r);
	if (r.status == 201 && (c->flags & F_IMAGE)) {
		struct resp x;

		http("DELETE", c->path, NULL, AUTH_GOOD, NULL, NULL, 0, &x);
		ck_assert_msg(x.status == 204, "%s: DELETE answered %d",
		    c->name, x.status);
		resp_clear(&x);
	}
	resp_clear(&r);
	assert_unchanged(c->name);
}
END_TEST

/* A symlink planted where an upload lands must not be written through:
 * the upload replaces the link (or is refused), the target stays intact. */
START_TEST(test_image_upload_onto_a_planted_symlink_writes_nothing_through_it)
{
	static const char id[] = "0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0abc";
	char victim[600], link[600], *text;
	struct resp r;
	struct stat st;

	snprintf(victim, sizeof(victim), "%s/victim", state_dir);
	snprintf(link, sizeof(link), "%s/state/images/%s", state_dir, id);
	write_file(victim, "precious\n");
	ck_assert_int_eq(symlink(victim, link), 0);
	http("PUT", "/v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0abc", NULL,
	    AUTH_GOOD, "application/octet-stream", "EVILEVIL", 8, &r);
	ck_assert_msg(r.status == 201 || r.status == 409 || r.status == 400,
	    "upload onto a symlink answered %d: %s", r.status, r.raw);
	text = testutil_read_file(victim, NULL);
	ck_assert_str_eq(text, "precious\n");
	free(text);
	if (r.status == 201) {
		struct resp x;

		ck_assert_int_eq(lstat(link, &st), 0);
		ck_assert_msg(!S_ISLNK(st.st_mode), "the link is still there");
		http("DELETE",
		    "/v1/images/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0abc", NULL,
		    AUTH_GOOD, NULL, NULL, 0, &x);
		ck_assert_int_eq(x.status, 204);
		resp_clear(&x);
	} else
		(void)unlink(link);
	resp_clear(&r);
	assert_unchanged("upload onto a symlink");
}
END_TEST

/* --- slow clients and idle floods ----------------------------------------- */

START_TEST(test_slow_headers_are_cut_off_without_holding_up_others)
{
	const char *req = "GET /v1/health HTTP/1.1\r\nHost: x\r\n"
			  "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			  "aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	int fd = connect_port();
	double t0 = now_s(), cut = 0;
	size_t i;

	ck_assert_int_ge(fd, 0);
	for (i = 0; req[i] && now_s() - t0 < 4 * CONN_TIMEOUT; i++) {
		struct resp r;
		double s0;

		if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1) {
			cut = now_s() - t0;
			break;
		}
		/* Meanwhile a normal request is answered at once. */
		s0 = now_s();
		ck_assert_int_eq(http_get("/v1/health", &r), 200);
		resp_clear(&r);
		ck_assert_msg(
		    now_s() - s0 < 1.0, "health took %.2f s", now_s() - s0);
		{
			struct pollfd p = {.fd = fd, .events = POLLIN};
			char b;

			if (poll(&p, 1, 1000) == 1 &&
			    recv(fd, &b, 1, MSG_DONTWAIT) <= 0) {
				cut = now_s() - t0;
				break;
			}
		}
	}
	close(fd);
	ck_assert_msg(cut > 0,
	    "a client sending 1 byte/s was never cut off "
	    "(sent %zu bytes in %.1f s)",
	    i, now_s() - t0);
	ck_assert_msg(cut < 3 * CONN_TIMEOUT, "cut off only after %.1f s", cut);
}
END_TEST

static int
count_fds(pid_t pid)
{
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	n_files = 0;
	(void)nftw(path, count_file, 4, FTW_PHYS);
	n = n_files;
	return n;
}

START_TEST(test_idle_connection_flood_stays_within_the_limit)
{
	enum { FLOOD = CONN_LIMIT * 3 };
	int fds[FLOOD], open_fds, before = count_fds(daemon_pid);
	struct resp r;
	double end;

	for (int i = 0; i < FLOOD; i++)
		fds[i] = connect_port();
	usleep(500000);
	open_fds = count_fds(daemon_pid);
	fprintf(stderr,
	    "flood of %d idle connections: the daemon holds %d fds "
	    "(%d before, connection_limit %d)\n",
	    FLOOD, open_fds, before, CONN_LIMIT);
	ck_assert_msg(open_fds <= before + CONN_LIMIT + 8,
	    "the daemon holds %d fds (%d before, limit %d)", open_fds, before,
	    CONN_LIMIT);
	ck_assert_int_eq(kill(daemon_pid, 0), 0);
	/* The idle ones time out; then service is normal again. */
	for (end = now_s() + 4 * CONN_TIMEOUT; now_s() < end; usleep(200000)) {
		if (count_fds(daemon_pid) <= before + 2)
			break;
	}
	ck_assert_msg(count_fds(daemon_pid) <= before + 2,
	    "idle connections still held after %d s", 4 * CONN_TIMEOUT);
	for (int i = 0; i < FLOOD; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ck_assert_int_eq(http_get("/v1/health", &r), 200);
	resp_clear(&r);
}
END_TEST

static Suite *
badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tcase_create("hostile_requests");

	tcase_add_unchecked_fixture(tc, baseline_take, daemon_stop);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc,
	    test_hostile_request_gets_its_status_and_changes_nothing, 0,
	    (int)ELEMENTSOF(cases));
	tcase_add_test(tc,
	    test_image_upload_onto_a_planted_symlink_writes_nothing_through_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("slow_clients");
	tcase_add_unchecked_fixture(tc, baseline_take, daemon_stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(
	    tc, test_slow_headers_are_cut_off_without_holding_up_others);
	tcase_add_test(tc, test_idle_connection_flood_stays_within_the_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (getenv("HYPERLETD") == NULL) {
		fprintf(
		    stderr, "HYPERLETD is not set (run under make check)\n");
		return 77;
	}
	return testutil_run(badinput_suite());
}
