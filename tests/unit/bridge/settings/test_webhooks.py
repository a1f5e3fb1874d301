"""The outbound webhooks' settings (docs/configuration.md#outbound-webhooks): defaults,
durations, networks, the retry schedule, declared subscriptions, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import errors
from bridge.settings import load as settings_load
from bridge.settings import model, webhooks
from tests.support import paths

ENV = {"ROLLOUT_RT_URL": "https://rt.example.org/", "ROLLOUT_RT_TOKEN": "t"}


def test_defaults_are_svix_like_over_about_three_days() -> None:
    hooks = settings_load.load_settings(ENV).webhooks
    assert hooks == model.WebhookSettings()
    assert hooks.retry_schedule[:8] == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert 2.5 < sum(hooks.retry_schedule) / 86400 < 3.5
    assert (hooks.timeout, hooks.disable_after, hooks.allow_cidrs) == (15.0, 5 * 86400.0, ())


def test_durations_networks_and_schedule_are_read() -> None:
    env = ENV | {
        "ROLLOUT_WEBHOOK_ALLOW_CIDRS": "127.0.0.1/8, 10.1.0.0/16",
        "ROLLOUT_WEBHOOK_RETRY_SCHEDULE": "0,1s,2m,3h,1d",
        "ROLLOUT_WEBHOOK_DISABLE_AFTER": "2d",
        "ROLLOUT_WEBHOOK_TIMEOUT": "5",
        "ROLLOUT_SUBSCRIPTIONS_API_ROLES": "admin,qc",
    }
    hooks = settings_load.load_settings(env).webhooks
    assert hooks.allow_cidrs == ("127.0.0.0/8", "10.1.0.0/16")
    assert hooks.retry_schedule == (0.0, 1.0, 120.0, 10800.0, 86400.0)
    assert (hooks.disable_after, hooks.timeout) == (172800.0, 5.0)
    assert hooks.api_roles == ("admin", "qc")


def test_every_problem_is_named_by_its_setting() -> None:
    env = ENV | {
        "ROLLOUT_WEBHOOK_ALLOW_CIDRS": "10.0.0.0/8,not-a-net",
        "ROLLOUT_WEBHOOK_RETRY_SCHEDULE": "0,5 fortnights",
        "ROLLOUT_WEBHOOK_DISABLE_AFTER": "soon",
        "ROLLOUT_SUBSCRIPTIONS_API_ROLES": "wizards",
    }
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(env)
    text = "\n".join(caught.value.problems)
    for name in (
        "webhook_allow_cidrs: 'not-a-net'",
        "webhook_retry_schedule",
        "webhook_disable_after: 'soon'",
        "subscriptions_api_roles: wizards",
    ):
        assert name in text


def test_the_documented_declared_subscription_loads(tmp_path: Path) -> None:
    doc = (paths.ROOT / "docs" / "configuration.md").read_text()
    example = doc.split("## Outbound webhooks", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    secret = tmp_path / "mirror.secret"
    secret.write_text("whsec_" + "A" * 32 + "\n")
    config = tmp_path / "bridge.toml"
    config.write_text(example.replace("/etc/rollout/webhook-mirror-de.secret", str(secret)))
    (declared,) = settings_load.load_settings(
        {}, config_file=config, require_tracker=False
    ).webhooks.declared
    assert declared.name == "mirror-de" and declared.secret.reveal() == "whsec_" + "A" * 32
    assert declared.kinds == ("release_published", "release_reached_production")
    assert declared.areas == ("production/*",) and declared.major_releases == ("UMD-5",)
    assert declared.enabled and declared.emergency is None


def test_declared_subscriptions_are_checked_each_with_its_place() -> None:
    problems: list[str] = []
    found = webhooks.declared(
        [
            {"name": "ok", "url": "https://a.example/h", "secret": "whsec_" + "A" * 32},
            {"name": "ok", "url": "https://a.example/h", "secret": "whsec_" + "A" * 32},
            {"name": "short", "url": "https://a.example/h", "secret": "whsec_QUJD"},
            {"name": "bad url", "url": "ftp://x", "secret": "s"},
            {
                "name": "creds",
                "url": "https://u:p@a.example/",
                "secret": "s",
                "kinds": ["nothing_*"],
            },
            {"name": "nosecret", "url": "https://a.example/h"},
        ],
        problems,
    )
    assert [s.name for s in found] == ["ok"]
    text = "\n".join(problems)
    assert "subscriptions[2] 'ok': the name is declared twice" in text
    assert "subscriptions[4] 'bad url': name must be" in text and "'ftp://x' is not an http" in text
    assert "carries credentials" in text and "'nothing_*' matches no kind" in text
    assert "subscriptions[6] 'nosecret': give its secret" in text
    assert "subscriptions[3] 'short': secret: too short" in text
