"""The scale benchmark's tracker stand-in (``benchmarks/tracker_standin.py``) answers the
product's own tracker client as RT does for the calls the daemon makes: a drift between the
client and the stand-in fails here, not as a puzzling benchmark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.tracker_standin import TrackerStandIn
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker.client import TrackerClient

XML = b'<?xml version="1.0"?>\n<Release>\x00 byte-exact \xe2\x9c\x93</Release>\n'
FIELDS = {"RolloutProgress": "Submitted", "RolloutHistory": [], "EarlyAdopters": []}


@pytest.fixture
def stand_in() -> Iterator[TrackerStandIn]:
    with TrackerStandIn(members={"sw-rel-qc": ["manager"], "sw-rel-sr": ["manager"]}) as s:
        s.add_ticket(7, FIELDS, attachment=("release.xml", XML, "application/xml"))
        yield s


@pytest.fixture
def client(stand_in: TrackerStandIn) -> Iterator[TrackerClient]:
    with TrackerClient(TrackerSettings(url=stand_in.url, token=Secret("1-2-x"))) as c:
        yield c


def test_the_client_reads_the_ticket_and_its_attachment_byte_exact(
    stand_in: TrackerStandIn, client: TrackerClient
) -> None:
    ticket = client.get_ticket(7)
    assert ticket.queue == "sw-rel"
    assert ticket.field("RolloutProgress") == "Submitted"
    assert client.download_attachment(7, "release.xml").content == XML
    assert client.newest_attachment_id(7, "release.xml") is not None


def test_a_change_of_fields_and_watcher_groups_is_applied_and_not_refused(
    stand_in: TrackerStandIn, client: TrackerClient
) -> None:
    messages = client.update_ticket(
        7,
        custom_fields={"RolloutProgress": "Unverified", "RolloutHistory": ["a", "b"]},
        cc_groups=["sw-rel-qc"],
    )
    assert "RolloutProgress Submitted changed to Unverified" in messages
    ticket = client.get_ticket(7)
    assert ticket.custom_fields["RolloutHistory"] == ("a", "b")
    assert [(w.kind, w.name) for w in ticket.cc] == [("group", "sw-rel-qc")]
    client.comment(7, "said", status="resolved")
    assert stand_in.tickets[7].comments == 1
    assert client.get_ticket(7).status == "resolved"


def test_group_membership_and_field_ids_answer_as_rt_does(client: TrackerClient) -> None:
    roles = ["sw-rel-qc", "sw-rel-sr", "sw-rel-admin"]
    assert client.groups_of("manager", among=roles) == {"sw-rel-qc", "sw-rel-sr"}
    assert client.groups_of("provider", among=roles) == frozenset()
    assert set(client.custom_field_ids(["RolloutProgress", "Nope"], "sw-rel")) == {
        "RolloutProgress"
    }


def test_every_call_is_timed_and_an_unknown_one_is_recorded(
    stand_in: TrackerStandIn, client: TrackerClient
) -> None:
    client.get_ticket(7)
    assert [c.route for c in stand_in.calls] == ["GET ticket/:id"]
    assert stand_in.calls[0].ticket_id == 7 and stand_in.calls[0].seconds > 0
    client._rt.session.get(stand_in.url + "REST/2.0/asset/1")
    assert stand_in.unhandled == ["GET asset/1"]
