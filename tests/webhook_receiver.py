"""A webhook receiver for tests: HTTP on 127.0.0.1, in a thread, that can fail on purpose."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from netcron.devstack import free_port


class Receiver:
    """An HTTP receiver on 127.0.0.1 that answers 500 ``failures`` times, then 200."""

    def __init__(self) -> None:
        self.port = free_port(None)
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures = 0
        self.refused = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    failing = receiver.failures > 0
                    if failing:
                        receiver.failures -= 1
                        receiver.refused += 1
                    else:
                        receiver.received.append((dict(self.headers.items()), body))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]
