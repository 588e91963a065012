#!/usr/bin/env python3
"""hyperletd against the real OpenStack Placement (issue 13's proof; run by
tests/check_placement.sh).

Starts Debian's placement-api (python3-placement) on a free loopback port
with its own configuration (noauth2, SQLite) and one or two hyperletd on
test:///default, then checks: the provider and its inventories equal
/v1/node's; creates and deletes show in /allocations/{instance} and the
provider's usages as resources_from_flavor counts them (a boot-from-volume
instance without its root disk); allocation_candidates lists the node
while it has room and not when it is full; creates and deletes made while
Placement is stopped are written within a sync interval of its return; a
kill -9 of hyperletd before its Placement call is healed by the next
start-up; two daemons are two providers, and a scheduler that picks
through allocation_candidates (and claims there first, as Nova's does)
never gets a 409 from a node 20 times in a row.
Prints "N passed, M failed" and exits 1 on any failure.
"""
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HYPERLETD = os.environ["HYPERLETD"]
IMG = "5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
SYNC = 2  # sync_interval of the daemons, seconds
PV = "placement 1.39"

passed = 0
failed = 0


def check(ok, what, detail=None):
    global passed, failed
    if ok:
        passed += 1
        print("PASS:", what, flush=True)
    else:
        failed += 1
        print("FAIL:", what, "" if detail is None else detail, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(port, method, path, body=None, headers=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
    finally:
        c.close()
    try:
        j = json.loads(text) if text else None
    except ValueError:
        j = None
    return r.status, j


class Placement:
    def __init__(self, d):
        self.dir = os.path.join(d, "placement")
        os.makedirs(os.path.join(self.dir, "etc"))
        self.port = free_port()
        self.conf = os.path.join(self.dir, "etc", "placement.conf")
        with open(self.conf, "w") as f:
            f.write("[DEFAULT]\ndebug = false\nuse_stderr = true\n"
                    "[api]\nauth_strategy = noauth2\n"
                    "[placement_database]\nconnection = sqlite:///%s\n"
                    % os.path.join(self.dir, "placement.db"))
        self.env = dict(os.environ, OS_PLACEMENT_CONFIG_DIR=os.path.join(
            self.dir, "etc"))
        subprocess.run(["placement-manage", "--config-file", self.conf,
                        "db", "sync"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "api.log"), "ab")
        self.proc = subprocess.Popen(
            ["placement-api", "--port", str(self.port), "--host",
             "127.0.0.1"], env=self.env, stdout=log, stderr=log)
        for _ in range(300):
            try:
                if self.get("/")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("placement-api did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def req(self, method, path, body=None):
        return call(self.port, method, path, body,
                    {"X-Auth-Token": "admin", "OpenStack-API-Version": PV})

    def get(self, path):
        return self.req("GET", path)


class Keystone(http.server.BaseHTTPRequestHandler):
    """POST /identity/v3/auth/tokens, password method, as Keystone answers
    it (201, X-Subject-Token, token.expires_at): the token is "admin", which
    Placement's noauth2 takes. Its expiry is 30 s away, inside hyperlet's
    60 s margin, so hyperlet must fetch a new one before every call."""
    fetches = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        pw = body["auth"]["identity"]["password"]["user"]
        scope = body["auth"]["scope"]["project"]
        ok = (self.path == "/identity/v3/auth/tokens" and
              body["auth"]["identity"]["methods"] == ["password"] and
              pw == {"name": "hl", "password": "s3cret",
                     "domain": {"name": "Default"}} and
              scope == {"name": "service", "domain": {"name": "Default"}})
        Keystone.fetches.append(ok)
        exp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z",
                            time.gmtime(time.time() + 30))
        out = json.dumps({"token": {"expires_at": exp}}).encode()
        self.send_response(201 if ok else 401)
        if ok:
            self.send_header("X-Subject-Token", "admin")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


class Hyperletd:
    def __init__(self, d, name, placement_port, reserved_cpus=6, auth=None):
        self.dir = os.path.join(d, name)
        os.makedirs(os.path.join(self.dir, "vols"))
        self.port = free_port()
        self.log = os.path.join(self.dir, "log")
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write("admin\n")
        self.conf = os.path.join(self.dir, "hyperlet.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[api]
listen = 127.0.0.1:{self.port}
[libvirt]
virt_type = qemu
[storage]
state_dir = {self.dir}/state
volume_roots = {self.dir}/vols
synchronous = normal
[node]
cpu_allocation_ratio = 1
reserved_host_cpus = {reserved_cpus}
[placement]
url = http://127.0.0.1:{placement_port}
{auth or "token_file = " + self.dir + "/token"}
provider_name = hv-{name}
sync_interval = {SYNC}
timeout = 5
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [HYPERLETD, "--config", self.conf],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                if self.api("GET", "/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("hyperletd did not start: " + open(self.log).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.send_signal(sig)
            self.proc.wait(30)
            self.proc = None

    def api(self, method, path, body=None, **kw):
        return call(self.port, method, path, body, **kw)

    def node(self):
        return self.api("GET", "/v1/node")[1]

    def settled(self, limit=10.0):
        """Waits for /v1/node's placement.status ok; the node."""
        end = time.time() + limit
        while True:
            n = self.node()
            if n["placement"]["status"] == "ok" or time.time() > end:
                return n
            time.sleep(0.05)

    def create(self, vcpus=1, mem=128, root=1, eph=0, swap=0, uid=None,
               volume=None):
        body = {"name": "p", "flavor": {"vcpus": vcpus, "memory_mb": mem,
                                        "root_gb": root, "ephemeral_gb": eph,
                                        "swap": swap}, "start": False}
        if uid:
            body["uuid"] = uid
        if volume:
            path = os.path.join(self.dir, "vols", volume)
            with open(path, "wb") as f:
                f.truncate(1 << 20)
            body["block_device_mapping_v2"] = [{
                "boot_index": 0, "source_type": "volume",
                "destination_type": "volume", "uuid": str(uuid.uuid4()),
                "connection_info": {"driver_volume_type": "file",
                                    "data": {"device_path": path}}}]
        else:
            body["imageRef"] = IMG
        st, j = self.api("POST", "/v1/instances", body)
        return st, (j or {}).get("uuid")

    def delete(self, uid):
        return self.api("DELETE", "/v1/instances/" + uid)[0]

    def uuids(self):
        st, j = self.api("GET", "/v1/instances?limit=1000")
        return sorted(i["uuid"] for i in j["instances"])


def rfflavor(vcpus, mem, root, eph, swap, volume=False):
    """nova.scheduler.utils.resources_from_flavor."""
    r = {"VCPU": vcpus, "MEMORY_MB": mem,
         "DISK_GB": (0 if volume else root) + eph + (swap + 1023) // 1024}
    return {k: v for k, v in r.items() if v}


def consumer(p, uid):
    """GET /allocations/{uid}: {provider: resources}, and the rest."""
    st, j = p.get("/allocations/" + uid)
    return {k: v["resources"] for k, v in j["allocations"].items()}, j


def allocs(p, rp):
    st, j = p.get("/resource_providers/%s/allocations" % rp)
    return {c: a["resources"] for c, a in j["allocations"].items()}


def node_allocs_match(p, h):
    """The provider's allocations are exactly the instances'."""
    rp = h.node()["uuid"]
    return sorted(allocs(p, rp)) == h.uuids()


def wait_for(pred, limit):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def candidates(p, q="VCPU:1,MEMORY_MB:128"):
    st, j = p.get("/allocation_candidates?resources=" + q)
    return j


def main():
    if not shutil.which("placement-api"):
        print("SKIP: placement-api (python3-placement) is not installed")
        return 77
    t0 = time.time()
    d = tempfile.mkdtemp(prefix="hl-placement.")
    p = Placement(d)
    a = b = None
    try:
        p.start()
        print("placement-api up in %.1f s" % (time.time() - t0), flush=True)
        a = Hyperletd(d, "a", p.port)
        a.start()
        n = a.settled()
        rp = n["uuid"]
        check(n["placement"]["status"] == "ok" and
              n["placement"]["provider"] == rp and
              n["placement"]["url"] == "http://127.0.0.1:%d" % p.port,
              "/v1/node shows Placement in step", n["placement"])
        st, prov = p.get("/resource_providers/" + rp)
        check(st == 200 and prov["name"] == "hv-a",
              "after start-up the provider exists (uuid = node uuid)")
        st, inv = p.get("/resource_providers/%s/inventories" % rp)
        want = {k: dict(v, min_unit=1, step_size=1, max_unit=v["total"])
                for k, v in n["inventory"].items()}
        check(inv["inventories"] == want,
              "its inventories are /v1/node's", (inv, want))

        with open(os.path.join(d, "img"), "wb") as f:
            f.write(b"\0" * (1 << 20))
        st, _ = a.api("PUT", "/v1/images/" + IMG,
                      raw=b"\0" * (1 << 20),
                      headers={"Content-Type": "application/octet-stream"})
        check(st == 201, "an image is uploaded")

        # creates and deletes, as resources_from_flavor counts them
        st1, x = a.create(vcpus=2, mem=256, root=1, eph=2, swap=1536)
        st2, y = a.create(vcpus=1, mem=128, root=5, volume="y.img")
        check(st1 == 201 and st2 == 201, "two instances are created")
        a.settled()
        ax, j = consumer(p, x)
        check(ax == {rp: rfflavor(2, 256, 1, 2, 1536)} and
              j["project_id"] == "hyperlet" and
              j["consumer_type"] == "INSTANCE",
            "/allocations/{instance}: VCPU, MEMORY_MB and DISK_GB = root + "
            "ephemeral + swap in GiB rounded up", ax)
        ay, _ = consumer(p, y)
        check(ay == {rp: rfflavor(1, 128, 5, 0, 0, volume=True)},
            "a boot-from-volume instance has no DISK_GB for its root", ay)
        st, us = p.get("/resource_providers/%s/usages" % rp)
        check(us["usages"] == a.node()["usage"],
              "the provider's usages are /v1/node's usage", us)
        check(a.delete(x) == 204, "an instance is deleted")
        a.settled()
        st, ax = p.get("/allocations/" + x)
        st, us = p.get("/resource_providers/%s/usages" % rp)
        check(ax["allocations"] == {} and
              us["usages"] == {"VCPU": 1, "MEMORY_MB": 128, "DISK_GB": 0},
              "... and its allocation is gone from Placement", (ax, us))

        # allocation_candidates while the node has room, and full
        c = candidates(p)
        check(rp in c["provider_summaries"],
              "allocation_candidates lists the node while it has room")
        room = n["inventory"]["VCPU"]["total"] - \
            n["inventory"]["VCPU"]["reserved"] - 1
        fill = [a.create()[1] for _ in range(room)]
        check(all(fill), "the node is filled (%d VCPUs)" % room)
        st, _ = a.create()
        check(st == 409, "the node refuses one more create (409)")
        a.settled()
        c = candidates(p)
        check(rp not in c["provider_summaries"],
              "allocation_candidates stops listing the full node", c)
        for u in fill:
            a.delete(u)
        a.settled()
        check(rp in candidates(p)["provider_summaries"],
              "... and lists it again once instances are deleted")

        # Placement stopped: creates and deletes still answered
        p.stop()
        st1, u1 = a.create(vcpus=2)
        st2, u2 = a.create(vcpus=1, mem=512)
        st3 = a.delete(y)
        check((st1, st2, st3) == (201, 201, 204),
              "Placement stopped: creates and deletes are answered")
        time.sleep(0.3)
        pl = a.node()["placement"]
        check(pl["status"] == "behind" and pl["pending"] >= 1 and
              pl["last_error"], "/v1/node shows the lag", pl)
        st, m = a.api("GET", "/metrics")
        check(st == 200, "/metrics answers")
        mt = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" %
                             a.port], capture_output=True, text=True).stdout
        check("hyperlet_placement_behind 1" in mt and
              "hyperlet_placement_pending" in mt, "/metrics shows the lag")
        p.start()
        t1 = time.time()
        ok = wait_for(lambda: node_allocs_match(p, a) and
                      a.node()["placement"]["status"] == "ok", 2 * SYNC + 3)
        check(ok, "Placement back: allocations match the instances within "
              "a sync interval (%.1f s)" % (time.time() - t1))
        check(allocs(p, rp).get(u2) == {"VCPU": 1, "MEMORY_MB": 512,
                                         "DISK_GB": 1}, "... with amounts")

        # kill -9 after the database commit, before the Placement call
        p.stop()
        st1, u3 = a.create(vcpus=3)
        st2 = a.delete(u1)
        check((st1, st2) == (201, 204), "created and deleted, Placement away")
        a.stop(signal.SIGKILL)
        p.start()
        check(u3 not in allocs(p, rp) and u1 in allocs(p, rp),
              "hyperletd killed before its Placement calls: they are missing")
        a.start()
        ok = wait_for(lambda: node_allocs_match(p, a), 5)
        check(ok and allocs(p, rp).get(u3, {}).get("VCPU") == 3,
              "the next start-up's reconciliation heals them")
        # a stale allocation of an instance hyperlet never had is removed
        ghost = str(uuid.uuid4())
        st, _ = p.req("PUT", "/allocations/" + ghost, {
            "allocations": {rp: {"resources": {"VCPU": 1}}},
            "consumer_generation": None, "project_id": "x", "user_id": "x",
            "consumer_type": "INSTANCE"})
        ok = wait_for(lambda: ghost not in allocs(p, rp), 2 * SYNC + 3)
        check(st == 204 and ok, "a stale allocation is removed by the sync")
        for u in a.uuids():
            a.delete(u)
        a.settled()

        # two nodes, one scheduler
        b = Hyperletd(d, "b", p.port)
        b.start()
        st, _ = b.api("PUT", "/v1/images/" + IMG, raw=b"\0" * (1 << 20),
                      headers={"Content-Type": "application/octet-stream"})
        nb = b.settled()
        st, rps = p.get("/resource_providers")
        names = sorted(r["name"] for r in rps["resource_providers"])
        check(names == ["hv-a", "hv-b"] and nb["uuid"] != rp,
              "two hyperletd with separate state directories are two "
              "providers", names)
        nodes = {rp: a, nb["uuid"]: b}
        conflicts = 0
        placed = {rp: 0, nb["uuid"]: 0}
        rnd = random.Random(13)
        for i in range(20):
            c = candidates(p, "VCPU:1,MEMORY_MB:128,DISK_GB:1")
            reqs = c["allocation_requests"]
            if not reqs:
                break
            ar = rnd.choice(reqs)
            (target,) = ar["allocations"].keys()
            uid = str(uuid.uuid4())
            # claim first, as Nova's scheduler does
            st, _ = p.req("PUT", "/allocations/" + uid, dict(
                ar, consumer_generation=None, project_id="sched",
                user_id="sched", consumer_type="INSTANCE"))
            if st != 204:
                continue
            st, _ = nodes[target].create(uid=uid)
            if st == 409:
                conflicts += 1
            placed[target] += 1 if st == 201 else 0
        check(conflicts == 0 and sum(placed.values()) == 20,
              "a scheduler picking through allocation_candidates creates 20 "
              "times without a 409 (%s)" % placed)
        a.settled()
        b.settled()
        check(candidates(p)["allocation_requests"] == [],
              "both nodes full: allocation_candidates lists none")
        check(node_allocs_match(p, a) and node_allocs_match(p, b),
              "each provider's allocations are its node's instances")

        # Keystone v3 password auth instead of a token file
        ks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keystone)
        threading.Thread(target=ks.serve_forever, daemon=True).start()
        with open(os.path.join(d, "ks-password"), "w") as f:
            f.write("s3cret\n")
        k = Hyperletd(d, "k", p.port, auth=(
            "auth_url = http://127.0.0.1:%d/identity\nusername = hl\n"
            "password_file = %s\nproject_name = service" %
            (ks.server_address[1], os.path.join(d, "ks-password"))))
        k.start()
        nk = k.settled()
        st, _ = p.get("/resource_providers/" + nk["uuid"])
        check(st == 200 and nk["placement"]["status"] == "ok" and
              Keystone.fetches and all(Keystone.fetches),
              "Keystone password auth: the provider is made with its token")
        n0 = len(Keystone.fetches)
        k.api("PUT", "/v1/images/" + IMG, raw=b"\0" * (1 << 20),
              headers={"Content-Type": "application/octet-stream"})
        st, uk = k.create()
        k.settled()
        check(st == 201 and uk in allocs(p, nk["uuid"]) and
              len(Keystone.fetches) > n0,
              "... and a token about to expire is fetched again")
        k.stop()
        ks.shutdown()
    finally:
        for h in (a, b):
            if h:
                try:
                    h.stop(signal.SIGKILL)
                except Exception:
                    pass
        p.stop()
        if failed == 0:
            shutil.rmtree(d, ignore_errors=True)
        else:
            print("kept", d)
    print("%d passed, %d failed (%.1f s)" % (passed, failed,
                                              time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
