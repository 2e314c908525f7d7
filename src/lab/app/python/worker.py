#!/usr/bin/env python3
"""The lab's Python service (stdlib only).

GET /version -> the version baked in at build time.
GET /health  -> 200 JSON when the service is up and its root key file is
                still present; 503 for a "broken" build or a missing key.

Start: python3 worker.py [--host H] [--port P] [--config-dir DIR]
       (or WORKER_HOST / WORKER_PORT / APP_CONFIG_DIR; defaults 0.0.0.0, 8081, /etc/app).
Stops cleanly on SIGTERM or SIGINT.
"""
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Replaced by the build (src/lab/app/build.ts); the placeholders mark a source
# copy that was never built.
VERSION = "0.0.0-unbuilt"
BROKEN = False


def option(argv, name, env, default):
    if name in argv:
        i = argv.index(name)
        if i + 1 < len(argv):
            return argv[i + 1]
    return os.environ.get(env) or default


def slow_health_delay():
    # The lab's "slow, not dead" fault (src/lab/faults.ts): /run/app/slow-health
    # holds "<version> <seconds>" ("*" for any version); that version's /health
    # answers after that many seconds.
    try:
        with open("/run/app/slow-health") as f:
            fields = f.read().split()
        if len(fields) >= 2 and fields[0] in ("*", VERSION):
            time.sleep(int(fields[1]))
    except (OSError, ValueError):
        pass


class Handler(BaseHTTPRequestHandler):
    server_version = "pairshift-lab-worker"
    root_key = ""

    def _send(self, status, body, content_type="application/json"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        if self.path == "/version":
            self._send(200, VERSION + "\n", "text/plain; charset=utf-8")
        elif self.path == "/health":
            slow_health_delay()
            if BROKEN:
                self._send(503, json.dumps({"status": "fail", "version": VERSION, "reason": "broken build"}))
            elif not os.path.isfile(self.root_key):
                self._send(503, json.dumps({"status": "fail", "version": VERSION, "reason": "root key file missing"}))
            else:
                self._send(200, json.dumps({"status": "ok", "version": VERSION}))
        else:
            self._send(404, json.dumps({"error": "not found"}))

    do_HEAD = do_GET

    def log_message(self, fmt, *args):
        # One line per request is noise at 20 Hz probing; errors still go to stderr.
        pass


def main(argv):
    if argv == ["--version"]:
        print(VERSION)
        return 0
    host = option(argv, "--host", "WORKER_HOST", "0.0.0.0")
    port = int(option(argv, "--port", "WORKER_PORT", "8081"))
    config_dir = option(argv, "--config-dir", "APP_CONFIG_DIR", "/etc/app")
    Handler.root_key = os.path.join(config_dir, "root.key")
    if not os.path.isfile(Handler.root_key):
        print(f"worker: root key file {Handler.root_key} is missing; refusing to start", file=sys.stderr)
        return 2
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((host, port), Handler)

    def stop(_signum, _frame):
        # shutdown() blocks until serve_forever returns, so call it from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"worker {VERSION}{' (broken build)' if BROKEN else ''} listening on {host}:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
