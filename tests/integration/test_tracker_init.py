"""``rollout tracker init`` against a real, bare RT 5: it builds the whole set-up, a second run
changes nothing, and a run after a hand-made change repairs exactly that change.

The RT here is this module's own sandbox without the initialdata (no queue, fields, groups,
rights or scrip) and with RT's CSRF check switched on, as on a production RT. Everything is
read back through REST2 or the web pages with clients of the test's own (not the code under
test), and the scrip is shown to work by the hook it posts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from standardwebhooks.webhooks import Webhook

from bridge import errors, rt_setup
from bridge.rt_setup import apply, early_adopters
from bridge.rt_setup.sandbox import Sandbox, SandboxInfo
from bridge.rt_setup.web_admin import WebAdmin
from bridge.secrets import Secret
from bridge.settings.model import EarlyAdopterTeam, TrackerSettings
from repo_daemon.cli import main
from tests.support.hook_listener import HookListener, ReceivedHook

pytestmark = pytest.mark.rt

QUEUE = "sw-rel"
# The set-up with the settings' default early adopters (the one global group as a team).
FIELDS = early_adopters.custom_fields()
GROUPS = early_adopters.groups()
DEFAULTS = {cf.name: cf.default for cf in FIELDS if cf.default is not None}


@dataclass(frozen=True)
class BareRT:
    info: SandboxInfo
    hooks: HookListener

    @property
    def settings(self) -> TrackerSettings:
        return TrackerSettings(
            url=self.info.web_url,
            user=self.info.root_user,
            password=Secret(self.info.root_password),
        )


@pytest.fixture(scope="module")
def bare_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareRT]:
    hooks = HookListener()
    root: Path = tmp_path_factory.mktemp("rt-bare")
    # The sandbox turns RT's CSRF check off; a production RT has it on. Site config files in
    # RT_SiteConfig.d are read after the sandbox's RT_SiteConfig.pm.
    (root / "RT_SiteConfig.d").mkdir()
    (root / "RT_SiteConfig.d" / "restrict-referrer.pm").write_text(
        "Set($RestrictReferrer, 1);\n1;\n", encoding="utf-8"
    )
    box = Sandbox(root, apply_setup=False, bridge_url=hooks.url)
    try:
        yield BareRT(box.up(), hooks)
    finally:
        box.down()
        hooks.close()


@pytest.fixture(scope="module")
def first_report(bare_rt: BareRT) -> apply.SetupReport:
    """The first ``tracker init`` on the bare RT; the tests below read what it left."""
    return apply.apply_setup(bare_rt.settings, QUEUE)


@pytest.fixture
def rest(bare_rt: BareRT) -> Iterator[httpx2.Client]:
    """REST2 as root (basic auth)."""
    info = bare_rt.info
    with httpx2.Client(
        base_url=info.rest_url, auth=(info.root_user, info.root_password), timeout=30
    ) as client:
        yield client


@pytest.fixture
def web(bare_rt: BareRT) -> Iterator[httpx2.Client]:
    """RT's web pages as root, logged in through the form (a browser of the test's own)."""
    info = bare_rt.info
    with httpx2.Client(
        base_url=info.web_url,
        timeout=30,
        follow_redirects=True,
        headers={"Referer": info.web_url},
    ) as client:
        client.post(
            "NoAuth/Login.html",
            data={"user": info.root_user, "pass": info.root_password, "next": ""},
        )
        assert client.get("Helpers/ShortcutHelp").url.path.endswith("ShortcutHelp")
        yield client


# -- reading RT back, independently of bridge.rt_setup.web_admin ---------------------------


def _queue_id(rest: httpx2.Client) -> int:
    found = rest.get(f"queue/{QUEUE}")
    assert found.status_code == 200, f"queue {QUEUE} missing"
    return int(found.json()["id"])


def _group_ids(rest: httpx2.Client) -> dict[str, int]:
    ids = {}
    for spec in GROUPS:
        items = rest.post(
            "groups",
            json=[
                {"field": "Name", "value": spec.name},
                {"field": "Domain", "value": "UserDefined"},
            ],
            params={"fields": "Name"},
        ).json()["items"]
        matching = [int(i["id"]) for i in items if i["Name"] == spec.name]
        assert len(matching) == 1, f"group {spec.name}: {items}"
        ids[spec.name] = matching[0]
    return ids


def _group_ids_named(rest: httpx2.Client, names: list[str]) -> dict[str, int]:
    found = rest.post(
        "groups", json=[{"field": "Name", "operator": "IN", "value": names}],
        params={"fields": "Name"},
    ).json()["items"]  # fmt: skip
    return {i["Name"]: int(i["id"]) for i in found}


def _field_ids(rest: httpx2.Client) -> dict[str, int]:
    """Name -> id of the ticket custom fields applied to the queue."""
    items = rest.get(
        f"queue/{_queue_id(rest)}/customfields", params={"per_page": 100, "fields": "Name"}
    ).json()["items"]
    return {i["Name"]: int(i["id"]) for i in items}


def _checked_rights(web: httpx2.Client, path: str, pair: str, **params: Any) -> set[str]:
    """The rights checked for ``<principal>-<class>-<object>`` on an RT rights page."""
    page = web.get(path, params=params).text
    rights = set()
    for tag in re.findall(r"<input\b[^>]*>", page):
        if f'name="SetRights-{pair}"' in tag and re.search(r"\schecked\b", tag):
            value = re.search(r'value="([^"]*)"', tag)
            assert value is not None
            rights.add(html.unescape(value.group(1)))
    return rights


def _role_id(web: httpx2.Client, path: str, role: str, **params: Any) -> int:
    """The principal id of ``role`` on an RT rights page: its tab under "Roles"."""
    page = web.get(path, params=params).text
    roles = page.split('<li class="category">Roles</li>', 1)[1].split('class="category"', 1)[0]
    found = re.search(rf'href="#acl-(\d+)"[^>]*>\s*{re.escape(role)}\s*</a>', roles)
    assert found is not None, f"no role {role} on {path}"
    return int(found.group(1))


def _scrip_ids(web: httpx2.Client, queue_id: int) -> list[int]:
    """The scrips called SCRIP_DESCRIPTION listed on the queue's scrip page."""
    page = web.get("Admin/Queues/Scrips.html", params={"id": queue_id}).text
    links = re.findall(
        r'<a href="[^"]*/Admin/Scrips/Modify\.html\?id=(\d+)[^"]*">([^<]*)</a>', page
    )
    return sorted(
        {int(i) for i, text in links if html.unescape(text.strip()) == rt_setup.SCRIP_DESCRIPTION}
    )


def _scrip_code(web: httpx2.Client, scrip_id: int, field: str) -> str:
    page = web.get("Admin/Scrips/Modify.html", params={"id": scrip_id}).text
    found = re.search(rf'<textarea[^>]*name="{field}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def _scrip_enabled(web: httpx2.Client, scrip_id: int) -> bool:
    page = web.get("Admin/Scrips/Modify.html", params={"id": scrip_id}).text
    box = re.search(r'<input[^>]*name="Enabled"[^>]*>', page)
    assert box is not None
    return 'checked="checked"' in box.group(0)


def _new_ticket(rest: httpx2.Client, subject: str) -> int:
    created = rest.post("ticket", json={"Queue": QUEUE, "Subject": subject})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _field_values(rest: httpx2.Client, ticket_id: int) -> dict[str, list[str]]:
    ticket = rest.get(f"ticket/{ticket_id}").json()
    return {cf["name"]: list(cf["values"]) for cf in ticket["CustomFields"]}


def _hook_for(ticket_id: int, current: str) -> Any:
    def match(hook: ReceivedHook) -> bool:
        body = hook.json()
        return bool(body["ticket_id"] == ticket_id and body["current"] == current)

    return match


def _move(rest: httpx2.Client, bare_rt: BareRT, ticket_id: int, state: str) -> ReceivedHook:
    """Set RolloutProgress and return the hook the scrip posted about it."""
    said = rest.put(f"ticket/{ticket_id}", json={"CustomFields": {"RolloutProgress": state}})
    assert said.status_code == 200 and any("RolloutProgress" in m for m in said.json()), said.text
    hook = bare_rt.hooks.wait_for(_hook_for(ticket_id, state))
    Webhook(bare_rt.info.hook_secret()).verify(hook.body, dict(hook.headers))
    return hook


def _changes(report: apply.SetupReport) -> list[tuple[str, str, str]]:
    return [item for item in report.items if item[2] != apply.UNCHANGED]


# -- the first run ----------------------------------------------------------------------


def test_first_run_creates_everything(first_report: apply.SetupReport) -> None:
    outcomes = {(kind, name): outcome for kind, name, outcome in first_report.items}
    assert first_report.complete and first_report.changed
    assert outcomes[("queue", QUEUE)] == "created"
    for cf in FIELDS:
        assert outcomes[("custom field", cf.name)] == "created"
    for group in GROUPS:
        assert outcomes[("group", group.name)] == "created"
    for grant in rt_setup.grants(GROUPS, FIELDS):
        granted = ", ".join(grant.rights)
        assert (
            outcomes[("rights", f"{grant.who} on {grant.where}")] == f"updated (granted {granted})"
        )
    for name, value in DEFAULTS.items():
        assert outcomes[("default", f"{name}={value}")] == "updated"
    assert outcomes[("scrip", QUEUE)] == "created"
    assert outcomes[("queue watcher", "AdminCc sw-rel-admin")] == "created"
    assert len(outcomes) == len(first_report.items)  # every item once


def test_release_managers_watch_every_ticket_of_the_queue(
    first_report: apply.SetupReport, rest: httpx2.Client
) -> None:
    # A queue AdminCc: new submissions reach sw-rel-admin before the bridge has done anything.
    found = rest.get(f"queue/{_queue_id(rest)}").json()
    admin_cc = {str(m["id"]) for m in found.get("AdminCc", [])}
    assert str(_group_ids(rest)["sw-rel-admin"]) in admin_cc


def test_fields_with_their_values_are_applied_to_the_queue(
    first_report: apply.SetupReport, rest: httpx2.Client
) -> None:
    ids = _field_ids(rest)
    assert set(ids) == {cf.name for cf in FIELDS}
    for cf in FIELDS:
        found = rest.get(f"customfield/{ids[cf.name]}").json()
        assert (found["Type"], found["MaxValues"]) == (cf.rt_type, str(cf.max_values)), cf.name
        assert found["LookupType"] == "RT::Queue-RT::Ticket"
        assert found.get("Values", []) == list(cf.values), cf.name


def test_groups_and_roles_have_exactly_their_rights(
    first_report: apply.SetupReport, rest: httpx2.Client, web: httpx2.Client
) -> None:
    queue_id, groups, fields = _queue_id(rest), _group_ids(rest), _field_ids(rest)
    seen = set()
    for grant in rt_setup.grants(GROUPS, FIELDS):
        path, params, obj = {
            rt_setup.QUEUE: (
                "Admin/Queues/GroupRights.html",
                {"id": queue_id},
                f"RT::Queue-{queue_id}",
            ),
            rt_setup.SYSTEM: ("Admin/Global/GroupRights.html", {}, "RT::System-1"),
            rt_setup.FIELD: (
                "Admin/CustomFields/GroupRights.html",
                {"id": fields.get(grant.field or "", 0)},
                f"RT::CustomField-{fields.get(grant.field or '', 0)}",
            ),
        }[grant.target]
        who = (
            _role_id(web, path, grant.principal, **params)
            if grant.role
            else groups[grant.principal]
        )
        assert _checked_rights(web, path, f"{who}-{obj}", **params) == set(grant.rights), (
            f"{grant.who} on {grant.where}"
        )
        seen.add((who, obj))
    # No other group has rights on a field or the queue (the system groups and roles of a
    # bare RT have none there either).
    for name, cf_id in fields.items():
        page = web.get("Admin/CustomFields/GroupRights.html", params={"id": cf_id}).text
        holders = set(
            re.findall(rf'name="SetRights-(\d+)-RT::CustomField-{cf_id}"[^>]*\schecked\b', page)
        )
        assert {int(h) for h in holders} == {
            w for w, o in seen if o == f"RT::CustomField-{cf_id}"
        }, name


def test_the_rights_work_for_a_member_of_a_group(
    first_report: apply.SetupReport, rest: httpx2.Client, bare_rt: BareRT
) -> None:
    ticket_id = _new_ticket(rest, "Seen by QC")
    user = {"Name": "qc-tester", "Password": "qc-tester-pw-1", "Privileged": 1}
    assert rest.post("user", json={**user, "EmailAddress": "qc@example.org"}).status_code == 201
    user_id = int(rest.get("user/qc-tester").json()["id"])
    with httpx2.Client(
        base_url=bare_rt.info.rest_url, auth=("qc-tester", "qc-tester-pw-1"), timeout=30
    ) as qc:
        assert qc.get(f"ticket/{ticket_id}").status_code == 403  # no group yet, no rights
        qc_group = _group_ids(rest)["sw-rel-qc"]
        assert rest.put(f"group/{qc_group}/members", json=[user_id]).status_code == 200
        seen = qc.get(f"ticket/{ticket_id}")
        assert seen.status_code == 200
        fields = {cf["name"]: cf["values"] for cf in seen.json()["CustomFields"]}
        assert fields["RolloutProgress"] == ["Submitted"]  # SeeCustomField


def test_new_tickets_get_the_default_values(
    first_report: apply.SetupReport, rest: httpx2.Client
) -> None:
    ticket_id = _new_ticket(rest, "Release without fields")
    values = _field_values(rest, ticket_id)
    assert values["RolloutProgress"] == ["Submitted"]
    assert values["EmergencyRelease"] == ["No"]
    assert values["Sync-Protocol"] == ["rsync"]
    assert {name: values[name] for name in DEFAULTS} == {k: [v] for k, v in DEFAULTS.items()}


def test_the_scrip_posts_a_signed_hook_when_rolloutprogress_changes(
    first_report: apply.SetupReport, rest: httpx2.Client, bare_rt: BareRT
) -> None:
    ticket_id = _new_ticket(rest, "Release that moves")
    hook = _move(rest, bare_rt, ticket_id, "Unverified")
    body = hook.json()
    assert hook.path == "/hooks/rt"
    assert (body["previous"], body["current"], body["actor"]) == ("Submitted", "Unverified", "root")
    assert body["emergency"] is False


# -- idempotency and repairs --------------------------------------------------------------


def test_a_second_run_changes_nothing(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    report = apply.apply_setup(bare_rt.settings, QUEUE)
    assert not report.changed and report.complete
    assert _changes(report) == []
    assert [item[:2] for item in report.items] == [item[:2] for item in first_report.items]
    assert len(_scrip_ids(web, _queue_id(rest))) == 1


def test_a_revoked_right_is_granted_again_and_nothing_else_changes(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    queue_id, group_id = _queue_id(rest), _group_ids(rest)["sw-rel-qc"]
    pair = f"{group_id}-RT::Queue-{queue_id}"
    before = _checked_rights(web, "Admin/Queues/GroupRights.html", pair, id=queue_id)
    kept = sorted(before - {"ShowTicket"})
    web.post(
        "Admin/Queues/GroupRights.html",
        data={"id": str(queue_id), "CheckACL": pair, f"SetRights-{pair}": kept},
    )
    assert _checked_rights(web, "Admin/Queues/GroupRights.html", pair, id=queue_id) == set(kept)

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert _changes(report) == [("rights", "sw-rel-qc on queue", "updated (granted ShowTicket)")]
    assert _checked_rights(web, "Admin/Queues/GroupRights.html", pair, id=queue_id) == before


def test_an_older_set_up_loses_exactly_the_retired_grant(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    """Up to issue 13 the worker groups, the bridge and the early-adopter team changed fields
    through ModifyCustomField on the queue. Init takes exactly that away; what an operator
    granted stays."""
    queue_id, groups = _queue_id(rest), _group_ids(rest)
    path = "Admin/Queues/GroupRights.html"
    older = {"sw-rel-qc", "sw-rel-sr", "sw-rel-admin", "sw-rel-bridge", "sw-rel-early-adopters"}
    operators = {"sw-rel-qc": "DeleteTicket", "sw-rel-production": "ModifyCustomField"}
    before = {}
    data: dict[str, list[str]] = {"id": [str(queue_id)], "CheckACL": []}
    for name in older | set(operators):
        pair = f"{groups[name]}-RT::Queue-{queue_id}"
        before[name] = _checked_rights(web, path, pair, id=queue_id)
        extra = {"ModifyCustomField"} if name in older else set()
        extra |= {operators[name]} if name in operators else set()
        data["CheckACL"].append(pair)
        data[f"SetRights-{pair}"] = sorted(before[name] | extra)
    web.post(path, data=data)
    qc_pair = f"{groups['sw-rel-qc']}-RT::Queue-{queue_id}"
    assert "ModifyCustomField" in _checked_rights(web, path, qc_pair, id=queue_id)

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert sorted(_changes(report)) == sorted(
        ("rights", f"{name} on queue", "updated (revoked ModifyCustomField)") for name in older
    )
    for name in older | set(operators):
        now = _checked_rights(web, path, f"{groups[name]}-RT::Queue-{queue_id}", id=queue_id)
        assert now == before[name] | ({operators[name]} if name in operators else set()), name
    assert _changes(apply.apply_setup(bare_rt.settings, QUEUE)) == []

    # Put the operator's grants back as they were, for the tests after this one.
    data = {"id": [str(queue_id)], "CheckACL": []}
    for name in operators:
        pair = f"{groups[name]}-RT::Queue-{queue_id}"
        data["CheckACL"].append(pair)
        data[f"SetRights-{pair}"] = sorted(before[name])
    web.post(path, data=data)


def test_edited_scrip_code_is_put_back(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    (scrip_id,) = _scrip_ids(web, _queue_id(rest))
    web.post(
        "Admin/Scrips/Modify.html",
        data={"id": str(scrip_id), "CustomCommitCode": "return 1;", "Update": "1"},
    )
    assert _scrip_code(web, scrip_id, "CustomCommitCode") == "return 1;"

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert _changes(report) == [("scrip", QUEUE, "updated (code)")]
    assert _scrip_code(web, scrip_id, "CustomCommitCode").strip() == (
        rt_setup.scrip_code("action").strip()
    )
    assert _scrip_ids(web, _queue_id(rest)) == [scrip_id]
    ticket_id = _new_ticket(rest, "Release after the repair")
    assert _move(rest, bare_rt, ticket_id, "Unverified").json()["ticket_id"] == ticket_id


def test_a_disabled_scrip_taken_off_the_queue_is_enabled_and_applied_again(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    queue_id = _queue_id(rest)
    (scrip_id,) = _scrip_ids(web, queue_id)
    web.post(
        "Admin/Queues/Scrips.html",
        data={"id": str(queue_id), "RemoveScrip": str(scrip_id), "RemoveScrips": "1"},
    )
    # SetEnabled without Enabled disables it, as unticking the box does.
    web.post(
        "Admin/Scrips/Modify.html", data={"id": str(scrip_id), "SetEnabled": "1", "Update": "1"}
    )
    objects = web.get("Admin/Scrips/Objects.html", params={"id": scrip_id}).text
    assert re.search(rf'name="AddScrip-{scrip_id}"[^>]*value="{queue_id}"', objects)
    assert not _scrip_enabled(web, scrip_id)

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert _changes(report) == [("scrip", QUEUE, "updated (enabled, applied to queue)")]
    objects = web.get("Admin/Scrips/Objects.html", params={"id": scrip_id}).text
    assert re.search(rf'name="RemoveScrip-{scrip_id}"[^>]*value="{queue_id}"', objects)
    assert _scrip_enabled(web, scrip_id)
    ticket_id = _new_ticket(rest, "Release after re-enabling")
    assert _move(rest, bare_rt, ticket_id, "Unverified").json()["ticket_id"] == ticket_id


def test_a_deleted_field_value_is_added_again(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client
) -> None:
    cf_id = _field_ids(rest)["Sync-Protocol"]
    values = rest.get(f"customfield/{cf_id}/values").json()["items"]
    sftp = next(v for v in values if v["name"] == "sftp")
    assert rest.delete(f"customfield/{cf_id}/value/{sftp['id']}").status_code == 204
    assert "sftp" not in rest.get(f"customfield/{cf_id}").json()["Values"]

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert _changes(report) == [("custom field", "Sync-Protocol", "updated (values added: sftp)")]
    assert "sftp" in rest.get(f"customfield/{cf_id}").json()["Values"]


def test_cli_tracker_init_repairs_a_changed_default(
    first_report: apply.SetupReport,
    bare_rt: BareRT,
    rest: httpx2.Client,
    web: httpx2.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue_id, cf_id = _queue_id(rest), _field_ids(rest)["EmergencyRelease"]
    name = f"Object-RT::Ticket--CustomField-{cf_id}-Values"
    web.post(
        "Admin/Queues/DefaultValues.html",
        data={"id": str(queue_id), name: "Yes", f"{name}-Magic": "1", "Update": "1"},
    )
    assert _field_values(rest, _new_ticket(rest, "Default changed"))["EmergencyRelease"] == ["Yes"]
    monkeypatch.setenv("ROLLOUT_RT_PASSWORD", bare_rt.info.root_password)

    code = main(["tracker", "init", "--url", bare_rt.info.web_url, "--user", "root"])

    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "default EmergencyRelease=No updated" in lines
    assert "scrip sw-rel unchanged" in lines and "queue sw-rel unchanged" in lines
    assert sum(line.endswith(" updated") for line in lines) == 1
    assert lines[-1] == "RT set-up updated."
    assert bare_rt.info.root_password not in out + err
    assert _field_values(rest, _new_ticket(rest, "Default back"))["EmergencyRelease"] == ["No"]


def _hooks_until(bare_rt: BareRT, ticket_id: int, last_field: str) -> list[dict[str, Any]]:
    """The bodies of the hooks about ``ticket_id``, in the order they came, up to and with the
    first about ``last_field``."""
    bodies: list[dict[str, Any]] = []
    while not bodies or bodies[-1].get("field") != last_field:
        hook = bare_rt.hooks.wait_for(lambda h: h.json()["ticket_id"] == ticket_id)
        Webhook(bare_rt.info.hook_secret()).verify(hook.body, dict(hook.headers))
        bodies.append(hook.json())
    return bodies


def test_the_scrip_reports_each_followed_field_and_the_status_by_name(
    first_report: apply.SetupReport, rest: httpx2.Client, bare_rt: BareRT
) -> None:
    ticket_id = _new_ticket(rest, "Release with changes")
    bare_rt.hooks.drain()
    for change in (
        {"CustomFields": {"Sync-URL": "rsync://elsewhere/x/"}},  # not followed: no hook
        {"CustomFields": {"EarlyAdopters": ["early-adopters"]}},
        {"CustomFields": {"StageRollout Report": "https://wiki.example.org/r"}},
        {"CustomFields": {"EmergencyRelease": "Yes"}},
        {"CustomFields": {"EarlyAdopters": []}},
        {"Status": "resolved"},
    ):
        assert rest.put(f"ticket/{ticket_id}", json=change).status_code == 200
    bodies = _hooks_until(bare_rt, ticket_id, "Status")
    assert [(b["field"], b["previous"], b["current"]) for b in bodies] == [
        ("EarlyAdopters", "", "early-adopters"),
        ("StageRollout Report", "", "https://wiki.example.org/r"),
        ("EmergencyRelease", "No", "Yes"),
        ("EarlyAdopters", "early-adopters", ""),
        ("Status", "new", "resolved"),
    ]
    assert [b["transaction_id"] for b in bodies] == sorted(b["transaction_id"] for b in bodies)
    assert bodies[-1]["emergency"] is True and bodies[-1]["actor"] == "root"
    history_times = {
        int(t["id"]): t["Created"]
        for t in rest.get(
            f"ticket/{ticket_id}/history", params={"fields": "Created", "per_page": 100}
        ).json()["items"]
    }
    for body in bodies:
        created = datetime.fromtimestamp(body["changed_at"], UTC)
        assert created.strftime("%Y-%m-%dT%H:%M:%SZ") == history_times[body["transaction_id"]]


def test_early_adopter_teams_get_groups_and_exactly_their_names_as_values(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    teams = (
        EarlyAdopterTeam(name="desy", ngi="NGI_DE", group="ea-desy", major_releases=("UMD-5",)),
        EarlyAdopterTeam(name="infn", ngi="NGI_IT", group="ea-infn", major_releases=("UMD-5",)),
    )
    report = apply.apply_setup(bare_rt.settings, QUEUE, teams=teams)
    changes = _changes(report)
    assert ("group", "ea-desy", "created") in changes and ("group", "ea-infn", "created") in changes
    assert (
        "custom field", "EarlyAdopters",
        "updated (values added: desy, infn; values removed: early-adopters)",
    ) in changes  # fmt: skip
    cf_id = _field_ids(rest)["EarlyAdopters"]
    assert rest.get(f"customfield/{cf_id}").json()["Values"] == ["desy", "infn"]
    queue_id, groups = _queue_id(rest), _group_ids_named(rest, ["ea-desy", "ea-infn"])
    for group_id in groups.values():
        pair = f"{group_id}-RT::Queue-{queue_id}"
        rights = _checked_rights(web, "Admin/Queues/GroupRights.html", pair, id=queue_id)
        assert rights == set(early_adopters.TEAM_RIGHTS)
        # A team changes EarlyAdopters, and no other field.
        assert _checked_rights(
            web,
            "Admin/CustomFields/GroupRights.html",
            f"{group_id}-RT::CustomField-{cf_id}",
            id=cf_id,
        ) == {"ModifyCustomField"}
    again = apply.apply_setup(bare_rt.settings, QUEUE, teams=teams)
    assert _changes(again) == []

    back = apply.apply_setup(bare_rt.settings, QUEUE)  # the settings' default again
    assert (
        "custom field", "EarlyAdopters",
        "updated (values added: early-adopters; values removed: desy, infn)",
    ) in _changes(back)  # fmt: skip


def test_a_scrip_of_the_former_name_is_renamed_and_brought_up_to_date(
    first_report: apply.SetupReport, bare_rt: BareRT, rest: httpx2.Client, web: httpx2.Client
) -> None:
    queue_id = _queue_id(rest)
    (scrip_id,) = _scrip_ids(web, queue_id)
    (former,) = rt_setup.FORMER_SCRIP_DESCRIPTIONS
    web.post(
        "Admin/Scrips/Modify.html",
        data={"id": str(scrip_id), "Description": former, "CustomCommitCode": "return 1;",
              "Update": "1"},
    )  # fmt: skip
    assert _scrip_ids(web, queue_id) == []

    report = apply.apply_setup(bare_rt.settings, QUEUE)

    assert _changes(report) == [("scrip", QUEUE, "updated (description, code)")]
    assert _scrip_ids(web, queue_id) == [scrip_id]  # the same scrip: never two of them
    ticket_id = _new_ticket(rest, "Release after the rename")
    assert _move(rest, bare_rt, ticket_id, "Unverified").json()["field"] == "RolloutProgress"


# -- refusals ---------------------------------------------------------------------------


def test_a_wrong_password_is_refused_without_showing_it(bare_rt: BareRT) -> None:
    wrong = "not-the-password-4711"
    admin = WebAdmin(bare_rt.info.web_url, "root", wrong, timeout=20)
    with pytest.raises(errors.TrackerAuthFailed) as caught:
        admin.login()
    admin.close()
    assert "'root'" in str(caught.value)
    assert wrong not in str(caught.value)

    settings = TrackerSettings(url=bare_rt.info.web_url, user="root", password=Secret(wrong))
    with pytest.raises(errors.TrackerAuthFailed) as caught:
        apply.apply_setup(settings, QUEUE)
    assert wrong not in str(caught.value)


def test_init_on_an_rt_built_from_the_initialdata_changes_nothing(
    rt_sandbox: SandboxInfo,
) -> None:
    """The shipped initialdata and ``tracker init`` describe the same set-up."""
    settings = TrackerSettings(
        url=rt_sandbox.web_url,
        user=rt_sandbox.root_user,
        password=Secret(rt_sandbox.root_password),
    )
    report = apply.apply_setup(settings, rt_sandbox.queue)
    assert _changes(report) == [] and report.complete
