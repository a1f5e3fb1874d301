"""The demo's release manager: RT's ``root`` made a member of the worker groups (quality
control, staged rollout, release managers), so the one login the demo prints may make every
move the workflow's roles allow. A real site puts real people in those groups instead.

It only adds memberships in the sandbox RT, as root over REST2; it makes no workflow decision.
"""

from __future__ import annotations

import httpx2

from bridge import errors
from bridge.rt_setup.sandbox import SandboxInfo

WORKER_GROUPS = ("sw-rel-qc", "sw-rel-sr", "sw-rel-admin")


def root_plays_every_role(info: SandboxInfo, groups: tuple[str, ...] = WORKER_GROUPS) -> None:
    """Make ``info.root_user`` a member of ``groups`` (idempotent). Raises ``SandboxError``."""
    with httpx2.Client(auth=(info.root_user, info.root_password), timeout=20) as rt:
        user = rt.get(f"{info.rest_url}user/{info.root_user}")
        if user.status_code != 200:
            raise errors.SandboxError(f"RT did not show its user {info.root_user}: {user.text}")
        principal = int(user.json()["id"])
        for name in groups:
            found = rt.post(f"{info.rest_url}groups", json=[{"field": "Name", "value": name}])
            items = found.json().get("items") if found.status_code == 200 else None
            if not items:
                raise errors.SandboxError(f"RT has no group {name}: run `rollout tracker init`")
            added = rt.put(f"{info.rest_url}group/{items[0]['id']}/members", json=[principal])
            if added.status_code not in (200, 201):
                raise errors.SandboxError(
                    f"RT did not add {info.root_user} to {name}: {added.status_code} {added.text}"
                )
