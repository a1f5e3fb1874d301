"""A ping: the deliveries' envelope with type ping, signed with every secret that signs now
(both during a rotation's overlap), posted once; its answer judged (2xx only) and said in one
line; a disabled subscription that answers 2xx is enabled, one that does not stays disabled."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from bridge.store import database, subscription_store
from repo_daemon.deliveries import ping
from tests.support.delivery_story import T0, Clock

HAS_SIGNING = importlib.util.find_spec("repo_daemon.deliveries.signing") is not None


@dataclass(frozen=True, kw_only=True)
class FakeOutcome:
    status: int | None
    body: bytes = b""
    duration: float = 0.02
    error_class: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_class is None and self.status is not None and 200 <= self.status < 300


class FakeSender:
    def __init__(self, *answers: FakeOutcome) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> FakeOutcome:
        self.posts.append((url, body, dict(headers)))
        return self.answers.pop(0)


def fake_sign(**kw: Any) -> dict[str, str]:
    return {"webhook-id": kw["webhook_id"], "x-secrets": ",".join(kw["secrets"]),
            "x-github": str(kw["github"]), "x-ts": kw["timestamp"].isoformat()}  # fmt: skip


@pytest.fixture
def subs() -> subscription_store.SubscriptionStore:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(engine)
    return subscription_store.SubscriptionStore(engine, clock=Clock())


def _add(subs: subscription_store.SubscriptionStore, *, enabled: bool, github: bool = False) -> str:
    spec = subscription_store.Spec(url="https://hooks.example.org/x", github_signature=github)
    return subs.add("s", spec, actor="op", enabled=enabled)[1]


def test_the_body_is_the_envelope_of_type_ping_signed_with_both_secrets_while_they_overlap(
    subs: subscription_store.SubscriptionStore,
) -> None:
    first = _add(subs, enabled=True, github=True)
    sub, second = subs.rotate_secret("s", actor="op", overlap=3600)
    sender = FakeSender(FakeOutcome(status=204))
    result = ping.ping(sub, sender=sender, now=subs.clock(), sign=fake_sign)
    ((url, body, headers),) = sender.posts
    payload = json.loads(body)
    assert url == "https://hooks.example.org/x"
    assert payload == {
        "id": result.webhook_id, "type": "ping", "version": 1,
        "timestamp": "2026-12-06T12:00:00.000000Z", "sequence": None,
        "data": {"subscription": "s"},
    }  # fmt: skip
    assert result.webhook_id.startswith("ping_") and headers["webhook-id"] == result.webhook_id
    assert headers["x-secrets"] == f"{second},{first}" and headers["x-github"] == "True"
    assert headers["x-ts"].endswith("+00:00")  # aware UTC, as signing requires
    after = ping.ping(sub, sender=FakeSender(FakeOutcome(status=200)),
                      now=subs.clock() + timedelta(hours=2), sign=fake_sign)  # fmt: skip
    assert after.ok  # (past the overlap only the new secret signs: Subscription's rule)
    assert sub.signing_secrets(subs.clock() + timedelta(hours=2)) == (second,)


@pytest.mark.parametrize(
    ("outcome", "ok", "said"),
    [
        (FakeOutcome(status=204, duration=0.012), True, "answered 204 in 12 ms"),
        (FakeOutcome(status=500, error_class="http", error="HTTP 500"), False,
         "answered 500 (HTTP 500)"),
        (FakeOutcome(status=None, error_class="refused", error="127.0.0.1:9 refused"), False,
         "refused: 127.0.0.1:9 refused"),
        (FakeOutcome(status=200, error_class="timeout", error="body cut"), False,
         "answered 200 (body cut)"),
    ],
    ids=["2xx", "500", "refused", "2xx-but-cut"],
)  # fmt: skip
def test_only_a_complete_2xx_is_ok_and_the_answer_is_said_in_one_line(
    subs: subscription_store.SubscriptionStore, outcome: FakeOutcome, ok: bool, said: str
) -> None:
    _add(subs, enabled=True)
    result = ping.ping(subs.get("s"), sender=FakeSender(outcome), now=T0, sign=fake_sign)
    assert (result.ok, result.describe()) == (ok, said)


def test_a_disabled_subscription_is_enabled_by_a_2xx_only(
    subs: subscription_store.SubscriptionStore,
) -> None:
    _add(subs, enabled=False)
    failed, sub = ping.ping_and_enable(
        subs, "s", sender=FakeSender(FakeOutcome(status=503)), actor="ada", sign=fake_sign
    )
    assert not failed.ok and not sub.enabled
    assert sub.disabled_reason == "waiting for a ping to be answered"
    good, sub = ping.ping_and_enable(
        subs, "s", sender=FakeSender(FakeOutcome(status=200)), actor="ada", sign=fake_sign
    )
    assert good.ok and sub.enabled and subs.get("s").enabled


@pytest.mark.skipif(not HAS_SIGNING, reason="repo_daemon.deliveries.signing is not merged yet")
def test_with_the_real_signing_the_official_library_verifies_the_ping(
    subs: subscription_store.SubscriptionStore,
) -> None:
    import standardwebhooks

    secret = _add(subs, enabled=True)
    sender = FakeSender(FakeOutcome(status=204))
    ping.ping(subs.get("s"), sender=sender, now=datetime.now(UTC).replace(tzinfo=None))
    ((_url, body, headers),) = sender.posts
    verified = standardwebhooks.Webhook(secret).verify(body, headers)
    assert verified["type"] == "ping" and verified["data"] == {"subscription": "s"}
