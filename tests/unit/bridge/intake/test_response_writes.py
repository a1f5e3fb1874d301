"""An answer's head and body in one write (``response_writes.HeadWithBody``), on a transport
that records its writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

from bridge.intake import response_writes


@dataclass
class Recorder:
    writes: list[bytes] = field(default_factory=list)
    closed: bool = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"extra {name}"


@dataclass
class Cycle:
    response_started: bool = False


def held(loop: asyncio.AbstractEventLoop) -> tuple[Recorder, Cycle, response_writes.HeadWithBody]:
    transport, cycle = Recorder(), Cycle()
    wrapper = response_writes.HeadWithBody(cast(asyncio.Transport, transport), cycle, loop)
    return transport, cycle, wrapper


def test_head_and_body_of_an_answer_leave_in_one_write() -> None:
    async def main() -> list[bytes]:
        transport, cycle, wrapper = held(asyncio.get_running_loop())
        cycle.response_started = True
        wrapper.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        wrapper.write(b'{"status":"queued"}')
        await asyncio.sleep(0)  # the fallback flush finds nothing held
        return transport.writes

    assert asyncio.run(main()) == [b'HTTP/1.1 202 Accepted\r\n\r\n{"status":"queued"}']


def test_a_head_without_body_in_the_same_turn_leaves_on_the_next_turn() -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        transport, cycle, wrapper = held(asyncio.get_running_loop())
        cycle.response_started = True
        wrapper.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        before = list(transport.writes)
        await asyncio.sleep(0)
        wrapper.write(b"5\r\nhello\r\n")
        return before, transport.writes

    before, after = asyncio.run(main())
    assert before == []
    assert after == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"5\r\nhello\r\n"]


def test_continue_before_the_response_goes_out_at_once() -> None:
    async def main() -> list[bytes]:
        transport, _cycle, wrapper = held(asyncio.get_running_loop())
        wrapper.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return list(transport.writes)

    assert asyncio.run(main()) == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_close_sends_a_held_head_first_and_other_calls_pass_through() -> None:
    async def main() -> tuple[Recorder, str]:
        transport, cycle, wrapper = held(asyncio.get_running_loop())
        cycle.response_started = True
        wrapper.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        wrapper.close()
        return transport, wrapper.get_extra_info("peername")

    transport, extra = asyncio.run(main())
    assert transport.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"] and transport.closed
    assert extra == "extra peername"
