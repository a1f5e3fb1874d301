"""Real webhook receivers on loopback for the deliveries' tests: an HTTP server in a thread
that verifies EVERY request it gets and records it.

``WebhookReceiver`` verifies with the official ``standardwebhooks`` library
(``Webhook(secret).verify(body, headers)``); ``GitHubReceiver`` checks ``X-Hub-Signature-256``
exactly as GitHub's documentation describes (``sha256=`` + the hex HMAC-SHA256 of the raw body
keyed with the secret, compared with ``hmac.compare_digest``). A request that fails the check
is answered 401 and recorded with ``verified=False``.

Scriptable: ``default_status`` answers every verified request unless ``script(...)`` queued
``Answer``s (a status, headers such as ``Retry-After`` or ``Location``, a body; or ``hang``:
never answer; or ``trickle``: the body a byte at a time). ``stop()`` closes the port and
every open connection, ``start()`` opens the SAME port again ("down for a while, then up").
``connections`` counts accepted TCP connections, so a test can assert that nothing was
connected to. Waiting is on a condition (``wait_for``), never a fixed sleep. Optional TLS
(``tls=`` a server ``ssl.SSLContext``), done per connection so a failed handshake is counted
(``tls_failures``) and never stalls the server.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import standardwebhooks

from tests.support import https_server


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What the receiver answers one verified request with."""

    status: int = 204
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False  # read the request, answer nothing until the receiver stops
    trickle: float = 0.0  # seconds between the body's bytes


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """One request as received: ``headers`` with lower-case names, ``payload`` the parsed JSON
    when verified, ``problem`` why not, ``status`` what was answered (None: nothing)."""

    webhook_id: str | None
    received_at: float
    payload: Any
    verified: bool
    problem: str | None
    headers: dict[str, str]
    body: bytes
    path: str
    status: int | None


class WebhookReceiver:
    """Verifies Standard Webhooks signatures with ``standardwebhooks`` and records receipts."""

    def __init__(
        self,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_status: int = 204,
        tls: ssl.SSLContext | None = None,
        path: str = "/hook",
    ) -> None:
        self.secret = secret
        self.host = host
        self.port = port
        self.default_status = default_status
        self.tls = tls
        self.path = path
        self._cond = threading.Condition()
        self._receipts: list[Receipt] = []
        self._script: collections.deque[Answer] = collections.deque()
        self._connections = 0
        self._tls_failures = 0
        self._open: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    # -- what a subclass changes ------------------------------------------------------------

    def check(self, body: bytes, headers: dict[str, str]) -> tuple[bool, Any, str | None]:
        """``(verified, payload, problem)`` for one request."""
        try:
            payload = standardwebhooks.Webhook(self.secret).verify(body, headers)
        except standardwebhooks.WebhookVerificationError as exc:
            return False, None, f"standardwebhooks: {exc}"
        return True, payload, None

    # -- the test's side ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(self.host)

    def url_for(self, host: str, path: str | None = None) -> str:
        """This receiver's URL with another name for its host (``localhost``)."""
        scheme = "https" if self.tls else "http"
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}{self.path if path is None else path}"

    def script(self, *answers: Answer) -> None:
        """Answer the next verified requests with ``answers``, in order, then the default."""
        with self._cond:
            self._script.extend(answers)

    @property
    def receipts(self) -> list[Receipt]:
        with self._cond:
            return list(self._receipts)

    @property
    def connections(self) -> int:
        """TCP connections accepted since the receiver was made."""
        with self._cond:
            return self._connections

    @property
    def tls_failures(self) -> int:
        with self._cond:
            return self._tls_failures

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Receipt]:
        """The receipts once at least ``count`` arrived; ``AssertionError`` after ``timeout``."""
        return self.wait_until(lambda: len(self._receipts) >= count, timeout, f"{count} requests")

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> list[Receipt]:
        return self.wait_until(lambda: self._connections >= count, timeout, f"{count} connections")

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> list[Receipt]:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"waited {timeout} s for {what}; got {len(self._receipts)} requests on "
                    f"{self._connections} connections"
                )
            return list(self._receipts)

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        if self._server is not None:
            return
        self._stopping.clear()
        server = _server_class(self)((self.host, self.port), _handler_class(self))
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the port and every open connection; requests answer nothing meanwhile."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._cond:
            found = list(self._open)
        for sock in found:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        server.server_close()  # joins the handlers' threads
        if self._thread is not None:
            self._thread.join(timeout=10)

    close = stop

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the server's side ----------------------------------------------------------------------

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> Answer | None:
        verified, payload, problem = self.check(body, headers)
        with self._cond:
            answer = (self._script.popleft() if self._script else None) if verified else None
        if verified:
            answer = answer or Answer(status=self.default_status)
        else:
            answer = Answer(status=401, body=b"signature not verified")
        receipt = Receipt(
            webhook_id=headers.get("webhook-id"), received_at=time.time(), payload=payload,
            verified=verified, problem=problem, headers=headers, body=body, path=path,
            status=None if answer.hang else answer.status,
        )  # fmt: skip
        with self._cond:
            self._receipts.append(receipt)
            self._cond.notify_all()
        return answer

    def _accepted(self, sock: socket.socket, opened: bool) -> None:
        with self._cond:
            if opened:
                self._connections += 1
                self._open.add(sock)
            else:
                self._open.discard(sock)
            self._cond.notify_all()

    def _tls_failed(self) -> None:
        with self._cond:
            self._tls_failures += 1
            self._cond.notify_all()


class GitHubReceiver(WebhookReceiver):
    """Checks ``X-Hub-Signature-256`` as GitHub's documentation describes; the secret is the
    string the user configured (here the whole ``whsec_…`` subscription secret)."""

    def check(self, body: bytes, headers: dict[str, str]) -> tuple[bool, Any, str | None]:
        signature = headers.get("x-hub-signature-256")
        if not signature:
            return False, None, "no X-Hub-Signature-256 header"
        digest = hmac.new(self.secret.encode("utf-8"), msg=body, digestmod=hashlib.sha256)
        expected = "sha256=" + digest.hexdigest()
        if not hmac.compare_digest(expected, signature):
            return False, None, "X-Hub-Signature-256 does not match"
        return True, json.loads(body), None


def _server_class(receiver: WebhookReceiver) -> type[ThreadingHTTPServer]:
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in receiver.host else socket.AF_INET
        daemon_threads = True
        allow_reuse_address = True

        def get_request(self) -> tuple[socket.socket, Any]:
            sock, address = super().get_request()
            receiver._accepted(sock, True)
            return sock, address

        def finish_request(self, request: Any, client_address: Any) -> None:
            try:
                if receiver.tls is None:
                    super().finish_request(request, client_address)
                    return
                request.settimeout(5)
                try:
                    wrapped = receiver.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    receiver._tls_failed()
                    return
                try:
                    super().finish_request(wrapped, client_address)
                finally:
                    wrapped.close()
            finally:
                receiver._accepted(request, False)

        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a client that hangs up is no news here

    return Server


def _handler_class(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = receiver._receive(self.path, headers, body)
            if answer is None or answer.hang:
                receiver._stopping.wait()
                self.close_connection = True
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if not answer.trickle:
                self.wfile.write(answer.body)
                return
            for index in range(len(answer.body)):
                self.wfile.write(answer.body[index : index + 1])
                self.wfile.flush()
                if receiver._stopping.wait(answer.trickle):
                    self.close_connection = True
                    return

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def server_tls(workdir: Path, *, dns_names: tuple[str, ...] = ("localhost",),
               addresses: tuple[str, ...] = ()) -> tuple[ssl.SSLContext, Path]:  # fmt: skip
    """A server TLS context with a certificate for exactly ``dns_names`` and ``addresses``,
    signed by a throw-away CA, and the CA's PEM file (what the client is told to trust)."""
    ca = https_server.make_ca(workdir, "webhook-test-ca")
    cert_file, key_file = https_server.make_server_cert(
        workdir, ca, dns_names=dns_names, addresses=addresses, stem="receiver"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, ca.file
