/*
 * check_cfg: the configuration (lib/cfg) and the log (lib/log). The config
 * cases are golden files, tests/conf/{pass,fail}-<case>.conf, each with a
 * .ok holding exactly what `hyperletd --check-config` prints for it
 * (UPDATE_GOLDEN=1 rewrites them; review the diff). The shipped
 * conf/hyperlet.conf is checked to document every key with its default,
 * and hyperlet.conf(5) to mention every key. Log tests capture stderr in a
 * file (each test runs in its own process, CK_FORK).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "testutil.h"

#define MAX_CASES 128

static char *conf_cases[MAX_CASES]; /* "fail-bad-int" ... */
static int n_conf_cases;

static const char *
src_dir(void)
{
	const char *d = getenv("TOP_SRCDIR");

	return d && *d ? d : ".";
}

static char *
src_path(const char *rel)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", src_dir(), rel), 0);
	return p;
}

/* What `hyperletd --check-config --config <file>` prints, run in the
 * file's directory: "configuration OK" or the error. */
static char *
check_config_output(const char *file)
{
	struct cfg c;
	struct err e = {0};
	char *out;
	int r;

	ck_assert_int_eq(cfg_defaults(&c), 0);
	r = cfg_load(file, &c, &e);
	if (r == 0)
		r = cfg_finish(&c, &e);
	if (r == 0)
		out = strdup("configuration OK");
	else {
		ck_assert_int_lt(e.code, 0);
		out = strdup(e.msg);
	}
	cfg_clear(&c);
	ck_assert_ptr_nonnull(out);
	return out;
}

/* Loads file (relative to tests/conf) and finishes it; asserts success. */
static void
load_ok(const char *file, struct cfg *c)
{
	_cleanup_free_ char *dir = src_path("tests/conf");
	struct err e = {0};

	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(cfg_defaults(c), 0);
	ck_assert_msg(cfg_load(file, c, &e) == 0, "%s", e.msg);
	ck_assert_msg(cfg_finish(c, &e) == 0, "%s", e.msg);
}

/* Writes text to a fresh file in a fresh directory; returns the path. */
static char *
write_temp(const char *name, const char *text, char **ret_dir)
{
	char *dir = testutil_mkdtemp("check_cfg");
	char *path;
	FILE *f;

	ck_assert_ptr_nonnull(dir);
	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	*ret_dir = dir;
	return path;
}

/* --- cfg_defaults ------------------------------------------------------ */

START_TEST(test_cfg_defaults_are_the_documented_embedded_defaults)
{
	struct cfg c;

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_str_eq(c.listen, "127.0.0.1:8080");
	ck_assert_int_eq(c.listen_port, 8080);
	ck_assert(c.listen_loopback);
	ck_assert_int_eq(c.listen_addr.ss_family, AF_INET);
	ck_assert_int_eq(c.threads, 8);
	ck_assert_ptr_null(c.auth_token_file);
	ck_assert_ptr_null(c.tls_cert_file);
	ck_assert_str_eq(c.tls_priorities, CFG_DEFAULT_TLS_PRIORITIES);
	ck_assert_int_eq(c.per_ip_connection_limit, 64);
	ck_assert_int_eq(c.header_timeout, 5);
	ck_assert_int_eq(c.min_upload_rate, 65536);
	ck_assert_int_eq(c.max_body_bytes, 131072);
	ck_assert_str_eq(c.libvirt_uri, "test:///default");
	ck_assert_str_eq(c.virt_type, "kvm");
	ck_assert_str_eq(c.state_dir, "./state");
	ck_assert_ptr_null(c.db_path);
	ck_assert(!c.sync_normal);
	ck_assert(c.resume_guests_state_on_host_boot);
	ck_assert(!c.force_config_drive);
	ck_assert_str_eq(c.availability_zone, "nova");
	ck_assert_int_eq(c.limits.max_local_block_devices, 3);
	ck_assert_int_eq(c.limits.max_disk_devices_to_attach, -1);
	ck_assert_int_eq(c.limits.max_bdms, 64);
	/* Nova's [DEFAULT] defaults */
	ck_assert(c.cpu_allocation_ratio == 4.0);
	ck_assert(c.ram_allocation_ratio == 1.0);
	ck_assert(c.disk_allocation_ratio == 1.0);
	ck_assert_int_eq(c.reserved_host_cpus, 0);
	ck_assert_int_eq(c.reserved_host_memory_mb, 512);
	ck_assert_int_eq(c.reserved_host_disk_mb, 0);
	ck_assert_int_eq(c.log_level, LOG_INFO);
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_defaults_match_bdm_limits_default)
{
	const struct bdm_limits want = BDM_LIMITS_DEFAULT;
	struct cfg c;

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(
	    c.limits.max_local_block_devices, want.max_local_block_devices);
	ck_assert_int_eq(c.limits.max_disk_devices_to_attach,
	    want.max_disk_devices_to_attach);
	ck_assert_int_eq(c.limits.max_bdms, want.max_bdms);
	cfg_clear(&c);
}
END_TEST

/* --- cfg_load: golden cases -------------------------------------------- */

START_TEST(test_cfg_load_golden_case_matches_its_ok_file)
{
	_cleanup_free_ char *dir = src_path("tests/conf");
	_cleanup_free_ char *conf = NULL, *ok = NULL, *got = NULL, *want = NULL;
	const char *name = conf_cases[_i];
	size_t len;

	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_ge(asprintf(&conf, "%s.conf", name), 0);
	ck_assert_int_ge(asprintf(&ok, "%s.ok", name), 0);
	got = check_config_output(conf);
	if (getenv("UPDATE_GOLDEN")) {
		FILE *f = fopen(ok, "w");

		ck_assert_ptr_nonnull(f);
		fprintf(f, "%s\n", got);
		ck_assert_int_eq(fclose(f), 0);
	}
	want = testutil_read_file(ok, &len);
	ck_assert_msg(want, "%s: missing (run with UPDATE_GOLDEN=1)", ok);
	if (len > 0 && want[len - 1] == '\n')
		want[len - 1] = '\0';
	ck_assert_str_eq(got, want);
	if (strncmp(name, "pass-", 5) == 0)
		ck_assert_str_eq(got, "configuration OK");
	else
		ck_assert_msg(strncmp(got, conf, strlen(conf)) == 0 &&
			got[strlen(conf)] == ':',
		    "%s: error does not start with 'file:': %s", name, got);
}
END_TEST

START_TEST(test_cfg_load_sets_every_key_of_the_file)
{
	struct cfg c;

	load_ok("pass-all-keys.conf", &c);
	ck_assert_str_eq(c.listen, "0.0.0.0:8443");
	ck_assert(!c.listen_loopback);
	ck_assert_int_eq(c.listen_port, 8443);
	ck_assert_int_eq(c.threads, 16);
	ck_assert_ptr_nonnull(c.auth_token_file);
	ck_assert(c.auth_token_file[0] == '/');
	ck_assert_str_eq(c.auth_token, "s3cr3t-t0ken");
	ck_assert(c.tls_cert_file[0] == '/');
	ck_assert_ptr_nonnull(
	    strstr(c.tls_cert_file, "/tests/conf/pass-tls.pem"));
	ck_assert_str_eq(c.tls_key_file, c.tls_cert_file);
	ck_assert_int_eq(c.max_body_bytes, 131072);
	ck_assert_int_eq(c.max_image_bytes, 1099511627776LL);
	ck_assert_int_eq(c.connection_limit, 100);
	ck_assert_int_eq(c.connection_timeout, 10);
	ck_assert_str_eq(c.tls_priorities, "SECURE256:-VERS-ALL:+VERS-TLS1.3");
	ck_assert_int_eq(c.per_ip_connection_limit, 20);
	ck_assert_int_eq(c.header_timeout, 3);
	ck_assert_int_eq(c.min_upload_rate, 1024);
	ck_assert_int_eq(c.drain_timeout, 5);
	ck_assert_int_eq(c.events_retention, 500);
	ck_assert_int_eq(c.events_heartbeat, 5);
	ck_assert_int_eq(c.events_stream_cpu, 40);
	ck_assert_int_eq(c.job_stall_timeout, 600);
	ck_assert_str_eq(c.libvirt_uri, "qemu:///system");
	ck_assert_str_eq(c.virt_type, "qemu");
	ck_assert_int_eq(c.stop_timeout, 30);
	ck_assert_int_eq(c.detach_timeout, 45);
	ck_assert(!c.resume_guests_state_on_host_boot);
	ck_assert(c.force_config_drive);
	ck_assert_str_eq(c.availability_zone, "az-1");
	ck_assert_str_eq(c.state_dir, "/var/lib/hyperlet");
	ck_assert_str_eq(c.instances_path, "/srv/instances");
	ck_assert_str_eq(c.images_path, "/srv/images");
	ck_assert_str_eq(c.db_path, "/var/lib/hyperlet/db/hyperlet.db");
	ck_assert(c.sync_normal);
	ck_assert_str_eq(c.volume_roots,
	    "/dev/disk/by-id, /dev/mapper /var/lib/hyperlet/volumes");
	ck_assert_int_eq(c.limits.max_local_block_devices, -1);
	ck_assert_int_eq(c.limits.max_disk_devices_to_attach, 8);
	ck_assert_int_eq(c.limits.max_bdms, 32);
	ck_assert(c.cpu_allocation_ratio == 16.0);
	ck_assert(c.ram_allocation_ratio == 1.5);
	ck_assert(c.disk_allocation_ratio == 0.9);
	ck_assert_int_eq(c.reserved_host_cpus, 2);
	ck_assert_int_eq(c.reserved_host_memory_mb, 4096);
	ck_assert_int_eq(c.reserved_host_disk_mb, 10240);
	ck_assert_str_eq(
	    c.placement_url, "https://placement.example.com:8778/placement");
	ck_assert_str_eq(c.placement_token, "s3cr3t-t0ken");
	ck_assert(c.placement_token_file[0] == '/');
	ck_assert_str_eq(
	    c.placement_auth_url, "https://keystone.example.com/identity/v3");
	ck_assert_str_eq(c.placement_username, "hyperlet");
	ck_assert_str_eq(c.placement_password, "s3cr3t-t0ken");
	ck_assert_str_eq(c.placement_project_name, "service");
	ck_assert_str_eq(c.placement_user_domain_name, "Users");
	ck_assert_str_eq(c.placement_project_domain_name, "Services");
	ck_assert_str_eq(c.placement_project_id, "p-1");
	ck_assert_str_eq(c.placement_user_id, "u-1");
	ck_assert_str_eq(c.placement_provider_name, "hv-12");
	ck_assert_int_eq(c.placement_sync_interval, 30);
	ck_assert_int_eq(c.placement_timeout, 5);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_load_understands_ipv6_comments_and_size_suffixes)
{
	struct cfg c;

	load_ok("pass-syntax.conf", &c);
	ck_assert_str_eq(c.listen, "[::1]:9000");
	ck_assert_int_eq(c.listen_addr.ss_family, AF_INET6);
	ck_assert_int_eq(c.listen_addrlen, sizeof(struct sockaddr_in6));
	ck_assert_int_eq(c.listen_port, 9000);
	ck_assert(c.listen_loopback);
	ck_assert_int_eq(c.log_level, LOG_WARNING);
	ck_assert_int_eq(c.max_body_bytes, 64 * 1024);
	ck_assert_int_eq(c.max_image_bytes, 10LL << 30);
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_load_of_a_missing_file_is_enoent)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(
	    cfg_load("/nonexistent/hyperlet.conf", &c, &e), -ENOENT);
	ck_assert_str_eq(
	    e.msg, "/nonexistent/hyperlet.conf: No such file or directory");
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_load_reports_the_first_error_by_line)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	struct cfg c;
	struct err e = {0};

	path = write_temp("x.conf",
	    "[api]\nthreads = 4\nbogus\nthreads = 999\n[nope]\n", &dir);
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_load(path, &c, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, ".conf:3: malformed line"));
	cfg_clear(&c);
	testutil_rm_rf(dir);
}
END_TEST

/* --- cfg_set ----------------------------------------------------------- */

START_TEST(test_cfg_set_overrides_a_value_from_the_file)
{
	struct cfg c;
	struct err e = {0};

	load_ok("pass-all-keys.conf", &c);
	ck_assert_int_eq(cfg_set(&c, "api", "listen", "127.0.0.2:1234", &e), 0);
	ck_assert_int_eq(cfg_set(&c, "libvirt", "virt_type", "kvm", &e), 0);
	ck_assert_str_eq(c.listen, "127.0.0.2:1234");
	ck_assert_int_eq(c.listen_port, 1234);
	ck_assert(c.listen_loopback);
	ck_assert_str_eq(c.virt_type, "kvm");
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_set_refuses_a_bad_value_and_keeps_the_old_one)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(
	    cfg_set(&c, "libvirt", "virt_type", "xen", &e), -EINVAL);
	ck_assert_str_eq(
	    e.msg, "virt_type: expected one of kvm|qemu, got 'xen'");
	ck_assert_str_eq(c.virt_type, "kvm");
	err_clear(&e);
	ck_assert_int_eq(cfg_set(&c, "api", "listen", "nowhere", &e), -EINVAL);
	ck_assert_str_eq(c.listen, "127.0.0.1:8080");
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_set_of_an_unknown_key_is_enoent)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "colour", "blue", &e), -ENOENT);
	cfg_clear(&c);
}
END_TEST

/* --- cfg_finish -------------------------------------------------------- */

START_TEST(test_cfg_finish_derives_absolute_paths_from_state_dir)
{
	_cleanup_free_ char *dir = testutil_mkdtemp("check_cfg");
	_cleanup_free_ char *cwd = NULL, *want = NULL;
	struct cfg c;
	struct err e = {0};

	ck_assert_ptr_nonnull(dir);
	ck_assert_int_eq(chdir(dir), 0);
	cwd = getcwd(NULL, 0); /* dir may lie under a symbolic link */
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), 0);
	ck_assert_int_ge(asprintf(&want, "%s/state", cwd), 0);
	ck_assert_str_eq(c.state_dir, want);
	free(want);
	ck_assert_int_ge(asprintf(&want, "%s/state/hyperlet.db", cwd), 0);
	ck_assert_str_eq(c.db_path, want);
	free(want);
	ck_assert_int_ge(asprintf(&want, "%s/state/instances", cwd), 0);
	ck_assert_str_eq(c.instances_path, want);
	free(want);
	ck_assert_int_ge(asprintf(&want, "%s/state/images", cwd), 0);
	ck_assert_str_eq(c.images_path, want);
	ck_assert(util_path_valid(c.images_path));
	ck_assert_ptr_null(c.auth_token);
	cfg_clear(&c);
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_cfg_finish_normalises_dot_and_dotdot_components)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(
	    cfg_set(&c, "storage", "state_dir", "/var//lib/./x/../hl/", &e), 0);
	ck_assert_int_eq(
	    cfg_set(&c, "storage", "db_path", "/../db/../hl.db", &e), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), 0);
	ck_assert_str_eq(c.state_dir, "/var/lib/hl");
	ck_assert_str_eq(c.db_path, "/hl.db");
	ck_assert_str_eq(c.instances_path, "/var/lib/hl/instances");
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_finish_refuses_a_non_loopback_listen_without_a_token)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "listen", "10.0.0.1:80", &e), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), -EINVAL);
	ck_assert_str_eq(e.msg,
	    "listen 10.0.0.1:80 is not a loopback address: set "
	    "auth_token_file to serve other hosts");
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_finish_accepts_any_127_address_as_loopback)
{
	struct cfg c;
	struct err e = {0};

	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "listen", "127.3.2.1:0", &e), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), 0);
	ck_assert_int_eq(c.listen_port, 0);
	cfg_clear(&c);
}
END_TEST

START_TEST(test_cfg_finish_reads_the_token_without_its_newline)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	struct cfg c;
	struct err e = {0};

	path = write_temp("token", "abc.DEF-123_~+/=\r\n", &dir);
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "auth_token_file", path, &e), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "listen", "[::]:8080", &e), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), 0);
	ck_assert_str_eq(c.auth_token, "abc.DEF-123_~+/=");
	cfg_clear(&c);
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_cfg_finish_refuses_a_token_with_two_lines)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	struct cfg c;
	struct err e = {0};

	path = write_temp("token", "abc\ndef\n", &dir);
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_set(&c, "api", "auth_token_file", path, &e), 0);
	ck_assert_int_eq(cfg_finish(&c, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "one line of visible ASCII"));
	cfg_clear(&c);
	testutil_rm_rf(dir);
}
END_TEST

/* --- cfg_format -------------------------------------------------------- */

START_TEST(test_cfg_format_round_trips_through_cfg_load)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *a = NULL, *b = NULL;
	struct cfg c, d;
	struct err e = {0};

	load_ok("pass-all-keys.conf", &c);
	ck_assert_int_eq(cfg_format(&c, &a), 0);
	path = write_temp("round.conf", a, &dir);
	ck_assert_int_eq(cfg_defaults(&d), 0);
	ck_assert_msg(cfg_load(path, &d, &e) == 0, "%s", e.msg);
	ck_assert_msg(cfg_finish(&d, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(cfg_format(&d, &b), 0);
	ck_assert_str_eq(a, b);
	ck_assert_ptr_null(strstr(a, "s3cr3t")); /* never the token */
	cfg_clear(&c);
	cfg_clear(&d);
	testutil_rm_rf(dir);
}
END_TEST

/* The shipped file documents each key as "# name = default": with those
 * lines uncommented it must load and equal the embedded defaults. */
START_TEST(test_cfg_format_shipped_conf_documents_every_key_with_its_default)
{
	_cleanup_free_ char *src = src_path("conf/hyperlet.conf");
	_cleanup_free_ char *text = NULL, *dir = NULL, *path = NULL;
	_cleanup_free_ char *got = NULL, *want = NULL, *uncommented = NULL;
	struct cfg c, d;
	struct err e = {0};
	regex_t re;
	size_t n = 0, len;
	char *line, *save = NULL;

	text = testutil_read_file(src, &len);
	ck_assert_ptr_nonnull(text);
	uncommented = calloc(1, len + 1);
	ck_assert_ptr_nonnull(uncommented);
	ck_assert_int_eq(
	    regcomp(&re, "^#[a-z_]+ =( |$)", REG_EXTENDED | REG_NOSUB), 0);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (regexec(&re, line, 0, NULL, 0) == 0)
			line++;
		else if (line[0] != '[')
			continue;
		n += (size_t)sprintf(uncommented + n, "%s\n", line);
	}
	regfree(&re);
	path = write_temp("shipped.conf", uncommented, &dir);
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_msg(cfg_load(path, &c, &e) == 0, "%s", e.msg);
	ck_assert_msg(cfg_finish(&c, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(cfg_defaults(&d), 0);
	ck_assert_int_eq(cfg_finish(&d, &e), 0);
	ck_assert_int_eq(cfg_format(&c, &got), 0);
	ck_assert_int_eq(cfg_format(&d, &want), 0);
	ck_assert_str_eq(got, want);
	/* and every key of the table was there (none left to default) */
	for (char *k = want; (k = strchr(k, '\n')); k++) {
		char key[64];

		if (sscanf(k + 1, "%63[a-z_] =", key) != 1)
			continue;
		ck_assert_msg(
		    strstr(uncommented, key), "%s: not in %s", key, src);
	}
	cfg_clear(&c);
	cfg_clear(&d);
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_cfg_format_every_key_is_in_the_manual_page)
{
	_cleanup_free_ char *man = src_path("docs/hyperlet.conf.5");
	_cleanup_free_ char *text = testutil_read_file(man, NULL);
	_cleanup_free_ char *all = NULL;
	struct cfg c;

	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(cfg_defaults(&c), 0);
	ck_assert_int_eq(cfg_format(&c, &all), 0);
	for (char *k = all; k; k = strchr(k, '\n')) {
		char key[64], want[80];

		if (*k == '\n')
			k++;
		if (sscanf(k, "%63[a-z_] =", key) == 1) {
			snprintf(want, sizeof(want), ".It Cm %s ", key);
			ck_assert_msg(strstr(text, want) != NULL,
			    "%s: key %s is not documented", man, key);
		} else if (sscanf(k, "[%63[a-z]]", key) == 1) {
			snprintf(want, sizeof(want), ".Ss [%s]", key);
			ck_assert_msg(strstr(text, want) != NULL,
			    "%s: section [%s] is not documented", man, key);
		}
	}
	cfg_clear(&c);
}
END_TEST

/* --- log --------------------------------------------------------------- */

/* Points stderr at a fresh file (O_APPEND); returns its path. */
static char *
capture_stderr(char **ret_dir)
{
	char *dir = testutil_mkdtemp("check_log");
	char *path;
	int fd;

	ck_assert_ptr_nonnull(dir);
	ck_assert_int_ge(asprintf(&path, "%s/stderr", dir), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	*ret_dir = dir;
	return path;
}

START_TEST(test_log_write_prefixes_a_timestamp_and_level_on_a_terminal)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	regex_t re;

	unsetenv("JOURNAL_STREAM");
	path = capture_stderr(&dir);
	log_init(LOG_INFO);
	log_info("hello %d", 42);
	log_warn("careful");
	log_err("broken: %s", "yes");
	text = testutil_read_file(path, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(regcomp(&re,
			     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
			     "[0-9]{2}\\.[0-9]{3}Z info: hello 42\n"
			     "[^\n]+Z warn: careful\n"
			     "[^\n]+Z err: broken: yes\n$",
			     REG_EXTENDED | REG_NOSUB),
	    0);
	ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0, "got: %s", text);
	regfree(&re);
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_write_uses_the_journal_priority_prefix_under_systemd)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	char v[64];
	struct stat st;

	path = capture_stderr(&dir);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	log_init(LOG_DEBUG);
	log_info("GET /v1/health 200 0.4 ms");
	log_err("bad");
	log_debug("detail");
	text = testutil_read_file(path, NULL);
	ck_assert_str_eq(
	    text, "<6>GET /v1/health 200 0.4 ms\n<3>bad\n<7>detail\n");
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_write_ignores_a_journal_stream_that_is_not_stderr)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;

	path = capture_stderr(&dir);
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_init(LOG_INFO);
	log_info("plain");
	text = testutil_read_file(path, NULL);
	ck_assert(text[0] != '<');
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_write_escapes_newlines_so_one_call_is_one_line)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	char v[64];
	struct stat st;

	path = capture_stderr(&dir);
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	log_init(LOG_INFO);
	log_info("path %s", "/v1/x\n<3>forged\x01");
	text = testutil_read_file(path, NULL);
	ck_assert_str_eq(text, "<6>path /v1/x\\n<3>forged\\x01\n");
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_write_cuts_a_long_message_to_one_pipe_buf_line)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	_cleanup_free_ char *big = malloc(10000);
	size_t len;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	unsetenv("JOURNAL_STREAM");
	path = capture_stderr(&dir);
	log_init(LOG_INFO);
	log_info("%s", big);
	text = testutil_read_file(path, &len);
	ck_assert_uint_le(len, PIPE_BUF);
	ck_assert_int_eq(text[len - 1], '\n');
	ck_assert_ptr_eq(strchr(text, '\n'), text + len - 1);
	testutil_rm_rf(dir);
}
END_TEST

static int side_effects;

static int
bump(void)
{
	return ++side_effects;
}

START_TEST(test_log_debug_does_not_evaluate_its_arguments_when_off)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;

	path = capture_stderr(&dir);
	log_init(LOG_INFO);
	log_debug("%d", bump());
	ck_assert_int_eq(side_effects, 0);
	ck_assert(!log_enabled(LOG_DEBUG));
	log_set_level(LOG_DEBUG);
	log_debug("%d", bump());
	ck_assert_int_eq(side_effects, 1);
	text = testutil_read_file(path, NULL);
	ck_assert_ptr_nonnull(strstr(text, "debug: 1\n"));
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_set_level_hides_lower_priorities)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;

	path = capture_stderr(&dir);
	log_init(LOG_INFO);
	log_set_level(LOG_ERR);
	ck_assert_int_eq(log_get_level(), LOG_ERR);
	log_warn("hidden");
	log_info("hidden");
	log_err("shown");
	text = testutil_read_file(path, NULL);
	ck_assert_ptr_null(strstr(text, "hidden"));
	ck_assert_ptr_nonnull(strstr(text, "shown"));
	testutil_rm_rf(dir);
}
END_TEST

START_TEST(test_log_level_names_round_trip)
{
	static const char *names[] = {"err", "warn", "info", "debug"};
	int v;

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		ck_assert_int_eq(log_level_from_string(names[i], &v), 0);
		ck_assert_str_eq(log_level_to_string(v), names[i]);
	}
	ck_assert_int_eq(log_level_from_string("verbose", &v), -EINVAL);
}
END_TEST

#define LOG_THREADS 8
#define LOG_LINES 400

static void *
log_flood(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < LOG_LINES; i++)
		log_info("thread %ld line %d %s", id, i,
		    "padding-padding-padding-padding-padding-padding-padding");
	return NULL;
}

START_TEST(test_log_write_keeps_lines_whole_across_threads)
{
	_cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
	pthread_t t[LOG_THREADS];
	int count[LOG_THREADS] = {0}, n = 0;
	char *line, *save = NULL;
	regex_t re;

	unsetenv("JOURNAL_STREAM");
	path = capture_stderr(&dir);
	log_init(LOG_INFO);
	for (long i = 0; i < LOG_THREADS; i++)
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, log_flood, (void *)i), 0);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(t[i], NULL);
	text = testutil_read_file(path, NULL);
	ck_assert_int_eq(regcomp(&re,
			     "^[0-9T:.-]+Z info: thread [0-9] line [0-9]+ "
			     "(padding-){6}padding$",
			     REG_EXTENDED | REG_NOSUB),
	    0);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int id;

		ck_assert_msg(
		    regexec(&re, line, 0, NULL, 0) == 0, "torn line: %s", line);
		ck_assert_int_eq(
		    sscanf(strstr(line, "thread "), "thread %d", &id), 1);
		count[id]++;
		n++;
	}
	regfree(&re);
	ck_assert_int_eq(n, LOG_THREADS * LOG_LINES);
	for (int i = 0; i < LOG_THREADS; i++)
		ck_assert_int_eq(count[i], LOG_LINES);
	testutil_rm_rf(dir);
}
END_TEST

static int
case_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects tests/conf/{pass,fail}-*.conf, sorted. */
static void
find_conf_cases(void)
{
	_cleanup_free_ char *dir = NULL;
	struct dirent *de;
	DIR *d;

	/* not src_path(): no ck_assert outside a test */
	if (asprintf(&dir, "%s/tests/conf", src_dir()) < 0)
		exit(EXIT_FAILURE);
	if (!(d = opendir(dir))) {
		fprintf(stderr, "check_cfg: %s: %s\n", dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
			continue;
		if (strncmp(de->d_name, "pass-", 5) != 0 &&
		    strncmp(de->d_name, "fail-", 5) != 0)
			continue;
		if (n_conf_cases == MAX_CASES)
			break;
		conf_cases[n_conf_cases++] = strndup(de->d_name, l - 5);
	}
	closedir(d);
	qsort(conf_cases, (size_t)n_conf_cases, sizeof(*conf_cases), case_cmp);
}

int
main(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc;
	int r;

	find_conf_cases();

	tc = tcase_create("cfg_defaults");
	tcase_add_test(
	    tc, test_cfg_defaults_are_the_documented_embedded_defaults);
	tcase_add_test(tc, test_cfg_defaults_match_bdm_limits_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("cfg_load");
	tcase_add_loop_test(
	    tc, test_cfg_load_golden_case_matches_its_ok_file, 0, n_conf_cases);
	tcase_add_test(tc, test_cfg_load_sets_every_key_of_the_file);
	tcase_add_test(
	    tc, test_cfg_load_understands_ipv6_comments_and_size_suffixes);
	tcase_add_test(tc, test_cfg_load_of_a_missing_file_is_enoent);
	tcase_add_test(tc, test_cfg_load_reports_the_first_error_by_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("cfg_set");
	tcase_add_test(tc, test_cfg_set_overrides_a_value_from_the_file);
	tcase_add_test(
	    tc, test_cfg_set_refuses_a_bad_value_and_keeps_the_old_one);
	tcase_add_test(tc, test_cfg_set_of_an_unknown_key_is_enoent);
	suite_add_tcase(s, tc);

	tc = tcase_create("cfg_finish");
	tcase_add_test(
	    tc, test_cfg_finish_derives_absolute_paths_from_state_dir);
	tcase_add_test(
	    tc, test_cfg_finish_normalises_dot_and_dotdot_components);
	tcase_add_test(
	    tc, test_cfg_finish_refuses_a_non_loopback_listen_without_a_token);
	tcase_add_test(tc, test_cfg_finish_accepts_any_127_address_as_loopback);
	tcase_add_test(tc, test_cfg_finish_reads_the_token_without_its_newline);
	tcase_add_test(tc, test_cfg_finish_refuses_a_token_with_two_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("cfg_format");
	tcase_add_test(tc, test_cfg_format_round_trips_through_cfg_load);
	tcase_add_test(tc,
	    test_cfg_format_shipped_conf_documents_every_key_with_its_default);
	tcase_add_test(tc, test_cfg_format_every_key_is_in_the_manual_page);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_test(
	    tc, test_log_write_prefixes_a_timestamp_and_level_on_a_terminal);
	tcase_add_test(
	    tc, test_log_write_uses_the_journal_priority_prefix_under_systemd);
	tcase_add_test(
	    tc, test_log_write_ignores_a_journal_stream_that_is_not_stderr);
	tcase_add_test(
	    tc, test_log_write_escapes_newlines_so_one_call_is_one_line);
	tcase_add_test(
	    tc, test_log_write_cuts_a_long_message_to_one_pipe_buf_line);
	tcase_add_test(
	    tc, test_log_debug_does_not_evaluate_its_arguments_when_off);
	tcase_add_test(tc, test_log_set_level_hides_lower_priorities);
	tcase_add_test(tc, test_log_level_names_round_trip);
	tcase_add_test(tc, test_log_write_keeps_lines_whole_across_threads);
	suite_add_tcase(s, tc);

	r = testutil_run(s);
	for (int i = 0; i < n_conf_cases; i++)
		free(conf_cases[i]);
	return r;
}
