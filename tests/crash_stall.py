#!/usr/bin/env python3
"""libvirtd stalls under load (run by tests/check_crash.sh after
crash_load.py, on the same private libvirtd).

Creates and deletes run from a few threads while libvirtd is SIGSTOPped for
longer than hyperlet's keepalive gives it (5 s x (3 + 1) = 20 s: it takes
the connection for dead and reconnects while other threads are still in
calls on the old one), then SIGCONTed. Checks:
- hyperletd does not crash (issue 16.9: a SIGSEGV in libvirt's client when
  one thread reconnected while another was still inside a call);
- during the stall GET /v1/health and GET /v1/instances answer within
  STALL_READ_S each (issue 17.6: health called libvirt on an HTTP thread),
  and health says 503 once the keepalive has found the connection dead;
- after SIGCONT health is 200 again and a create answers 201.
Prints "N passed, M failed" and exits 1 on any failure.
"""
import json
import os
import signal
import sys
import threading
import time
import uuid

import crash_load as cl
from crash_load import Daemon, body, check

STALL_S = int(os.environ.get("STALL_SECONDS", "30"))
STALL_READ_S = 1.0


def timed(d, path):
    t0 = time.time()
    try:
        st, _, _ = d.req("GET", path, timeout=30)
    except OSError:
        st = 0
    return st, time.time() - t0


def main():
    if not (cl.URI and cl.LVDIR):
        print("SKIP: no private libvirtd")
        return 77
    with open(os.path.join(cl.LVDIR, "daemon.pid")) as f:
        lvpid = int(f.read().strip())
    d = Daemon(os.path.join(cl.LVDIR, "stall"), cl.URI, "qemu")
    d.start()
    stop = threading.Event()
    answers = []

    def worker(n):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                st, _, data = d.req("POST", "/v1/instances",
                                    body("stall-%d-%d" % (n, i)), timeout=90)
                if st == 201:
                    u = json.loads(data)["uuid"]
                    st, _, data = d.req("DELETE", "/v1/instances/" + u,
                                        timeout=90)
            except OSError as ex:
                st, data = 0, str(ex).encode()
            answers.append((st, data[:200]))
            if st != 201 and st != 204:
                time.sleep(0.2)

    try:
        d.upload_image()
        threads = [threading.Thread(target=worker, args=(n,), daemon=True)
                   for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(3)
        os.kill(lvpid, signal.SIGSTOP)
        t0 = time.time()
        slow, health = [], []
        try:
            while time.time() - t0 < STALL_S:
                for path in ("/v1/health", "/v1/instances?limit=5"):
                    st, dt = timed(d, path)
                    if dt > STALL_READ_S or st == 0:
                        slow.append((path, st, round(dt, 2),
                                     round(time.time() - t0, 1)))
                    if path == "/v1/health":
                        health.append((round(time.time() - t0, 1), st))
                time.sleep(0.5)
        finally:
            os.kill(lvpid, signal.SIGCONT)
        check(not slow, "reads answer within %.1f s while libvirtd is "
              "stopped (slow: %s)" % (STALL_READ_S, slow[:4]))
        first503 = next((t for t, st in health if st == 503), None)
        check(all(st in (200, 503) for _, st in health) and
              health[-1][1] == 503,
              "health 200 or 503 during the stall, 503 from %s s on (%s)" %
              (first503, health[-2:]))
        check(d.proc.poll() is None,
              "hyperletd survived the stall (exit %s)" % d.proc.poll())
        # after SIGCONT: health and creates recover
        ok_health = False
        end = time.time() + 60
        while time.time() < end and d.proc.poll() is None:
            st, _ = timed(d, "/v1/health")
            if st == 200:
                ok_health = True
                break
            time.sleep(0.2)
        check(ok_health, "health is 200 again after SIGCONT")
        try:
            st, _, data = d.req("POST", "/v1/instances",
                                body("after-stall", str(uuid.uuid4())),
                                timeout=90)
        except OSError as ex:
            st, data = 0, str(ex).encode()
        check(st == 201, "a create answers 201 after SIGCONT (%d %s)" %
              (st, data[:200]))
        stop.set()
        for t in threads:
            t.join(120)
        bad = [a for a in answers if a[0] not in (201, 204, 503)]
        check(not bad, "under the stall every request answered 201/204/503"
              " (%d answers, other: %s)" % (len(answers), bad[:3]))
        check(d.proc.poll() is None,
              "hyperletd is still running at the end (exit %s)" %
              d.proc.poll())
        if cl.failed:
            cl.explain(d.state + ".log", "libvirt")
    finally:
        stop.set()
        d.stop()
    print("%d passed, %d failed" % (cl.passed, cl.failed))
    return 1 if cl.failed else 0


if __name__ == "__main__":
    sys.exit(main())
