"""A minimal server-sent-events client over a raw socket, for
tests/check_events.py, tests/crash_load.py and bench/events.py: one
request, the chunked body decoded incrementally, events split at blank
lines. Non-blocking use: feed() whatever recv() returned."""
import json
import socket


class SSE:
    def __init__(self, port, path="/v1/events", headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Accept: text/event-stream\r\n%s\r\n"
                           % (path, port, h)).encode())
        self.raw = b""
        self.body = b""
        self.status = None
        self.headers = {}
        self.head = b""
        self.chunked = False
        self.ended = False  # the last chunk came
        self.closed = False  # the server closed the connection
        self.comments = 0
        self.events = []  # (id, type, data dict)

    def fileno(self):
        return self.sock.fileno()

    def recv(self):
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            self.closed = True
        self.feed(d)
        return d

    def feed(self, d):
        self.raw += d
        if self.status is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = self.raw[:i].decode()
            lines = self.head.split("\r\n")
            self.status = int(lines[0].split()[1])
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                self.headers[k.strip().lower()] = v.strip()
            self.chunked = self.headers.get(
                "transfer-encoding", "").lower() == "chunked"
            self.raw = self.raw[i + 4:]
        if self.chunked:
            while True:
                i = self.raw.find(b"\r\n")
                if i < 0:
                    break
                n = int(self.raw[:i].split(b";")[0], 16)
                if len(self.raw) < i + 2 + n + 2:
                    break
                if n == 0:
                    self.ended = True
                self.body += self.raw[i + 2:i + 2 + n]
                self.raw = self.raw[i + 2 + n + 2:]
        else:
            self.body += self.raw
            self.raw = b""
        if self.status != 200:
            return
        while b"\n\n" in self.body:
            block, _, self.body = self.body.partition(b"\n\n")
            ev = {}
            for ln in block.decode().split("\n"):
                if ln.startswith(":"):
                    self.comments += 1
                    continue
                k, _, v = ln.partition(":")
                ev[k] = v[1:] if v.startswith(" ") else v
            if "data" in ev:
                self.events.append((int(ev["id"]), ev.get("event"),
                                    json.loads(ev["data"])))

    def read_until(self, pred, timeout=10):
        import time
        end = time.time() + timeout
        self.sock.settimeout(0.2)
        while not pred(self) and time.time() < end and not self.closed:
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                d = b""
            if not d:
                self.closed = True
            self.feed(d)
        return pred(self)

    def close(self):
        self.sock.close()
