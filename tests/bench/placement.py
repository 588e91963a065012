#!/usr/bin/env python3
"""The Placement part of `make bench` (tests/bench/run.sh, BENCH_PARTS
"placement"): against the real placement-api (python3-placement, started
here as tests/placement_proof.py does).

1. Create latency with and without Placement in the same run: two
   hyperletd (test:///default), one with [placement] and one without,
   BENCH_RUNS rounds of N sequential creates each, interleaved; p50/p99 of
   each, and the round trip of one PUT /allocations (what the sync thread
   sends per create) measured the same way for scale.
2. A full reconciliation of NLIST instances (bench_populate, bench_nodexml:
   defined in libvirt at start): cold (Placement has none of them) and in
   step (a restart), as the daemon's own hyperlet_placement_reconcile_seconds.

Prints "name value unit" lines for run.sh's medians; progress on stderr.
Usage: placement.py BUILDDIR TMPDIR BODY.json IMAGE_ID N RUNS NLIST
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from placement_proof import Placement, call, free_port  # noqa: E402

B, TMP, BODY, IMG = sys.argv[1:5]
N, RUNS, NLIST = (int(x) for x in sys.argv[5:8])
HYPERLETD = os.environ.get("HYPERLETD", os.path.join(B, "daemon/hyperletd"))


def log(*a):
    print("bench: placement:", *a, file=sys.stderr, flush=True)


def fig(name, value, unit):
    print("%s %s %s" % (name, value, unit), flush=True)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


class Daemon:
    def __init__(self, name, placement_port=None, uri="test:///default",
                 state=None):
        self.dir = os.path.join(TMP, "pl-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.state = state or os.path.join(self.dir, "state")
        self.port = free_port()
        pl = ""
        if placement_port:
            with open(os.path.join(self.dir, "token"), "w") as f:
                f.write("admin\n")
            pl = ("[placement]\nurl = http://127.0.0.1:%d\ntoken_file = %s\n"
                  "provider_name = bench-%s\nsync_interval = 3600\n"
                  % (placement_port, os.path.join(self.dir, "token"), name))
        self.conf = os.path.join(self.dir, "hyperlet.conf")
        with open(self.conf, "w") as f:
            f.write("""[api]
listen = 127.0.0.1:%d
connection_limit = 1024
[libvirt]
uri = %s
virt_type = kvm
[storage]
state_dir = %s
volume_roots = %s/vols
[node]
cpu_allocation_ratio = 1000000
ram_allocation_ratio = 1000000
disk_allocation_ratio = 1000000
[log]
level = err
%s""" % (self.port, uri, self.state, TMP, pl))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [HYPERLETD, "--config", self.conf],
            stderr=open(os.path.join(self.dir, "log"), "ab"))
        end = time.time() + 1800
        while time.time() < end:
            try:
                if call(self.port, "GET", "/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("hyperletd did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)

    def image(self):
        st, _ = call(self.port, "PUT", "/v1/images/" + IMG,
                     raw=b"\0" * (1 << 20),
                     headers={"Content-Type": "application/octet-stream"})
        assert st in (200, 201, 409), st

    def metric(self, name):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        m = re.search(r"^%s ([0-9.e+-]+)$" % name, text, re.M)
        return float(m.group(1)) if m else None

    def node(self):
        return call(self.port, "GET", "/v1/node")[1]


def body(i):
    with open(BODY) as f:
        t = f.read()
    t = t.replace("@NAME@", "b%d" % i)
    t = t.replace("@VOL1@", str(uuid.uuid4())).replace("@VOL2@",
                                                        str(uuid.uuid4()))
    return t.encode()


def creates(d, n):
    """n sequential creates, then their deletes; the create latencies."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    lat, made = [], []
    for i in range(n):
        b = body(i)
        t0 = time.perf_counter()
        c.request("POST", "/v1/instances", body=b,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        j = json.loads(r.read())
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.status == 201, (r.status, j)
        made.append(j["uuid"])
    for u in made:
        c.request("DELETE", "/v1/instances/" + u)
        c.getresponse().read()
    c.close()
    return lat


def rtt(p, rp, n):
    """PUT /allocations of a new consumer then its DELETE, as the sync
    thread sends them: the PUT latencies."""
    lat = []
    for _ in range(n):
        u = str(uuid.uuid4())
        t0 = time.perf_counter()
        st, _ = p.req("PUT", "/allocations/" + u, {
            "allocations": {rp: {"resources": {"VCPU": 1,
                                               "MEMORY_MB": 256,
                                               "DISK_GB": 3}}},
            "consumer_generation": None, "project_id": "hyperlet",
            "user_id": "hyperlet", "consumer_type": "INSTANCE"})
        lat.append((time.perf_counter() - t0) * 1000)
        assert st == 204, st
        p.req("DELETE", "/allocations/" + u)
    return lat


def settled(d, limit):
    end = time.time() + limit
    while time.time() < end:
        n = d.node()
        # ok only once the start-up reconciliation succeeded
        if n["placement"]["status"] == "ok":
            return n
        time.sleep(0.05)
    raise RuntimeError("placement sync did not settle: %s" %
                       d.node()["placement"])


def main():
    if not shutil.which("placement-api"):
        log("SKIP: no placement-api (python3-placement)")
        return 0
    p = Placement(TMP)
    p.start()
    try:
        on = Daemon("on", p.port)
        off = Daemon("off")
        on.start()
        off.start()
        on.image()
        off.image()
        rp = settled(on, 60)["uuid"]
        lon, loff, lrtt = [], [], []
        for r in range(RUNS):
            log("latency run %d/%d: %d creates each" % (r + 1, RUNS, N))
            loff += creates(off, N)
            lon += creates(on, N)
            lrtt += rtt(p, rp, N)
        settled(on, 60)
        for name, v in (("off", loff), ("on", lon)):
            fig("create_placement_%s_p50" % name, "%.2f" % pct(v, .5), "ms")
            fig("create_placement_%s_p99" % name, "%.2f" % pct(v, .99), "ms")
        fig("placement_put_allocation_p50", "%.2f" % pct(lrtt, .5), "ms")
        fig("placement_put_allocation_p99", "%.2f" % pct(lrtt, .99), "ms")
        fig("create_placement_on_minus_off_p50", "%.2f" %
            (pct(lon, .5) - pct(loff, .5)), "ms")
        on.stop()
        off.stop()

        # a full reconciliation of NLIST instances
        log("reconcile: populating %d instances" % NLIST)
        pop = Daemon("pop")
        pop.start()
        pop.image()
        pop.stop()
        db = os.path.join(pop.state, "hyperlet.db")
        subprocess.run([os.path.join(B, "tests/bench/bench_populate"), db,
                        BODY, str(NLIST)], check=True,
                       stdout=subprocess.DEVNULL)
        nodexml = os.path.join(TMP, "pl-node.xml")
        subprocess.run([os.path.join(B, "tests/bench/bench_nodexml"), db,
                        os.path.join(pop.state, "instances"),
                        os.path.join(pop.state, "images"), "kvm", nodexml],
                       check=True, stdout=subprocess.DEVNULL)
        rec = Daemon("rec", p.port, uri="test://" + nodexml,
                     state=pop.state)
        t0 = time.time()
        rec.start()
        n = settled(rec, 1800)
        fig("placement_reconcile_%d_cold" % NLIST, "%.0f" %
            (rec.metric("hyperlet_placement_reconcile_seconds") * 1000), "ms")
        log("cold reconcile settled %.1f s after start" % (time.time() - t0))
        st, us = p.get("/resource_providers/%s/usages" % n["uuid"])
        assert us["usages"] == n["usage"], (us, n["usage"])
        rec.stop()
        rec.start()
        settled(rec, 1800)
        fig("placement_reconcile_%d_in_step" % NLIST, "%.0f" %
            (rec.metric("hyperlet_placement_reconcile_seconds") * 1000), "ms")
        rec.stop()
        os.unlink(nodexml)
    finally:
        p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
