#!/usr/bin/env python3
"""check_events: GET /v1/events against the real daemon on test:///default
over real sockets (design.md "Events"): the stream from now on carries
created/updated/deleted in order with ids increasing by one; it resumes
with Last-Event-ID (which wins over ?after=) and ?after= with nothing
missed or repeated; ?instance= filters; JSON pages with limit and last_id;
heartbeat comments; 410 once a small retention has pruned what is asked
for; every malformed parameter is a 400 naming it that changes nothing;
SIGTERM ends every stream cleanly. Prints "N passed, M failed"."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sse import SSE  # noqa: E402

HYPERLETD = os.environ.get("HYPERLETD") or os.path.join(
    os.environ.get("TOP_BUILDDIR", "."), "daemon", "hyperletd")
IMG = "6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f"
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("PASS:", what, flush=True)
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Daemon:
    def __init__(self, d, retention, heartbeat):
        self.port = free_port()
        self.conf = os.path.join(d, "hyperlet.conf")
        os.makedirs(os.path.join(d, "state"))
        with open(self.conf, "w") as f:
            f.write("[api]\nlisten = 127.0.0.1:%d\ndrain_timeout = 5\n"
                    "[libvirt]\nuri = test:///default\nvirt_type = qemu\n"
                    "[storage]\nstate_dir = %s/state\n"
                    "[node]\ncpu_allocation_ratio = 1000000\n"
                    "ram_allocation_ratio = 1000000\n"
                    "disk_allocation_ratio = 1000000\n"
                    "[events]\nretention = %d\nheartbeat = %d\n"
                    % (self.port, d, retention, heartbeat))
        self.log = open(os.path.join(d, "hyperletd.log"), "ab")
        self.proc = subprocess.Popen([HYPERLETD, "--config", self.conf],
                                     stdout=self.log, stderr=self.log)
        end = time.time() + 60
        while time.time() < end:
            try:
                if self.req("GET", "/v1/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("hyperletd did not start")

    def req(self, method, path, body=None, headers=None, ctype=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            h = dict(headers or {})
            if body is not None:
                h["Content-Type"] = ctype or "application/json"
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def page(self, q="after=0", headers=None):
        h = {"Accept": "application/json"}
        h.update(headers or {})
        return self.req("GET", "/v1/events?" + q, headers=h)


def create(d, start=False):
    u = str(uuid.uuid4())
    b = json.dumps({"uuid": u, "name": "e", "start": start,
                    "flavor": {"vcpus": 1, "memory_mb": 64, "root_gb": 1},
                    "imageRef": IMG})
    st, _, data = d.req("POST", "/v1/instances", body=b)
    if st != 201 and st != 202:
        raise RuntimeError("create: %d %s" % (st, data[:300]))
    return u


def wait_built(d, u):
    end = time.time() + 30
    while time.time() < end:
        st, _, data = d.req("GET", "/v1/instances/" + u)
        if st == 200 and json.loads(data)["state"] != "building":
            return
        time.sleep(0.05)


def main():
    tmp = tempfile.mkdtemp(prefix="check_events.")
    d = Daemon(tmp, retention=40, heartbeat=1)
    try:
        run(d)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        d.proc.wait()
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        subprocess.run(["tail", "-20", os.path.join(tmp, "hyperletd.log")])
    else:
        subprocess.run(["rm", "-rf", tmp])
    return 1 if failed else 0


def run(d):
    st, _, _ = d.req("PUT", "/v1/images/" + IMG, body=b"\0" * 65536,
                     ctype="application/octet-stream")
    check(st == 201, "image uploaded")

    st, _, data = d.page()
    check(st == 200 and json.loads(data) == {"events": [], "last_id": 0},
          "an empty database: an empty page, last_id 0")

    live = SSE(d.port)
    check(live.read_until(lambda s: s.status is not None, 5) and
          live.status == 200 and
          live.headers.get("content-type") == "text/event-stream",
          "the stream answers 200 text/event-stream")
    a = create(d)
    b = create(d)
    wait_built(d, a)
    wait_built(d, b)
    st, _, _ = d.req("POST", "/v1/instances/%s/action" % a,
                     body=json.dumps({"action": "start"}))
    check(st in (200, 202), "instance a started")
    st, _, _ = d.req("DELETE", "/v1/instances/" + b)
    check(st in (202, 204), "instance b deleted")
    end = time.time() + 10
    while time.time() < end:
        st, _, data = d.req("GET", "/v1/instances/" + b)
        if st == 404:
            break
        time.sleep(0.05)

    st, _, data = d.page()
    page = json.loads(data)
    evs = page["events"]
    ids = [e["id"] for e in evs]
    check(st == 200 and ids == list(range(1, len(ids) + 1)) and
          page["last_id"] == ids[-1],
          "the page from after=0: ids 1..%d, last_id the last" % len(ids))
    ta = [(e["type"], e["state"]) for e in evs if e["instance"] == a]
    tb = [e["type"] for e in evs if e["instance"] == b]
    check(ta[0] == ("instance.created", "building") and
          ta[-1] == ("instance.updated", "running") and
          all(t == "instance.updated" for t, _ in ta[1:]),
          "a: created (building), then updates ending running: %s" % ta)
    check(tb[0] == "instance.created" and tb[-1] == "instance.deleted" and
          tb.count("instance.deleted") == 1,
          "b: created first, deleted last, once: %s" % tb)
    check(all(e["cause"] == "api" for e in evs), "every cause is api")
    gens = [e["generation"] for e in evs
            if e["instance"] == a]
    check(gens == sorted(gens) and len(set(gens)) == len(gens),
          "a's generations increase: %s" % gens)
    e0 = evs[0]
    check(set(e0) == {"id", "type", "instance", "state", "generation",
                      "cause", "at"} and e0["at"].endswith("Z"),
          "an event has design.md's fields: %s" % e0)

    n = len(evs)
    check(live.read_until(lambda s: len(s.events) >= n, 5) and
          [x[0] for x in live.events] == ids and
          [x[2] for x in live.events] == evs and
          all(x[1] == x[2]["type"] for x in live.events),
          "the live stream got the same %d events in order" % n)

    # resume: Last-Event-ID and ?after=, the header winning
    k = n // 2
    for what, path, hdr in (
            ("Last-Event-ID", "/v1/events", {"Last-Event-ID": str(k)}),
            ("?after=", "/v1/events?after=%d" % k, {}),
            ("Last-Event-ID over ?after=", "/v1/events?after=1",
             {"Last-Event-ID": str(k)})):
        r = SSE(d.port, path, hdr)
        r.read_until(lambda s: len(s.events) >= n - k, 5)
        time.sleep(0.2)
        r.read_until(lambda s: False, 0.3)
        check([x[0] for x in r.events] == ids[k:],
              "resume with %s %d: ids %d..%d, nothing missed or repeated"
              % (what, k, k + 1, n))
        r.close()
    r = SSE(d.port, "/v1/events?after=0")
    r.read_until(lambda s: len(s.events) >= n, 5)
    check([x[0] for x in r.events] == ids, "?after=0: from the oldest kept")
    r.close()

    f = SSE(d.port, "/v1/events?after=0&instance=" + b.upper())
    f.read_until(lambda s: len(s.events) >= len(tb), 5)
    check([x[1] for x in f.events] == tb and
          all(x[2]["instance"] == b for x in f.events),
          "?instance= (upper case too) filters the stream, also for a "
          "deleted instance")
    f.close()
    st, _, data = d.page("after=0&instance=" + a)
    check([e["instance"] for e in json.loads(data)["events"]] ==
          [a] * len(ta), "?instance= filters a page")

    st, _, data = d.page("after=1&limit=2")
    p = json.loads(data)
    check([e["id"] for e in p["events"]] == [2, 3] and p["last_id"] == 3,
          "limit=2 after 1: ids 2, 3, last_id 3")
    st, _, data = d.page("after=%d" % n)
    check(json.loads(data) == {"events": [], "last_id": n},
          "an empty page's last_id is the newest id")
    st, _, data = d.page("", {"Last-Event-ID": str(n - 1)})
    check([e["id"] for e in json.loads(data)["events"]] == [n],
          "a page honours Last-Event-ID too")

    # heartbeat (1 s in this config)
    hb = SSE(d.port)
    check(hb.read_until(lambda s: s.comments >= 1, 3) and not hb.events,
          "an idle stream gets a heartbeat comment")
    hb.close()

    # bad input: 400 naming the parameter, nothing changed
    for q, hdr, field in (
            ("after=abc", {}, "after"), ("after=-1", {}, "after"),
            ("after=1e3", {}, "after"), ("limit=0", {}, "limit"),
            ("limit=1001", {}, "limit"), ("limit=x", {}, "limit"),
            ("instance=nope", {}, "instance"),
            ("instance=" + str(uuid.uuid4()), {}, "instance"),
            ("", {"Last-Event-ID": "garbage"}, "Last-Event-ID"),
            ("", {"Last-Event-ID": "-5"}, "Last-Event-ID"),
            ("bogus=1", {}, None)):
        for accept in ("application/json", "text/event-stream"):
            h = dict(hdr, Accept=accept)
            st, hh, data = d.req("GET", "/v1/events?" + q, headers=h)
            pb = json.loads(data) if data else {}
            check(st == 400 and hh.get("Content-Type") ==
                  "application/problem+json" and
                  (field is None or pb.get("field") == field),
                  "400 naming %s for %s %s (%s)" % (field, q, hdr, accept))
    st, _, data = d.page()
    check(json.loads(data)["last_id"] == n, "the 400s changed nothing")

    # 410 once retention (40) has pruned: creates until more than 40
    made = 0
    while made < 30:
        create(d)
        made += 1
    end = time.time() + 15
    st = 0
    while time.time() < end:
        st, hh, data = d.page("after=1")
        if st == 410:
            break
        time.sleep(0.2)
    check(st == 410 and json.loads(data).get("field") == "after" and
          hh.get("Content-Type") == "application/problem+json",
          "410 naming after for an id pruned by retention = 40")
    st2, _, _ = d.req("GET", "/v1/events", headers={"Last-Event-ID": "1"})
    check(st2 == 410, "410 for the stream's Last-Event-ID too")
    st, _, data = d.page("after=0")
    p = json.loads(data)
    check(st == 200 and p["events"] and p["events"][0]["id"] > 1 and
          len(p["events"]) <= 44,
          "after=0 lists from the oldest kept (%d events, first %d)" %
          (len(p["events"]), p["events"][0]["id"] if p["events"] else 0))
    first = p["events"][0]["id"] if p["events"] else 0
    r = SSE(d.port, "/v1/events?after=0")
    r.read_until(lambda s: len(s.events) >= 3, 5)
    # the background prune may take more between the page and the stream
    # (a reader connecting wakes the idle hub, which prunes): the stream
    # starts at the oldest kept when it connected, between the two pages'
    _, _, data2 = d.page("after=0")
    p2 = json.loads(data2)
    first2 = p2["events"][0]["id"] if p2["events"] else 0
    s0 = r.events[0][0] if r.events else 0
    check(r.events and first <= s0 <= first2 and
          [x[0] for x in r.events] == list(range(s0, s0 + len(r.events))),
          "the stream from after=0 after pruning starts at the oldest kept "
          "(%d, the pages said %d then %d)" % (s0, first, first2))
    r.close()
    check(live.read_until(lambda s: len(s.events) >= p["last_id"], 10) and
          [x[0] for x in live.events] == list(range(1, p["last_id"] + 1)),
          "the live reader still has every id, 1..%d" % p["last_id"])

    # SIGTERM ends every stream, cleanly (the last chunk)
    s2 = SSE(d.port)
    s2.read_until(lambda s: s.status is not None, 5)
    d.proc.send_signal(signal.SIGTERM)
    check(live.read_until(lambda s: s.ended or s.closed, 10) and
          s2.read_until(lambda s: s.ended or s.closed, 10),
          "SIGTERM ends every stream")
    check(live.ended and s2.ended, "... with the chunked body's end")
    try:
        d.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    check(d.proc.returncode == 0,
          "the daemon stopped at once despite open streams (%s)" %
          d.proc.returncode)


if __name__ == "__main__":
    sys.exit(main())
