"""The connection guard on uvicorn's httptools protocol, driven byte by byte through a fake
transport on a real event loop: the per-client cap, header and body deadlines, the header size
cap (also when headers and body come in one read), and hang-ups mid-body logged once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from bridge.intake import connections
from bridge.settings import model as settings_model

Trouble = connections.Trouble
QUICK = settings_model.IntakeLimits(
    header_timeout=0.05,
    body_timeout=0.1,
    max_header_bytes=1024,
    max_connections=10,
    max_connections_per_client=2,
    uncapped_clients=("10.0.0.0/8",),
    log_interval=60,
)
REQUEST = b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\ncontent-length: 10\r\n\r\n"


class FakeTransport(asyncio.Transport):
    """What the protocol writes, and whether it closed; closing calls ``connection_lost``."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        super().__init__()
        self.peer = (host, 40000)
        self.written = bytearray()
        self.closed = False
        self.protocol: asyncio.Protocol | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8750)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def hang_up(self) -> None:
        """The client goes away."""
        self.closed = True
        assert self.protocol is not None
        self.protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, answers 202 with its length."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = str(size).encode()
    await send(
        {"type": "http.response.start", "status": 202,
         "headers": [(b"content-length", str(len(body)).encode())]}
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Server:
    """One guard and its protocol class, as ``receiver.build_server`` makes them."""

    def __init__(self, limits: settings_model.IntakeLimits = QUICK) -> None:
        self.guard = connections.ConnectionGuard(limits)
        self.protocol = connections.protocol_class(self.guard)
        self.config = uvicorn.Config(echo_app, lifespan="off", log_config=None)
        self.state = ServerState()

    def connect(
        self, host: str = "127.0.0.2"
    ) -> tuple[connections.GuardedHttpToolsProtocol, FakeTransport]:
        protocol = self.protocol(config=self.config, server_state=self.state, app_state={})
        transport = FakeTransport(host)
        transport.protocol = protocol
        protocol.connection_made(transport)
        return protocol, transport

    def troubles(self) -> dict[Trouble, int]:
        return {kind: log.total for kind, log in self.guard.logs.items() if log.total}


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def test_one_client_holds_at_most_its_cap_others_and_uncapped_ones_still_get_in() -> None:
    async def main() -> None:
        server = Server()
        first = [server.connect() for _ in range(2)]
        _, refused = server.connect()
        assert refused.closed and refused.written == b""
        assert server.guard.open_from("127.0.0.2") == 2
        _, other = server.connect("127.0.0.1")
        proxied = [server.connect("10.1.2.3") for _ in range(5)]  # uncapped_clients
        assert not other.closed and not any(t.closed for _, t in proxied)
        # A connection that goes frees its place.
        first[0][1].hang_up()
        _, again = server.connect()
        assert not again.closed
        assert server.troubles() == {Trouble.TOO_MANY: 1}

    run(main)


def test_a_cap_of_zero_caps_nobody() -> None:
    async def main() -> None:
        server = Server(settings_model.IntakeLimits(max_connections_per_client=0))
        assert not any(server.connect()[1].closed for _ in range(20))

    run(main)


def test_headers_not_complete_in_time_get_408_and_the_connection_closes() -> None:
    async def main() -> None:
        server = Server()
        protocol, transport = server.connect()
        protocol.data_received(b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\n")
        await until(lambda: transport.closed)
        assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert transport.written.endswith(
            b'{"error": "request headers not complete within 0.05 s"}'
        )
        assert server.troubles() == {Trouble.SLOW_HEADERS: 1}
        await until(lambda: server.guard.open_from("127.0.0.2") == 0)

    run(main)


def test_a_connection_that_never_sends_is_closed_without_an_answer() -> None:
    async def main() -> None:
        server = Server()
        _, transport = server.connect()
        await until(lambda: transport.closed)
        assert transport.written == b""
        assert server.troubles() == {Trouble.IDLE: 1}

    run(main)


def test_an_answered_connection_idle_afterwards_closes_quietly() -> None:
    async def main() -> None:
        server = Server()
        protocol, transport = server.connect()
        protocol.data_received(REQUEST + b"0123456789")
        await until(lambda: transport.written.endswith(b"\r\n\r\n10"))
        assert transport.written.startswith(b"HTTP/1.1 202 ")
        await until(lambda: transport.closed)
        assert server.troubles() == {}

    run(main)


def test_headers_over_the_limit_get_431_before_the_parser_sees_more_than_the_limit() -> None:
    async def main() -> None:
        server = Server()
        protocol, transport = server.connect()
        fed: list[int] = []
        parser = protocol.parser
        real_feed = parser.feed_data

        class CountingParser:
            def __getattr__(self, name: str) -> Any:
                return getattr(parser, name)

            def feed_data(self, data: bytes) -> None:
                fed.append(len(data))
                real_feed(data)

        protocol.parser = CountingParser()  # type: ignore[assignment]
        protocol.data_received(b"POST /hooks/rt HTTP/1.1\r\nX-Big: ")
        protocol.data_received(b"a" * 100_000)
        assert transport.closed
        assert sum(fed) == 1024
        assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert transport.written.endswith(
            b'{"error": "request headers are larger than the limit of 1024 bytes"}'
        )
        assert server.troubles() == {Trouble.LARGE_HEADERS: 1}

    run(main)


def test_small_headers_with_a_body_in_the_same_read_are_not_taken_for_large_headers() -> None:
    async def main() -> None:
        server = Server(
            settings_model.IntakeLimits(max_header_bytes=1024, body_timeout=5, header_timeout=5)
        )
        protocol, transport = server.connect()
        body = b"x" * 3000
        head = b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\ncontent-length: 3000\r\n\r\n"
        protocol.data_received(head + body)  # one read, well over 1,024 bytes
        await until(lambda: transport.written.endswith(b"\r\n\r\n3000"))
        assert transport.written.startswith(b"HTTP/1.1 202 ")
        assert not transport.closed
        # And the next request on the connection has its own 1,024 bytes.
        protocol.data_received(head + body)
        await until(lambda: transport.written.count(b"HTTP/1.1 202 ") == 2)
        transport.hang_up()
        assert server.troubles() == {}

    run(main)


def test_a_body_not_complete_in_time_gets_408() -> None:
    async def main() -> None:
        server = Server()
        protocol, transport = server.connect()
        protocol.data_received(REQUEST + b"0123")
        await until(lambda: transport.closed)
        assert transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert transport.written.endswith(b'{"error": "request body not complete within 0.1 s"}')
        assert server.troubles() == {Trouble.SLOW_BODY: 1}

    run(main)


def test_hang_ups_mid_body_are_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=connections.__name__)

    async def main() -> None:
        server = Server(settings_model.IntakeLimits(max_connections_per_client=0))
        for _ in range(50):
            protocol, transport = server.connect()
            protocol.data_received(REQUEST + b"0123")
            await asyncio.sleep(0)  # the app starts reading the body
            transport.hang_up()
        # A hang-up after a whole body (waiting for the answer) is not mid-body.
        protocol, transport = server.connect()
        protocol.data_received(REQUEST + b"0123456789")
        transport.hang_up()
        assert server.troubles() == {Trouble.HUNG_UP: 50}

    run(main)
    assert [r.getMessage() for r in caplog.records] == [
        "a client hung up in the middle of a request body: 127.0.0.2:40000 after 4 of 10 bytes"
    ]


def test_uvicorns_own_warnings_are_one_log_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    async def main() -> None:
        server = Server(settings_model.IntakeLimits(max_connections_per_client=0))
        for _ in range(40):
            protocol, transport = server.connect()
            protocol.data_received(b"\x16\x03\x01 not http at all\r\n\r\n")  # e.g. TLS to HTTP
            assert transport.written.startswith(b"HTTP/1.1 400 ")
        assert server.troubles() == {Trouble.NOT_HTTP: 40}

    run(main)
    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert said == [
        (connections.__name__, f"{Trouble.NOT_HTTP.value}: from 127.0.0.2"),
    ]
    assert not [r for r in caplog.records if r.name == "uvicorn.error"]
