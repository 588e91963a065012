/*
 * cfg: hyperlet.conf. Every key lives in one table, cfg_keys[] (section,
 * name, type, offset into struct cfg, default as text, min, max), in the
 * manner of Redis's config.c: the defaults, the file, the command-line
 * overrides and cfg_format() all go through it, so a key cannot be parsed
 * one way and printed another. inih (<ini.h>, included only here) splits
 * lines; a reader wrapped around fgets counts them, so each error names
 * "file:line:" and the line that set each key is remembered for
 * cfg_finish(). No logging, no exits; only the token file is read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "cfg.h"
#include "util.h"
#include "volroot.h"

enum cfg_type {
	CFG_LISTEN, /* char *, "ADDR:PORT", also fills listen_* */
	CFG_INT, /* int */
	CFG_BYTES, /* int64_t, optional k/M/G/T suffix (powers of 1024) */
	CFG_STR, /* char *, non-empty text */
	CFG_PATH, /* char *, "" = unset (NULL) */
	CFG_LIST, /* char *, absolute paths separated by commas and/or
		     white space (volroot.h); "" = none (NULL) */
	CFG_ENUM_STR, /* const char *, the choice's name */
	CFG_ENUM_BOOL, /* bool, the choice's value */
	CFG_ENUM_INT, /* int, the choice's value */
	CFG_DOUBLE, /* double, finite, > 0 (exclusive) and <= max */
	CFG_TEXT, /* char *, text, "" = unset (NULL); with CFG_F_URL an
		     http:// or https:// URL */
};

struct cfg_choice {
	const char *name;
	int value;
};

#define CFG_F_REQUIRED 1 /* a path that may not be empty */
#define CFG_F_URL 2 /* CFG_TEXT: http:// or https:// */

struct cfg_key {
	const char *section;
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def; /* text, parsed like a line of the file */
	int64_t min, max; /* CFG_INT, CFG_BYTES */
	const struct cfg_choice *choices; /* CFG_ENUM_*, NULL-terminated */
	int flags;
};

static const struct cfg_choice virt_types[] = {
    {"kvm", 0},
    {"qemu", 0},
    {NULL, 0},
};
static const struct cfg_choice sync_modes[] = {
    {"full", false},
    {"normal", true},
    {NULL, 0},
};
static const struct cfg_choice bools[] = {
    {"true", true},
    {"false", false},
    {NULL, 0},
};
static const struct cfg_choice log_levels[] = {
    {"err", LOG_ERR},
    {"warn", LOG_WARNING},
    {"info", LOG_INFO},
    {"debug", LOG_DEBUG},
    {NULL, 0},
};

#define OFF(m) offsetof(struct cfg, m)
#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)
#define TiB (1024LL * GiB)

/* The order is the order of conf/hyperlet.conf, hyperlet.conf(5) and
 * cfg_format(). */
static const struct cfg_key cfg_keys[] = {
    {"api", "listen", CFG_LISTEN, OFF(listen), CFG_DEFAULT_LISTEN},
    {"api", "threads", CFG_INT, OFF(threads), "8", 1, 256},
    {"api", "auth_token_file", CFG_PATH, OFF(auth_token_file), ""},
    {"api", "tls_cert_file", CFG_PATH, OFF(tls_cert_file), ""},
    {"api", "tls_key_file", CFG_PATH, OFF(tls_key_file), ""},
    {"api", "tls_priorities", CFG_STR, OFF(tls_priorities),
	CFG_DEFAULT_TLS_PRIORITIES},
    {"api", "max_body_bytes", CFG_BYTES, OFF(max_body_bytes), "131072", 1024,
	16 * MiB},
    {"api", "max_image_bytes", CFG_BYTES, OFF(max_image_bytes), "68719476736",
	MiB, 1024 * TiB},
    {"api", "connection_limit", CFG_INT, OFF(connection_limit), "256", 1,
	10000},
    {"api", "connection_timeout", CFG_INT, OFF(connection_timeout), "30", 0,
	3600},
    {"api", "per_ip_connection_limit", CFG_INT, OFF(per_ip_connection_limit),
	"64", 0, 10000},
    {"api", "header_timeout", CFG_INT, OFF(header_timeout), "5", 1, 3600},
    {"api", "min_upload_rate", CFG_BYTES, OFF(min_upload_rate), "65536", 0,
	GiB},
    {"api", "drain_timeout", CFG_INT, OFF(drain_timeout), "20", 0, 3600},
    {"api", "job_stall_timeout", CFG_INT, OFF(job_stall_timeout), "300", 1,
	86400},
    {"libvirt", "uri", CFG_STR, OFF(libvirt_uri), CFG_DEFAULT_URI},
    {"libvirt", "virt_type", CFG_ENUM_STR, OFF(virt_type), "kvm", 0, 0,
	virt_types},
    {"libvirt", "stop_timeout", CFG_INT, OFF(stop_timeout), "60", 0, 3600},
    {"libvirt", "detach_timeout", CFG_INT, OFF(detach_timeout), "20", 1, 3600},
    {"libvirt", "validate_xml", CFG_ENUM_BOOL, OFF(validate_xml), "false", 0, 0,
	bools},
    {"guest", "resume_guests_state_on_host_boot", CFG_ENUM_BOOL,
	OFF(resume_guests_state_on_host_boot), "true", 0, 0, bools},
    {"guest", "force_config_drive", CFG_ENUM_BOOL, OFF(force_config_drive),
	"false", 0, 0, bools},
    {"guest", "availability_zone", CFG_STR, OFF(availability_zone), "nova"},
    {"storage", "state_dir", CFG_PATH, OFF(state_dir), CFG_DEFAULT_STATE_DIR, 0,
	0, NULL, CFG_F_REQUIRED},
    {"storage", "instances_path", CFG_PATH, OFF(instances_path), ""},
    {"storage", "images_path", CFG_PATH, OFF(images_path), ""},
    {"storage", "db_path", CFG_PATH, OFF(db_path), ""},
    {"storage", "synchronous", CFG_ENUM_BOOL, OFF(sync_normal), "full", 0, 0,
	sync_modes},
    {"storage", "volume_roots", CFG_LIST, OFF(volume_roots), ""},
    {"limits", "max_local_block_devices", CFG_INT,
	OFF(limits.max_local_block_devices), "3", -1, 1024},
    {"limits", "max_disk_devices_to_attach", CFG_INT,
	OFF(limits.max_disk_devices_to_attach), "-1", -1, 1024},
    {"limits", "max_bdms", CFG_INT, OFF(limits.max_bdms), "64", 1, 1024},
    {"node", "cpu_allocation_ratio", CFG_DOUBLE, OFF(cpu_allocation_ratio),
	"4.0", 0, 1000000},
    {"node", "ram_allocation_ratio", CFG_DOUBLE, OFF(ram_allocation_ratio),
	"1.0", 0, 1000000},
    {"node", "disk_allocation_ratio", CFG_DOUBLE, OFF(disk_allocation_ratio),
	"1.0", 0, 1000000},
    {"node", "reserved_host_cpus", CFG_INT, OFF(reserved_host_cpus), "0", 0,
	1048576},
    {"node", "reserved_host_memory_mb", CFG_INT, OFF(reserved_host_memory_mb),
	"512", 0, INT_MAX},
    {"node", "reserved_host_disk_mb", CFG_INT, OFF(reserved_host_disk_mb), "0",
	0, INT_MAX},
    {"events", "retention", CFG_INT, OFF(events_retention), "100000", 1,
	100000000},
    {"events", "heartbeat", CFG_INT, OFF(events_heartbeat), "15", 1, 3600},
    {"events", "stream_cpu", CFG_INT, OFF(events_stream_cpu), "25", 1, 100},
    {"placement", "url", CFG_TEXT, OFF(placement_url), "", 0, 0, NULL,
	CFG_F_URL},
    {"placement", "token_file", CFG_PATH, OFF(placement_token_file), ""},
    {"placement", "auth_url", CFG_TEXT, OFF(placement_auth_url), "", 0, 0, NULL,
	CFG_F_URL},
    {"placement", "username", CFG_TEXT, OFF(placement_username), ""},
    {"placement", "password_file", CFG_PATH, OFF(placement_password_file), ""},
    {"placement", "project_name", CFG_TEXT, OFF(placement_project_name), ""},
    {"placement", "user_domain_name", CFG_STR, OFF(placement_user_domain_name),
	"Default"},
    {"placement", "project_domain_name", CFG_STR,
	OFF(placement_project_domain_name), "Default"},
    {"placement", "project_id", CFG_STR, OFF(placement_project_id), "hyperlet"},
    {"placement", "user_id", CFG_STR, OFF(placement_user_id), "hyperlet"},
    {"placement", "provider_name", CFG_TEXT, OFF(placement_provider_name), ""},
    {"placement", "sync_interval", CFG_INT, OFF(placement_sync_interval), "60",
	1, 86400},
    {"placement", "timeout", CFG_INT, OFF(placement_timeout), "10", 1, 300},
    {"log", "level", CFG_ENUM_INT, OFF(log_level), "info", 0, 0, log_levels},
};

_Static_assert(ELEMENTSOF(cfg_keys) <= CFG_MAX_KEYS, "raise CFG_MAX_KEYS");

/* State of one cfg_load(): the reader counts lines; the first error (by
 * line) is kept here until inih returns. */
struct cfg_parse {
	struct cfg *c;
	FILE *f;
	int line;
	int err_line; /* 0: no error yet */
	int err_code;
	char err_msg[ERR_MSG_MAX];
	bool seen[ELEMENTSOF(cfg_keys)];
};

static const struct cfg_key *cfg_key_find(
    const char *section, const char *name, size_t *ret_idx);
static bool cfg_section_known(const char *section, size_t len);
static int cfg_key_set(
    struct cfg *c, const struct cfg_key *k, const char *value, struct err *e);
static int cfg_parse_int(const struct cfg_key *k, const char *value,
    bool suffix, int64_t *ret, struct err *e);
static int cfg_parse_listen(struct cfg *c, const char *value, struct err *e);
static int cfg_parse_double(
    const struct cfg_key *k, const char *value, double *ret, struct err *e);
static int cfg_path_absolute(const char *path, char **ret);
static int cfg_path_join(const char *dir, const char *name, char **ret);
static int cfg_read_token(struct cfg *c, struct err *e);
static int cfg_err_at(const struct cfg *c, size_t idx, struct err *e, int code,
    const char *fmt, ...) _printf_(5, 6);
static char *cfg_reader(char *str, int num, void *stream);
static int cfg_handler(
    void *user, const char *section, const char *name, const char *value);
static void cfg_parse_fail(struct cfg_parse *p, int code, const char *fmt, ...)
    _printf_(3, 4);

static const struct cfg_key *
cfg_key_find(const char *section, const char *name, size_t *ret_idx)
{
	for (size_t i = 0; i < ELEMENTSOF(cfg_keys); i++)
		if (STREQ(cfg_keys[i].section, section) &&
		    STREQ(cfg_keys[i].name, name)) {
			if (ret_idx)
				*ret_idx = i;
			return &cfg_keys[i];
		}
	return NULL;
}

static bool
cfg_section_known(const char *section, size_t len)
{
	for (size_t i = 0; i < ELEMENTSOF(cfg_keys); i++)
		if (strlen(cfg_keys[i].section) == len &&
		    strncmp(cfg_keys[i].section, section, len) == 0)
			return true;
	return false;
}

/* Decimal integer in [k->min, k->max]; with suffix, k/M/G/T (binary). */
static int
cfg_parse_int(const struct cfg_key *k, const char *value, bool suffix,
    int64_t *ret, struct err *e)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (end == value || errno == ERANGE || value[0] == ' ')
		return err_set(e, -EINVAL, "%s: expected %s, got '%s'", k->name,
		    suffix ? "a size in bytes" : "an integer", value);
	if (suffix && *end) {
		long long mul = 0;

		switch (*end) {
		case 'k':
		case 'K':
			mul = KiB;
			break;
		case 'M':
			mul = MiB;
			break;
		case 'G':
			mul = GiB;
			break;
		case 'T':
			mul = TiB;
			break;
		}
		if (mul && end[1] == '\0') {
			if (v > LLONG_MAX / mul || v < LLONG_MIN / mul)
				return err_set(e, -EINVAL,
				    "%s: %s is out of range (%" PRId64
				    "..%" PRId64 ")",
				    k->name, value, k->min, k->max);
			v *= mul;
			end++;
		}
	}
	if (*end)
		return err_set(e, -EINVAL, "%s: expected %s, got '%s'", k->name,
		    suffix ? "a size in bytes (k, M, G, T suffixes)"
			   : "an integer",
		    value);
	if (v < k->min || v > k->max)
		return err_set(e, -EINVAL,
		    "%s: %s is out of range (%" PRId64 "..%" PRId64 ")",
		    k->name, value, k->min, k->max);
	*ret = v;
	return 0;
}

/* A decimal number in (0, k->max]: allocation ratios. 0 and below are
 * refused (Placement refuses them too), as are inf, nan and hex floats. */
static int
cfg_parse_double(
    const struct cfg_key *k, const char *value, double *ret, struct err *e)
{
	double v;
	char *end;

	errno = 0;
	if (value[0] == '\0' ||
	    strspn(value, "0123456789.+-eE") != strlen(value))
		return err_set(e, -EINVAL, "%s: expected a number, got '%s'",
		    k->name, value);
	v = strtod(value, &end);
	if (end == value || *end || errno == ERANGE)
		return err_set(e, -EINVAL, "%s: expected a number, got '%s'",
		    k->name, value);
	if (!(v > 0) || v > (double)k->max)
		return err_set(e, -EINVAL,
		    "%s: %s is out of range (greater than 0, at most %" PRId64
		    ")",
		    k->name, value, k->max);
	*ret = v;
	return 0;
}

/* "a.b.c.d:port" or "[v6]:port", numeric addresses only (no name
 * resolution at start-up). */
static int
cfg_parse_listen(struct cfg *c, const char *value, struct err *e)
{
	struct sockaddr_storage ss = {0};
	socklen_t sslen;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port;
	size_t hlen;
	bool loopback;
	char *end;
	long p;

	if (value[0] == '[') {
		const char *rb = strchr(value, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		hlen = (size_t)(rb - value - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, value + 1, hlen);
		host[hlen] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(value, ':');
		if (!colon || strchr(value, ':') != colon)
			goto bad;
		hlen = (size_t)(colon - value);
		if (hlen == 0 || hlen >= sizeof(host))
			goto bad;
		memcpy(host, value, hlen);
		host[hlen] = '\0';
		port = colon + 1;
	}
	if (port[0] < '0' || port[0] > '9')
		goto bad;
	errno = 0;
	p = strtol(port, &end, 10);
	if (*end || errno || p < 0 || p > 65535)
		return err_set(e, -EINVAL,
		    "listen: port '%s' is not a number in 0..65535", port);

	if (value[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return err_set(e, -EINVAL,
			    "listen: '%s' is not an IPv6 address", host);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		sslen = sizeof(*s6);
		loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
			s6->sin6_addr.s6_addr[12] == 127);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return err_set(e, -EINVAL,
			    "listen: '%s' is not an IPv4 address (use "
			    "[ADDR]:PORT for IPv6; host names are not "
			    "resolved)",
			    host);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		sslen = sizeof(*s4);
		loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}

	{
		char *dup = strdup(value);

		if (!dup)
			return err_set(e, -ENOMEM, "out of memory");
		free(c->listen);
		c->listen = dup;
	}
	c->listen_addr = ss;
	c->listen_addrlen = sslen;
	c->listen_port = (int)p;
	c->listen_loopback = loopback;
	return 0;
bad:
	return err_set(e, -EINVAL,
	    "listen: expected ADDR:PORT or [ADDR]:PORT, got '%s'", value);
}

/* Parses value as key k and stores it in c; c is unchanged on failure. */
static int
cfg_key_set(
    struct cfg *c, const struct cfg_key *k, const char *value, struct err *e)
{
	void *field = (char *)c + k->offset;
	int64_t v;
	int r;

	if (!util_text_valid(value, strlen(value)))
		return err_set(e, -EINVAL,
		    "%s: value is not UTF-8 text or holds control characters",
		    k->name);
	if (strlen(value) > 1024)
		return err_set(
		    e, -EINVAL, "%s: value longer than 1024 bytes", k->name);

	switch (k->type) {
	case CFG_LISTEN:
		return cfg_parse_listen(c, value, e);
	case CFG_INT:
		if ((r = cfg_parse_int(k, value, false, &v, e)) < 0)
			return r;
		*(int *)field = (int)v;
		return 0;
	case CFG_BYTES:
		if ((r = cfg_parse_int(k, value, true, &v, e)) < 0)
			return r;
		*(int64_t *)field = v;
		return 0;
	case CFG_DOUBLE: {
		double d = 0;

		if ((r = cfg_parse_double(k, value, &d, e)) < 0)
			return r;
		*(double *)field = d;
		return 0;
	}
	case CFG_STR:
	case CFG_PATH:
	case CFG_TEXT:
	case CFG_LIST: {
		char *dup = NULL;

		if (k->type == CFG_TEXT && (k->flags & CFG_F_URL) &&
		    value[0] != '\0' &&
		    ((strncmp(value, "http://", 7) != 0 &&
			 strncmp(value, "https://", 8) != 0) ||
			strpbrk(value, " \t") != NULL ||
			value[strncmp(value, "https", 5) == 0 ? 8 : 7] == '\0'))
			return err_set(e, -EINVAL,
			    "%s: expected an http:// or https:// URL, got "
			    "'%s'",
			    k->name, value);

		if (k->type == CFG_LIST &&
		    (r = volroot_list_check(value, e)) < 0)
			return r;
		if (k->type == CFG_LIST &&
		    value[strspn(value, VOLROOT_SEPARATORS)] == '\0')
			value = "";
		if (value[0] == '\0' &&
		    (k->type == CFG_STR || (k->flags & CFG_F_REQUIRED)))
			return err_set(
			    e, -EINVAL, "%s: must not be empty", k->name);
		if (value[0] != '\0' && !(dup = strdup(value)))
			return err_set(e, -ENOMEM, "out of memory");
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case CFG_ENUM_STR:
	case CFG_ENUM_BOOL:
	case CFG_ENUM_INT:
		for (const struct cfg_choice *ch = k->choices; ch->name; ch++) {
			if (!STREQ(ch->name, value))
				continue;
			if (k->type == CFG_ENUM_STR)
				*(const char **)field = ch->name;
			else if (k->type == CFG_ENUM_BOOL)
				*(bool *)field = ch->value;
			else
				*(int *)field = ch->value;
			return 0;
		}
		{
			char list[128] = "";

			for (const struct cfg_choice *ch = k->choices; ch->name;
			     ch++) {
				if (ch != k->choices)
					strncat(list, "|",
					    sizeof(list) - strlen(list) - 1);
				strncat(list, ch->name,
				    sizeof(list) - strlen(list) - 1);
			}
			return err_set(e, -EINVAL,
			    "%s: expected one of %s, got '%s'", k->name, list,
			    value);
		}
	}
	return err_set(e, -EINVAL, "%s: unknown type", k->name);
}

/* Fills c with the table's defaults. See cfg.h. */
int
cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ELEMENTSOF(cfg_keys); i++) {
		struct err e = {0};
		int r = cfg_key_set(c, &cfg_keys[i], cfg_keys[i].def, &e);

		/* a default the table itself refuses is a programming error */
		if (r == -ENOMEM) {
			cfg_clear(c);
			return r;
		}
		if (r < 0)
			abort();
	}
	return 0;
}

/* Sets one key from text. See cfg.h. */
int
cfg_set(struct cfg *c, const char *section, const char *name, const char *value,
    struct err *e)
{
	size_t idx;
	const struct cfg_key *k = cfg_key_find(section, name, &idx);
	int r;

	if (!k)
		return err_set(
		    e, -ENOENT, "unknown key '%s' in [%s]", name, section);
	if ((r = cfg_key_set(c, k, value, e)) < 0)
		return r;
	c->line_[idx] = 0;
	return 0;
}

static void
cfg_parse_fail(struct cfg_parse *p, int code, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line)
		return;
	p->err_line = p->line;
	p->err_code = code;
	va_start(ap, fmt);
	(void)vsnprintf(p->err_msg, sizeof(p->err_msg), fmt, ap);
	va_end(ap);
}

/* inih's reader: one line per call, counted. Lines inih cannot hold
 * (INI_MAX_LINE) and unknown [sections] (inih reports a section only with
 * its first key) are refused here, on their own line. */
static char *
cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	size_t len;
	const char *s;

	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	len = strlen(str);
	if (len > 0 && str[len - 1] != '\n' && !feof(p->f)) {
		int ch;

		cfg_parse_fail(
		    p, -EINVAL, "line longer than %d characters", num - 2);
		while ((ch = fgetc(p->f)) != EOF && ch != '\n')
			;
		str[0] = '\0'; /* hand inih an empty line */
		return str;
	}
	s = str;
	if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	s += strspn(s, " \t");
	/* no indentation reaches inih: it would make the line a continuation
	 * of the previous value */
	if (s != str)
		memmove(str, s, strlen(s) + 1);
	if (str[0] == '[') {
		const char *rb = strchr(str, ']');

		if (rb && !cfg_section_known(str + 1, (size_t)(rb - str - 1)))
			cfg_parse_fail(p, -EINVAL, "unknown section [%.*s]",
			    (int)(rb - str - 1), str + 1);
	} else if (str[0] && !strchr(";#\r\n", str[0])) {
		/* inih also splits at ':'; hyperlet's syntax is name = value */
		const char *eq = strchr(str, '='), *colon = strchr(str, ':');

		if (!eq || (colon && colon < eq)) {
			cfg_parse_fail(p, -EINVAL,
			    "malformed line (expected name = value)");
			str[0] = '\0';
		}
	}
	return str;
}

static int
cfg_handler(
    void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;
	struct err e = {0};
	const struct cfg_key *k;
	size_t idx;

	if (section[0] == '\0') {
		cfg_parse_fail(
		    p, -EINVAL, "key '%s' outside a [section]", name);
		return 1;
	}
	if (!cfg_section_known(section, strlen(section)))
		return 1; /* reported on the section's line */
	k = cfg_key_find(section, name, &idx);
	if (!k) {
		cfg_parse_fail(
		    p, -EINVAL, "unknown key '%s' in [%s]", name, section);
		return 1;
	}
	if (p->seen[idx]) {
		/* also catches inih's indented continuation lines */
		cfg_parse_fail(p, -EINVAL, "%s: already set on line %d", name,
		    p->c->line_[idx]);
		return 1;
	}
	if (cfg_key_set(p->c, k, value, &e) < 0) {
		cfg_parse_fail(p, e.code, "%s", e.msg);
		return 1;
	}
	p->seen[idx] = true;
	p->c->line_[idx] = p->line;
	return 1;
}

/* Reads the file into c. See cfg.h. */
int
cfg_load(const char *path, struct cfg *c, struct err *e)
{
	struct cfg_parse p = {.c = c};
	char *dup;
	int r;

	if (!(dup = strdup(path)))
		return err_set(e, -ENOMEM, "out of memory");
	free(c->path);
	c->path = dup;

	p.f = fopen(path, "re");
	if (!p.f)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	r = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
	if (ferror(p.f)) {
		(void)fclose(p.f);
		return err_set(e, -EIO, "%s: read error", path);
	}
	(void)fclose(p.f);
	if (r < 0)
		return err_set(e, -ENOMEM, "%s: out of memory", path);
	/* inih's own errors (malformed lines) carry only a line number */
	if (r > 0 && (p.err_line == 0 || r < p.err_line))
		return err_set(e, -EINVAL,
		    "%s:%d: malformed line (expected [section] or name = "
		    "value)",
		    path, r);
	if (p.err_line)
		return err_set(
		    e, p.err_code, "%s:%d: %s", path, p.err_line, p.err_msg);
	return 0;
}

/* err_set with "path:line: " when key idx came from the file. */
static int
cfg_err_at(const struct cfg *c, size_t idx, struct err *e, int code,
    const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->path && c->line_[idx] > 0)
		return err_set(
		    e, code, "%s:%d: %s", c->path, c->line_[idx], msg);
	return err_set(e, code, "%s", msg);
}

/* err_set with "path:line: " for a key checked outside cfg.c. See cfg.h. */
int
cfg_err_key(const struct cfg *c, const char *section, const char *name,
    struct err *e, int code, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	size_t idx;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cfg_key_find(section, name, &idx) && c->path && c->line_[idx] > 0)
		return err_set(
		    e, code, "%s:%d: %s", c->path, c->line_[idx], msg);
	return err_set(e, code, "%s", msg);
}

/* The absolute, lexically normalised form of path (relative to the working
 * directory): no ".", "..", empty components or trailing slash. */
static int
cfg_path_absolute(const char *path, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	char *out, *tok, *save = NULL;
	size_t n = 0, cap;

	if (path[0] == '/')
		buf = strdup(path);
	else {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);

		if (!cwd)
			return -errno;
		if (asprintf(&buf, "%s/%s", cwd, path) < 0)
			buf = NULL;
	}
	if (!buf)
		return -ENOMEM;
	cap = strlen(buf) + 2;
	if (!(out = malloc(cap)))
		return -ENOMEM;
	out[0] = '\0';
	for (tok = strtok_r(buf, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (STREQ(tok, "."))
			continue;
		if (STREQ(tok, "..")) {
			char *slash = strrchr(out, '/');

			n = slash ? (size_t)(slash - out) : 0;
			out[n] = '\0';
			continue;
		}
		n += (size_t)snprintf(out + n, cap - n, "/%s", tok);
	}
	if (n == 0)
		strcpy(out, "/");
	*ret = out;
	return 0;
}

static int
cfg_path_join(const char *dir, const char *name, char **ret)
{
	char *s;

	if (asprintf(&s, "%s/%s", STREQ(dir, "/") ? "" : dir, name) < 0)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* Reads the file of key [section] name (path) into *ret: one line of
 * visible ASCII (RFC 6750 b64token and friends; tokens and passwords),
 * trailing newline removed. */
static int
cfg_read_secret(struct cfg *c, const char *section, const char *name,
    const char *path, char **ret, struct err *e)
{
	size_t idx;
	char buf[1024 + 2], *end;
	size_t len;
	FILE *f;

	(void)cfg_key_find(section, name, &idx);
	f = fopen(path, "re");
	if (!f)
		return cfg_err_at(c, idx, e, -errno, "%s %s: %s", name, path,
		    strerror(errno));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	(void)fclose(f);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0)
		return cfg_err_at(
		    c, idx, e, -EINVAL, "%s %s: the file is empty", name, path);
	if (len > 1024)
		return cfg_err_at(c, idx, e, -EINVAL,
		    "%s %s: token longer than 1024 bytes", name, path);
	for (end = buf; *end; end++)
		if (*end <= 0x20 || *end >= 0x7f)
			return cfg_err_at(c, idx, e, -EINVAL,
			    "%s %s: the token must be one line "
			    "of visible ASCII",
			    name, path);
	if (*ret) {
		explicit_bzero(*ret, strlen(*ret));
		free(*ret);
	}
	if (!(*ret = strdup(buf)))
		return err_set(e, -ENOMEM, "out of memory");
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static int
cfg_read_token(struct cfg *c, struct err *e)
{
	return cfg_read_secret(
	    c, "api", "auth_token_file", c->auth_token_file, &c->auth_token, e);
}

/* [placement]: the secrets read, and enough to authenticate. */
static int
cfg_finish_placement(struct cfg *c, struct err *e)
{
	size_t ui, ai;
	int r;

	if (c->placement_token_file &&
	    (r = cfg_read_secret(c, "placement", "token_file",
		 c->placement_token_file, &c->placement_token, e)) < 0)
		return r;
	if (c->placement_password_file &&
	    (r = cfg_read_secret(c, "placement", "password_file",
		 c->placement_password_file, &c->placement_password, e)) < 0)
		return r;
	if (!c->placement_url)
		return 0;
	(void)cfg_key_find("placement", "url", &ui);
	(void)cfg_key_find("placement", "auth_url", &ai);
	if (!c->placement_token_file && !c->placement_auth_url)
		return cfg_err_at(c, ui, e, -EINVAL,
		    "url: set token_file or auth_url (Keystone) to "
		    "authenticate to Placement");
	if (!c->placement_token_file &&
	    (!c->placement_username || !c->placement_password_file))
		return cfg_err_at(c, ai, e, -EINVAL,
		    "auth_url: Keystone needs username and password_file");
	return 0;
}

/* Derived paths, token, TLS pair, listen rule. See cfg.h. */
int
cfg_finish(struct cfg *c, struct err *e)
{
	static const struct {
		size_t offset;
		const char *name; /* joined to state_dir when unset */
	} paths[] = {
	    {OFF(state_dir), NULL},
	    {OFF(instances_path), "instances"},
	    {OFF(images_path), "images"},
	    {OFF(db_path), "hyperlet.db"},
	    {OFF(auth_token_file), NULL},
	    {OFF(tls_cert_file), NULL},
	    {OFF(tls_key_file), NULL},
	    {OFF(placement_token_file), NULL},
	    {OFF(placement_password_file), NULL},
	};
	size_t li, ci, ki;
	int r;

	/* before the paths are made absolute: messages name the file as the
	 * user wrote it */
	if (c->auth_token_file && (r = cfg_read_token(c, e)) < 0)
		return r;
	if ((r = cfg_finish_placement(c, e)) < 0)
		return r;

	(void)cfg_key_find("api", "tls_cert_file", &ci);
	(void)cfg_key_find("api", "tls_key_file", &ki);
	if (!c->tls_cert_file != !c->tls_key_file)
		return cfg_err_at(c, c->tls_cert_file ? ci : ki, e, -EINVAL,
		    "tls_cert_file and tls_key_file go together: set both or "
		    "neither");
	/* readable now, so --check-config catches a typo; the API parses */
	if (c->tls_cert_file && access(c->tls_cert_file, R_OK) < 0)
		return cfg_err_at(c, ci, e, -errno, "tls_cert_file %s: %s",
		    c->tls_cert_file, strerror(errno));
	if (c->tls_key_file && access(c->tls_key_file, R_OK) < 0)
		return cfg_err_at(c, ki, e, -errno, "tls_key_file %s: %s",
		    c->tls_key_file, strerror(errno));

	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		char **field = (char **)((char *)c + paths[i].offset);
		char *abs = NULL;

		if (*field)
			r = cfg_path_absolute(*field, &abs);
		else if (paths[i].name)
			r = cfg_path_join(c->state_dir, paths[i].name, &abs);
		else
			continue;
		if (r < 0)
			return err_set(e, r, "cannot make a path absolute: %s",
			    strerror(-r));
		free(*field);
		*field = abs;
	}

	(void)cfg_key_find("api", "listen", &li);
	if (!c->listen_loopback && !c->auth_token_file)
		return cfg_err_at(c, li, e, -EINVAL,
		    "listen %s is not a loopback address: set "
		    "auth_token_file to serve other hosts",
		    c->listen);
	return 0;
}

/* Every key in the file's syntax. See cfg.h. */
int
cfg_format(const struct cfg *c, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *section = NULL;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(cfg_keys); i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const void *field = (const char *)c + k->offset;

		if (!section || !STREQ(section, k->section)) {
			fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case CFG_LISTEN:
		case CFG_STR:
		case CFG_PATH:
		case CFG_TEXT:
		case CFG_LIST: {
			const char *s = *(char *const *)field;

			fputs(s ? s : "", f);
			break;
		}
		case CFG_INT:
			fprintf(f, "%d", *(const int *)field);
			break;
		case CFG_BYTES:
			fprintf(f, "%" PRId64, *(const int64_t *)field);
			break;
		case CFG_DOUBLE: { /* the shortest text that reads back */
			double d = *(const double *)field;
			char num[32];

			for (int prec = 1; prec <= 17; prec++) {
				(void)snprintf(
				    num, sizeof(num), "%.*g", prec, d);
				if (strtod(num, NULL) == d)
					break;
			}
			fputs(num, f);
			break;
		}
		case CFG_ENUM_STR:
			fputs(*(const char *const *)field, f);
			break;
		case CFG_ENUM_BOOL:
		case CFG_ENUM_INT: {
			int v = k->type == CFG_ENUM_BOOL ? *(const bool *)field
							 : *(const int *)field;
			const char *name = "?";

			for (const struct cfg_choice *ch = k->choices; ch->name;
			     ch++)
				if (ch->value == v)
					name = ch->name;
			fputs(name, f);
			break;
		}
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Frees c's members. See cfg.h. */
void
cfg_clear(struct cfg *c)
{
	free(c->path);
	free(c->listen);
	free(c->auth_token_file);
	if (c->auth_token) {
		explicit_bzero(c->auth_token, strlen(c->auth_token));
		free(c->auth_token);
	}
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->tls_priorities);
	free(c->libvirt_uri);
	free(c->availability_zone);
	free(c->state_dir);
	free(c->instances_path);
	free(c->images_path);
	free(c->db_path);
	free(c->volume_roots);
	free(c->placement_url);
	free(c->placement_token_file);
	free(c->placement_auth_url);
	free(c->placement_username);
	free(c->placement_password_file);
	free(c->placement_project_name);
	free(c->placement_user_domain_name);
	free(c->placement_project_domain_name);
	free(c->placement_project_id);
	free(c->placement_user_id);
	free(c->placement_provider_name);
	if (c->placement_token) {
		explicit_bzero(c->placement_token, strlen(c->placement_token));
		free(c->placement_token);
	}
	if (c->placement_password) {
		explicit_bzero(
		    c->placement_password, strlen(c->placement_password));
		free(c->placement_password);
	}
	memset(c, 0, sizeof(*c));
}
