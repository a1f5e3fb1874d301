"""Refused destinations (issue 17's "Must show"): 127.0.0.1, ::1, ``localhost`` (a name that
resolves to loopback), 169.254.169.254, private addresses, an IPv4-mapped loopback, and a
redirect to one of them, each refused with a clear message and error class ``destination``,
with nothing connected to: the real receivers count zero connections, and a recorder around
``socket.connect`` sees no attempt at the refused address. Then, with the CIDR allowlisted,
the same delivery arrives at the loopback receiver and verifies. And the check is made at
connect time: a name whose answer changes between two connections (DNS rebinding) is
refused on the second."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from repo_daemon.deliveries import outbound, signing
from tests.support.webhook_receiver import Answer, WebhookReceiver

NONE_ALLOWED = outbound.DestinationPolicy()


@pytest.fixture
def secret() -> str:
    return signing.new_secret()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every IP address a socket of this process tried to connect to during the test."""
    seen: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def record(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            seen.append(str(address[0]))

    def connect(self: socket.socket, address: Any) -> None:
        record(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        record(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


def _post(sender: outbound.Sender, url: str, secret: str) -> tuple[outbound.Outcome, bytes]:
    body = json.dumps({"id": "evt_1", "type": "release.production", "data": {}}).encode()
    headers = signing.headers_for(
        webhook_id="msg_1", timestamp=datetime.now(UTC), body=body, secrets=[secret],
        github=False,
    )  # fmt: skip
    return sender.post(url, body, headers), body


@pytest.fixture
def sender() -> Iterator[outbound.Sender]:
    sender = outbound.Sender(NONE_ALLOWED, timeout=5.0)
    yield sender
    sender.close()


LOOPBACK_CASES = [
    # (listen on, host in the URL, the message, the CIDR that admits it)
    ("127.0.0.1", "127.0.0.1", "127.0.0.1 (loopback)", "127.0.0.0/8"),
    ("127.0.0.1", "localhost", "127.0.0.1 (loopback) for localhost", "127.0.0.1/32"),
    ("::1", "::1", "::1 (loopback)", "::1/128"),
    ("127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1 (loopback: 127.0.0.1)", "127.0.0.0/8"),
]


@pytest.mark.parametrize(
    ("listen", "host", "message", "cidr"), LOOPBACK_CASES, ids=[c[1] for c in LOOPBACK_CASES]
)
def test_loopback_is_refused_until_allowlisted(
    listen: str, host: str, message: str, cidr: str, secret: str,
    sender: outbound.Sender, connects: list[str],
) -> None:  # fmt: skip
    with WebhookReceiver(secret, host=listen) as receiver:
        outcome, body = _post(sender, receiver.url_for(host), secret)
        assert outcome.error_class is outbound.ErrorClass.DESTINATION
        example = message.split(" ")[0] + ("/128" if ":" in message.split(" ")[0] else "/32")
        assert outcome.error == (
            f"refused destination: {message}; allow it with ROLLOUT_WEBHOOK_ALLOW_CIDRS "
            f"(e.g. {example})"
        )
        assert (outcome.status, outcome.ok) == (None, False)
        assert receiver.connections == 0
        assert connects == []

        allowing = outbound.Sender(outbound.DestinationPolicy.from_cidrs([cidr]), timeout=5.0)
        try:
            outcome, body = _post(allowing, receiver.url_for(host), secret)
        finally:
            allowing.close()
        assert outcome.ok, outcome.error
        (receipt,) = receiver.wait_for(1)
        assert receipt.verified and receipt.payload == json.loads(body)
        assert receiver.connections == 1


UNREACHABLE_CASES = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254",
     "169.254.169.254 (link-local, cloud metadata)"),
    ("http://10.0.0.1:8080/hook", "10.0.0.1", "10.0.0.1 (private)"),
    ("https://192.168.1.20/hook", "192.168.1.20", "192.168.1.20 (private)"),
    ("http://172.16.5.4/hook", "172.16.5.4", "172.16.5.4 (private)"),
    ("http://100.64.0.7/hook", "100.64.0.7", "100.64.0.7 (shared address space (CGNAT))"),
    ("http://[fd00::1]/hook", "fd00::1", "fd00::1 (private)"),
    ("http://[fe80::1]/hook", "fe80::1", "fe80::1 (link-local)"),
    ("http://0.0.0.0:9/hook", "0.0.0.0", "0.0.0.0 (unspecified)"),  # noqa: S104 - refused
]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "address", "message"), UNREACHABLE_CASES, ids=[c[1] for c in UNREACHABLE_CASES]
)
def test_metadata_and_private_addresses_are_refused_without_a_connect(
    url: str, address: str, message: str, secret: str, sender: outbound.Sender,
    connects: list[str],
) -> None:  # fmt: skip
    outcome, _ = _post(sender, url, secret)
    assert outcome.error_class is outbound.ErrorClass.DESTINATION
    assert outcome.error is not None
    assert outcome.error.startswith(f"refused destination: {message}; allow it with ")
    assert connects == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:pw@hook.example.org/x", "the URL for hook.example.org carries credentials"),
        ("ftp://hook.example.org/x", "only http and https URLs are delivered to (scheme: ftp)"),
        ("http:///x", "the endpoint's URL has no host"),
    ],
    ids=["credentials", "scheme", "no host"],
)
def test_urls_deliveries_do_not_use_are_refused_before_anything(
    url: str, message: str, secret: str, sender: outbound.Sender, connects: list[str]
) -> None:
    outcome, _ = _post(sender, url, secret)
    assert outcome.error_class is outbound.ErrorClass.DESTINATION
    assert outcome.error is not None and outcome.error.startswith(f"refused destination: {message}")
    assert "pw" not in outcome.error
    assert connects == []


def test_a_redirect_to_a_refused_address_is_refused_and_nothing_follows(
    secret: str, connects: list[str]
) -> None:
    policy = outbound.DestinationPolicy.from_cidrs(["127.0.0.1/32"])
    sender = outbound.Sender(policy, timeout=5.0)
    try:
        with WebhookReceiver(secret) as first, WebhookReceiver(secret, host="127.0.0.2") as other:
            first.script(
                Answer(status=302, headers={"Location": other.url}),
                Answer(status=301, headers={"Location": "http://169.254.169.254/latest/"}),
            )
            outcome, _ = _post(sender, first.url, secret)
            assert outcome.error_class is outbound.ErrorClass.DESTINATION
            assert outcome.status == 302
            assert outcome.error == (
                f"refused destination: HTTP 302 from 127.0.0.1:{first.port} redirects to "
                "127.0.0.2, loopback; not followed"
            )
            outcome, _ = _post(sender, first.url, secret)
            assert outcome.error_class is outbound.ErrorClass.DESTINATION
            assert outcome.error == (
                f"refused destination: HTTP 301 from 127.0.0.1:{first.port} redirects to "
                "169.254.169.254, link-local, cloud metadata; not followed"
            )
            assert [r.verified for r in first.wait_for(2)] == [True, True]
            assert other.connections == 0
            assert set(connects) == {"127.0.0.1"}

            # Allowed or not, a redirect is never followed.
            both = outbound.Sender(
                outbound.DestinationPolicy.from_cidrs(["127.0.0.0/8"]), timeout=5.0
            )
            try:
                first.script(Answer(status=302, headers={"Location": other.url}))
                outcome, _ = _post(both, first.url, secret)
            finally:
                both.close()
            assert outcome.error_class is outbound.ErrorClass.HTTP
            assert outcome.error is not None and "not followed" in outcome.error
            assert other.connections == 0
            assert "127.0.0.2" not in connects
    finally:
        sender.close()


def test_the_address_is_checked_at_each_connect_so_rebinding_cannot_slip_past(
    secret: str, monkeypatch: pytest.MonkeyPatch, connects: list[str]
) -> None:
    """``rebind.test`` first resolves to an allowed address, then to a refused one."""
    policy = outbound.DestinationPolicy.from_cidrs(["127.0.0.1/32"])
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2"])

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            host = next(answers)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    sender = outbound.Sender(policy, timeout=5.0)
    try:
        with WebhookReceiver(secret) as allowed, WebhookReceiver(secret, host="127.0.0.2") as not_:
            not_.stop()
            not_.port = allowed.port  # the same port on the other address
            not_.start()
            outcome, _ = _post(sender, allowed.url_for("rebind.test"), secret)
            assert outcome.ok, outcome.error
            allowed.stop()  # the kept-alive connection goes; the next one resolves again
            allowed.start()
            outcome, _ = _post(sender, allowed.url_for("rebind.test"), secret)
            assert outcome.error_class is outbound.ErrorClass.DESTINATION
            assert outcome.error == (
                "refused destination: 127.0.0.2 (loopback) for rebind.test; allow it with "
                "ROLLOUT_WEBHOOK_ALLOW_CIDRS (e.g. 127.0.0.2/32)"
            )
            assert not_.connections == 0
            assert "127.0.0.2" not in connects
            assert allowed.wait_for(1)[0].verified
    finally:
        sender.close()
