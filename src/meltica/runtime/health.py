"""Liveness, readiness and metrics over HTTP for a service that is not the REST API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meltica import telemetry


class HealthServer:
    """`/healthz` (the loop is alive), `/readyz` (it owns its partitions and has rebuilt them), `/metrics`."""

    def __init__(self, host: str, port: int, *, alive: Callable[[], bool], ready: Callable[[], bool]) -> None:
        checks = {"/healthz": alive, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, telemetry.prometheus_text(), "text/plain; version=0.0.4")
                elif self.path in checks:
                    ok = checks[self.path]()
                    self._send(200 if ok else 503, '{"status":"%s"}' % ("ok" if ok else "unavailable"))
                else:
                    self._send(404, '{"status":"not found"}')

            def _send(self, status: int, body: str | bytes, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
