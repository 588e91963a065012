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
