"""``ensure_rights`` against a rights page that behaves like RT 5.0's ``EditRights`` form (a
save sets each pair named in ``CheckACL`` to exactly the boxes sent): the repair of an older
set-up (grant what is missing, revoke exactly the retired rights), roles found by their tab,
one save per object, and RT's refusals. The real pages are exercised in
tests/integration/test_tracker_init.py."""

from __future__ import annotations

import html
from urllib.parse import parse_qs

import httpx2
import pytest

from bridge import errors
from bridge.rt_setup.web_admin import WebAdmin
from bridge.rt_setup.web_rights import RightsObject

OFFERED = (
    "SeeQueue", "ShowTicket", "ModifyCustomField", "ModifyTicket", "DeleteTicket", "ReplyToTicket",
)  # fmt: skip
TABS = [(3, "Everyone"), (36, "Requestor"), (27, "sw-rel-qc"), (29, "sw-rel-production")]


class RightsPage:
    """The queue's rights page of a fake RT: principal id -> the rights checked."""

    def __init__(self, rights: dict[int, set[str]], *, obeys: bool = True) -> None:
        self.rights = rights
        self.obeys = obeys  # False: RT answers the save but changes nothing
        self.requests: list[httpx2.Request] = []
        self.saves: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.url.path == "/rt/Admin/Queues/GroupRights.html"
        if request.method == "POST":
            sent = parse_qs(request.content.decode(), keep_blank_values=True)
            self.saves.append(sent)
            if self.obeys:
                for pair in sent.get("CheckACL", []):
                    principal = int(pair.split("-", 1)[0])
                    self.rights[principal] = set(sent.get(f"SetRights-{pair}", []))
        return httpx2.Response(200, text=self.html())

    def html(self) -> str:
        tabs = "".join(f'<li><a href="#acl-{i}">{html.escape(n)}</a></li>' for i, n in TABS)
        boxes = "".join(
            f'<input type="checkbox" name="SetRights-{i}-RT::Queue-3" value="{right}"'
            f"{' checked' if right in self.rights.get(i, set()) else ''} />"
            for i, _ in TABS
            for right in OFFERED
        )
        return (
            '<form id="ModifyGroupRights" method="post"><input type="hidden" name="id" '
            f'value="3" /><ul><li class="category">System</li>{tabs}</ul>{boxes}</form>'
        )


def _admin(page: RightsPage) -> WebAdmin:
    return WebAdmin(
        "https://rt.example.org/rt", "admin", "pw", timeout=5, transport=httpx2.MockTransport(page)
    )


QUEUE = RightsObject.queue(3)


def test_an_older_set_up_is_repaired_exactly() -> None:
    # An older version granted ModifyCustomField on the queue; the operator added DeleteTicket
    # to QC, and ModifyCustomField to sw-rel-production, which the product never did.
    page = RightsPage(
        {
            27: {"SeeQueue", "ShowTicket", "ModifyCustomField", "DeleteTicket"},
            29: {"SeeQueue", "ModifyCustomField"},
        }
    )
    admin = _admin(page)
    changes = admin.ensure_rights(
        QUEUE,
        {27: ["SeeQueue", "ShowTicket", "ReplyToTicket"], "Requestor": ["ShowTicket"]},
        {27: ["ModifyCustomField"]},
    )
    assert changes[27].describe() == "granted ReplyToTicket; revoked ModifyCustomField"
    assert changes["Requestor"].describe() == "granted ShowTicket"
    assert page.rights[27] == {"SeeQueue", "ShowTicket", "ReplyToTicket", "DeleteTicket"}
    assert page.rights[36] == {"ShowTicket"}  # the role's tab
    assert page.rights[29] == {"SeeQueue", "ModifyCustomField"}  # not named: untouched
    (save,) = page.saves
    assert sorted(save["CheckACL"]) == ["27-RT::Queue-3", "36-RT::Queue-3"]
    assert save["id"] == ["3"]
    # read, save, read back
    assert [r.method for r in page.requests] == ["GET", "POST", "GET"]

    again = admin.ensure_rights(
        QUEUE,
        {27: ["SeeQueue", "ShowTicket", "ReplyToTicket"], "Requestor": ["ShowTicket"]},
        {27: ["ModifyCustomField"]},
    )
    assert not any(again.values())
    assert len(page.requests) == 4  # one read, no save
    admin.close()


def test_a_retired_right_the_principal_still_wants_is_kept() -> None:
    page = RightsPage({27: {"ModifyCustomField"}})
    admin = _admin(page)
    changes = admin.ensure_rights(QUEUE, {27: ["ModifyCustomField"]}, {27: ["ModifyCustomField"]})
    assert not changes[27]
    assert page.rights[27] == {"ModifyCustomField"}
    admin.close()


def test_a_save_rt_ignores_is_an_error_naming_what_is_left() -> None:
    page = RightsPage({27: {"ModifyCustomField"}}, obeys=False)
    admin = _admin(page)
    with pytest.raises(errors.TrackerRejected, match="still ModifyCustomField"):
        admin.ensure_rights(QUEUE, {27: ["SeeQueue"]}, {27: ["ModifyCustomField"]})
    admin.close()


def test_unknown_rights_and_roles_are_refused_before_saving() -> None:
    page = RightsPage({})
    admin = _admin(page)
    with pytest.raises(errors.TrackerRejected, match="no right named SeeEverything"):
        admin.ensure_rights(QUEUE, {27: ["SeeQueue", "SeeEverything"]})
    with pytest.raises(errors.TrackerRejected, match="no role 'Approver'"):
        admin.ensure_rights(QUEUE, {"Approver": ["ShowTicket"]})
    assert page.saves == []
    admin.close()
