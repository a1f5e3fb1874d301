"""RT's rights pages, for the rights REST2 in RT 5.0 cannot grant: on the queue, on RT as a
whole, and on a custom field, for user-defined groups and for roles.

Owns one idempotent operation, ``ensure_rights``: read an object's rights page once, grant
what is missing and revoke what is named as retired for every principal in one save, then
read the page again and check that RT took exactly that. The form is RT 5.0's
``Admin/Elements/EditRights`` (``CheckACL``, ``SetRights-<principal>-<class>-<id>``); roles
are found by the name of their tab on the page. It never revokes a right it was not asked to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bridge import errors
from bridge.rt_setup import web_session
from bridge.rt_setup.html_forms import Form, Page, form_data

logger = logging.getLogger(__name__)

_TAB = re.compile(r"^#acl-(\d+)$")  # a principal's tab on a rights page
# A principal: a user-defined group by its id (its principal id in RT), or a role by name.
Principal = int | str


@dataclass(frozen=True)
class RightsObject:
    """An object rights are granted on, and its page."""

    rt_class: str  # "RT::Queue", "RT::System" or "RT::CustomField"
    id: int
    where: str  # for messages

    @classmethod
    def queue(cls, queue_id: int) -> RightsObject:
        return cls("RT::Queue", queue_id, f"queue #{queue_id}")

    @classmethod
    def system(cls) -> RightsObject:
        return cls("RT::System", 1, "the whole RT (global rights)")

    @classmethod
    def custom_field(cls, field_id: int) -> RightsObject:
        return cls("RT::CustomField", field_id, f"custom field #{field_id}")

    @property
    def path(self) -> str:
        return {
            "RT::Queue": "Admin/Queues/GroupRights.html",
            "RT::System": "Admin/Global/GroupRights.html",
            "RT::CustomField": "Admin/CustomFields/GroupRights.html",
        }[self.rt_class]

    @property
    def params(self) -> dict[str, str]:
        return {} if self.rt_class == "RT::System" else {"id": str(self.id)}


@dataclass
class RightsChange:
    """What ``ensure_rights`` changed for one principal."""

    granted: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.granted or self.revoked)

    def describe(self) -> str:
        """``granted A, B; revoked C`` (empty when nothing changed)."""
        parts = []
        if self.granted:
            parts.append(f"granted {', '.join(self.granted)}")
        if self.revoked:
            parts.append(f"revoked {', '.join(self.revoked)}")
        return "; ".join(parts)


class RightsPages(web_session.WebSession):
    """``ensure_rights`` of ``web_admin.WebAdmin``."""

    def ensure_rights(
        self,
        target: RightsObject,
        wanted: Mapping[Principal, Sequence[str]],
        retired: Mapping[Principal, Sequence[str]] | None = None,
    ) -> dict[Principal, RightsChange]:
        """Give each principal its ``wanted`` rights on ``target`` and take away its
        ``retired`` ones (those it has and does not want), in one save; return what changed
        for each principal named.

        A principal is a user-defined group's id, or a role's name: on the queue its role
        group, on a custom field RT's global one (the right then holds for the role's members
        on each ticket where they hold it). Rights a principal has and that are neither wanted
        nor retired are kept. ``ProcessACLs`` sets a principal's rights on the object to
        exactly the boxes sent for it, so every right the page shows checked is sent back; as
        with a browser's save, one granted by someone else between the read and the save would
        be dropped, and the read-back reports it.
        """
        retired = retired or {}
        what = f"set rights on {target.where}"
        page, form = self._rights_form(target, what)
        ids = {p: self._principal_id(page, p, target, what) for p in {*wanted, *retired}}
        available = self._offered(form, target)
        plan: dict[Principal, tuple[set[str], RightsChange]] = {}
        for principal, pid in ids.items():
            current = set(form.values(self._box(pid, target)))
            missing = [r for r in dict.fromkeys(wanted.get(principal, ())) if r not in current]
            keep = set(wanted.get(principal, ()))
            gone = [r for r in dict.fromkeys(retired.get(principal, ())) if r in current - keep]
            unknown = [r for r in missing if r not in available]
            if available and unknown:
                raise errors.TrackerRejected(
                    f"RT offers no right named {', '.join(unknown)} on {target.where}",
                    operation=what,
                )
            change = RightsChange(granted=missing, revoked=gone)
            plan[principal] = ((current | set(missing)) - set(gone), change)
        changed = {p: expected for p, (expected, change) in plan.items() if change}
        if not changed:
            return {p: change for p, (_, change) in plan.items()}
        pairs: list[tuple[str, str]] = list(target.params.items())
        for principal, expected in changed.items():
            box = self._box(ids[principal], target)
            pairs.append(("CheckACL", box.removeprefix("SetRights-")))
            pairs += [(box, r) for r in sorted(expected)]
        answer = self._page("POST", target.path, what, data=form_data(pairs))
        _, after = self._rights_form(target, what)
        problems = []
        for principal, expected in changed.items():
            now = set(after.values(self._box(ids[principal], target)))
            if now != expected:
                who = f"role {principal}" if isinstance(principal, str) else f"group #{principal}"
                missing_now, extra_now = sorted(expected - now), sorted(now - expected)
                problems.append(
                    f"{who} has {', '.join(sorted(now)) or 'no rights'}"
                    + (f" without {', '.join(missing_now)}" if missing_now else "")
                    + (f" and still {', '.join(extra_now)}" if extra_now else "")
                )
        if problems:
            raise errors.TrackerRejected(
                f"RT did not set the rights on {target.where}: {'; '.join(problems)}"
                + web_session.rt_said(answer),
                operation=what,
            )
        for principal in changed:
            logger.info("%s for %s on %s", plan[principal][1].describe(), principal, target.where)
        return {p: change for p, (_, change) in plan.items()}

    def _rights_form(self, target: RightsObject, what: str) -> tuple[Page, Form]:
        page = self._page("GET", target.path, what, params=target.params)
        form = page.form("ModifyGroupRights")
        if form is None:
            raise errors.TrackerRejected(
                f"RT's page {target.path} has no form 'ModifyGroupRights'"
                + web_session.rt_said(page),
                operation=what,
            )
        return page, form

    @staticmethod
    def _box(principal_id: int, target: RightsObject) -> str:
        return f"SetRights-{principal_id}-{target.rt_class}-{target.id}"

    @staticmethod
    def _offered(form: Form, target: RightsObject) -> set[str]:
        """The rights the page offers on the object (its boxes' values)."""
        suffix = f"-{target.rt_class}-{target.id}"
        return {
            c.value
            for c in form.controls
            if c.name.startswith("SetRights-") and c.name.endswith(suffix)
        }

    @staticmethod
    def _principal_id(page: Page, principal: Principal, target: RightsObject, what: str) -> int:
        """A group's id as given; a role's from its tab on the page. The tabs list RT's
        system groups (Everyone, Privileged, Unprivileged), then the roles, then the user
        groups, so the first tab with the role's name is the role's."""
        if isinstance(principal, int):
            return principal
        for link in page.links:
            m = _TAB.match(link.href)
            if m and link.text == principal:
                return int(m.group(1))
        raise errors.TrackerRejected(
            f"RT's rights page for {target.where} offers no role {principal!r} "
            "(RT's pages must be in English)",
            operation=what,
        )
