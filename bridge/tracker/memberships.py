"""Group memberships: which of RT's user-defined groups a user belongs to (``groups_of``).

Owns the reads that answer it with the least right RT 5.0 offers for them, the global
``SeeGroup`` the bridge's account has anyway (to name watcher groups): ``GET /group/:id``
lists a group's direct members. RT's one-request answer, ``GET /user/:name/groups``, needs
``AdminGroupMembership`` on the whole RT, the right to change the members of every group
(docs/tracker.md). It decides nothing about roles: the workflow does.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Collection, Mapping
from typing import Any

import httpx2

from bridge import errors
from bridge.tracker import session

logger = logging.getLogger(__name__)

_Members = tuple[set[str], set[str]]  # direct members: user names, group ids

_PAGE = 100  # RT's largest page
_NO_SEE_GROUP = (
    "the bridge's account may not read RT's groups: it needs the global SeeGroup right "
    "(`rollout tracker init` grants it to sw-rel-bridge; see docs/tracker.md)"
)


class Memberships(session.TrackerSession):
    """``groups_of`` of ``TrackerClient``."""

    def groups_of(self, user: str, *, among: Collection[str] | None = None) -> frozenset[str]:
        """The names of the user-defined groups ``user`` is a member of: directly, or through
        a group that is a member (as RT counts membership for rights). Disabled groups count
        for nobody.

        ``among`` limits the answer, and the reading, to those groups (e.g. the role groups):
        without it every group the account can see is read, one request each. Round trips: 1
        for the user; 1 per 100 groups to list them, or 1 to find the ``among`` names the
        client has not seen before; then 1 per group read (those asked about and the groups
        nested in them). A name in ``among`` that RT does not know counts as a group the user
        is not in. Nothing is remembered between calls but the groups' names and ids, so a
        change of membership in RT is seen by the next call.

        Raises ``TrackerNotFound`` for a user RT does not know, ``TrackerAuthFailed`` when the
        account lacks ``SeeGroup``, and the transient errors as every operation does.
        """

        def fetch() -> frozenset[str]:
            name = self._user_name(user)
            candidates = self._all_groups() if among is None else self._groups_named(among)
            read: dict[str, _Members] = {}  # each group read at most once per call
            return frozenset(
                self._group_names[group_id]
                for group_id in candidates
                if self._has_member(group_id, name, read, frozenset())
            )

        return self._call("groups_of", None, fetch)

    def members_of(self, groups: Collection[str]) -> dict[str, frozenset[str]]:
        """The user names in each of ``groups``: direct members and the members of groups
        nested in them, as ``groups_of`` counts them. A name RT does not know, or a disabled
        group, has nobody. One answer for everybody (the access check keeps it for a while
        instead of asking about each person). Round trips: 1 to find the names the client has
        not seen before, then 1 per group read (those asked about and the ones nested in them).

        Raises ``TrackerAuthFailed`` when the account lacks ``SeeGroup``, and the transient
        errors as every operation does.
        """

        def fetch() -> dict[str, frozenset[str]]:
            ids = {self._group_names[g]: g for g in self._groups_named(groups)}
            read: dict[str, _Members] = {}
            return {
                name: frozenset(self._flatten(ids[name], read, frozenset()))
                if name in ids
                else frozenset()
                for name in groups
            }

        return self._call("members_of", None, fetch)

    def _flatten(self, group_id: str, read: dict[str, _Members], seen: frozenset[str]) -> set[str]:
        """Every user in the group or in a group nested in it (``seen`` guards against cycles)."""
        if group_id not in read:
            read[group_id] = self._members(group_id)
        users, groups = read[group_id]
        found = set(users)
        for inner in sorted(groups - seen - {group_id}):
            found |= self._flatten(inner, read, seen | {group_id})
        return found

    def _user_name(self, user: str) -> str:
        """The user's name as RT spells it in group members (1 request)."""
        response = self._rt.session.get(
            self.settings.rest_url + "user/" + urllib.parse.quote(user, safe="")
        )
        if response.status_code == 404:
            raise errors.TrackerNotFound(
                f"RT has no user {user!r}", operation="groups_of", status_code=404
            )
        answer = self._answer(response)
        # Accounts without AdminUsers get a summary; its fields are $UserSummaryExtraInfo.
        return str(answer.get("Name") or user)

    def _all_groups(self) -> list[str]:
        """The ids of every enabled user-defined group, remembering their names."""
        found: list[str] = []
        page = 1
        while True:
            items = self._search_groups([], page)
            found += items
            if len(items) < _PAGE:
                return found
            page += 1

    def _groups_named(self, names: Collection[str]) -> list[str]:
        """The ids of the enabled user-defined groups with these names (unknown names are
        left out); one search for the names the client has not seen."""
        ids = {name: group_id for group_id, name in self._group_names.items()}
        unseen = sorted(set(names) - set(ids))
        if unseen:
            self._search_groups([{"field": "Name", "operator": "IN", "value": unseen}], 1)
            ids = {name: group_id for group_id, name in self._group_names.items()}
        missing = sorted(set(names) - set(ids))
        if missing:
            logger.warning(
                "RT has no group named %s; nobody is a member", ", ".join(missing),
                extra={"operation": "groups_of"},
            )  # fmt: skip
        return [ids[name] for name in dict.fromkeys(names) if name in ids]

    def _search_groups(self, query: list[dict[str, Any]], page: int) -> list[str]:
        """One page of ``POST /groups`` (RT adds: user-defined only); the ids found."""
        response = self._rt.session.post(
            self.settings.rest_url + "groups",
            json=query,
            params={"fields": "Name", "per_page": _PAGE, "page": page},
        )
        answer = self._answer(response)
        if answer.get("total") is None:
            # RT hides the total, and every group, from an account without global SeeGroup.
            raise errors.TrackerAuthFailed(_NO_SEE_GROUP, operation="groups_of")
        ids = []
        for item in answer["items"]:
            self._group_names[str(item["id"])] = str(item["Name"])
            ids.append(str(item["id"]))
        return ids

    def _has_member(
        self, group_id: str, user: str, read: dict[str, _Members], seen: frozenset[str]
    ) -> bool:
        """Whether ``user`` is in the group or in a group nested in it (RT forbids cycles;
        ``seen`` guards against one all the same)."""
        if group_id not in read:
            read[group_id] = self._members(group_id)
        users, groups = read[group_id]
        if user in users:
            return True
        inner = seen | {group_id}
        return any(self._has_member(g, user, read, inner) for g in sorted(groups - inner))

    def _members(self, group_id: str) -> _Members:
        """The group's direct members: user names and group ids (1 request). A disabled group,
        or one deleted meanwhile, has none."""
        response = self._rt.session.get(self.settings.rest_url + f"group/{int(group_id)}")
        if response.status_code == 404:
            return set(), set()
        answer = self._answer(response)
        if str(answer.get("Disabled") or "0") != "0":
            return set(), set()
        users: set[str] = set()
        groups: set[str] = set()
        for member in answer.get("Members") or ():
            if member.get("type") == "user":
                users.add(str(member["id"]))
            elif member.get("type") == "group":
                groups.add(str(member["id"]))
        return users, groups

    def _answer(self, response: httpx2.Response) -> Mapping[str, Any]:
        if response.status_code == 403:
            raise errors.TrackerAuthFailed(_NO_SEE_GROUP, operation="groups_of", status_code=403)
        if response.status_code != 200:
            raise self._for_status(
                response.status_code, response.text, {"operation": "groups_of", "ticket_id": None}
            )
        answer = response.json()
        if not isinstance(answer, Mapping):
            raise TypeError(f"expected a JSON object, got {type(answer).__name__}")
        return answer
