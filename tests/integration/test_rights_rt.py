"""Rights per role against a real RT 5, set up from the shipped initialdata, with real users in
real groups (tests/support/workflow_harness.py): who may file a release, who may change which
field, who sees a ticket, and the bridge's look-up of a user's groups.

RT 5.0 answers many refused changes with HTTP 200 and a message, so every attempt is read back
(as root) and must agree with what the client said: a change the client reports refused has
not happened, and one it reports done has.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx2
import pytest

from bridge import errors, secrets
from bridge.settings import model as settings_model
from bridge.tracker.client import TrackerClient
from tests.support.workflow_harness import Bridge, email_of, running_bridge

pytestmark = pytest.mark.rt

BRIDGE = "rollout-bridge"  # the bridge's own account (a token, in sw-rel-bridge)
RELEASE_XML = b'<?xml version="1.0"?>\n<Release><Name>rights-check</Name></Release>\n'
RELEASE_FIELDS = {
    "Sync-URL": "rsync://provider.example.org/mod/1/",
    "Sync-Protocol": "sftp",
    "AssociatedMajorRelease": "RIGHTS-1",
    "ReleaseType": "Incremental",
}
_values = itertools.count(1)


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("rights")) as running:
        yield running


@pytest.fixture(scope="module")
def service(bridge: Bridge) -> Iterator[TrackerClient]:
    """The bridge's account, as the daemon uses it."""
    with TrackerClient(bridge.settings.tracker) as client:
        yield client


def _file(bridge: Bridge, provider: str) -> int:
    return bridge.as_user(provider).create_ticket(
        "sw-rel",
        f"Release by {provider}",
        "Please publish.",
        custom_fields=RELEASE_FIELDS,
        requestors=[email_of(provider)],
        attachments=[("release.xml", RELEASE_XML, "application/xml")],
    )


@pytest.fixture(scope="module")
def tickets(bridge: Bridge) -> dict[str, int]:
    """A release filed by each provider."""
    return {name: _file(bridge, name) for name in ("provider1", "provider2")}


def _client(bridge: Bridge, service: TrackerClient, user: str) -> TrackerClient:
    return service if user == BRIDGE else bridge.as_user(user)


def _new_value(bridge: Bridge, ticket_id: int, field: str) -> str:
    """A value the field does not have yet, valid for it."""
    current = bridge.manager.get_ticket(ticket_id).field(field)
    choices = {
        "RolloutProgress": ("Unverified", "InVerification"),
        "EmergencyRelease": ("Yes", "No"),
        "ReleaseType": ("NonIncremental", "Incremental"),
        "Sync-Protocol": ("https", "rsync"),
    }.get(field)
    if choices:
        return choices[0] if current != choices[0] else choices[1]
    return f"https://example.org/check/{next(_values)}"


def _try_to_set(client: TrackerClient, bridge: Bridge, ticket_id: int, field: str) -> bool:
    """Whether ``field`` changed when the client set it; the client's word must agree."""
    value = _new_value(bridge, ticket_id, field)
    try:
        client.set_custom_fields(ticket_id, {field: value})
        said_done = True
    except (errors.TrackerRejected, errors.TrackerAuthFailed, errors.TrackerNotFound):
        said_done = False
    changed = bridge.manager.get_ticket(ticket_id).field(field) == value
    assert said_done == changed, f"the client said {said_done}, RT shows changed={changed}"
    return changed


# -- filing ----------------------------------------------------------------------------


def test_a_provider_files_a_release_with_its_fields_and_release_xml(
    bridge: Bridge, service: TrackerClient, tickets: dict[str, int]
) -> None:
    ticket = bridge.manager.get_ticket(tickets["provider1"])
    for field, value in RELEASE_FIELDS.items():
        assert ticket.field(field) == value, field
    assert ticket.field("RolloutProgress") == "Submitted"  # the queue's default
    assert [w.name for w in ticket.requestors] == ["provider1"]
    assert service.download_attachment(ticket.id, "release.xml").content == RELEASE_XML
    # The provider sees their own ticket (as its Requestor), fields included...
    own = bridge.as_user("provider1").get_ticket(ticket.id)
    assert own.field("Sync-URL") == RELEASE_FIELDS["Sync-URL"]
    # ...and not another provider's.
    with pytest.raises((errors.TrackerAuthFailed, errors.TrackerNotFound)):
        bridge.as_user("provider1").get_ticket(tickets["provider2"])


def test_a_provider_replies_on_their_own_ticket_only(
    bridge: Bridge, tickets: dict[str, int]
) -> None:
    provider = bridge.as_user("provider1")
    provider.reply(tickets["provider1"], "The mirror moved; Sync-URL updated.")
    with pytest.raises((errors.TrackerRejected, errors.TrackerAuthFailed)):
        provider.reply(tickets["provider2"], "Not my release.")


def test_an_outsider_sees_nothing_and_files_nothing(
    bridge: Bridge, tickets: dict[str, int]
) -> None:
    outsider = bridge.as_user("outsider1")
    with pytest.raises((errors.TrackerAuthFailed, errors.TrackerNotFound)):
        outsider.get_ticket(tickets["provider1"])
    with pytest.raises(errors.TrackerError):
        outsider.create_ticket("sw-rel", "Not a provider", "Please publish.")


# -- who changes which field -------------------------------------------------------------

CAN = [("provider1", "provider1", field, True) for field in RELEASE_FIELDS] + [
    ("provider1", "provider2", "Sync-URL", False),
    ("provider1", "provider1", "RolloutProgress", False),
    ("provider1", "provider1", "RepositoryURL", False),
    ("provider1", "provider1", "EmergencyRelease", False),
    ("provider1", "provider1", "QualityCriteria Verification Report", False),
    ("qc1", "provider1", "RolloutProgress", True),
    ("qc1", "provider1", "QualityCriteria Verification Report", True),
    ("qc1", "provider1", "RepositoryURL", False),
    ("qc1", "provider1", "RolloutHistory", False),
    ("qc1", "provider1", "EmergencyRelease", False),
    ("qc1", "provider1", "StageRollout Report", False),
    ("qc1", "provider1", "Sync-URL", False),
    ("sr1", "provider1", "RolloutProgress", True),
    ("sr1", "provider1", "StageRollout Report", True),
    ("sr1", "provider1", "QualityCriteria Verification Report", False),
    ("sr1", "provider1", "RepositoryURL", False),
    ("sr1", "provider1", "RolloutHistory", False),
    ("sr1", "provider1", "EmergencyRelease", False),
    ("manager1", "provider1", "EmergencyRelease", True),
    ("manager1", "provider1", "RolloutProgress", True),
    ("manager1", "provider1", "StageRollout Report", True),
    ("manager1", "provider1", "Sync-URL", True),
    ("manager1", "provider1", "RepositoryURL", False),
    ("manager1", "provider1", "RolloutHistory", False),
    ("outsider1", "provider1", "Sync-URL", False),
    ("outsider1", "provider1", "RolloutProgress", False),
    (BRIDGE, "provider1", "RepositoryURL", True),
    (BRIDGE, "provider1", "RolloutHistory", True),
    (BRIDGE, "provider1", "RolloutProgress", True),
    (BRIDGE, "provider1", "EmergencyRelease", True),
    (BRIDGE, "provider1", "QualityCriteria Verification Report", False),
]


@pytest.mark.parametrize(
    ("user", "filer", "field", "allowed"),
    CAN,
    ids=[f"{u}-{'own' if u == f else f}-{fld}-{'yes' if a else 'no'}" for u, f, fld, a in CAN],
)
def test_who_may_change_which_field(
    bridge: Bridge,
    service: TrackerClient,
    tickets: dict[str, int],
    user: str,
    filer: str,
    field: str,
    allowed: bool,
) -> None:
    client = _client(bridge, service, user)
    assert _try_to_set(client, bridge, tickets[filer], field) is allowed


# -- the bridge's account still does all it does ---------------------------------------


def test_the_bridge_comments_replies_and_sets_watchers_and_owner(
    bridge: Bridge, service: TrackerClient, tickets: dict[str, int]
) -> None:
    ticket_id = tickets["provider2"]
    service.comment(ticket_id, "Checked by the bridge.")
    service.reply(ticket_id, "Your release is being verified.")
    service.update_ticket(ticket_id, cc_groups=["sw-rel-qc"], owner="qc1")
    after = bridge.manager.get_ticket(ticket_id)
    assert after.cc_groups() == ("sw-rel-qc",)
    assert after.admin_cc_groups() == ()  # sw-rel-admin watches as the queue's AdminCc
    assert after.owner == "qc1"
    service.update_ticket(ticket_id, owner="sr1")  # SR may own tickets too
    assert bridge.manager.get_ticket(ticket_id).owner == "sr1"


# -- groups_of -------------------------------------------------------------------------


def test_groups_of_names_each_users_groups(bridge: Bridge, service: TrackerClient) -> None:
    assert service.groups_of("qc1") == {"sw-rel-qc"}
    assert service.groups_of("sr1") == {"sw-rel-sr"}
    assert service.groups_of("manager1") == {"sw-rel-admin"}
    assert service.groups_of("provider1") == {"sw-rel-providers"}
    assert service.groups_of("outsider1") == frozenset()
    assert service.groups_of("root") == {"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"}
    assert service.groups_of(BRIDGE) == {"sw-rel-bridge"}
    roles = ["sw-rel-qc", "sw-rel-sr", "sw-rel-admin", "sw-rel-providers"]
    before = service.round_trips["groups_of"]
    assert service.groups_of("root", among=roles) == {"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"}
    assert service.round_trips["groups_of"] - before == 1 + len(roles)  # names known by now
    with pytest.raises(errors.TrackerNotFound):
        service.groups_of("nobody-by-that-name")


def test_groups_of_counts_members_of_a_nested_group(bridge: Bridge, service: TrackerClient) -> None:
    # A team group inside sw-rel-qc: RT gives its members QC's rights, and so does the bridge.
    info = bridge.info
    with httpx2.Client(
        base_url=info.rest_url, auth=(info.root_user, info.root_password), timeout=20
    ) as root:
        team = root.post("group", json={"Name": "qc-team-rights"}).json()["id"]
        root.post("user", json={"Name": "teamqc1", "EmailAddress": "teamqc1@example.org"})
        user_id = root.get("user/teamqc1").json()["id"]
        assert root.put(f"group/{team}/members", json=[int(user_id)]).is_success
        qc = root.post("groups", json=[{"field": "Name", "value": "sw-rel-qc"}]).json()
        assert root.put(f"group/{qc['items'][0]['id']}/members", json=[int(team)]).is_success
    assert service.groups_of("teamqc1") == {"qc-team-rights", "sw-rel-qc"}
    assert service.groups_of("teamqc1", among=["sw-rel-qc", "sw-rel-sr"]) == {"sw-rel-qc"}
    # A new client knows no group names yet: one search finds those asked about.
    with TrackerClient(
        settings_model.TrackerSettings(url=info.web_url, token=secrets.Secret(info.bridge_token()))
    ) as fresh:
        assert fresh.groups_of("teamqc1", among=["sw-rel-qc"]) == {"sw-rel-qc"}
        # the user, the search, sw-rel-qc, and qc-team-rights nested in it
        assert fresh.round_trips["groups_of"] == 4
