#!/usr/bin/python3
"""agent-upstream.py - the TLS test upstream for the agent's integration tests.

A small HTTPS server (http.server + ssl + msgpack) that plays the control
plane: it accepts POST application/msgpack batches, checks nothing but
records everything, and answers what the control file asks for.

  agent-upstream.py --cert C --key K --dir D [--port-file F]

Files in D:
  port          the TCP port it listens on (loopback only)
  control       optional; one line "CODE [RETRY_AFTER_S] [COUNT]": answer CODE
                (with Retry-After when given) to the next COUNT requests, or to
                every request while the file says so when COUNT is absent
  requests.log  one JSON line per request: time, code, idempotency key, auth,
                content type, number of records
  records.jsonl one JSON line per record accepted the first time (deduplicated
                by record_id, like a real receiver)
  dups          number of records received again (same record_id)
  bodies.bin    every request body, raw (for canary searches)
  delay         optional; seconds to wait before answering (after logging)
"""
import argparse
import http.server
import json
import os
import ssl
import threading
import time

import msgpack

lock = threading.Lock()
seen = set()
dups = 0


def control(d):
    path = os.path.join(d, "control")
    try:
        with open(path) as f:
            parts = f.read().split()
    except FileNotFoundError:
        return 200, None
    if not parts:
        return 200, None
    code = int(parts[0])
    retry = parts[1] if len(parts) > 1 and parts[1] != "-" else None
    if len(parts) > 2:
        left = int(parts[2]) - 1
        if left <= 0:
            os.unlink(path)
        else:
            with open(path + ".tmp", "w") as f:
                f.write("%d %s %d\n" % (code, retry or "-", left))
            os.rename(path + ".tmp", path)
    return code, retry


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global dups
        d = self.server.dir
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with lock:
            code, retry = control(d)
            with open(os.path.join(d, "bodies.bin"), "ab") as f:
                f.write(body)
            nrec = -1
            try:
                batch = msgpack.unpackb(body, raw=False)
                recs = batch["records"]
                nrec = len(recs)
            except Exception:
                code, recs = 400, []
            entry = {"t": time.time(), "code": code,
                     "idem": self.headers.get("Idempotency-Key"),
                     "auth": self.headers.get("Authorization"),
                     "ctype": self.headers.get("Content-Type"),
                     "path": self.path, "n": nrec}
            with open(os.path.join(d, "requests.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")
            if code == 200:
                with open(os.path.join(d, "records.jsonl"), "a") as f:
                    for r in recs:
                        if r["record_id"] in seen:
                            dups += 1
                            continue
                        seen.add(r["record_id"])
                        f.write(json.dumps(r, sort_keys=True) + "\n")
                with open(os.path.join(d, "dups"), "w") as f:
                    f.write("%d\n" % dups)
        try:
            with open(os.path.join(d, "delay")) as f:
                time.sleep(float(f.read().strip() or 0))
        except FileNotFoundError:
            pass
        out = b'{"ok": true}' if code == 200 else b'{"error": "test"}'
        self.send_response(code)
        if retry is not None:
            self.send_header("Retry-After", retry)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.dir = a.dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(os.path.join(a.dir, "port.tmp"), "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(os.path.join(a.dir, "port.tmp"), os.path.join(a.dir, "port"))
    srv.serve_forever()


if __name__ == "__main__":
    main()
