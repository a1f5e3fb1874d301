"""Who may read the audit feed: ``ROLLOUT_EVENTS_API_ROLES`` read and checked, and
``feed_access`` built from the settings (nothing connects before a request)."""

from __future__ import annotations

import pytest

from bridge import errors
from bridge.settings import load as settings_load
from repo_daemon.web import events_access

RT = {"ROLLOUT_RT_URL": "https://rt.example.org/", "ROLLOUT_RT_TOKEN": "1-2-abc"}


def test_release_managers_by_default() -> None:
    assert settings_load.load_settings(RT).access.events_api_roles == ("admin",)
    assert settings_load.load_settings(
        RT | {"ROLLOUT_EVENTS_API_ROLES": ""}
    ).access.events_api_roles == ("admin",)


def test_roles_are_configurable_and_checked() -> None:
    env = RT | {"ROLLOUT_EVENTS_API_ROLES": "admin,qc"}
    assert settings_load.load_settings(env).access.events_api_roles == ("admin", "qc")
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(RT | {"ROLLOUT_EVENTS_API_ROLES": "admin,auditors"})
    assert "events_api_roles: auditors is not a role" in str(caught.value)


def test_feed_access_checks_logins_with_rt_for_the_roles_groups() -> None:
    access = events_access.feed_access(
        settings_load.load_settings(RT | {"ROLLOUT_EVENTS_API_ROLES": "admin,qc"})
    )
    try:
        assert access.checker is not None and not access.public
        assert access.checker.directory.groups == ("sw-rel-admin", "sw-rel-qc")
        assert access.check(None).status == 401
    finally:
        access.close()


def test_feed_access_without_rt_admits_nobody_and_anyone_admits_all() -> None:
    nobody = events_access.feed_access(settings_load.load_settings({}, require_tracker=False))
    assert nobody.checker is None
    assert nobody.check("Basic YWRhOmdvb2QtYWRh").status == 403
    public = events_access.feed_access(
        settings_load.load_settings(RT | {"ROLLOUT_EVENTS_API_ROLES": "anyone"})
    )
    assert public.public and public.check(None).allowed


def test_status_roles_default_to_the_people_of_the_process_and_are_checked() -> None:
    assert settings_load.load_settings(RT).access.status_roles == ("admin", "qc", "sr")
    env = RT | {"ROLLOUT_STATUS_ROLES": "anyone"}
    assert settings_load.load_settings(env).access.status_roles == ("anyone",)
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(RT | {"ROLLOUT_STATUS_ROLES": "qc,funders"})
    assert "status_roles: funders is not a role" in str(caught.value)


def test_feed_access_may_guard_other_pages_with_other_roles() -> None:
    settings = settings_load.load_settings(RT)
    access = events_access.feed_access(settings, roles=settings.access.status_roles)
    try:
        assert access.roles == {"admin", "qc", "sr"}
        assert access.checker is not None
    finally:
        access.close()
