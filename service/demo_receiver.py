"""The demo's stand-in for a team's webhook endpoint and Slack: a local HTTP server that
keeps what driftmon sends, checking each webhook's signature with the Standard Webhooks
library as a receiver would."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    # None for Slack (Slack webhooks are not signed); else whether the signature held
    verified: bool | None


@dataclass
class Inbox:
    secret: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        verified = None
        if path == "/webhook":
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self.lock:
            self.received.append(Received(path, json.loads(body), verified))

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def wait_for(self, predicate: Any, timeout: float) -> list[Received]:
        """What arrived, once `predicate(received)` holds or the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if predicate(got):
                return got
            time.sleep(0.2)
        return self.snapshot()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            inbox.take(self.path, body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo prints what arrived; access lines would drown it

    return Handler


@contextmanager
def receiving() -> Iterator[tuple[Inbox, int]]:
    """A receiver on a free loopback port, and the port."""
    inbox = Inbox(new_secret())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(inbox))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield inbox, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
