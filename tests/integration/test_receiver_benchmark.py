"""The receiver benchmark (``benchmarks/receiver.py``) runs at a tiny size, so it cannot rot:
both load generators post every hook to a real receiver process on SQLite, each answered 202
and stored with its ``job_queued`` event, and the light one sends the very bytes
``http.client`` sends. Figures are not checked here (performance targets live in the
benchmark, never in timed tests)."""

from __future__ import annotations

import argparse
import http.client
import socket
import threading
from pathlib import Path

from benchmarks import receiver, receiver_load


def test_both_load_generators_post_every_hook_each_answered_202_and_stored_with_its_event(
    tmp_path: Path,
) -> None:
    args = argparse.Namespace(hooks=200, connections=16, max_seconds=60.0, raw_inserts=20,
                              runs=1, client="both")  # fmt: skip
    results = receiver.bench("sqlite", args, tmp_path)
    assert sorted(r.client for r in results) == ["asyncio", "threads"]
    for r in results:
        assert (r.accepted, r.refused_or_failed, r.stored, r.events) == (200, 0, 200, 200), r
        assert len(r.latencies_ms) == 200 and min(r.latencies_ms) > 0
        assert r.client_cpu_ms > 0 and r.cpu_ms > 0


def test_the_event_loop_client_sends_the_bytes_http_client_sends() -> None:
    body = b'{"ticket_id": 1, "transaction_id": 7}'
    headers = {
        "webhook-id": "7",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,c2lnbmF0dXJl",
        "content-type": "application/json",
    }
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        expected = receiver_load.raw_request(port, body, headers)
        got = bytearray()

        def take() -> None:
            peer, _ = server.accept()
            with peer:
                while len(got) < len(expected) and (chunk := peer.recv(65536)):
                    got.extend(chunk)
                peer.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=take)
        thread.start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", receiver_load.PATH, body=body, headers=headers)
        assert conn.getresponse().status == 202
        conn.close()
        thread.join(10)
    assert bytes(got) == expected
