/*
 * JSON <-> NICs and guest data. Reads the create body's hostname,
 * user_data, keys and networks (and the interface-attach body) through
 * jfield's strict getters, applies every rule of design.md's "Guest"
 * section as it reads, and canonicalises what it keeps (lower-case MACs,
 * addresses as inet_ntop prints them), so that the store, the domain XML
 * and the config drive take the model as it is. Writes the instance
 * JSON's guest members with jwriter. user_data is checked and kept,
 * never written out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "jfield.h"
#include "jwriter.h"
#include "macro.h"
#include "nic_json.h"

#define NIC_TAG_MAX 60 /* nova/objects/tag.py MAX_TAG_LENGTH */
#define NIC_BRIDGE_MAX 15 /* IFNAMSIZ - 1 */
#define NIC_NETWORK_MAX 255
#define NIC_KEY_NAME_MAX 255
#define HOSTNAME_MAX 63

static int
fail(const char *prefix, const char *key, struct err *e, const char *what)
{
	char path[JFIELD_PATH_MAX];

	jfield_path(path, prefix, key);
	return err_set_field(e, -EINVAL, path, "field '%s': %s", path, what);
}

static int
oom(struct err *e)
{
	return err_set(e, -ENOMEM, "out of memory");
}

/* ---- rules -------------------------------------------------------- */

/* An RFC 1123 label: 1..63 of [A-Za-z0-9-], not beginning or ending
 * with '-'. */
static bool
hostname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HOSTNAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* A Linux interface name as ip-link takes it, restricted further to
 * [A-Za-z0-9_.-], at most 15 bytes. */
static bool
bridge_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NIC_BRIDGE_MAX || STREQ(s, ".") || STREQ(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
			s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "xx:xx:xx:xx:xx:xx" (either case) into out, lower case. Returns 0,
 * -EINVAL for another shape, -EDOM for a multicast or all-zero one. */
static int
mac_parse(const char *s, char out[NIC_MAC_LEN])
{
	unsigned char b[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	if (b[0] & 1)
		return -EDOM;
	if ((b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0)
		return -EDOM;
	(void)snprintf(out, NIC_MAC_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", b[0],
	    b[1], b[2], b[3], b[4], b[5]);
	return 0;
}

/* Nova's tag: 1..60 characters without ',' or '/'. */
static bool
tag_valid(const char *s)
{
	return s[0] != '\0' && util_utf8_chars(s) <= NIC_TAG_MAX &&
	    strpbrk(s, ",/") == NULL;
}

struct addr {
	int af;
	unsigned char b[16];
};

/* An address, v4 or v6, as inet_pton takes it. */
static bool
addr_parse(const char *s, struct addr *a)
{
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->af = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, a->b) == 1) {
		a->af = AF_INET6;
		return true;
	}
	return false;
}

static void
addr_text(const struct addr *a, char out[INET6_ADDRSTRLEN])
{
	(void)inet_ntop(a->af, a->b, out, INET6_ADDRSTRLEN);
}

/* Do a and b share their first plen bits? */
static bool
same_prefix(const struct addr *a, const struct addr *b, int plen)
{
	int full = plen / 8, rest = plen % 8;

	if (a->af != b->af || memcmp(a->b, b->b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a->b[full] ^ b->b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* "address/prefix" into *a and *plen. */
static bool
cidr_parse(const char *s, struct addr *a, int *plen)
{
	const char *slash = strchr(s, '/');
	char host[INET6_ADDRSTRLEN];
	size_t n;
	int v = 0;

	if (slash == NULL || (n = (size_t)(slash - s)) >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (!addr_parse(host, a))
		return false;
	slash++;
	if (slash[0] == '\0' || strlen(slash) > 3 ||
	    (slash[0] == '0' && slash[1] != '\0'))
		return false;
	for (const char *c = slash; *c; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (*c - '0');
	}
	if (v > (a->af == AF_INET ? 32 : 128))
		return false;
	*plen = v;
	return true;
}

/* The public key algorithms OpenSSH 9 reads in authorized_keys. */
static const char *const ssh_key_types[] = {
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-dss",
    "ssh-ed25519",
    "ssh-rsa",
};

/*
 * An OpenSSH public key line: "<type> <base64 blob> [comment]", single
 * spaces or tabs between, no options, one line; the blob decodes and
 * begins with its own type (the wire format's string). Returns a
 * message, or NULL when the line is valid.
 */
static const char *
ssh_key_check(const char *s)
{
	const char *sp = strpbrk(s, " \t"), *blob, *end;
	_cleanup_free_ char *b64 = NULL;
	_cleanup_free_ unsigned char *raw = NULL;
	size_t tlen, rlen;
	char type[64];

	if (strpbrk(s, "\r\n") != NULL)
		return "expected one line";
	if (sp == NULL || (tlen = (size_t)(sp - s)) >= sizeof(type))
		return "expected an OpenSSH public key line "
		       "(type, base64 key, comment)";
	memcpy(type, s, tlen);
	type[tlen] = '\0';
	if (jfield_lookup(ssh_key_types, ELEMENTSOF(ssh_key_types), type) < 0)
		return "unknown OpenSSH key type";
	blob = sp + strspn(sp, " \t");
	end = blob + strcspn(blob, " \t");
	if (end == blob)
		return "expected the base64 key after the type";
	if ((b64 = strndup(blob, (size_t)(end - blob))) == NULL)
		return "out of memory";
	if (nic_base64_decode(b64, &raw, &rlen) < 0)
		return "the key is not valid base64";
	if (rlen < 4 + tlen || raw[0] != 0 || raw[1] != 0 ||
	    ((size_t)raw[2] << 8 | raw[3]) != tlen ||
	    memcmp(raw + 4, type, tlen) != 0)
		return "the key's blob does not hold its type";
	return NULL;
}

/* A PEM certificate (the shape only: Nova stores x509 keys as given). */
static bool
x509_valid(const char *s)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *p;

	if (strncmp(s, begin, sizeof(begin) - 1) != 0 ||
	    (p = strstr(s, end)) == NULL)
		return false;
	p += sizeof(end) - 1;
	return p[strspn(p, "\r\n")] == '\0';
}

/* ---- parsing ------------------------------------------------------- */

static int
set_str(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, char **dst, struct err *e)
{
	char *s = NULL;
	int r = jfield_value_strdup(v, prefix, key, flags, &s, e);

	if (r > 0) {
		free(*dst);
		*dst = s;
	}
	return r;
}

static int
parse_ip(struct json_object *v, const char *prefix, struct nic_ip *ip, int *af,
    struct err *e)
{
	static const char *const keys[] = {"address", "gateway"};
	char text[INET6_ADDRSTRLEN + 8];
	const char *s = NULL;
	struct addr a, g;
	int plen, r;

	if (!json_object_is_type(v, json_type_object))
		return fail(prefix, NULL, e, "expected object");
	if ((r = jfield_check_keys(v, prefix, keys, ELEMENTSOF(keys), e)) < 0)
		return r;
	if ((r = jfield_str(v, prefix, "address", JFIELD_REQUIRED, &s, e)) < 0)
		return r;
	if (!cidr_parse(s, &a, &plen))
		return fail(prefix, "address", e,
		    "expected an IPv4 or IPv6 address with a prefix length "
		    "(192.0.2.10/24)");
	addr_text(&a, text);
	(void)snprintf(text + strlen(text), 8, "/%d", plen);
	if ((ip->address = strdup(text)) == NULL)
		return oom(e);
	*af = a.af;
	if ((r = jfield_str(v, prefix, "gateway", JFIELD_NULLABLE, &s, e)) <= 0)
		return r;
	if (!addr_parse(s, &g) || g.af != a.af)
		return fail(prefix, "gateway", e,
		    "expected an address of the same family as address");
	if (!same_prefix(&a, &g, plen))
		return fail(
		    prefix, "gateway", e, "is outside address's prefix");
	addr_text(&g, text);
	if ((ip->gateway = strdup(text)) == NULL)
		return oom(e);
	return 0;
}

static int
parse_ips(
    struct json_object *arr, const char *prefix, struct nic *n, struct err *e)
{
	size_t len = json_object_array_length(arr);

	if (len == 0)
		return 0;
	if ((n->ips = calloc(len, sizeof(*n->ips))) == NULL)
		return oom(e);
	for (size_t i = 0; i < len; i++) {
		char p[JFIELD_PATH_MAX];
		int af, r;

		jfield_path_index(p, prefix, "ips", i);
		n->n_ips = i + 1;
		if ((r = parse_ip(json_object_array_get_idx(arr, i), p,
			 &n->ips[i], &af, e)) < 0)
			return r;
	}
	return 0;
}

static int
parse_dns(
    struct json_object *arr, const char *prefix, struct nic *n, struct err *e)
{
	size_t len = json_object_array_length(arr);

	if (len == 0)
		return 0;
	if ((n->dns = calloc(len, sizeof(*n->dns))) == NULL)
		return oom(e);
	for (size_t i = 0; i < len; i++) {
		char p[JFIELD_PATH_MAX], text[INET6_ADDRSTRLEN];
		struct json_object *v = json_object_array_get_idx(arr, i);
		const char *s = NULL;
		struct addr a;
		int r;

		jfield_path_index(p, prefix, "dns", i);
		if ((r = jfield_value_str(v, p, NULL, JFIELD_REQUIRED, &s, e)) <
		    0)
			return r;
		if (!addr_parse(s, &a))
			return fail(
			    p, NULL, e, "expected an IPv4 or IPv6 address");
		addr_text(&a, text);
		if ((n->dns[i] = strdup(text)) == NULL)
			return oom(e);
		n->n_dns = i + 1;
	}
	return 0;
}

enum {
	NK_BRIDGE,
	NK_DNS,
	NK_IPS,
	NK_MAC,
	NK_MODEL,
	NK_MTU,
	NK_NETWORK,
	NK_PORT_ID,
	NK_TAG,
};
static const char *const nic_keys[] = {
    [NK_BRIDGE] = "bridge",
    [NK_DNS] = "dns",
    [NK_IPS] = "ips",
    [NK_MAC] = "mac",
    [NK_MODEL] = "model",
    [NK_MTU] = "mtu",
    [NK_NETWORK] = "network",
    [NK_PORT_ID] = "port_id",
    [NK_TAG] = "tag",
};

/* See nic_json.h. */
int
nic_json_parse_nic(
    struct json_object *v, const char *prefix, struct nic *n, struct err *e)
{
	if (!json_object_is_type(v, json_type_object))
		return fail(prefix, NULL, e, "expected object");
	json_object_object_foreach(v, key, val)
	{
		struct json_object *o = NULL;
		const char *s = NULL;
		int64_t x;
		int r;

		switch (jfield_lookup(nic_keys, ELEMENTSOF(nic_keys), key)) {
		case NK_BRIDGE:
			r = set_str(
			    val, prefix, key, JFIELD_NULLABLE, &n->bridge, e);
			if (r > 0 && !bridge_valid(n->bridge))
				r = fail(prefix, key, e,
				    "expected 1..15 characters of "
				    "[A-Za-z0-9_.-]");
			break;
		case NK_DNS:
			r = jfield_value_array(val, prefix, key,
			    JFIELD_NULLABLE, NIC_JSON_MAX_DNS, &o, e);
			if (r > 0)
				r = parse_dns(o, prefix, n, e);
			break;
		case NK_IPS:
			r = jfield_value_array(val, prefix, key,
			    JFIELD_NULLABLE, NIC_JSON_MAX_IPS, &o, e);
			if (r > 0)
				r = parse_ips(o, prefix, n, e);
			break;
		case NK_MAC:
			r = jfield_value_str(
			    val, prefix, key, JFIELD_NULLABLE, &s, e);
			if (r > 0) {
				int m = mac_parse(s, n->mac);

				if (m == -EINVAL)
					r = fail(prefix, key, e,
					    "expected a MAC address "
					    "(fa:16:3e:12:34:56)");
				else if (m < 0)
					r = fail(prefix, key, e,
					    "a multicast or all-zero MAC "
					    "cannot name an interface");
			}
			break;
		case NK_MODEL:
			r = jfield_value_str(
			    val, prefix, key, JFIELD_NULLABLE, &s, e);
			if (r > 0 && nic_model_from_string(s, &n->model) < 0)
				r = fail(prefix, key, e,
				    "expected virtio, e1000, e1000e or "
				    "rtl8139");
			break;
		case NK_MTU:
			r = jfield_value_int(val, prefix, key, JFIELD_NULLABLE,
			    68, 65535, &x, e);
			if (r > 0)
				n->mtu = (int)x;
			break;
		case NK_NETWORK:
			r = set_str(
			    val, prefix, key, JFIELD_NULLABLE, &n->network, e);
			if (r > 0 &&
			    (n->network[0] == '\0' ||
				util_utf8_chars(n->network) > NIC_NETWORK_MAX ||
				strchr(n->network, '/') != NULL))
				r = fail(prefix, key, e,
				    "expected a libvirt network name (1..255 "
				    "characters, no '/')");
			break;
		case NK_PORT_ID:
			r = jfield_value_str(
			    val, prefix, key, JFIELD_NULLABLE, &s, e);
			if (r > 0 && util_uuid_normalize(s, n->port_id) < 0)
				r = fail(prefix, key, e, "expected a UUID");
			break;
		case NK_TAG:
			r = set_str(
			    val, prefix, key, JFIELD_NULLABLE, &n->tag, e);
			if (r > 0 && !tag_valid(n->tag))
				r = fail(prefix, key, e,
				    "expected 1..60 characters without ',' "
				    "or '/'");
			break;
		default:
			r = fail(prefix, key, e, "unknown field");
			break;
		}
		if (r < 0)
			return r;
	}
	if ((n->bridge == NULL) == (n->network == NULL))
		return fail(prefix, n->bridge ? "network" : "bridge", e,
		    "a NIC names exactly one of bridge and network");
	return 0;
}

static int
parse_networks(struct json_object *arr, struct guest_data *g, struct err *e)
{
	size_t len = json_object_array_length(arr);

	for (size_t i = 0; i < g->n_nics; i++)
		nic_clear(&g->nics[i]);
	free(g->nics);
	g->nics = NULL;
	g->n_nics = 0;
	if (len == 0)
		return 0;
	if ((g->nics = calloc(len, sizeof(*g->nics))) == NULL)
		return oom(e);
	for (size_t i = 0; i < len; i++) {
		char p[JFIELD_PATH_MAX];
		int r;

		g->n_nics = i + 1;
		jfield_path_index(p, NULL, "networks", i);
		if ((r = nic_json_parse_nic(json_object_array_get_idx(arr, i),
			 p, &g->nics[i], e)) < 0)
			return r;
	}
	return 0;
}

static int
parse_key(struct json_object *v, const char *prefix, struct guest_key *k,
    struct err *e)
{
	static const char *const keys[] = {"data", "name", "type"};
	const char *msg, *s = NULL;
	int r;

	if (!json_object_is_type(v, json_type_object))
		return fail(prefix, NULL, e, "expected object");
	if ((r = jfield_check_keys(v, prefix, keys, ELEMENTSOF(keys), e)) < 0)
		return r;
	if ((r = jfield_str(v, prefix, "name", JFIELD_REQUIRED, &s, e)) < 0)
		return r;
	if (s[0] == '\0' || util_utf8_chars(s) > NIC_KEY_NAME_MAX ||
	    strpbrk(s, "\t\r\n") != NULL)
		return fail(prefix, "name", e,
		    "expected 1..255 characters on one line");
	if ((k->name = strdup(s)) == NULL)
		return oom(e);
	if ((r = jfield_str(v, prefix, "type", JFIELD_REQUIRED, &s, e)) < 0)
		return r;
	if (!STREQ(s, "ssh") && !STREQ(s, "x509"))
		return fail(prefix, "type", e, "expected ssh or x509");
	if ((k->type = strdup(s)) == NULL)
		return oom(e);
	if ((r = jfield_str(v, prefix, "data", JFIELD_REQUIRED, &s, e)) < 0)
		return r;
	if ((k->data = strdup(s)) == NULL)
		return oom(e);
	if (STREQ(k->type, "ssh")) {
		if ((msg = ssh_key_check(k->data)) != NULL)
			return fail(prefix, "data", e, msg);
	} else if (!x509_valid(k->data))
		return fail(prefix, "data", e,
		    "expected a PEM certificate (-----BEGIN CERTIFICATE-----)");
	return 0;
}

static int
parse_keys(struct json_object *arr, struct guest_data *g, struct err *e)
{
	size_t len = json_object_array_length(arr);

	for (size_t i = 0; i < g->n_keys; i++)
		guest_key_clear(&g->keys[i]);
	free(g->keys);
	g->keys = NULL;
	g->n_keys = 0;
	if (len == 0)
		return 0;
	if ((g->keys = calloc(len, sizeof(*g->keys))) == NULL)
		return oom(e);
	for (size_t i = 0; i < len; i++) {
		char p[JFIELD_PATH_MAX];
		int r;

		g->n_keys = i + 1;
		jfield_path_index(p, NULL, "keys", i);
		if ((r = parse_key(json_object_array_get_idx(arr, i), p,
			 &g->keys[i], e)) < 0)
			return r;
	}
	return 0;
}

/* See nic_json.h. */
int
nic_json_parse_field(
    const char *key, struct json_object *v, struct guest_data *g, struct err *e)
{
	struct json_object *o = NULL;
	int r;

	if (STREQ(key, "hostname")) {
		r = set_str(v, NULL, key, JFIELD_NULLABLE, &g->hostname, e);
		if (r > 0 && !hostname_valid(g->hostname))
			return fail(NULL, key, e,
			    "expected an RFC 1123 label: 1..63 characters of "
			    "[A-Za-z0-9-], not beginning or ending with '-'");
		return r < 0 ? r : 1;
	}
	if (STREQ(key, "user_data")) {
		r = set_str(v, NULL, key, JFIELD_NULLABLE, &g->user_data, e);
		if (r > 0 && strlen(g->user_data) > NIC_JSON_USER_DATA_MAX)
			return fail(NULL, key, e,
			    "longer than 65535 characters (Nova's limit)");
		if (r > 0 && nic_base64_decode(g->user_data, NULL, NULL) < 0)
			return fail(NULL, key, e, "expected base64 text");
		return r < 0 ? r : 1;
	}
	if (STREQ(key, "keys")) {
		r = jfield_value_array(
		    v, NULL, key, JFIELD_NULLABLE, NIC_JSON_MAX_KEYS, &o, e);
		if (r > 0)
			r = parse_keys(o, g, e);
		return r < 0 ? r : 1;
	}
	if (STREQ(key, "networks")) {
		r = jfield_value_array(
		    v, NULL, key, JFIELD_NULLABLE, NIC_JSON_MAX_NICS, &o, e);
		if (r > 0)
			r = parse_networks(o, g, e);
		return r < 0 ? r : 1;
	}
	return 0;
}

/* ---- defaults ------------------------------------------------------ */

/* See nic_json.h. */
void
nic_json_fill(struct nic *n)
{
	if (n->port_id[0] == '\0')
		util_uuid_generate(n->port_id);
	if (n->mac[0] == '\0') {
		unsigned char b[3] = {0};

		/* Nova's generate_mac_address: fa:16:3e and 24 random bits */
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
			char u[UUID_STR_LEN];

			util_uuid_generate(u);
			b[0] =
			    (unsigned char)(hexval(u[0]) << 4 | hexval(u[1]));
			b[1] =
			    (unsigned char)(hexval(u[2]) << 4 | hexval(u[3]));
			b[2] =
			    (unsigned char)(hexval(u[4]) << 4 | hexval(u[5]));
		}
		(void)snprintf(n->mac, NIC_MAC_LEN, "fa:16:3e:%02x:%02x:%02x",
		    b[0], b[1], b[2]);
	}
	(void)snprintf(
	    n->target_dev, NIC_TARGET_DEV_LEN, "tap%.11s", n->port_id);
}

/*
 * nova/utils.py sanitize_hostname: characters past U+00FF dropped, cut
 * to 63 characters, ' ', '_' and '.' turned into '-', everything else
 * but word characters, '.' and '-' dropped, lower-cased, '.' and '-'
 * stripped from both ends. Python's \w also keeps Latin-1 letters (é);
 * they would not make an RFC 1123 label, so they are dropped here too.
 */
char *
nic_json_sanitize_hostname(const char *name)
{
	size_t n = strlen(name), chars = 0, o = 0, start = 0;
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)name; *p;) {
		unsigned cp;
		size_t len;

		if (*p < 0x80) {
			cp = *p;
			len = 1;
		} else if ((*p & 0xe0) == 0xc0) {
			cp = (unsigned)(*p & 0x1f) << 6 | (p[1] & 0x3f);
			len = 2;
		} else
			len = (*p & 0xf0) == 0xe0 ? 3 : 4;
		if (len > 1 && (len > 2 || cp > 0xff)) {
			/* not Latin-1: gone before the cut */
			for (size_t k = 0; k < len && *p; k++)
				p++;
			continue;
		}
		p += len;
		if (chars++ >= HOSTNAME_MAX)
			break;
		if (len > 1)
			continue; /* a Latin-1 character: see above */
		if (cp == ' ' || cp == '_' || cp == '.')
			out[o++] = '-';
		else if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') ||
		    cp == '-')
			out[o++] = (char)cp;
		else if (cp >= 'A' && cp <= 'Z')
			out[o++] = (char)(cp - 'A' + 'a');
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	while (start < o && out[start] == '-')
		start++;
	memmove(out, out + start, o - start);
	out[o - start] = '\0';
	return out;
}

/* See nic_json.h. */
int
nic_json_prepare(
    struct guest_data *g, const char *name, const char *uuid, struct err *e)
{
	if (g->hostname == NULL) {
		char *h = nic_json_sanitize_hostname(name ? name : "");

		if (h == NULL)
			return oom(e);
		if (h[0] == '\0') {
			free(h);
			/* Nova's _default_host_name */
			if (asprintf(&h, "Server-%s", uuid) < 0)
				return oom(e);
		}
		g->hostname = h;
	}
	for (size_t i = 0; i < g->n_nics; i++) {
		char p[JFIELD_PATH_MAX], q[JFIELD_PATH_MAX];

		nic_json_fill(&g->nics[i]);
		for (size_t j = 0; j < i; j++) {
			if (STREQ(g->nics[j].port_id, g->nics[i].port_id)) {
				jfield_path_index(q, NULL, "networks", i);
				jfield_path(p, q, "port_id");
				return err_set_field(e, -EEXIST, p,
				    "field '%s': port_id %s is given twice", p,
				    g->nics[i].port_id);
			}
			if (STREQ(g->nics[j].mac, g->nics[i].mac)) {
				jfield_path_index(q, NULL, "networks", i);
				jfield_path(p, q, "mac");
				return err_set_field(e, -EEXIST, p,
				    "field '%s': mac %s is given twice", p,
				    g->nics[i].mac);
			}
		}
	}
	return 0;
}

/* See nic_json.h. */
int
nic_json_parse_attach(
    const char *body, size_t len, struct nic *ret, struct err *e)
{
	static const struct jfield_limits lim = {
	    .max_depth = 8, .max_string = 1024};
	_cleanup_(jfield_putp) struct json_object *root = NULL;
	struct nic n;
	int r;

	if ((r = jfield_parse(body, len, &lim, &root, e)) < 0)
		return r;
	memset(&n, 0, sizeof(n));
	if ((r = nic_json_parse_nic(root, "", &n, e)) < 0) {
		nic_clear(&n);
		return r;
	}
	nic_json_fill(&n);
	nic_clear(ret);
	*ret = n;
	return 0;
}

/* ---- writing ------------------------------------------------------- */

/* See nic_json.h. */
void
nic_json_write_nic(struct jwriter *w, const struct nic *n)
{
	jwriter_obj_begin(w);
	jwriter_key(w, "port_id");
	jwriter_str(w, n->port_id);
	jwriter_key(w, "mac");
	jwriter_str(w, n->mac);
	if (n->bridge) {
		jwriter_key(w, "bridge");
		jwriter_str(w, n->bridge);
	} else {
		jwriter_key(w, "network");
		jwriter_str(w, n->network);
	}
	jwriter_key(w, "model");
	jwriter_str(w, nic_model_to_string(n->model));
	jwriter_key(w, "mtu");
	if (n->mtu > 0)
		jwriter_int(w, n->mtu);
	else
		jwriter_null(w);
	jwriter_key(w, "tag");
	jwriter_str(w, n->tag);
	jwriter_key(w, "ips");
	jwriter_arr_begin(w);
	for (size_t i = 0; i < n->n_ips; i++) {
		jwriter_obj_begin(w);
		jwriter_key(w, "address");
		jwriter_str(w, n->ips[i].address);
		jwriter_key(w, "gateway");
		jwriter_str(w, n->ips[i].gateway);
		jwriter_obj_end(w);
	}
	jwriter_arr_end(w);
	jwriter_key(w, "dns");
	jwriter_arr_begin(w);
	for (size_t i = 0; i < n->n_dns; i++)
		jwriter_str(w, n->dns[i]);
	jwriter_arr_end(w);
	jwriter_key(w, "target_dev");
	jwriter_str(w, n->target_dev);
	jwriter_key(w, "pci_address");
	jwriter_str(w, n->pci_address);
	jwriter_obj_end(w);
}

/* See nic_json.h. */
void
nic_json_write_guest(struct jwriter *w, const struct guest_data *g)
{
	jwriter_key(w, "hostname");
	jwriter_str(w, g->hostname);
	jwriter_key(w, "keys");
	jwriter_arr_begin(w);
	for (size_t i = 0; i < g->n_keys; i++) {
		jwriter_obj_begin(w);
		jwriter_key(w, "name");
		jwriter_str(w, g->keys[i].name);
		jwriter_key(w, "type");
		jwriter_str(w, g->keys[i].type);
		jwriter_key(w, "data");
		jwriter_str(w, g->keys[i].data);
		jwriter_obj_end(w);
	}
	jwriter_arr_end(w);
	jwriter_key(w, "interfaces");
	jwriter_arr_begin(w);
	for (size_t i = 0; i < g->n_nics; i++)
		nic_json_write_nic(w, &g->nics[i]);
	jwriter_arr_end(w);
}
