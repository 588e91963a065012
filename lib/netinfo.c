/*
 * netinfo: network_data.json from struct guest_data's NICs, written with
 * jwriter (json-c's own output form). See netinfo.h for the format.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwriter.h"
#include "netinfo.h"

/* One "address/prefix" split: the address text, its family, and the
 * netmask in Nova's form (dotted for IPv4, IPv6 text for IPv6). */
struct netinfo_ip {
	char addr[INET6_ADDRSTRLEN];
	char mask[INET6_ADDRSTRLEN];
	int family;
};

static int
split_ip(const char *cidr, struct netinfo_ip *r, struct err *e)
{
	unsigned char buf[16], m[16] = {0};
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	size_t alen = slash ? (size_t)(slash - cidr) : 0;
	char *end;
	long prefix;

	if (slash == NULL || alen == 0 || alen >= sizeof(r->addr))
		goto bad;
	memcpy(r->addr, cidr, alen);
	r->addr[alen] = '\0';
	r->family = strchr(r->addr, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(r->family, r->addr, buf) != 1)
		goto bad;
	prefix = strtol(slash + 1, &end, 10);
	if (*end != '\0' || end == slash + 1 || prefix < 0 ||
	    prefix > (r->family == AF_INET ? 32 : 128))
		goto bad;
	for (long i = 0; i < prefix; i++)
		m[i / 8] |= (unsigned char)(0x80 >> (i % 8));
	if (inet_ntop(r->family, m, r->mask, sizeof(r->mask)) == NULL)
		goto bad;
	return 0;
bad:
	return err_set(e, -EINVAL, "address '%.64s' is not an address/prefix",
	    cidr ? cidr : "(null)");
}

static void
dns_service(struct jwriter *w, const char *addr)
{
	jwriter_obj_begin(w);
	jwriter_key(w, "type");
	jwriter_str(w, "dns");
	jwriter_key(w, "address");
	jwriter_str(w, addr);
	jwriter_obj_end(w);
}

static void
link(struct jwriter *w, const struct nic *n)
{
	jwriter_obj_begin(w);
	jwriter_key(w, "id");
	jwriter_str(w, n->target_dev);
	jwriter_key(w, "vif_id");
	jwriter_str(w, n->port_id);
	jwriter_key(w, "type");
	jwriter_str(w, "phy");
	jwriter_key(w, "mtu");
	if (n->mtu > 0)
		jwriter_int(w, n->mtu);
	else
		jwriter_null(w);
	jwriter_key(w, "ethernet_mac_address");
	jwriter_str(w, n->mac);
	jwriter_obj_end(w);
}

static const char *
network_id(const struct nic *n)
{
	return n->bridge ? n->bridge : n->network;
}

/* The networks of NIC n; *num counts them over the instance. */
static int
networks(struct jwriter *w, const struct nic *n, unsigned *num, struct err *e)
{
	struct netinfo_ip ip;
	int rc;

	if (n->n_ips == 0) {
		char id[32];

		(void)snprintf(id, sizeof(id), "network%u", (*num)++);
		jwriter_obj_begin(w);
		jwriter_key(w, "id");
		jwriter_str(w, id);
		jwriter_key(w, "type");
		jwriter_str(w, "ipv4_dhcp");
		jwriter_key(w, "link");
		jwriter_str(w, n->target_dev);
		jwriter_key(w, "network_id");
		jwriter_str(w, network_id(n));
		jwriter_obj_end(w);
		return 0;
	}
	for (size_t i = 0; i < n->n_ips; i++) {
		char id[32];
		bool v4;

		if ((rc = split_ip(n->ips[i].address, &ip, e)) < 0)
			return rc;
		v4 = ip.family == AF_INET;
		(void)snprintf(id, sizeof(id), "network%u", (*num)++);
		jwriter_obj_begin(w);
		jwriter_key(w, "id");
		jwriter_str(w, id);
		jwriter_key(w, "type");
		jwriter_str(w, v4 ? "ipv4" : "ipv6");
		jwriter_key(w, "link");
		jwriter_str(w, n->target_dev);
		jwriter_key(w, "ip_address");
		jwriter_str(w, ip.addr);
		jwriter_key(w, "netmask");
		jwriter_str(w, ip.mask);
		jwriter_key(w, "routes");
		jwriter_arr_begin(w);
		if (n->ips[i].gateway) {
			jwriter_obj_begin(w);
			jwriter_key(w, "network");
			jwriter_str(w, v4 ? "0.0.0.0" : "::");
			jwriter_key(w, "netmask");
			jwriter_str(w, v4 ? "0.0.0.0" : "::");
			jwriter_key(w, "gateway");
			jwriter_str(w, n->ips[i].gateway);
			jwriter_obj_end(w);
		}
		jwriter_arr_end(w);
		jwriter_key(w, "network_id");
		jwriter_str(w, network_id(n));
		jwriter_key(w, "services");
		jwriter_arr_begin(w);
		for (size_t k = 0; k < n->n_dns; k++)
			dns_service(w, n->dns[k]);
		jwriter_arr_end(w);
		jwriter_obj_end(w);
	}
	return 0;
}

int
netinfo_format(
    const struct guest_data *g, char **ret, size_t *ret_len, struct err *e)
{
	struct jwriter w;
	unsigned num = 0;
	int rc;

	jwriter_init(&w, 1024);
	if (g->n_nics == 0) {
		jwriter_obj_begin(&w);
		jwriter_obj_end(&w);
		goto done;
	}
	jwriter_obj_begin(&w);
	jwriter_key(&w, "links");
	jwriter_arr_begin(&w);
	for (size_t i = 0; i < g->n_nics; i++)
		link(&w, &g->nics[i]);
	jwriter_arr_end(&w);
	jwriter_key(&w, "networks");
	jwriter_arr_begin(&w);
	for (size_t i = 0; i < g->n_nics; i++)
		if ((rc = networks(&w, &g->nics[i], &num, e)) < 0) {
			jwriter_reset(&w);
			return rc;
		}
	jwriter_arr_end(&w);
	jwriter_key(&w, "services");
	jwriter_arr_begin(&w);
	for (size_t i = 0; i < g->n_nics; i++)
		for (size_t k = 0; k < g->nics[i].n_dns; k++) {
			const char *a = g->nics[i].dns[k];
			bool seen = false;

			for (size_t j = 0; j <= i && !seen; j++)
				for (size_t l = 0; l < g->nics[j].n_dns &&
				     !(j == i && l >= k) && !seen;
				     l++)
					seen = STREQ(g->nics[j].dns[l], a);
			if (!seen)
				dns_service(&w, a);
		}
	jwriter_arr_end(&w);
	jwriter_obj_end(&w);
done:
	if ((rc = jwriter_finish(&w, ret, ret_len)) < 0)
		return err_set(e, rc, "out of memory");
	return 0;
}
