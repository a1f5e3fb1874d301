"""``Sender`` against real receivers on loopback: signed deliveries verify with the official
``standardwebhooks`` library and with GitHub's documented ``X-Hub-Signature-256`` check; and
each way a delivery fails comes back with its error class: a tampered body (401, ``http``),
``Retry-After`` on 429/503, a redirect (not followed), a body past the cap (truncated), a
receiver that does not answer or answers too slowly (``timeout`` within the deadline), a
closed port (``refused``), an unknown name (``dns``) and TLS that fails (``tls``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from repo_daemon.deliveries import outbound, signing
from tests.support.webhook_receiver import Answer, GitHubReceiver, WebhookReceiver, server_tls

LOOPBACK = outbound.DestinationPolicy.from_cidrs(["127.0.0.0/8", "::1/128"])
Deliver = Callable[..., tuple[outbound.Outcome, dict[str, str], bytes]]


@pytest.fixture
def secret() -> str:
    return signing.new_secret()


@pytest.fixture
def sender() -> Iterator[outbound.Sender]:
    sender = outbound.Sender(LOOPBACK, timeout=5.0)
    yield sender
    sender.close()


@pytest.fixture
def receiver(secret: str) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret) as receiver:
        yield receiver


@pytest.fixture
def deliver(sender: outbound.Sender, secret: str) -> Deliver:
    counter = iter(range(1, 10_000))

    def deliver(
        url: str,
        *,
        using: outbound.Sender | None = None,
        secrets: list[str] | None = None,
        github: bool = False,
        sent_body: bytes | None = None,
    ) -> tuple[outbound.Outcome, dict[str, str], bytes]:
        number = next(counter)
        payload = {"id": f"evt_{number}", "type": "release.production", "sequence": number,
                   "data": {"ticket": 40 + number}}  # fmt: skip
        body = json.dumps(payload).encode()
        headers = signing.headers_for(
            webhook_id=f"msg_{number}", timestamp=datetime.now(UTC), body=body,
            secrets=secrets or [secret], github=github,
        )  # fmt: skip
        outcome = (using or sender).post(url, body if sent_body is None else sent_body, headers)
        return outcome, headers, body

    return deliver


def test_a_signed_delivery_verifies_with_the_official_library(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    outcome, headers, body = deliver(receiver.url)
    assert outcome.ok, outcome.error
    assert (outcome.status, outcome.error_class, outcome.error) == (204, None, None)
    assert outcome.duration > 0
    (receipt,) = receiver.wait_for(1)
    assert receipt.verified, receipt.problem
    assert receipt.webhook_id == headers["webhook-id"]
    assert receipt.payload == json.loads(body)
    assert receipt.headers["user-agent"] == signing.USER_AGENT
    assert receipt.path == "/hook"


def test_many_deliveries_from_threads_all_verify_over_few_connections(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: deliver(receiver.url)[0], range(40)))
    assert [o.error for o in outcomes if not o.ok] == []
    receipts = receiver.wait_for(40)
    assert all(r.verified for r in receipts)
    assert len({r.webhook_id for r in receipts}) == 40
    assert receiver.connections <= 4  # kept alive, one pool per thread


def test_during_a_rotation_a_receiver_with_either_secret_verifies(deliver: Deliver) -> None:
    new, old = signing.new_secret(), signing.new_secret()
    with WebhookReceiver(old) as before, WebhookReceiver(new) as after:
        for receiver in (before, after):
            outcome, _, _ = deliver(receiver.url, secrets=[new, old])
            assert outcome.ok, outcome.error
            assert receiver.wait_for(1)[0].verified


def test_the_github_receiver_checks_x_hub_signature_256(secret: str, deliver: Deliver) -> None:
    with GitHubReceiver(secret) as receiver:
        outcome, _, body = deliver(receiver.url, github=True)
        assert outcome.ok, outcome.error
        (receipt,) = receiver.wait_for(1)
        assert receipt.verified and receipt.payload == json.loads(body)

        outcome, _, _ = deliver(receiver.url, github=False)
        assert (outcome.status, outcome.error_class) == (401, outbound.ErrorClass.HTTP)
        assert receiver.wait_for(2)[1].problem == "no X-Hub-Signature-256 header"


@pytest.mark.parametrize("kind", [WebhookReceiver, GitHubReceiver])
def test_a_tampered_body_is_refused_by_the_receiver_and_reported_as_http(
    kind: type[WebhookReceiver], secret: str, deliver: Deliver
) -> None:
    with kind(secret) as receiver:
        outcome, _, body = deliver(receiver.url, github=True, sent_body=b'{"id": "forged"}')
        assert not outcome.ok
        assert outcome.status == 401
        assert outcome.error_class is outbound.ErrorClass.HTTP
        assert outcome.error == f"HTTP 401 from 127.0.0.1:{receiver.port}"
        assert outcome.body == b"signature not verified"
        (receipt,) = receiver.wait_for(1)
        assert not receipt.verified and receipt.payload is None
        assert receipt.body == b'{"id": "forged"}' != body


def test_retry_after_is_read_on_429_and_503_only(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    soon = format_datetime(datetime.fromtimestamp(time.time() + 90, UTC), usegmt=True)
    later = format_datetime(datetime.fromtimestamp(time.time() + 3 * 86400, UTC), usegmt=True)
    receiver.script(
        Answer(status=429, headers={"Retry-After": "120"}),
        Answer(status=503, headers={"Retry-After": soon}),
        Answer(status=503, headers={"Retry-After": later}),
        Answer(status=429, headers={"Retry-After": "soon, please"}),
        Answer(status=500, headers={"Retry-After": "30"}),
    )
    outcomes = [deliver(receiver.url)[0] for _ in range(5)]
    assert [o.status for o in outcomes] == [429, 503, 503, 429, 500]
    assert all(o.error_class is outbound.ErrorClass.HTTP for o in outcomes)
    assert outcomes[0].retry_after == 120.0
    assert outcomes[1].retry_after is not None and 80 <= outcomes[1].retry_after <= 90
    assert outcomes[2].retry_after == outbound.RETRY_AFTER_CAP
    assert outcomes[3].retry_after is None
    assert outcomes[4].retry_after is None


def test_a_redirect_is_not_followed(secret: str, deliver: Deliver) -> None:
    with WebhookReceiver(secret) as first, WebhookReceiver(secret) as target:
        first.script(Answer(status=307, headers={"Location": target.url}))
        outcome, _, _ = deliver(first.url)
        assert outcome.status == 307
        assert outcome.error_class is outbound.ErrorClass.HTTP
        assert outcome.error == (
            f"HTTP 307 from 127.0.0.1:{first.port}: a redirect to "
            f"http://127.0.0.1:{target.port}/…, not followed "
            "(deliveries never follow redirects; subscribe the final URL)"
        )
        assert len(first.wait_for(1)) == 1
        assert target.connections == 0


def test_a_long_answer_body_is_truncated_at_the_cap(
    secret: str, receiver: WebhookReceiver, deliver: Deliver
) -> None:
    capped = outbound.Sender(LOOPBACK, timeout=5.0, body_cap=100)
    try:
        receiver.script(Answer(status=200, body=b"x" * 100_000), Answer(status=200, body=b"ok"))
        outcome, _, _ = deliver(receiver.url, using=capped)
        assert outcome.ok and outcome.body == b"x" * 100
        outcome, _, _ = deliver(receiver.url, using=capped)
        assert outcome.ok and outcome.body == b"ok"
    finally:
        capped.close()


def test_a_receiver_that_does_not_answer_times_out_within_the_deadline(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    quick = outbound.Sender(LOOPBACK, timeout=0.5)
    try:
        receiver.script(Answer(hang=True))
        outcome, _, _ = deliver(receiver.url, using=quick)
        assert outcome.error_class is outbound.ErrorClass.TIMEOUT
        assert outcome.error == f"no complete answer from 127.0.0.1:{receiver.port} within 0.5 s"
        assert 0.45 <= outcome.duration < 2.0
        assert receiver.wait_for(1)[0].status is None  # it did arrive; no answer came
    finally:
        quick.close()


def test_the_deadline_bounds_the_whole_answer_not_each_read(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    # 200 bytes, one every 50 ms: each read is quick, the whole would take 10 s.
    quick = outbound.Sender(LOOPBACK, timeout=0.6)
    try:
        receiver.script(Answer(status=200, body=b"y" * 200, trickle=0.05))
        outcome, _, _ = deliver(receiver.url, using=quick)
        assert outcome.error_class is outbound.ErrorClass.TIMEOUT, outcome.error
        assert outcome.status == 200  # the status came; the body did not in time
        assert not outcome.ok
        assert 0.55 <= outcome.duration < 2.5
    finally:
        quick.close()


def test_a_closed_port_is_refused_and_the_same_port_serves_again(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    outcome, _, _ = deliver(receiver.url)
    assert outcome.ok
    receiver.stop()
    outcome, _, _ = deliver(receiver.url)
    assert outcome.error_class is outbound.ErrorClass.REFUSED
    assert outcome.error == f"connection refused by 127.0.0.1:{receiver.port}"
    receiver.start()
    outcome, _, _ = deliver(receiver.url)
    assert outcome.ok, outcome.error
    assert [r.verified for r in receiver.wait_for(2)] == [True, True]


def test_an_unknown_name_is_a_dns_failure(deliver: Deliver) -> None:
    outcome, _, _ = deliver("https://nonexistent.invalid/hook")
    assert outcome.error_class is outbound.ErrorClass.DNS
    assert outcome.error is not None
    assert outcome.error.startswith("the host name of nonexistent.invalid could not be resolved")


def test_https_to_a_plain_http_port_is_a_tls_failure(
    receiver: WebhookReceiver, deliver: Deliver
) -> None:
    outcome, _, _ = deliver(receiver.url.replace("http://", "https://"))
    assert outcome.error_class is outbound.ErrorClass.TLS
    assert outcome.error is not None and outcome.error.startswith(
        f"TLS with 127.0.0.1:{receiver.port} failed: "
    )
    assert receiver.receipts == []


def test_tls_checks_the_urls_host_not_the_address_connected_to(
    tmp_path: Path, secret: str, deliver: Deliver
) -> None:
    # A certificate for the name "localhost" only: the connection goes to 127.0.0.1, while
    # the server name and the certificate check stay "localhost".
    context, ca_file = server_tls(tmp_path, dns_names=("localhost",))
    trusting = outbound.Sender(LOOPBACK, timeout=5.0, ca_bundle=str(ca_file))
    try:
        with WebhookReceiver(secret, tls=context) as receiver:
            outcome, _, _ = deliver(receiver.url_for("localhost"), using=trusting)
            assert outcome.ok, outcome.error
            assert receiver.wait_for(1)[0].verified

            outcome, _, _ = deliver(receiver.url_for("127.0.0.1"), using=trusting)
            assert outcome.error_class is outbound.ErrorClass.TLS
            assert outcome.error is not None and "127.0.0.1" in outcome.error

            outcome, _, _ = deliver(receiver.url_for("localhost"))  # the system's CAs only
            assert outcome.error_class is outbound.ErrorClass.TLS
            assert outcome.error is not None and "certificate" in outcome.error
            assert len(receiver.receipts) == 1
            receiver.wait_until(lambda: receiver.tls_failures == 2, 10, "two failed handshakes")
    finally:
        trusting.close()
