/*
 * cfg: hyperletd's configuration. One INI file (conf/hyperlet.conf,
 * documented in hyperlet.conf(5)) read with inih and checked against one
 * table of keys; command-line flags override it through cfg_set(). The
 * life of a struct cfg:
 *
 *	cfg_defaults(&c);                   embedded defaults
 *	cfg_load(path, &c, &e);             the file, "file:line: message"
 *	cfg_set(&c, "api", "listen", v, &e) each command-line override
 *	cfg_finish(&c, &e);                 derived paths, token, listen check
 *	... use c ...
 *	cfg_clear(&c);
 *
 * After cfg_finish() every path is absolute and non-NULL, and the daemon
 * may rely on the listen/auth rule: a non-loopback listen address requires
 * auth_token_file (checked in cfg_finish, so --check-config reports it).
 */
#ifndef HYPERLET_CFG_H
#define HYPERLET_CFG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bdm.h"
#include "err.h"

#define CFG_DEFAULT_LISTEN "127.0.0.1:8080"
#define CFG_DEFAULT_URI "test:///default"
#define CFG_DEFAULT_STATE_DIR "./state"
/* TLS 1.2 and 1.3 only, forward-secret key exchange only (no static RSA),
 * AEAD ciphers only, the server's order. */
#define CFG_DEFAULT_TLS_PRIORITIES                                          \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-CIPHER-ALL:+AES-" \
	"256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"
#define CFG_MAX_KEYS 64 /* capacity of the key table (cfg.c) */

/* The effective configuration. Owns every char * member; const char *
 * members point into static tables. Keys are named as in the file:
 * [section] key. */
struct cfg {
	char *path; /* the file loaded, as given; NULL: none */

	/* [api] */
	char *listen; /* "ADDR:PORT" as written: "127.0.0.1:8080", "[::1]:80" */
	struct sockaddr_storage listen_addr; /* parsed listen (numeric only) */
	socklen_t listen_addrlen;
	int listen_port; /* 0..65535; 0 = any free port */
	bool listen_loopback; /* 127.0.0.0/8 or ::1 */
	int threads; /* request threads, 1..256, default 8 */
	char *auth_token_file; /* NULL: no authentication */
	char *auth_token; /* the token read by cfg_finish (trailing newline
			     removed); NULL when no auth_token_file */
	char *tls_cert_file; /* both or neither; NULL: plain HTTP */
	char *tls_key_file;
	char *tls_priorities; /* GnuTLS priority string (daemon/tls.c checks
				 it); default CFG_DEFAULT_TLS_PRIORITIES */
	int64_t max_body_bytes; /* JSON request body, default 131072: a
				   user_data alone may be 65535 bytes */
	int64_t max_image_bytes; /* image upload, default 64 GiB */
	int connection_limit; /* concurrent connections, default 256 */
	int connection_timeout; /* seconds idle before close, default 30 */
	int per_ip_connection_limit; /* per client address, 0: none, 64 */
	int header_timeout; /* seconds for a new connection's first request
			       headers (and until a request passes auth), 5 */
	int64_t min_upload_rate; /* bytes/s an upload must average over every
				    connection_timeout window, 0: none,
				    default 65536 */
	int drain_timeout; /* seconds to finish requests on SIGTERM, 20 */
	int job_stall_timeout; /* seconds before a job queue that makes no
				  progress fails health and the watchdog */

	/* [libvirt] */
	char *libvirt_uri; /* key "uri", default test:///default */
	const char *virt_type; /* key "virt_type": "kvm" (default) or "qemu" */
	int stop_timeout; /* seconds of ACPI shutdown before destroy, 60 */
	int detach_timeout; /* seconds a live detach waits for the guest, 20 */
	bool validate_xml; /* define with libvirt's RelaxNG check, false */

	/* [guest] */
	bool resume_guests_state_on_host_boot; /* start-up starts the
						  instances meant to run
						  (Nova's name), true */
	bool force_config_drive; /* every instance gets a config drive, as
				    if it asked for one (Nova's name), false */
	char *availability_zone; /* meta_data.json's availability_zone,
				    "nova" (Nova's default_availability_zone) */

	/* [storage] */
	char *state_dir; /* default ./state, made absolute */
	char *instances_path; /* default <state_dir>/instances */
	char *images_path; /* default <state_dir>/images */
	char *db_path; /* default <state_dir>/hyperlet.db */
	bool sync_normal; /* key "synchronous": full (default) | normal;
			     store_opts.sync_normal */
	char *volume_roots; /* where volumes may live: absolute directories
			       separated by commas and/or white space
			       (volroot.h); NULL (default): none */

	/* [limits]: max_local_block_devices, max_disk_devices_to_attach,
	 * max_bdms, handed to bdm validation as is */
	struct bdm_limits limits;

	/* [node]: the inventory the node offers (lib/node.h), with Nova's
	 * names and defaults; ratios > 0 */
	double cpu_allocation_ratio; /* 4.0 */
	double ram_allocation_ratio; /* 1.0 */
	double disk_allocation_ratio; /* 1.0 */
	int reserved_host_cpus; /* 0 */
	int reserved_host_memory_mb; /* 512 */
	int reserved_host_disk_mb; /* 0 */

	/* [events] (design.md "Events") */
	int events_retention; /* events kept, default 100000 */
	int events_heartbeat; /* seconds between stream heartbeats, 15 */
	int events_stream_cpu; /* % of a core the hub may write with, 25 */
	/* [placement]: OpenStack Placement kept in step (design.md "Node and
	 * Placement"); url NULL: disabled. cfg_finish reads token_file and
	 * password_file and requires, with a url, token_file or auth_url
	 * with username and password_file. */
	char *placement_url; /* http(s)://..., NULL: no Placement */
	char *placement_token_file; /* static X-Auth-Token */
	char *placement_token; /* read by cfg_finish, NULL without file */
	char *placement_auth_url; /* Keystone v3 */
	char *placement_username;
	char *placement_password_file;
	char *placement_password; /* read by cfg_finish */
	char *placement_project_name;
	char *placement_user_domain_name; /* "Default" */
	char *placement_project_domain_name; /* "Default" */
	char *placement_project_id; /* the allocations': "hyperlet" */
	char *placement_user_id; /* "hyperlet" */
	char *placement_provider_name; /* NULL: the host name */
	int placement_sync_interval; /* seconds between reconciles, 60 */
	int placement_timeout; /* seconds per Placement call, 10 */

	/* [log] */
	int log_level; /* key "level": err|warn|info|debug, as <syslog.h>'s
			  LOG_ERR, LOG_WARNING, LOG_INFO (default),
			  LOG_DEBUG */

	/* private to cfg.c: the file line that set each key (0: default or
	 * cfg_set), so cfg_finish can say "file:line:" */
	int line_[CFG_MAX_KEYS];
};

/*
 * Fills c with the embedded defaults (listen 127.0.0.1:8080, uri
 * test:///default, virt_type kvm, state_dir ./state, ...). Derived paths
 * (instances_path, images_path, db_path) stay NULL until cfg_finish().
 * c is overwritten, not freed. Returns 0 or -ENOMEM (c is then cleared).
 */
int cfg_defaults(struct cfg *c);

/*
 * Reads the INI file at path into c, which holds defaults (cfg_defaults)
 * or an earlier load. Every key is checked against the table: unknown
 * sections and keys, malformed lines, bad or out-of-range values are
 * refused with -EINVAL and a message "path:line: message". A missing or
 * unreadable file is -ENOENT / -EACCES / -EIO ("path: strerror"). On
 * failure c may hold some values of the file but stays valid for
 * cfg_clear(). Sets c->path.
 */
int cfg_load(const char *path, struct cfg *c, struct err *e);

/*
 * Sets one key from text, exactly as a line "name = value" in [section]
 * would (the command-line overrides use it: --listen is ("api",
 * "listen")). Returns 0, -ENOENT for an unknown section or key, -EINVAL
 * for a bad value (message "name: ..."), -ENOMEM.
 */
int cfg_set(struct cfg *c, const char *section, const char *name,
    const char *value, struct err *e);

/*
 * Completes a loaded configuration: makes state_dir absolute (relative to
 * the working directory) and derives the unset paths from it, makes every
 * other path absolute, reads the token from auth_token_file, checks that
 * TLS has both files and that they are readable, and refuses a
 * non-loopback listen address without auth_token_file. Touches no directory (the daemon creates state_dir).
 * Returns 0, -EINVAL (with "path:line: message" when the value came from
 * the file), -ENOENT/-EACCES/-EIO for the token file, -ENOMEM.
 */
int cfg_finish(struct cfg *c, struct err *e);

/*
 * The configuration in the file's own syntax, every key of the table in
 * order, with its current value (derived paths as "" while unset). *ret is
 * owned by the caller. The auth token itself is never written. Returns 0
 * or -ENOMEM.
 */
int cfg_format(const struct cfg *c, char **ret);

/*
 * For checks made outside cfg.c (the daemon checks tls_priorities with
 * GnuTLS): err_set(e, code, ...) with "path:line: " in front when the key
 * [section] name came from the file. Returns code.
 */
int cfg_err_key(const struct cfg *c, const char *section, const char *name,
    struct err *e, int code, const char *fmt, ...) _printf_(6, 7);

/* Frees the members of c and zeroes it. Accepts a zeroed cfg. */
void cfg_clear(struct cfg *c);

#endif
