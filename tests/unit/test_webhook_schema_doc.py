"""docs/notifications.md's payload section lists the envelope and every event kind with its
data's fields and version exactly as ``bridge.store.webhook_schema`` (the event catalogue and
``delivery_fanout.DATA_VERSIONS``) defines them, and shows an example body of each kind
subscribers want most."""

from __future__ import annotations

import json
import re
from datetime import datetime

from bridge.store import delivery_fanout, events, webhook_schema
from tests.support import paths


def payload_section() -> str:
    doc = (paths.DOCS / "notifications.md").read_text(encoding="utf-8")
    start = doc.index("<!-- section: payload -->\n") + len("<!-- section: payload -->\n")
    return doc[start : doc.index("<!-- end section: payload -->")]


def generated(name: str) -> str:
    section = payload_section()
    start = section.index(f"<!-- generated: {name} -->\n") + len(f"<!-- generated: {name} -->\n")
    return section[start : section.index(f"<!-- end generated: {name} -->")]


def test_every_kind_is_listed_with_its_fields_and_version() -> None:
    assert generated("kinds") == webhook_schema.kinds_markdown()


def test_the_envelope_is_listed_as_defined() -> None:
    assert generated("envelope") == webhook_schema.envelope_markdown()


def test_the_list_names_every_kind_once_subscribers_first() -> None:
    listed = re.findall(r"^- \*\*`(\w+)`\*\* v(\d+)", generated("kinds"), flags=re.M)
    assert sorted(k for k, _ in listed) == sorted(k.value for k in events.EventKind)
    first = [s.kind.value for s in webhook_schema.SUBSCRIBER_KINDS]
    assert [k for k, _ in listed][: len(first)] == first
    assert all(int(v) == delivery_fanout.DATA_VERSIONS.get(k, 1) for k, v in listed)


def test_the_envelope_is_what_body_of_makes() -> None:
    """``body_of`` of an event row has the envelope's keys and the common data fields."""
    row = {
        "id": 12, "kind": "slot_freed", "at": datetime(2026, 11, 24, 10, 15), "seq": 3,
        "ticket_id": 4321, "actor": "sr1", "cause": "hook", "major_release": "UMD-5",
    }  # fmt: skip
    body = json.loads(delivery_fanout.body_of(row, {"detail": "gave up the slot"}))
    assert list(body) == sorted(webhook_schema.ENVELOPE)
    assert set(body["data"]) == {*webhook_schema.COMMON_DATA, "detail"}
    assert body["id"] == "evt_12"
    assert body["timestamp"] == "2026-11-24T10:15:00.000000Z"


def test_each_subscriber_kind_has_an_example_with_its_documented_fields() -> None:
    found = {}
    for block in re.findall(r"```json\n(.*?)```", payload_section(), flags=re.S):
        body = json.loads(block)
        found[body["type"]] = body
    for subscriber in webhook_schema.SUBSCRIBER_KINDS:
        kind = subscriber.kind
        body = found[kind.value]
        assert list(body) == list(webhook_schema.ENVELOPE), kind
        assert body["id"].startswith("evt_")
        assert body["version"] == webhook_schema.version(kind)
        # Every field the kind documents is shown, and nothing else.
        assert set(body["data"]) == set(webhook_schema.data_fields(kind)), kind
