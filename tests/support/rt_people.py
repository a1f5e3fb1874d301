"""Real people in a sandbox RT for the tests: a user with a password and an address, a member
of the groups named, and a tracker client that acts as them (their own login, their own rights).

Made as root over REST2; it decides nothing."""

from __future__ import annotations

import httpx2

from bridge.rt_setup.sandbox import SandboxInfo
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker.client import TrackerClient

PASSWORD = "a-long-test-password-1"


def person(info: SandboxInfo, name: str, *groups: str) -> TrackerClient:
    """The user ``name`` (``name@example.org``), made if missing and put in ``groups``; a
    client logged in as them (close it)."""
    with httpx2.Client(
        base_url=info.rest_url, auth=(info.root_user, info.root_password), timeout=20
    ) as rt:
        found = rt.get(f"user/{name}")
        if found.status_code != 200:
            made = rt.post(
                "user",
                json={"Name": name, "EmailAddress": f"{name}@example.org", "Password": PASSWORD,
                      "Privileged": 1},
            )  # fmt: skip
            assert made.status_code == 201, made.text
            found = rt.get(f"user/{name}")
        principal = int(found.json()["id"])
        for group in groups:
            items = rt.post("groups", json=[{"field": "Name", "value": group}]).json()["items"]
            assert items, f"RT has no group {group}"
            added = rt.put(f"group/{items[0]['id']}/members", json=[principal])
            assert added.status_code in (200, 201), added.text
    return TrackerClient(
        TrackerSettings(url=info.web_url, user=name, password=Secret(PASSWORD), retries=0)
    )
