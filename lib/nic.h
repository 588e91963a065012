/*
 * The guest's network interfaces and guest data (Nova's create-body
 * `networks`, `hostname`, `user_data`, `keys`): the model only. Parsing
 * and validation, storage, the domain XML and the config drive live in
 * their own files and share these structures. Pure: no I/O.
 */
#ifndef HYPERLET_NIC_H
#define HYPERLET_NIC_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define NIC_MAC_LEN 18 /* "fa:16:3e:12:34:56" and the NUL */
#define NIC_TARGET_DEV_LEN 15 /* "tap" + 11 characters of port_id, NUL */

enum nic_model {
	NIC_MODEL_VIRTIO = 0, /* the default */
	NIC_MODEL_E1000,
	NIC_MODEL_E1000E,
	NIC_MODEL_RTL8139,
};

/* One static address: "192.0.2.10/24" (address and prefix, as given,
 * canonicalised by the parser) and an optional gateway inside the prefix. */
struct nic_ip {
	char *address;
	char *gateway; /* NULL when none */
};

/* Where an attach or detach of a NIC stands (nics.attach_state, schema 9),
 * as a BDM's (enum bdm_attach_state): SETTLED (NULL in the row) libvirt
 * confirmed or no change is under way; ATTACHING the row is written and
 * libvirt not (yet) confirmed; DETACHING the detach was asked and the row
 * not deleted yet. Start-up reconciliation settles the others. */
enum nic_attach_state {
	NIC_ATTACH_SETTLED = 0,
	NIC_ATTACH_ATTACHING,
	NIC_ATTACH_DETACHING,
};

struct nic {
	char port_id[UUID_STR_LEN];
	char mac[NIC_MAC_LEN]; /* lower case, colon-separated */
	char *bridge; /* exactly one of bridge and network is set */
	char *network;
	enum nic_model model;
	int mtu; /* 0: not set */
	char *tag; /* NULL when untagged */
	struct nic_ip *ips; /* none: DHCP */
	size_t n_ips;
	char **dns;
	size_t n_dns;
	char target_dev[NIC_TARGET_DEV_LEN]; /* "tap" + port_id[0..10] */
	char *pci_address; /* as libvirt assigned it ("0000:00:05.0"); NULL
			      when unknown or none */
	enum nic_attach_state attach_state; /* stored; never from a request */
	bool mac_drawn; /* request only: mac was drawn, not given (a
			   collision on the node draws again) */
};

/* One key of Nova's meta_data `keys`: {"name", "type", "data"}. */
struct guest_key {
	char *name;
	char *type; /* "ssh" or "x509" */
	char *data;
};

/* What the guest is told about itself, beyond the instance row. */
struct guest_data {
	char *hostname; /* never NULL after parse: sanitize_hostname(name) */
	char *user_data; /* base64 as given; NULL when none. Never echoed. */
	struct guest_key *keys;
	size_t n_keys;
	struct nic *nics; /* in request order */
	size_t n_nics;
};

const char *nic_model_to_string(enum nic_model v);
int nic_model_from_string(const char *s, enum nic_model *ret);

/*
 * Decodes base64 text s (RFC 4648 standard alphabet, '=' padding
 * required, length a multiple of 4 once line breaks "\n" and "\r\n" are
 * left out; nothing else is skipped) into *ret (owned, NUL-terminated
 * for convenience, *ret_len bytes without it). With ret NULL it only
 * checks. Returns 0, -EINVAL for text that is not such base64, -ENOMEM.
 */
int nic_base64_decode(const char *s, unsigned char **ret, size_t *ret_len);

/* Frees what these own and zeroes them; accept already-cleared values. */
void nic_clear(struct nic *n);
void guest_key_clear(struct guest_key *k);
void guest_data_clear(struct guest_data *g);

#endif /* HYPERLET_NIC_H */
