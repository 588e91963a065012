/* The NIC and guest-data model: enum tables and destructors. */
#include "nic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

static const char *const nic_model_names[] = {
    [NIC_MODEL_VIRTIO] = "virtio",
    [NIC_MODEL_E1000] = "e1000",
    [NIC_MODEL_E1000E] = "e1000e",
    [NIC_MODEL_RTL8139] = "rtl8139",
};

const char *
nic_model_to_string(enum nic_model v)
{
	if ((size_t)v >= ELEMENTSOF(nic_model_names))
		return NULL;
	return nic_model_names[v];
}

int
nic_model_from_string(const char *s, enum nic_model *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(nic_model_names); i++)
		if (s != NULL && strcmp(s, nic_model_names[i]) == 0) {
			*ret = (enum nic_model)i;
			return 0;
		}
	return -EINVAL;
}

static int
b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* See nic.h. */
int
nic_base64_decode(const char *s, unsigned char **ret, size_t *ret_len)
{
	unsigned char *out = NULL;
	size_t n = 0, olen = 0, pad = 0;
	unsigned acc = 0;
	int quad[4];
	size_t q = 0;

	/* first pass: the shape (and the size of the output) */
	for (const char *p = s; *p; p++) {
		if (*p == '\n' || (*p == '\r' && p[1] == '\n'))
			continue;
		if (*p == '=') {
			if (n % 4 < 2)
				return -EINVAL;
			pad++;
		} else if (pad > 0 || b64_val(*p) < 0)
			return -EINVAL;
		n++;
	}
	if (n % 4 != 0 || pad > 2)
		return -EINVAL;
	olen = n / 4 * 3 - pad;
	if (ret == NULL)
		return 0;
	if ((out = malloc(olen + 1)) == NULL)
		return -ENOMEM;
	n = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '\n' || *p == '\r')
			continue;
		quad[q++] = *p == '=' ? 0 : b64_val(*p);
		if (q < 4)
			continue;
		acc = (unsigned)quad[0] << 18 | (unsigned)quad[1] << 12 |
		    (unsigned)quad[2] << 6 | (unsigned)quad[3];
		q = 0;
		for (int k = 2; k >= 0 && n < olen; k--)
			out[n++] = (unsigned char)(acc >> (8 * k));
	}
	out[olen] = '\0';
	*ret = out;
	*ret_len = olen;
	return 0;
}

void
nic_clear(struct nic *n)
{
	for (size_t i = 0; i < n->n_ips; i++) {
		free(n->ips[i].address);
		free(n->ips[i].gateway);
	}
	free(n->ips);
	for (size_t i = 0; i < n->n_dns; i++)
		free(n->dns[i]);
	free(n->dns);
	free(n->bridge);
	free(n->network);
	free(n->tag);
	free(n->pci_address);
	memset(n, 0, sizeof(*n));
}

void
guest_key_clear(struct guest_key *k)
{
	free(k->name);
	free(k->type);
	free(k->data);
	memset(k, 0, sizeof(*k));
}

void
guest_data_clear(struct guest_data *g)
{
	for (size_t i = 0; i < g->n_keys; i++)
		guest_key_clear(&g->keys[i]);
	free(g->keys);
	for (size_t i = 0; i < g->n_nics; i++)
		nic_clear(&g->nics[i]);
	free(g->nics);
	free(g->hostname);
	free(g->user_data);
	memset(g, 0, sizeof(*g));
}
