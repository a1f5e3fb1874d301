"""``rollout tracker init``: put the product's set-up into a running RT 5, idempotently.

What REST2 can do (queue, custom fields and their values, groups) goes through REST2; what it
cannot (scrip, rights, custom-field defaults) goes through RT's web admin pages
(``web_admin.WebAdmin``). Every item is read first and only created or changed when it differs,
so running it again changes nothing; the one thing it takes away is a right an older version
granted and this one retired (``GroupSpec.retired``). This is an admin tool, so it makes its
own requests instead of using ``bridge.tracker.client`` (whose operations are the daemon's),
on the session and error mapping of ``bridge.tracker.http``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from bridge import errors, rt_setup
from bridge.rt_setup import early_adopters, web_admin, web_rights
from bridge.settings import model as settings_model
from bridge.tracker import http

logger = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


@dataclass
class SetupReport:
    """What ``apply_setup`` found and did, item by item."""

    items: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, kind: str, name: str, outcome: str) -> None:
        self.items.append((kind, name, outcome))
        logger.info("%s %s: %s", kind, name, outcome)

    @property
    def changed(self) -> bool:
        """Whether anything was created or updated."""
        return any(o.startswith((CREATED, UPDATED)) for _, _, o in self.items)

    @property
    def complete(self) -> bool:
        """Whether every item is in place (nothing skipped)."""
        return not any(o.startswith(SKIPPED) for _, _, o in self.items)

    def render(self) -> str:
        """One line per item, for the terminal."""
        width = max((len(f"{k} {n}") for k, n, _ in self.items), default=0)
        return "\n".join(f"{f'{k} {n}':<{width}}  {o}" for k, n, o in self.items)


class _Rest:
    """Just enough REST2 for the set-up, on ``tracker.http``'s session and error mapping."""

    def __init__(
        self, settings: settings_model.TrackerSettings, transport: httpx2.BaseTransport | None
    ) -> None:
        self.base = settings.rest_url
        self.client = http.rest_session(
            settings, user_agent="rollout-bridge-setup", transport=transport
        )
        self.errors = http.ErrorMapping(settings)

    def call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        try:
            response = self.client.request(method, self.base + path, **kw)
        except httpx2.TransportError as exc:
            raise http.unreachable(exc, f"RT at {self.base}", what) from exc
        if response.status_code in (401, 403):
            raise errors.TrackerAuthFailed(
                f"RT refused the account (HTTP {response.status_code}); tracker init needs an "
                "RT administrator (SuperUser)",
                operation=what,
                status_code=response.status_code,
            )
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise self.errors.for_status(
                response.status_code, response.text, {"operation": what, "ticket_id": None}
            )
        if response.status_code == 204 or not response.content:  # e.g. a DELETE
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise errors.TrackerBadAnswer("RT's answer is not JSON", operation=what) from exc

    def search(self, collection: str, query: list[dict[str, Any]], fields: str) -> list[Any]:
        found = self.call(
            "POST", collection, f"find {collection}", json=query,
            params={"fields": fields, "per_page": 100},
        )  # fmt: skip
        return list((found or {}).get("items", []))

    def close(self) -> None:
        self.client.close()


def apply_setup(
    settings: settings_model.TrackerSettings,
    queue: str,
    *,
    teams: early_adopters.Teams = settings_model.DEFAULT_EARLY_ADOPTERS,
    transport: httpx2.BaseTransport | None = None,
    make_web_admin: Callable[[], web_admin.WebAdmin] | None = None,
) -> SetupReport:
    """Create or update the queue, fields, values, groups, rights, defaults and scrip.

    ``teams`` are the early-adopter teams of the settings: each gets its group (created if
    missing), the EarlyAdopters field offers exactly their names, and their members may change
    it. Rights are those of ``rt_setup.grants``: missing ones are granted, and those an older
    version granted and this one retired are revoked; no other right is touched. Needs an RT
    administrator. The web part needs a user and password (RT's web pages do not take auth
    tokens); with a token only, those items are reported as skipped.
    Raises ``TrackerError`` subclasses when RT cannot be reached or refuses the account.
    """
    report = SetupReport()
    rest = _Rest(settings, transport)
    fields = early_adopters.custom_fields(teams)
    groups = early_adopters.groups(teams)
    plan = rt_setup.grants(groups, fields)
    try:
        queue_id = _ensure_queue(rest, queue, report)
        cf_ids = _ensure_custom_fields(rest, queue, queue_id, fields, report)
        group_ids = _ensure_groups(rest, groups, report)
        _ensure_queue_watchers(rest, queue, queue_id, groups, group_ids, report)
    finally:
        rest.close()

    if make_web_admin is None and not (settings.user and settings.password):
        for what in ("scrip", "rights", "defaults"):
            report.add(what, queue, f"{SKIPPED}: needs ROLLOUT_RT_USER and ROLLOUT_RT_PASSWORD")
        return report
    admin = (
        make_web_admin()
        if make_web_admin
        else web_admin.WebAdmin(
            settings.web_url,
            settings.user or "",
            settings.password.reveal() if settings.password else "",
            timeout=settings.timeout,
            verify_tls=settings.verify_tls,
        )
    )
    try:
        admin.login()
        _ensure_rights(admin, plan, queue_id, cf_ids, group_ids, report)
        _ensure_web_parts(admin, queue, queue_id, fields, cf_ids, report)
    finally:
        admin.close()
    return report


def _ensure_queue(rest: _Rest, queue: str, report: SetupReport) -> int:
    found = rest.call("GET", f"queue/{queue}", "read queue")
    if found and found.get("id") and str(found.get("Disabled", "0")) == "0":
        report.add("queue", queue, UNCHANGED)
        return int(found["id"])
    if found and found.get("id"):
        rest.call("PUT", f"queue/{found['id']}", "enable queue", json={"Disabled": 0})
        report.add("queue", queue, f"{UPDATED} (enabled)")
        return int(found["id"])
    created = rest.call(
        "POST", "queue", "create queue",
        json={"Name": queue, "Description": "Software releases (Rollout bridge)"},
    )  # fmt: skip
    report.add("queue", queue, CREATED)
    return int(created["id"])


def _ensure_custom_fields(
    rest: _Rest,
    queue: str,
    queue_id: int,
    fields: Sequence[rt_setup.CustomFieldSpec],
    report: SetupReport,
) -> dict[str, int]:
    applied = {
        int(i["id"])
        for i in (rest.call("GET", f"queue/{queue_id}/customfields", "read queue fields",
                            params={"per_page": 100}) or {}).get("items", [])
    }  # fmt: skip
    ids: dict[str, int] = {}
    # One search for all of them: every REST2 call with a password costs RT a hash check.
    matches = rest.search(
        "customfields",
        [
            {"field": "Name", "operator": "IN", "value": [s.name for s in fields]},
            {"field": "LookupType", "value": "RT::Queue-RT::Ticket"},
        ],
        "Name,Type,MaxValues,Disabled",
    )
    for spec in fields:
        mine = [m for m in matches if m.get("Name") == spec.name and int(m["id"]) in applied]
        changes = []
        if mine:
            cf_id = int(mine[0]["id"])
            current = mine[0]
            if current.get("Type") != spec.rt_type:
                raise errors.TrackerRejected(
                    f"custom field {spec.name!r} exists with type {current.get('Type')!r}, the "
                    f"bridge needs {spec.rt_type!r}; change or rename it in RT first",
                    operation="tracker init",
                )
            if str(current.get("MaxValues", spec.max_values)) != str(spec.max_values):
                rest.call(
                    "PUT", f"customfield/{cf_id}", f"update field {spec.name}",
                    json={"MaxValues": spec.max_values},
                )  # fmt: skip
                changes.append("any number of values" if not spec.max_values else "one value")
            outcome = UNCHANGED
        else:
            created = rest.call(
                "POST", "customfield", f"create field {spec.name}",
                json={
                    "Name": spec.name, "Type": spec.rt_type, "MaxValues": spec.max_values,
                    "LookupType": "RT::Queue-RT::Ticket", "Queue": queue,
                    "Description": spec.description,
                },
            )  # fmt: skip
            cf_id = int(created["id"])
            outcome = CREATED
        added, removed = _ensure_values(rest, cf_id, spec)
        if added:
            changes.append(f"values added: {', '.join(added)}")
        if removed:
            changes.append(f"values removed: {', '.join(removed)}")
        if changes and outcome == UNCHANGED:
            outcome = f"{UPDATED} ({'; '.join(changes)})"
        report.add("custom field", spec.name, outcome)
        ids[spec.name] = cf_id
    return ids


def _ensure_values(
    rest: _Rest, cf_id: int, spec: rt_setup.CustomFieldSpec
) -> tuple[list[str], list[str]]:
    """Add the values the field lacks; with ``exact_values`` remove the others. Returns the
    values added and those removed."""
    if not spec.values and not spec.exact_values:
        return [], []
    current = rest.call(
        "GET", f"customfield/{cf_id}/values", "read field values", params={"per_page": 100}
    )
    have = {str(i.get("name")): i for i in (current or {}).get("items", [])}
    added = []
    for order, value in enumerate(spec.values, start=1):
        if value not in have:
            rest.call(
                "POST", f"customfield/{cf_id}/value", "add field value",
                json={"Name": value, "SortOrder": order},
            )  # fmt: skip
            added.append(value)
    removed = []
    if spec.exact_values:
        for value, item in sorted(have.items()):
            if value not in spec.values and item.get("id"):
                rest.call(
                    "DELETE", f"customfield/{cf_id}/value/{int(item['id'])}",
                    "remove field value",
                )  # fmt: skip
                removed.append(value)
    return added, removed


def _ensure_groups(
    rest: _Rest, groups: Sequence[rt_setup.GroupSpec], report: SetupReport
) -> dict[str, int]:
    ids: dict[str, int] = {}
    existing = rest.search(
        "groups",
        [
            {"field": "Name", "operator": "IN", "value": [s.name for s in groups]},
            {"field": "Domain", "value": "UserDefined"},
        ],
        "Name",
    )
    for spec in groups:
        found = [g for g in existing if g.get("Name") == spec.name]
        if found:
            ids[spec.name] = int(found[0]["id"])
            report.add("group", spec.name, UNCHANGED)
            continue
        created = rest.call(
            "POST", "group", f"create group {spec.name}",
            json={"Name": spec.name, "Description": spec.description},
        )  # fmt: skip
        ids[spec.name] = int(created["id"])
        report.add("group", spec.name, CREATED)
    return ids


def _role_members(found: Mapping[str, Any] | None, role: str) -> set[str]:
    """Principal ids of a queue's ``role`` as RT's queue JSON lists them."""
    members = (found or {}).get(role) or []
    return {str(m["id"]) for m in members if isinstance(m, Mapping) and "id" in m}


def _ensure_queue_watchers(
    rest: _Rest,
    queue: str,
    queue_id: int,
    groups: Sequence[rt_setup.GroupSpec],
    group_ids: Mapping[str, int],
    report: SetupReport,
) -> None:
    """Give each group with a ``queue_role`` that role on the queue, keeping other members
    (REST2 replaces a role's whole member list, so the present ones are sent back too)."""
    for spec in groups:
        if spec.queue_role is None:
            continue
        what = f"{spec.queue_role} {spec.name}"
        found = rest.call("GET", f"queue/{queue_id}", "read queue watchers")
        members = _role_members(found, spec.queue_role)
        wanted = str(group_ids[spec.name])
        if wanted in members:
            report.add("queue watcher", what, UNCHANGED)
            continue
        rest.call(
            "PUT", f"queue/{queue_id}", f"set queue {spec.queue_role}",
            json={spec.queue_role: sorted(members | {wanted}, key=int)},
        )  # fmt: skip
        if wanted not in _role_members(
            rest.call("GET", f"queue/{queue_id}", "read queue watchers"), spec.queue_role
        ):
            raise errors.TrackerRejected(
                f"RT did not make group {spec.name} {spec.queue_role} of queue {queue}",
                operation=f"set queue {spec.queue_role}",
            )
        report.add("queue watcher", what, CREATED)


def _ensure_rights(
    admin: web_admin.WebAdmin,
    plan: Sequence[rt_setup.Grant],
    queue_id: int,
    cf_ids: Mapping[str, int],
    group_ids: Mapping[str, int],
    report: SetupReport,
) -> None:
    """Apply the grants object by object: one read of each rights page, one save of all of
    its changes, one read back."""

    def principal(grant: rt_setup.Grant) -> web_rights.Principal:
        return grant.principal if grant.role else group_ids[grant.principal]

    by_object: dict[web_rights.RightsObject, list[rt_setup.Grant]] = {}
    for grant in plan:
        if grant.target == rt_setup.QUEUE:
            target = web_rights.RightsObject.queue(queue_id)
        elif grant.target == rt_setup.SYSTEM:
            target = web_rights.RightsObject.system()
        else:
            target = web_rights.RightsObject.custom_field(cf_ids[grant.field or ""])
        by_object.setdefault(target, []).append(grant)
    for target, grants in by_object.items():
        changes = admin.ensure_rights(
            target,
            {principal(g): g.rights for g in grants},
            {principal(g): g.retired for g in grants if g.retired},
        )
        for grant in grants:
            change = changes[principal(grant)]
            outcome = f"{UPDATED} ({change.describe()})" if change else UNCHANGED
            report.add("rights", f"{grant.who} on {grant.where}", outcome)


def _ensure_web_parts(
    admin: web_admin.WebAdmin,
    queue: str,
    queue_id: int,
    fields: Sequence[rt_setup.CustomFieldSpec],
    cf_ids: Mapping[str, int],
    report: SetupReport,
) -> None:
    for cf in fields:
        if cf.default is None:
            continue
        changed = admin.ensure_default_value(
            queue_id=queue_id, custom_field_id=cf_ids[cf.name], value=cf.default
        )
        report.add("default", f"{cf.name}={cf.default}", UPDATED if changed else UNCHANGED)
    outcome = admin.ensure_scrip(
        queue_id=queue_id,
        description=rt_setup.SCRIP_DESCRIPTION,
        former_descriptions=rt_setup.FORMER_SCRIP_DESCRIPTIONS,
        condition_code=rt_setup.scrip_code("condition"),
        action_code=rt_setup.scrip_code("action"),
    )
    report.add("scrip", queue, outcome)
    outcome = admin.ensure_scrip(
        queue_id=queue_id,
        description=rt_setup.COMMENT_SCRIP_DESCRIPTION,
        condition=rt_setup.COMMENT_SCRIP["condition"],
        action=rt_setup.COMMENT_SCRIP["action"],
        template=rt_setup.COMMENT_SCRIP["template"],
    )
    report.add("scrip", "comments to Cc", outcome)
