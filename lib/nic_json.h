/*
 * JSON <-> the NIC and guest-data model: the create body's `hostname`,
 * `user_data`, `keys` and `networks`, the interface-attach body, and the
 * instance JSON's `hostname`, `keys` and `interfaces`. Every rule a
 * request must follow is checked here (a NIC's MAC, bridge name, mtu,
 * addresses; a key's type and OpenSSH line; user_data's base64 and
 * Nova's length; the hostname an RFC 1123 label) and every error names
 * its field ("networks[1].mac"). user_data is never written out.
 */
#ifndef HYPERLET_NIC_JSON_H
#define HYPERLET_NIC_JSON_H

#include <stddef.h>

#include "err.h"
#include "nic.h"

struct json_object;
struct jwriter;

#define NIC_JSON_USER_DATA_MAX 65535 /* Nova's user_data maxLength */
#define NIC_JSON_KEY_DATA_MAX 16384 /* bytes of a key's data */
#define NIC_JSON_MAX_NICS 32 /* NICs per instance */
#define NIC_JSON_MAX_KEYS 64
#define NIC_JSON_MAX_IPS 16 /* per NIC */
#define NIC_JSON_MAX_DNS 8 /* per NIC */

/*
 * Parses the create body's key key with value v into g when key is one
 * of hostname, user_data, keys, networks. Returns 1 when it was one of
 * them (and is valid), 0 when key is none of them (nothing done), or
 * -EINVAL naming the field, -ENOMEM. A NIC's missing port_id and mac
 * are not drawn here (nic_json_prepare).
 */
int nic_json_parse_field(const char *key, struct json_object *v,
    struct guest_data *g, struct err *e);

/*
 * Parses one NIC object v, whose path is prefix ("networks[2]", or ""
 * for the attach body), into *ret (zeroed by the caller; on failure it
 * may be half-filled and is only good for nic_clear). Returns 0,
 * -EINVAL naming the field, -ENOMEM.
 */
int nic_json_parse_nic(
    struct json_object *v, const char *prefix, struct nic *ret, struct err *e);

/*
 * Parses an interface-attach body (one NIC, as in `networks`) into *ret
 * (owned; nic_clear), drawing its port_id and mac when absent and
 * setting target_dev. Returns 0, -EINVAL naming the field, -ENOMEM.
 */
int nic_json_parse_attach(
    const char *body, size_t len, struct nic *ret, struct err *e);

/*
 * Fills in what a create request left out, once the instance's name and
 * uuid are known: the hostname (Nova's sanitize_hostname(name), else
 * "Server-<uuid>"), each NIC's port_id (drawn) and mac (drawn, fa:16:3e)
 * and target_dev. Refuses two NICs of the request with the same port_id
 * or mac (-EEXIST naming "networks[i].mac"). Idempotent. Returns 0,
 * -EEXIST, -ENOMEM.
 */
int nic_json_prepare(
    struct guest_data *g, const char *name, const char *uuid, struct err *e);

/* Draws a port_id (when empty) and a mac (when empty) for n and sets its
 * target_dev ("tap" + the first 11 characters of port_id). */
void nic_json_fill(struct nic *n);

/* Nova's sanitize_hostname(name) restricted to an RFC 1123 label (see
 * nic_json.c), into a new string (owned); "" when nothing is left. NULL
 * on OOM. */
char *nic_json_sanitize_hostname(const char *name);

/*
 * Writes, inside an open object, the instance's "hostname", "keys" and
 * "interfaces" members (user_data never). Errors stick in w.
 */
void nic_json_write_guest(struct jwriter *w, const struct guest_data *g);
/* Writes one interface object. */
void nic_json_write_nic(struct jwriter *w, const struct nic *n);

#endif
