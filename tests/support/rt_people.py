"""Real people in a sandbox RT for the tests: a user with a password and an address, a member
of the groups named, and a tracker client that acts as them (their own login, their own rights).

Made as root over REST2; it decides nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx2

from bridge.rt_setup.sandbox import RT_LIB, SandboxInfo
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


_TOKEN_PERL = r"""
use strict;
use warnings;
use RT -init;
my $user = RT::User->new( RT->SystemUser );
$user->Load($ARGV[0]);
die "no user $ARGV[0]\n" unless $user->id;
my $token = RT::AuthToken->new( RT->SystemUser );
my ( $ok, $msg, $auth ) = $token->Create( Owner => $user->id, Description => 'tests' );
die "cannot create token: $msg\n" unless $ok;
print $auth;
"""


def auth_token(info: SandboxInfo, name: str) -> str:
    """A new RT auth token of user ``name`` (RT 5.0 has no command for it: a few lines of Perl
    on the sandbox's own configuration, as its bridge account's token is made)."""
    root = Path(info.bridge_token_file).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "RT_SITE_CONFIG": str(root / "RT_SiteConfig.pm"),
        "RT_SITE_CONFIG_DIR": str(root / "RT_SiteConfig.d"),
        "PERL5LIB": str(RT_LIB),
    }
    made = subprocess.run(
        ["perl", "-e", _TOKEN_PERL, name], env=env, cwd=root, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, check=True,
    )  # fmt: skip
    return made.stdout.strip()
