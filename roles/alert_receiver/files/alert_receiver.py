#!/usr/bin/env python3
# Copyright: Isobar contributors
# Apache-2.0
"""Isobar alert receiver: a tiny HTTPS endpoint for InfluxDB notification rules (lab demo).

Appends every POST to --path as one JSON line to --output: {"received", "remote", "path", "body"}
(body parsed as JSON when it is JSON). GET /health answers {"status": "pass"}. Standard library only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WRITE_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "isobar-alert-receiver/1"
    sys_version = ""
    timeout = 15  # a stalled client must not hold a thread forever

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path == "/health":
            self._reply(200, b'{"status": "pass"}')
        else:
            self._reply(404, b'{"error": "not found"}')

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        if self.path.split("?", 1)[0] != self.server.args.path:
            self._reply(404, b'{"error": "not found"}')
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, b'{"error": "Content-Length required"}')
            return
        if length < 0 or length > self.server.args.max_body:
            self._reply(413, b'{"error": "body too large"}')
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = {"received": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                  "remote": self.client_address[0], "path": self.path, "body": body}
        line = json.dumps(record, sort_keys=True) + "\n"
        with WRITE_LOCK, open(self.server.args.output, "a", encoding="utf-8") as out:
            out.write(line)
        self._reply(204)

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/alerts")
    parser.add_argument("--output", required=True)
    parser.add_argument("--cert", help="PEM certificate (chain); with --key serves HTTPS")
    parser.add_argument("--key")
    parser.add_argument("--max-body", type=int, default=1 << 20)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    server.args = args
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    sys.stderr.write(f"listening on {args.bind or '*'}:{args.port} ({'https' if args.cert else 'http'}), "
                     f"POST {args.path} -> {args.output}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
