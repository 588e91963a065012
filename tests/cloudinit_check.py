#!/usr/bin/env python3
"""cloudinit_check.py DRIVE_DIR INSTANCE_JSON USER_DATA_B64_FILE

Reads an extracted config drive with cloud-init's own reader (Debian's
cloud-init, unpacked, never installed: PYTHONPATH points at it) exactly as
its ConfigDrive datasource does -- ConfigDriveReader(DIR).read_v2() and
convert_net_json() -- prints what it read, and checks it against the
instance as the API shows it (GET /v1/instances/{uuid}) and the user data
the request sent (the API never echoes it). Exits 1 on a mismatch.
"""
import base64
import ipaddress
import json
import sys

from cloudinit import sources
from cloudinit.sources.helpers import openstack

fails = 0


def check(cond, what):
    global fails
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails += 1
    return cond


def main():
    drive, inst_path, ud_path = sys.argv[1:4]
    inst = json.load(open(inst_path, encoding="utf-8"))
    ud_b64 = open(ud_path, encoding="ascii").read().strip()

    reader = openstack.ConfigDriveReader(drive)
    version = reader._find_working_version()
    res = reader.read_v2()
    md = res["metadata"]
    ifaces = inst.get("interfaces") or []
    known = {i["mac"]: "eth%d" % n for n, i in enumerate(ifaces)}
    net = openstack.convert_net_json(res.get("networkdata"), known_macs=known)

    shown = {k: v for k, v in md.items() if k != "random_seed"}
    print("cloud-init read version %s" % version)
    print("metadata: " + json.dumps(shown, indent=1, sort_keys=True))
    print("random_seed: %d bytes" % len(md.get("random_seed", b"")))
    print("userdata: %r" % (res.get("userdata"),))
    print("vendordata: %r vendordata2: %r" % (res.get("vendordata"), res.get("vendordata2")))
    print("network_config: " + json.dumps(net, indent=1, sort_keys=True))

    check(version == "2018-08-27", "cloud-init 22.4 picks 2018-08-27 (got %s)" % version)
    check(md.get("instance-id") == inst["uuid"], "instance-id is the instance's uuid")
    check(md.get("uuid") == inst["uuid"], "uuid is the instance's uuid")
    check(md.get("name") == inst["name"], "name is the instance's name")
    want_host = inst.get("hostname", inst["name"])
    check(md.get("local-hostname") == want_host, "local-hostname is %r" % want_host)
    keys = inst.get("keys") or []
    want_pk = {k["name"]: k["data"] for k in keys}
    check((md.get("public_keys") or {}) == want_pk, "public_keys are every key the API holds")
    # what the datasource's get_public_ssh_keys() gives for a v2 drive
    got_ssh = sources.normalize_pubkey_data(md.get("public_keys"))
    check(sorted(got_ssh) == sorted(k["data"] for k in keys if k["type"] == "ssh"),
          "cloud-init's SSH keys are every ssh key: %d" % len(got_ssh))
    check(md.get("keys", []) == keys, "keys are the API's keys")
    check(len(md.get("random_seed", b"")) == 512, "random_seed decodes to 512 bytes")
    want_ud = base64.b64decode(ud_b64) if ud_b64 else ""
    check(res.get("userdata") == want_ud, "user data bytes are the request's")
    check(res.get("vendordata") == {}, "vendor_data.json is {}")
    check(res.get("vendordata2") == {"static": {}}, "vendor_data2.json is {'static': {}}")

    # network: every interface the API holds, by MAC, with its addresses,
    # gateway routes and DNS servers
    if not ifaces:
        check(net is None or net.get("config") in (None, []), "no interfaces, no network config")
    phys = [c for c in (net or {}).get("config", []) if c.get("type") == "physical"]
    nameservers = []
    for c in (net or {}).get("config", []):
        if c.get("type") == "nameserver":
            a = c.get("address", [])
            nameservers += [a] if isinstance(a, str) else a
    check(len(phys) == len(ifaces), "one physical interface per API interface (%d)" % len(ifaces))
    for n, i in enumerate(ifaces):
        p = next((c for c in phys if c.get("mac_address") == i["mac"]), None)
        if not check(p is not None, "interface %s (%s) is configured" % (i["mac"], i.get("tag"))):
            continue
        check(p.get("name") == "eth%d" % n, "... named eth%d by its MAC" % n)
        if i.get("mtu"):
            check(p.get("mtu") == i["mtu"], "... mtu %s" % i["mtu"])
        subs = p.get("subnets", [])
        if not i.get("ips"):
            check([s.get("type") for s in subs] == ["dhcp4"], "... DHCP (no ips)")
            continue
        for ip in i["ips"]:
            itf = ipaddress.ip_interface(ip["address"])
            s = next((s for s in subs if s.get("address") == str(itf.ip)), None)
            if not check(s is not None, "... static %s" % ip["address"]):
                continue
            v6 = itf.version == 6
            check(s.get("type") == ("static6" if v6 else "static"), "... type %s" % s.get("type"))
            mask = s.get("netmask")
            prefix = bin(int(ipaddress.ip_address(mask))).count("1") if mask else None
            check(prefix == itf.network.prefixlen, "... prefix /%d" % itf.network.prefixlen)
            gws = [r.get("gateway") for r in s.get("routes", [])]
            if ip.get("gateway"):
                check(ip["gateway"] in gws, "... default route via %s" % ip["gateway"])
            else:
                check(gws == [], "... no route")
        # cloud-init 22.4 takes DNS from the top-level services only
        for d in i.get("dns") or []:
            check(d in nameservers, "DNS %s among the nameservers" % d)
    print("%d failed" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
