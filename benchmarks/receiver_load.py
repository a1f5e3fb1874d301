"""The load generators of ``benchmarks.receiver``: post pre-signed hooks over N keep-alive
HTTP/1.1 connections, closed loop, and time each answer.

- ``drive_asyncio`` (the default): one event loop (uvloop when installed), one coroutine per
  connection, writing each request's bytes, built before the clock starts, in one call and
  reading only the answer's status line, its ``Content-Length`` and that many body bytes. Its
  CPU per request is small, and no thread of the client waits for a GIL held by another.
- ``drive_threads`` (``--client threads``, the generator used until 2026-12-07): one thread
  per connection with ``http.client`` in one process; each latency then also holds the wait
  for the client's own GIL, and the client's CPU competes with the receiver for the cores.

Both post the same requests (same path, headers, signatures and bodies) and return a
``Driven``: answers 202, other answers, seconds, latencies in ms, and the client's CPU seconds
(this process's, all threads). Nothing here decides what is measured or checks the store.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

Hook = tuple[int, bytes, dict[str, str]]  # (transaction id, body, headers)
PATH = "/hooks/rt"


@dataclass(frozen=True, kw_only=True)
class Driven:
    accepted: int  # answered 202
    other: int  # any other answer
    seconds: float
    latencies_ms: list[float]  # of the 202 answers
    client_cpu: float  # CPU seconds of this process while driving


def raw_request(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes ``http.client`` sends for this POST (``Host``, ``Accept-Encoding:
    identity``, ``Content-Length``, then the hook's headers, in its order), in one piece."""
    lines = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept-Encoding: identity"]
    lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _status_and_length(head: bytes) -> tuple[int, int]:
    """The status code and ``Content-Length`` of an answer's head (0 when absent)."""
    first, _, rest = head.partition(b"\r\n")
    status = int(first.split(b" ", 2)[1])
    length = 0
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return status, length


async def _drive(
    port: int, hooks: Sequence[Hook], connections: int, limit: float
) -> tuple[int, int, float, list[float]]:
    requests = [
        [raw_request(port, b, h) for _t, b, h in hooks[n::connections]] for n in range(connections)
    ]
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    latencies: list[list[int]] = [[] for _ in range(connections)]
    failures = [0] * connections
    deadline = time.perf_counter_ns() + int(limit * 1e9)

    async def run(n: int) -> None:
        reader, writer = streams[n]
        mine = latencies[n]
        clock = time.perf_counter_ns
        for data in requests[n]:
            began = clock()
            if began > deadline:
                break
            writer.write(data)
            status, length = _status_and_length(await reader.readuntil(b"\r\n\r\n"))
            if length:
                await reader.readexactly(length)
            if status == 202:
                mine.append(clock() - began)
            else:
                failures[n] += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(run(n) for n in range(connections)))
    seconds = time.perf_counter() - began
    for _reader, writer in streams:
        await writer.wait_closed()
    flat = [ns / 1e6 for per in latencies for ns in per]
    return len(flat), sum(failures), seconds, flat


def drive_asyncio(port: int, hooks: Sequence[Hook], connections: int, limit: float) -> Driven:
    """Post ``hooks`` from one event loop, one coroutine per connection."""
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = asyncio.new_event_loop
    cpu = time.process_time()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        accepted, other, seconds, latencies = runner.run(_drive(port, hooks, connections, limit))
    return Driven(
        accepted=accepted,
        other=other,
        seconds=seconds,
        latencies_ms=latencies,
        client_cpu=time.process_time() - cpu,
    )


def drive_threads(port: int, hooks: Sequence[Hook], connections: int, limit: float) -> Driven:
    """Post ``hooks`` from one ``http.client`` thread per connection (one process, one GIL)."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    deadline = time.perf_counter() + limit
    start_gate = threading.Barrier(connections + 1)

    def run(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = hooks[n::connections]
        start_gate.wait()
        for _tid, body, headers in mine:
            if time.perf_counter() > deadline:
                break
            began = time.perf_counter()
            conn.request("POST", PATH, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 202:
                latencies[n].append((time.perf_counter() - began) * 1000)
            else:
                failures[n] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    flat = [ms for per in latencies for ms in per]
    return Driven(
        accepted=len(flat),
        other=sum(failures),
        seconds=seconds,
        latencies_ms=flat,
        client_cpu=time.process_time() - cpu,
    )


DRIVERS = {"asyncio": drive_asyncio, "threads": drive_threads}
