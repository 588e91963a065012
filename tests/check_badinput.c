/*
 * Hostile and broken requests against the real hyperletd over real HTTP
 * (raw sockets, so that every byte is ours: NULs, bad percent-encoding, a
 * missing Content-Length, slow headers). One table row per request, each
 * with the statuses it may get; after every row the test checks that
 * nothing changed: the same instance/BDM/image rows in the database (read
 * with SQLite directly), the same list through the API, no file under the
 * instances directory, and the daemon still healthy. Rows that may be
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
	    "[storage]\nstate_dir = %s/state\n[log]\nlevel = warn\n",
	    port, token, CONN_LIMIT, CONN_TIMEOUT, state_dir);
	write_file(conf, text);
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
	int64_t instances, bdms, images;
	int files;
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
	sqlite3_close(db);
	n_files = 0;
	(void)nftw(instances_dir, count_file, 16, FTW_PHYS);
	s->files = n_files;
	ck_assert_int_eq(http_get("/v1/instances?limit=1000", &r), 200);
	o = json_tokener_parse(r.body);
	ck_assert_msg(o && json_object_object_get_ex(o, "instances", &arr),
	    "list answered %s", r.body);
	s->listed = (int)json_object_array_length(arr);
	json_object_put(o);
	resp_clear(&r);
}

static struct snap baseline;

static void
baseline_take(void)
{
	daemon_start();
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
		s.bdms == baseline.bdms && s.images == baseline.images,
	    "%s: rows changed: instances %lld->%lld bdms %lld->%lld images "
	    "%lld->%lld",
	    what, (long long)baseline.instances, (long long)s.instances,
	    (long long)baseline.bdms, (long long)s.bdms,
	    (long long)baseline.images, (long long)s.images);
	ck_assert_msg(s.files == 0, "%s: %d files under %s", what, s.files,
	    instances_dir);
	ck_assert_msg(s.listed == baseline.listed, "%s: list %d -> %d", what,
	    baseline.listed, s.listed);
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
#define VOL(id) VOLP(id, "/var/lib/hyperlet-test/vol")
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
	/* Under the 64 KiB body limit, over max_bdms (64). */
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

#define S(...)                 \
	{                      \
		__VA_ARGS__, 0 \
	}

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

		if (!gen && body)
			len = c->body_len ? c->body_len : strlen(body);
		http(c->method ? c->method : "POST",
		    c->path ? c->path : "/v1/instances", c->headers,
		    (c->flags & F_NOAUTH) ? AUTH_NONE : AUTH_GOOD,
		    (c->flags & F_NOCT) ? "text/plain"
			: body          ? "application/json"
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
	if (r.status == 201 && (c->flags & F_MAYCREATE))
		check_created(c, &r);
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
