/*
 * netinfo: network_data.json of the config drive, in Nova's format
 * (nova/virt/netutils.py get_network_metadata) from the instance's NICs:
 *   links     one per NIC, in request order: {"id": "tap" + port_id[0..10]
 *             (the domain's target dev, Nova's devname), "vif_id": port_id,
 *             "type": "phy", "mtu": mtu or null, "ethernet_mac_address"}
 *   networks  per NIC, one per address in "ips" (Nova writes only the
 *             first IPv4 and the first IPv6 address): "ipv4"/"ipv6" with
 *             "ip_address", "netmask", "routes" (the default route via
 *             the gateway, when one is given) and the NIC's DNS as
 *             "services"; a NIC without ips: one "ipv4_dhcp" network.
 *             "id" is "network<N>" counted over the instance, "link" the
 *             link's id, "network_id" the bridge's or libvirt network's
 *             name (Nova: the Neutron network's uuid).
 *   services  every NIC's DNS servers, {"type": "dns", "address"},
 *             without duplicates, in order.
 * No NICs: "{}" as Nova writes when it has no network info. Pure.
 */
#ifndef HYPERLET_NETINFO_H
#define HYPERLET_NETINFO_H

#include <stddef.h>

#include "err.h"
#include "nic.h"

/* The JSON text into *ret (owned, NUL-terminated) and its length.
 * Returns 0, -EINVAL (an address or gateway that is not one: the parser
 * refuses those first), -ENOMEM. */
int netinfo_format(
    const struct guest_data *g, char **ret, size_t *ret_len, struct err *e);

#endif /* HYPERLET_NETINFO_H */
