/*
 * check_http: the HTTP layer under abuse (issue 16), end to end against
 * the real daemon ($HYPERLETD) on a free port with test:///default: a
 * client holding every connection slot, unauthenticated connections that
 * idle, a trickling upload, metrics after a flood of 401s, TLS versions
 * and suites and a certificate swapped by SIGHUP, 5xx bodies that keep
 * their cause for the log, X-Request-Id, rate-limited 401 log lines and
 * the Host check against DNS rebinding. Raw sockets where every byte
 * matters, libcurl and openssl(1) elsewhere.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "macro.h"
#include "testutil.h"

#define TOKEN "check-http-token-0123456789"
#define IMG "5b2f9c1e-3d4a-4e6f-8a7b-9c0d1e2f3a4b"

/* ---- the daemon under test ------------------------------------------- */

static pid_t daemon_pid;
static int port;
static char *dir; /* owned temp dir: conf, log, state */
static char log_path[512];
static bool use_token, use_tls;

static char *
read_log(void)
{
	char *s = testutil_read_file(log_path, NULL);

	return s ? s : strdup("");
}

/* Starts the daemon on [api] keys extra (plus a token or TLS as the
 * flags say) and waits for its port. */
static void
daemon_start(const char *extra)
{
	char conf[600], tok[600];
	char *text = NULL;

	if (dir == NULL)
		dir = testutil_mkdtemp("check_http");
	ck_assert_ptr_nonnull(dir);
	(void)snprintf(conf, sizeof(conf), "%s/hyperlet.conf", dir);
	(void)snprintf(tok, sizeof(tok), "%s/token", dir);
	(void)snprintf(log_path, sizeof(log_path), "%s/hyperletd.log", dir);
	write_file(tok, TOKEN "\n");
	ck_assert_int_ge(
	    asprintf(&text,
		"[api]\nlisten = 127.0.0.1:0\n%s%s%s%s%s%s%s%s"
		"[storage]\nstate_dir = %s/state\n"
		"synchronous = normal\n"
		/* no capacity claims (test:///default is a 3 GiB node) */
		"[node]\nram_allocation_ratio = 1000000\n"
		"cpu_allocation_ratio = 1000000\n"
		"disk_allocation_ratio = 1000000\n",
		use_token ? "auth_token_file = " : "", use_token ? tok : "",
		use_token ? "\n" : "", use_tls ? "tls_cert_file = " : "",
		use_tls ? dir : "", use_tls ? "/cert.pem\ntls_key_file = " : "",
		use_tls ? dir : "", use_tls ? "/key.pem\n" : "", dir),
	    0);
	if (extra) {
		char *t2 = NULL;

		/* extra's lines go into [api] (the first section) */
		ck_assert_int_ge(asprintf(&t2, "%.*s%s%s",
				     (int)(strstr(text, "[storage]") - text),
				     text, extra, strstr(text, "[storage]")),
		    0);
		free(text);
		text = t2;
	}
	write_file(conf, text);
	free(text);
	port = httpc_daemon_spawn(dir, conf, log_path, 60000, &daemon_pid);
	if (port <= 0) {
		char *log = read_log();

		ck_abort_msg("hyperletd did not start:\n%s", log);
	}
}

static void
setup(void)
{
	use_token = use_tls = false;
	dir = NULL;
	daemon_pid = 0;
}

static void
teardown(void)
{
	if (daemon_pid > 0) {
		int st = httpc_daemon_stop(&daemon_pid);

		if (st != 0) {
			char *log = read_log();
			size_t l = strlen(log);

			ck_abort_msg("hyperletd did not exit 0; log tail:\n%s",
			    log + (l > 3000 ? l - 3000 : 0));
		}
	}
	if (dir && !getenv("KEEP_TEST_DIR"))
		testutil_rm_rf(dir);
	free(dir);
	dir = NULL;
}

/* ---- HTTP ------------------------------------------------------------ */

struct req_opts {
	bool auth; /* send the token */
	long timeout_s; /* 0: 60 */
	struct upload_src *src; /* an octet-stream body */
	CURL *reuse; /* keep-alive: this handle (not cleaned up) */
};

/* One request; the response (or curl's error in r->cc) lands in *r. */
static void
http_ex(const char *method, const char *path, const struct req_opts *o,
    struct resp *r)
{
	static const struct req_opts none = {0};
	CURL *c;
	struct curl_slist *h = NULL;
	char url[1024];

	o = o ? o : &none;
	c = o->reuse ? o->reuse : curl_easy_init();
	ck_assert_ptr_nonnull(c);
	(void)snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s",
	    use_tls ? "https" : "http", port, path);
	if (o->src) {
		h = curl_slist_append(
		    h, "Content-Type: application/octet-stream");
		h = curl_slist_append(h, "Expect:");
	}
	if (o->auth)
		h = curl_slist_append(h, "Authorization: Bearer " TOKEN);
	(void)httpc_perform(c,
	    &(struct httpc_req){.method = method,
		.url = url,
		.src = o->src,
		.timeout_s = o->timeout_s,
		.headers = h},
	    r);
	curl_slist_free_all(h);
	if (!o->reuse)
		curl_easy_cleanup(c);
}

static void
http(const char *method, const char *path, bool auth, struct resp *r)
{
	struct req_opts o = {.auth = auth};

	http_ex(method, path, &o, r);
	ck_assert_msg(r->cc == CURLE_OK, "%s %s: %s", method, path,
	    curl_easy_strerror(r->cc));
}

#define ck_status(r, want)                                              \
	ck_assert_msg((r)->status == (want), "status %ld, want %d: %s", \
	    (r)->status, (want), (r)->body ? (r)->body : "")

/* A TCP connection to the daemon from source address src (127.0.0.x),
 * connected without waiting (the kernel finishes it). */
static int
connect_from(const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in s = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET, src, &s.sin_addr), 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
	    "connect: %s", strerror(errno));
	return fd;
}

/* Waits up to timeout_ms for the server to close fd (EOF or reset). */
static bool
closed_within(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char b[512];

		if (poll(&p, 1, (int)(deadline - now_ms())) == 1) {
			ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

			if (n <= 0 && !(n < 0 && errno == EAGAIN))
				return true;
		}
	}
	return false;
}

/* Sends a raw request on a fresh connection and returns the status of the
 * answer (0: none), with the whole answer in *ret (owned) if ret. */
static int
raw_request(const char *req, char **ret)
{
	int fd = connect_from("127.0.0.1");
	char *all = NULL;
	size_t len = 0;
	int status = 0;
	struct timeval tv = {10, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(
	    send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	for (;;) {
		char b[4096];
		ssize_t n = recv(fd, b, sizeof(b), 0);
		char *na;

		if (n <= 0)
			break;
		na = realloc(all, len + (size_t)n + 1);
		ck_assert_ptr_nonnull(na);
		all = na;
		memcpy(all + len, b, (size_t)n);
		len += (size_t)n;
		all[len] = '\0';
	}
	close(fd);
	if (all && strncmp(all, "HTTP/1.", 7) == 0 && all[8] == ' ')
		status = atoi(all + 9);
	if (ret)
		*ret = all ? all : strdup("");
	else
		free(all);
	return status;
}

/* ---- 16.4: connection exhaustion ------------------------------------- */

START_TEST(test_one_client_holding_256_idle_connections_leaves_health_answering)
{
	enum { N = 256 };
	int fds[N], closed = 0;
	int64_t t0;

	/* the defaults: connection_limit 256, per_ip_connection_limit 64,
	 * header_timeout 5 */
	daemon_start(NULL);
	/* The attacker opens as many idle connections as the daemon has
	 * slots and holds them, from the address the health checks come
	 * from (on the loopback, every local client shares 127.0.0.1). */
	for (int i = 0; i < N; i++)
		fds[i] = connect_from("127.0.0.1");
	sleep_ms(300); /* let the daemon accept what it takes */
	t0 = now_ms();
	/* Meanwhile another client's health checks are answered at once. */
	for (int i = 0; i < 5; i++) {
		struct req_opts o = {.timeout_s = 5};
		struct resp r;

		http_ex("GET", "/v1/health", &o, &r);
		ck_assert_msg(r.cc == CURLE_OK,
		    "health while %d idle connections are held: %s", N,
		    curl_easy_strerror(r.cc));
		ck_status(&r, 200);
		ck_assert_msg(r.seconds < 1.0,
		    "health took %.2f s while %d idle connections are held",
		    r.seconds, N);
		resp_clear(&r);
	}
	/* and every idle connection is gone within header_timeout: those
	 * over the per-address limit at once (each newer one closed the
	 * oldest idle one), the others when their deadline passed */
	for (int i = 0; i < N; i++) {
		int left = 9000 - (int)(now_ms() - t0);

		if (closed_within(fds[i], left > 0 ? left : 1))
			closed++;
		close(fds[i]);
	}
	ck_assert_msg(closed == N, "only %d of %d idle connections were closed",
	    closed, N);
}
END_TEST

START_TEST(test_an_unauthenticated_connection_has_header_timeout_to_idle)
{
	const char *health =
	    "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	const char *authed = "GET /v1/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			     "Authorization: Bearer " TOKEN "\r\n\r\n";
	int64_t t0;
	int fd1, fd2;
	char b[4096];

	use_token = true;
	daemon_start("header_timeout = 1\nconnection_timeout = 30\n");
	/* A connection that sends nothing: cut after header_timeout. */
	fd1 = connect_from("127.0.0.1");
	t0 = now_ms();
	ck_assert_msg(closed_within(fd1, 4000),
	    "an idle new connection was not cut off after header_timeout");
	ck_assert_int_ge(now_ms() - t0, 500);
	close(fd1);
	/* A public request without the token does not earn the longer
	 * deadline; an authenticated one does. */
	fd1 = connect_from("127.0.0.1");
	fd2 = connect_from("127.0.0.1");
	ck_assert_int_gt(send(fd1, health, strlen(health), MSG_NOSIGNAL), 0);
	ck_assert_int_gt(send(fd2, authed, strlen(authed), MSG_NOSIGNAL), 0);
	ck_assert_int_gt(recv(fd1, b, sizeof(b), 0), 0);
	ck_assert_int_gt(recv(fd2, b, sizeof(b), 0), 0);
	ck_assert_msg(closed_within(fd1, 4000),
	    "an unauthenticated kept-alive connection was not cut off");
	ck_assert_msg(!closed_within(fd2, 2500),
	    "an authenticated kept-alive connection was cut off after "
	    "header_timeout");
	close(fd1);
	close(fd2);
}
END_TEST

START_TEST(test_a_trickling_upload_is_cut_off_and_leaves_no_image)
{
	struct upload_src slow = {NULL, 1 << 20, 0, 1024, 100}; /* ~10 KiB/s */
	struct upload_src fast = {NULL, 1 << 20, 0, 0, 0};
	struct req_opts o = {.src = &slow, .timeout_s = 30};
	struct resp r;
	int64_t t0;
	char *log;

	/* min_upload_rate: the default, 64 KiB/s */
	daemon_start("connection_timeout = 2\n");
	t0 = now_ms();
	/* never idle for connection_timeout, but far under 64 KiB/s */
	http_ex("PUT", "/v1/images/" IMG, &o, &r);
	ck_assert_msg(r.cc != CURLE_OK || r.status != 201,
	    "a 10 KiB/s upload was accepted (status %ld)", r.status);
	ck_assert_msg(now_ms() - t0 < 15000, "cut off only after %lld ms",
	    (long long)(now_ms() - t0));
	resp_clear(&r);
	http("GET", "/v1/images/" IMG, false, &r);
	ck_status(&r, 404);
	resp_clear(&r);
	log = read_log();
	ck_assert_ptr_nonnull(strstr(log, "cut off an upload"));
	free(log);
	/* the same image at full speed is fine */
	o.src = &fast;
	http_ex("PUT", "/v1/images/" IMG, &o, &r);
	ck_assert_int_eq(r.cc, CURLE_OK);
	ck_status(&r, 201);
	resp_clear(&r);
}
END_TEST

/* ---- 16.7: metrics after a flood of 401s ----------------------------- */

/* The value of the series line starting with prefix in text, or -1. */
static long long
series(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while (p && *p) {
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return atoll(p + n + 1);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return -1;
}

START_TEST(test_metrics_count_authenticated_requests_after_1000_unauthenticated)
{
	static const char *const methods[] = {
	    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"};
	CURL *c = curl_easy_init();
	struct req_opts flood = {.reuse = c};
	struct resp r;
	char path[128], method[32];
	long long lines = 0;

	use_token = true;
	daemon_start(NULL);
	for (int i = 0; i < 1000; i++) {
		/* every route that needs the token and none, with every
		 * method known and some not: 12 x 8 combinations, which
		 * filled main's 96-row table */
		static const char *const paths[] = {"/metrics", "/v1/instances",
		    "/v1/instances/%d", "/v1/instances/%d/action",
		    "/v1/instances/%d/block_device_mappings",
		    "/v1/instances/%d/block_device_info",
		    "/v1/instances/%d/domain", "/v1/instances/%d/volumes",
		    "/v1/instances/%d/volumes/%d", "/v1/images",
		    "/v1/images/%d", "/v1/nope%d"};

		(void)snprintf(path, sizeof(path), paths[i % 12], i, i);
		(void)snprintf(method, sizeof(method), "%s%s",
		    methods[(i / 12) % 8], i >= 96 && i % 7 == 0 ? "Z" : "");
		http_ex(method, path, &flood, &r);
		ck_assert_msg(r.cc == CURLE_OK, "%s %s: %s", method, path,
		    curl_easy_strerror(r.cc));
		ck_status(&r, 401);
		resp_clear(&r);
	}
	curl_easy_cleanup(c);
	for (int i = 0; i < 3; i++) {
		http("GET", "/v1/instances", true, &r);
		ck_status(&r, 200);
		resp_clear(&r);
	}
	http("GET", "/v1/nowhere", true, &r);
	ck_status(&r, 404);
	resp_clear(&r);
	http("DELETE", "/v1/images/" IMG, true, &r);
	ck_status(&r, 404);
	resp_clear(&r);
	http("GET", "/metrics", true, &r);
	ck_status(&r, 200);
	ck_assert_int_eq(series(r.body,
			     "hyperlet_http_requests_total{route=\"/v1/"
			     "instances\",method=\"GET\",status=\"200\"}"),
	    3);
	ck_assert_int_eq(series(r.body,
			     "hyperlet_http_requests_total{route=\"unmatched\","
			     "method=\"GET\",status=\"404\"}"),
	    1);
	ck_assert_int_eq(series(r.body,
			     "hyperlet_http_requests_total{route=\"/v1/images/"
			     "{image_id}\",method=\"DELETE\",status=\"404\"}"),
	    1);
	ck_assert_int_eq(series(r.body,
			     "hyperlet_http_requests_total{route="
			     "\"unauthenticated\",method=\"any\","
			     "status=\"401\"}"),
	    1000);
	for (const char *p = r.body;
	     (p = strstr(p, "\nhyperlet_http_requests_total{")); p++)
		lines++;
	ck_assert_msg(lines == 4, "%lld request series:\n%s", lines, r.body);
	resp_clear(&r);
}
END_TEST

/* ---- 16.8: TLS -------------------------------------------------------- */

static bool
make_cert(const char *cert, const char *key, const char *cn)
{
	char cmd[2048];

	(void)snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=%s "
	    "-keyout '%s' -out '%s' >/dev/null 2>&1",
	    cn, key, cert);
	return system(cmd) == 0;
}

/* openssl s_client with args; true if the handshake succeeded. */
static bool
handshake(const char *args, char *fp, size_t fp_size)
{
	char cmd[1024], line[512];
	FILE *p;
	bool ok = false;

	(void)snprintf(cmd, sizeof(cmd),
	    "openssl s_client -connect 127.0.0.1:%d %s </dev/null "
	    "2>/dev/null | sed -n '/BEGIN CERT/,/END CERT/p;/^New, /p' | "
	    "tee '%s/sclient.out' | sed -n '/BEGIN CERT/,/END CERT/p' | "
	    "openssl x509 -noout -fingerprint -sha256 2>/dev/null",
	    port, args, dir);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (fp && fp_size)
		fp[0] = '\0';
	while (fgets(line, sizeof(line), p))
		if (fp && strncmp(line, "sha256 Fingerprint=", 19) == 0)
			(void)snprintf(fp, fp_size, "%s", line + 19);
	pclose(p);
	{
		char path[600], *out;

		(void)snprintf(path, sizeof(path), "%s/sclient.out", dir);
		out = testutil_read_file(path, NULL);
		/* "New, TLSv1.2, Cipher is X" or "New, (NONE), Cipher is
		 * (NONE)" */
		ok = out && strstr(out, "New, ") &&
		    !strstr(out, "Cipher is (NONE)");
		free(out);
	}
	return ok;
}

static void
file_fingerprint(const char *cert, char *fp, size_t size)
{
	char cmd[700], line[512];
	FILE *p;

	(void)snprintf(cmd, sizeof(cmd),
	    "openssl x509 -in '%s' -noout -fingerprint -sha256", cert);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	fp[0] = '\0';
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, "sha256 Fingerprint=", 19) == 0)
			(void)snprintf(fp, size, "%s", line + 19);
	pclose(p);
	ck_assert_msg(fp[0], "no fingerprint for %s", cert);
}

START_TEST(test_tls_refuses_old_versions_and_static_rsa_and_reloads_on_sighup)
{
	char cert[600], key[600], tmpc[600], tmpk[600];
	char fp1[512], fp2[512], got[512];
	struct resp r;
	int64_t deadline;
	char *log;

	dir = testutil_mkdtemp("check_http");
	ck_assert_ptr_nonnull(dir);
	(void)snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	(void)snprintf(key, sizeof(key), "%s/key.pem", dir);
	(void)snprintf(tmpc, sizeof(tmpc), "%s/cert2.pem", dir);
	(void)snprintf(tmpk, sizeof(tmpk), "%s/key2.pem", dir);
	if (!make_cert(cert, key, "first") ||
	    !make_cert(tmpc, tmpk, "second")) {
		fprintf(stderr, "SKIP: openssl cannot make a certificate\n");
		return;
	}
	file_fingerprint(cert, fp1, sizeof(fp1));
	file_fingerprint(tmpc, fp2, sizeof(fp2));
	use_tls = true;
	daemon_start(NULL);
	http("GET", "/v1/health", false, &r);
	ck_status(&r, 200);
	resp_clear(&r);

	/* The client offers only the old version (its own floor lowered,
	 * so that the server is the one that refuses). */
	ck_assert_msg(!handshake("-tls1 -cipher DEFAULT@SECLEVEL=0", NULL, 0),
	    "a TLS 1.0 handshake succeeded");
	ck_assert_msg(!handshake("-tls1_1 -cipher DEFAULT@SECLEVEL=0", NULL, 0),
	    "a TLS 1.1 handshake succeeded");
	/* static RSA key exchange: no forward secrecy */
	ck_assert_msg(!handshake("-tls1_2 -cipher AES128-SHA", NULL, 0),
	    "a TLS 1.2 handshake with AES128-SHA (static RSA) succeeded");
	ck_assert_msg(!handshake("-tls1_2 -cipher AES128-GCM-SHA256", NULL, 0),
	    "a TLS 1.2 handshake with AES128-GCM-SHA256 (static RSA) "
	    "succeeded");
	ck_assert_msg(handshake("-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256",
			  got, sizeof(got)),
	    "a TLS 1.2 ECDHE handshake failed");
	ck_assert_str_eq(got, fp1);
	ck_assert_msg(handshake("-tls1_3", got, sizeof(got)),
	    "a TLS 1.3 handshake failed");

	/* SIGHUP with a new pair: new connections get it */
	ck_assert_int_eq(rename(tmpc, cert), 0);
	ck_assert_int_eq(rename(tmpk, key), 0);
	ck_assert_int_eq(kill(daemon_pid, SIGHUP), 0);
	for (deadline = now_ms() + 10000; now_ms() < deadline; sleep_ms(100))
		if (handshake("-tls1_2", got, sizeof(got)) && STREQ(got, fp2))
			break;
	ck_assert_msg(STREQ(got, fp2),
	    "after SIGHUP the old certificate "
	    "is still served");
	/* A key that does not load is refused; the pair in use stays. */
	write_file(key, "not a key\n");
	ck_assert_int_eq(kill(daemon_pid, SIGHUP), 0);
	for (deadline = now_ms() + 10000; now_ms() < deadline; sleep_ms(50)) {
		log = read_log();
		if (strstr(log, "keeping the current TLS certificate")) {
			free(log);
			break;
		}
		free(log);
	}
	log = read_log();
	ck_assert_ptr_nonnull(
	    strstr(log, "keeping the current TLS certificate"));
	free(log);
	ck_assert(handshake("-tls1_2", got, sizeof(got)));
	ck_assert_str_eq(got, fp2);
	http("GET", "/v1/health", false, &r);
	ck_status(&r, 200);
	resp_clear(&r);
}
END_TEST

START_TEST(test_a_tls_priority_string_gnutls_refuses_fails_the_config_check)
{
	const char *bin = getenv("HYPERLETD");
	char conf[600], cmd[1400], out[1024] = "";
	FILE *p;
	int st;
	size_t n;

	dir = testutil_mkdtemp("check_http");
	ck_assert_ptr_nonnull(dir);
	(void)snprintf(conf, sizeof(conf), "%s/bad.conf", dir);
	write_file(conf,
	    "[api]\n"
	    "tls_priorities = NORMAL:+NO-SUCH-THING\n");
	(void)snprintf(cmd, sizeof(cmd),
	    "'%s' --check-config --config '%s' 2>&1", bin, conf);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	st = pclose(p);
	ck_assert_msg(
	    WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d: %s", st, out);
	ck_assert_msg(strstr(out, "bad.conf:2: tls_priorities") &&
		strstr(out, "NO-SUCH-THING"),
	    "%s", out);
}
END_TEST

/* ---- 16.10: request ids, 5xx bodies, 401 log lines, Host ------------- */

START_TEST(test_every_response_has_a_request_id_and_5xx_bodies_no_cause)
{
	char db[600], moved[620], id[64];
	struct json_object *o, *v;
	struct resp r;
	char *log;

	daemon_start(NULL);
	/* The database gone before any worker opened it: 503, whose cause
	 * names the file. */
	(void)snprintf(db, sizeof(db), "%s/state/hyperlet.db", dir);
	(void)snprintf(moved, sizeof(moved), "%s.away", db);
	ck_assert_int_eq(rename(db, moved), 0);
	http("GET", "/v1/instances", false, &r);
	ck_status(&r, 503);
	ck_assert_ptr_nonnull(hdr(&r, "X-Request-Id"));
	(void)snprintf(id, sizeof(id), "%s", hdr(&r, "X-Request-Id"));
	ck_assert_int_eq(strlen(id), 16);
	ck_assert_msg(!strstr(r.body, dir) && !strstr(r.body, "hyperlet.db"),
	    "the 503 body names a host path: %s", r.body);
	o = json_tokener_parse(r.body);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "request_id", &v));
	ck_assert_str_eq(json_object_get_string(v), id);
	ck_assert(json_object_object_get_ex(o, "detail", &v));
	ck_assert_ptr_nonnull(strstr(json_object_get_string(v), id));
	json_object_put(o);
	resp_clear(&r);
	ck_assert_int_eq(rename(moved, db), 0);
	/* the log line has the id and the cause */
	for (int64_t end = now_ms() + 5000; now_ms() < end; sleep_ms(20)) {
		log = read_log();
		if (strstr(log, id)) {
			free(log);
			break;
		}
		free(log);
	}
	log = read_log();
	{
		const char *line = strstr(log, id);
		const char *eol = line ? strchr(line, '\n') : NULL;
		const char *cause = line ? strstr(line, "hyperlet.db") : NULL;

		ck_assert_msg(line && cause && (!eol || cause < eol),
		    "no log line with id %s and the cause:\n%s", id, log);
	}
	free(log);
	/* every answer has an id of its own */
	http("GET", "/v1/health", false, &r);
	ck_assert_ptr_nonnull(hdr(&r, "X-Request-Id"));
	ck_assert_str_ne(hdr(&r, "X-Request-Id"), id);
	resp_clear(&r);
	http("GET", "/v1/nowhere", false, &r);
	ck_status(&r, 404);
	ck_assert_ptr_nonnull(hdr(&r, "X-Request-Id"));
	ck_assert_ptr_null(strstr(r.body, "request_id"));
	resp_clear(&r);
}
END_TEST

START_TEST(test_401s_are_logged_at_most_once_a_second)
{
	CURL *c = curl_easy_init();
	struct req_opts o = {.reuse = c};
	struct resp r;
	int64_t t0 = now_ms(), secs;
	int lines = 0;
	char *log, *p;

	use_token = true;
	daemon_start(NULL);
	t0 = now_ms();
	for (int i = 0; i < 300; i++) {
		http_ex("GET", "/v1/instances", &o, &r);
		ck_status(&r, 401);
		resp_clear(&r);
	}
	secs = (now_ms() - t0) / 1000 + 1;
	sleep_ms(1100);
	http_ex("GET", "/v1/images", &o, &r); /* logged, with the count */
	ck_status(&r, 401);
	resp_clear(&r);
	curl_easy_cleanup(c);
	for (int64_t end = now_ms() + 5000; now_ms() < end; sleep_ms(20)) {
		log = read_log();
		p = strstr(log, "GET /v1/images 401");
		free(log);
		if (p)
			break;
	}
	log = read_log();
	for (p = log; (p = strstr(p, " 401 ")); p++)
		lines++;
	ck_assert_msg(lines >= 2 && lines <= secs + 2,
	    "%d log lines for 301 401s in %lld s; the last: %.300s", lines,
	    (long long)secs, log + (strlen(log) > 300 ? strlen(log) - 300 : 0));
	p = strstr(log, "GET /v1/images 401");
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(strstr(p, "more 401s not logged"),
	    "the line after a quiet second does not count them: %.300s", p);
	free(log);
}
END_TEST

START_TEST(test_without_a_token_only_loopback_host_names_are_served)
{
	static const char *const good[] = {"127.0.0.1", "127.0.0.1:%d",
	    "localhost", "LOCALHOST:%d", "127.1.2.3:8080", "[::1]", "[::1]:%d"};
	static const char *const bad[] = {"evil.example", "evil.example:%d",
	    "localhost.evil.example", "127.0.0.1.nip.io:%d", "10.0.0.1",
	    "[::2]:%d", "127.0.0.1:x", "", "[::1", "localhost:%d:1"};
	char host[128], req[512], *all;

	daemon_start(NULL);
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		(void)snprintf(host, sizeof(host), good[i], port);
		(void)snprintf(req, sizeof(req),
		    "GET /v1/instances HTTP/1.1\r\nHost: %s\r\n"
		    "Connection: close\r\n\r\n",
		    host);
		ck_assert_msg(
		    raw_request(req, NULL) == 200, "Host %s refused", host);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		int st;

		(void)snprintf(host, sizeof(host), bad[i], port);
		(void)snprintf(req, sizeof(req),
		    "GET /v1/instances HTTP/1.1\r\nHost: %s\r\n"
		    "Connection: close\r\n\r\n",
		    host);
		st = raw_request(req, &all);
		ck_assert_msg(st == 421 || (st == 400 && host[0] == '\0'),
		    "Host '%s' answered %d:\n%s", host, st, all);
		if (st == 421)
			ck_assert_msg(strstr(all, "application/problem+json") &&
				strstr(all, "misdirected-request"),
			    "%s", all);
		free(all);
	}
	/* HTTP/1.0 without Host (no browser sends that) */
	ck_assert_int_eq(
	    raw_request("GET /v1/health HTTP/1.0\r\n\r\n", NULL), 200);
}
END_TEST

START_TEST(test_with_a_token_any_host_name_is_served)
{
	char *all;

	use_token = true;
	daemon_start(NULL);
	ck_assert_int_eq(
	    raw_request("GET /v1/instances HTTP/1.1\r\nHost: hv1.example\r\n"
			"Authorization: Bearer " TOKEN "\r\n"
			"Connection: close\r\n\r\n",
		&all),
	    200);
	free(all);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("http");
	TCase *tc;
	int rc;

	if (getenv("HYPERLETD") == NULL) {
		fprintf(
		    stderr, "HYPERLETD is not set (run under make check)\n");
		return 77;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	tc = tcase_create("connections");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
	    test_one_client_holding_256_idle_connections_leaves_health_answering);
	tcase_add_test(
	    tc, test_an_unauthenticated_connection_has_header_timeout_to_idle);
	tcase_add_test(
	    tc, test_a_trickling_upload_is_cut_off_and_leaves_no_image);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
	    test_metrics_count_authenticated_requests_after_1000_unauthenticated);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
	    test_tls_refuses_old_versions_and_static_rsa_and_reloads_on_sighup);
	tcase_add_test(tc,
	    test_a_tls_priority_string_gnutls_refuses_fails_the_config_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("leaks_and_noise");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(
	    tc, test_every_response_has_a_request_id_and_5xx_bodies_no_cause);
	tcase_add_test(tc, test_401s_are_logged_at_most_once_a_second);
	tcase_add_test(
	    tc, test_without_a_token_only_loopback_host_names_are_served);
	tcase_add_test(tc, test_with_a_token_any_host_name_is_served);
	suite_add_tcase(s, tc);

	rc = testutil_run(s);
	curl_global_cleanup();
	return rc;
}
