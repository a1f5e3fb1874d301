"""Settings: every problem reported at once, secrets hidden, sources in the right order."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridge import errors, secrets
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from tests.support import paths


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings({"ROLLOUT_RT_URL": "ftp://rt", "ROLLOUT_RT_TIMEOUT": "soon"})
    problems = caught.value.problems
    assert any("is not an http(s) URL" in p for p in problems)
    assert any("no RT credentials" in p for p in problems)
    assert any("rt_timeout: 'soon' is not a number" in p for p in problems)
    assert len(problems) == 3


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    file = tmp_path / "rollout.toml"
    file.write_text('rt_url = "https://file.example.org/"\nqueue = "from-file"\nrt_user = "f"\n')
    env = {"ROLLOUT_RT_URL": "https://env.example.org/", "ROLLOUT_RT_PASSWORD": "pw"}
    settings = settings_load.load_settings(env, config_file=file, overrides={"queue": "from-flag"})
    assert settings.tracker.url == "https://env.example.org/"
    assert settings.tracker.user == "f"
    assert settings.queue == "from-flag"
    assert settings.tracker.rest_url == "https://env.example.org/REST/2.0/"


def test_secrets_come_from_files_and_never_show(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("1-2-abcdef\n")
    settings = settings_load.load_settings(
        {"ROLLOUT_RT_URL": "https://rt.example.org", "ROLLOUT_RT_TOKEN_FILE": str(token_file)}
    )
    assert settings.tracker.token is not None
    assert settings.tracker.token.reveal() == "1-2-abcdef"
    assert "abcdef" not in repr(settings)
    assert "abcdef" not in str(settings.tracker)


def test_secret_and_secret_file_together_is_a_problem(tmp_path: Path) -> None:
    env = {
        "ROLLOUT_RT_URL": "https://rt.example.org",
        "ROLLOUT_RT_TOKEN": "x",
        "ROLLOUT_RT_TOKEN_FILE": str(tmp_path / "missing"),
    }
    with pytest.raises(errors.ConfigError, match="both set"):
        settings_load.load_settings(env)


def test_password_in_the_url_is_refused_and_not_echoed() -> None:
    env = {"ROLLOUT_RT_URL": "https://root:hunter2@rt.example.org/", "ROLLOUT_RT_TOKEN": "t"}
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(env)
    assert "hunter2" not in str(caught.value)


def test_unreadable_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="cannot read"):
        settings_load.load_settings({}, config_file=tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("rt_url = \n")
    with pytest.raises(errors.ConfigError, match="not valid TOML"):
        settings_load.load_settings({}, config_file=bad)


@pytest.mark.parametrize(
    ("url", "rest"),
    [
        ("https://rt.example.org", "https://rt.example.org/REST/2.0/"),
        ("https://rt.example.org/rt/", "https://rt.example.org/rt/REST/2.0/"),
        ("https://rt.example.org/REST/2.0", "https://rt.example.org/REST/2.0/"),
    ],
)
def test_rest_url_is_derived_from_the_web_root(url: str, rest: str) -> None:
    tracker = settings_model.TrackerSettings(url=url, token=secrets.Secret("t"))
    assert tracker.rest_url == rest
    assert tracker.web_url == rest[: -len("REST/2.0/")]


BASE = {"ROLLOUT_RT_URL": "https://rt.example.org", "ROLLOUT_RT_TOKEN": "t"}


def test_receiver_and_daemon_settings_are_read_and_checked() -> None:
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 bytes
    settings = settings_load.load_settings(
        {**BASE, "ROLLOUT_HOOK_SECRET": secret, "ROLLOUT_LISTEN_PORT": "9000",
         "ROLLOUT_RETRY_MAX_ATTEMPTS": "3", "ROLLOUT_RT_BRIDGE_USER": "rollout-bridge",
         "ROLLOUT_DAEMON_WORKERS": "2"}
    )  # fmt: skip
    assert settings.receiver.port == 9000
    assert settings.hook_secret is not None and settings.hook_secret.reveal() == secret
    assert settings.daemon.retry_max_attempts == 3
    assert settings.daemon.rt_bridge_user == "rollout-bridge"
    assert settings.daemon.workers == 2
    assert settings_load.load_settings(BASE).daemon.workers == 4
    assert settings.database().startswith("sqlite:///")


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"ROLLOUT_HOOK_SECRET": "whsec_%%%"}, "hook_secret: not base64"),
        ({"ROLLOUT_HOOK_SECRET": "whsec_c2hvcnQ="}, "hook_secret: too short"),
        ({"ROLLOUT_LISTEN_PORT": "70000"}, "listen_port"),
        ({"ROLLOUT_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"ROLLOUT_DAEMON_WORKERS": "0"}, "daemon_workers"),
    ],
)
def test_bad_receiver_settings_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(errors.ConfigError, match=problem):
        settings_load.load_settings({**BASE, **env})


def test_a_database_password_stays_hidden() -> None:
    settings = settings_load.load_settings(
        {**BASE, "ROLLOUT_DATABASE_URL": "postgresql://bridge:pgsecret@db.example.org/rollout"}
    )
    assert "pgsecret" not in repr(settings)
    assert settings.database() == "postgresql://bridge:pgsecret@db.example.org/rollout"


def test_workflow_and_notification_settings(tmp_path: Path) -> None:
    file = tmp_path / "rollout.toml"
    file.write_text(
        'workflow = "staged"\n[workflows]\nCAs = "direct"\n'
        '[notify_cc]\nStageRollout = ["sw-rel-sr"]\n'
    )
    settings = settings_load.load_settings(BASE, config_file=file)
    assert settings.workflow.workflow_for("CAs") == "direct"
    assert settings.workflow.workflow_for("UMD-5") == "staged"
    assert settings.workflow.cc["StageRollout"] == ("sw-rel-sr",)
    assert "Unverified" not in settings.workflow.cc  # the workflow definition's Cc stays
    env = {**BASE, "ROLLOUT_NOTIFY_CC": "Production=ops+sites", "ROLLOUT_WORKFLOWS": "X=fast"}
    with pytest.raises(errors.ConfigError, match="workflows: X = 'fast' is not a template"):
        settings_load.load_settings(env)
    env = {**BASE, "ROLLOUT_NOTIFY_CC": "Shipped=ops"}
    with pytest.raises(errors.ConfigError, match="'Shipped' is not a RolloutProgress state"):
        settings_load.load_settings(env)
    settings = settings_load.load_settings({**BASE, "ROLLOUT_NOTIFY_CC": "Production=ops+sites"})
    assert settings.workflow.cc["Production"] == ("ops", "sites")


def test_repository_settings() -> None:
    settings = settings_load.load_settings(
        {**BASE, "ROLLOUT_PRODUCTION_PATHS": "CAs=production/CAs", "ROLLOUT_KEEP_SNAPSHOTS": "0"}
    )
    assert settings.repository.production_path("CAs") == "production/CAs"
    assert settings.repository.production_path("UMD-5") == "production/UMD-5"
    assert settings.repository.keep_snapshots == 0
    assert settings.repository.lock_lease == 60
    leased = settings_load.load_settings({**BASE, "ROLLOUT_LOCK_LEASE": "20"})
    assert leased.repository.lock_lease == 20
    with pytest.raises(errors.ConfigError, match="lock_lease: must be at least 5 seconds, got '2'"):
        settings_load.load_settings({**BASE, "ROLLOUT_LOCK_LEASE": "2"})
    with pytest.raises(errors.ConfigError, match=r"production_paths: CAs = 'x/\.\./y'"):
        settings_load.load_settings({**BASE, "ROLLOUT_PRODUCTION_PATHS": "CAs=x/../y"})
    with pytest.raises(errors.ConfigError, match="repo_url"):
        settings_load.load_settings({**BASE, "ROLLOUT_REPO_URL": "ftp://x"})


def test_signing_settings() -> None:
    key = "A" * 40
    settings = settings_load.load_settings({**BASE, "ROLLOUT_SIGNING_KEY": key.lower()})
    assert settings.repository.signing_key == key
    with pytest.raises(errors.ConfigError, match="signing_key: 'nope' is not a key fingerprint"):
        settings_load.load_settings({**BASE, "ROLLOUT_SIGNING_KEY": "nope"})
    assert (settings.repository.unsigned, settings.repository.package_keys) == (False, ())


def test_unset_signing_key_means_the_bridge_s_own_key_and_none_means_unsigned() -> None:
    own = settings_load.load_settings(BASE).repository
    assert (own.signing_key, own.unsigned) == (None, False)
    for value in ("none", "None", " NONE "):
        unsigned = settings_load.load_settings({**BASE, "ROLLOUT_SIGNING_KEY": value}).repository
        assert (unsigned.signing_key, unsigned.unsigned) == (None, True)


def test_package_keys_are_fingerprints() -> None:
    a, b = "A" * 40, "b" * 40
    settings = settings_load.load_settings({**BASE, "ROLLOUT_PACKAGE_KEYS": f"{a}, {b}"})
    assert settings.repository.package_keys == (a, b.upper())
    with pytest.raises(errors.ConfigError, match="package_keys: 'x' is not a key fingerprint"):
        settings_load.load_settings({**BASE, "ROLLOUT_PACKAGE_KEYS": f"{a},x"})


def test_a_removed_setting_is_named_once_and_does_not_stop_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"ROLLOUT_RT_URL": "http://rt.example/", "ROLLOUT_PROCESSOR": "mine:make"}
    with caplog.at_level(logging.WARNING, logger="bridge.settings.load"):
        settings_load.load_settings(env, require_tracker=False)
    assert [r.getMessage() for r in caplog.records] == [
        "ROLLOUT_PROCESSOR is no longer read: the daemon always runs the release workflow (the "
        "processor plug-in was removed; tests use the in-memory fakes of bridge.testing)"
    ]


def test_known_major_releases_from_a_list_or_the_environment(tmp_path: Path) -> None:
    env = {"ROLLOUT_RT_URL": "http://rt.example/", "ROLLOUT_MAJOR_RELEASES": "UMD-5, CAs,UMD-5"}
    assert settings_load.load_settings(env, require_tracker=False).workflow.major_releases == (
        "UMD-5",
        "CAs",
    )
    config = tmp_path / "bridge.toml"
    config.write_text('major_releases = ["UMD-6"]\n[workflows]\nCAs = "direct"\n')
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(
            {"ROLLOUT_RT_URL": "http://rt/"}, config_file=config, require_tracker=False
        )
    assert "workflows: CAs is not among major_releases" in str(caught.value)
    with pytest.raises(errors.ConfigError, match="not a list of names"):
        settings_load.load_settings(
            {**env, "ROLLOUT_MAJOR_RELEASES": "UMD 5"}, require_tracker=False
        )
    none = settings_load.load_settings({"ROLLOUT_RT_URL": "http://rt/"}, require_tracker=False)
    assert none.workflow.major_releases == ()


def test_owners_per_state() -> None:
    env = {"ROLLOUT_OWNERS": "InVerification=qc1,StageRollout=sr1"}
    loaded = settings_load.load_settings(env, require_tracker=False)
    assert dict(loaded.workflow.owners) == {"InVerification": "qc1", "StageRollout": "sr1"}
    with pytest.raises(errors.ConfigError, match="owners: 'Shipping' is not a RolloutProgress"):
        settings_load.load_settings({"ROLLOUT_OWNERS": "Shipping=x"}, require_tracker=False)


def test_roles_map_to_rt_groups_and_keep_the_defaults_not_given() -> None:
    loaded = settings_load.load_settings({}, require_tracker=False)
    assert dict(loaded.workflow.roles) == dict(settings_model.DEFAULT_ROLES)
    env = {"ROLLOUT_ROLES": "qc=Quality Control,ea=sw-rel-ea"}
    roles = settings_load.load_settings(env, require_tracker=False).workflow.roles
    assert roles["qc"] == "Quality Control"
    assert roles["ea"] == "sw-rel-ea"
    assert roles["sr"] == "sw-rel-sr"  # not given: the shipped group
    with pytest.raises(errors.ConfigError, match="roles: 'q-c' is not a role name"):
        settings_load.load_settings({"ROLLOUT_ROLES": "q-c=x"}, require_tracker=False)
    with pytest.raises(errors.ConfigError, match="roles: qc = '' is not an RT group name"):
        settings_load.load_settings({"ROLLOUT_ROLES": "qc="}, require_tracker=False)


def _teams(loaded: settings_model.Settings) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(t.name, t.ngi, t.group, t.major_releases) for t in loaded.workflow.early_adopters]


def test_early_adopter_teams_from_the_environment() -> None:
    env = {
        "ROLLOUT_MAJOR_RELEASES": "UMD-5,UMD-6",
        "ROLLOUT_EARLY_ADOPTERS": "desy:NGI_DE:ea-desy:UMD-5+UMD-6, infn:NGI_IT::UMD-5",
    }
    loaded = settings_load.load_settings(env, require_tracker=False)
    assert _teams(loaded) == [
        ("desy", "NGI_DE", "ea-desy", ("UMD-5", "UMD-6")),
        ("infn", "NGI_IT", "sw-rel-ea-infn", ("UMD-5",)),  # the group by default
    ]
    assert [t.name for t in loaded.workflow.early_adopters_of("UMD-6")] == ["desy"]
    assert loaded.workflow.early_adopter("infn") is not None
    assert loaded.workflow.early_adopter("cern") is None


def test_early_adopter_teams_from_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[[early_adopters]]\nname = "desy"\nngi = "NGI_DE"\ngroup = "ea-desy"\n'
        'major_releases = ["UMD-5"]\n'
        '[[early_adopters]]\nname = "infn"\nngi = "NGI_IT"\nmajor_releases = "UMD-5,UMD-6"\n'
    )
    loaded = settings_load.load_settings({}, config_file=config, require_tracker=False)
    assert _teams(loaded) == [
        ("desy", "NGI_DE", "ea-desy", ("UMD-5",)),
        ("infn", "NGI_IT", "sw-rel-ea-infn", ("UMD-5", "UMD-6")),
    ]


def test_without_teams_the_global_group_stands_for_every_early_adopter() -> None:
    loaded = settings_load.load_settings({}, require_tracker=False)
    assert _teams(loaded) == [("early-adopters", "", "sw-rel-early-adopters", ())]
    assert [t.name for t in loaded.workflow.early_adopters_of("ANY-1")] == ["early-adopters"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("desy:NGI_DE:UMD-5", "'desy:NGI_DE:UMD-5' is not NAME:NGI:GROUP:MAJOR+MAJOR"),
        ("de sy:NGI_DE::UMD-5", "team 'de sy': the name must be 1-64 letters"),
        ("desy:::UMD-5", "team 'desy': ngi must name the team's NGI"),
        ("desy:NGI_DE::", "team 'desy': major_releases must name the major releases it adopts"),
        ("desy:NGI_DE::UMD-9", "team 'desy': UMD-9 not among major_releases (UMD-5, UMD-6)"),
        (
            "desy:NGI_DE:g:UMD-5,desy:NGI_IT:h:UMD-5",
            "the name desy is used by more than one team",
        ),
        ("desy:NGI_DE:g:UMD-5,infn:NGI_IT:g:UMD-5", "the group g is used by more than one team"),
    ],
)
def test_bad_early_adopter_teams_are_named(value: str, problem: str) -> None:
    env = {"ROLLOUT_MAJOR_RELEASES": "UMD-5,UMD-6", "ROLLOUT_EARLY_ADOPTERS": value}
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings(env, require_tracker=False)
    assert problem in str(caught.value)


def test_a_team_table_with_an_unknown_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[[early_adopters]]\nname = "desy"\nngi = "NGI_DE"\nmajors = ["UMD-5"]\n'
        "major_releases = []\n"
    )
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings({}, config_file=config, require_tracker=False)
    assert "team 'desy': unknown key majors" in str(caught.value)
    assert "team 'desy': major_releases must name" in str(caught.value)


def test_the_documented_team_tables_load(tmp_path: Path) -> None:
    doc = (paths.ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("## Early-adopter teams", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "bridge.toml"
    config.write_text(example)
    loaded = settings_load.load_settings({}, config_file=config, require_tracker=False)
    assert _teams(loaded) == [
        ("desy", "NGI_DE", "sw-rel-ea-desy", ("UMD-5", "UMD-6")),
        ("infn", "NGI_IT", "sw-rel-ea-infn", ("UMD-5",)),
    ]


def test_area_roles_and_access_limits() -> None:
    env = {
        "ROLLOUT_RT_URL": "https://rt.example.org/",
        "ROLLOUT_RT_TOKEN": "t",
        "ROLLOUT_AREA_ROLES": "stagerollout=early_adopters+sr,production=anyone",
        "ROLLOUT_ACCESS_CACHE_SECONDS": "30",
        "ROLLOUT_ACCESS_CHECK_PORT": "9999",
    }
    access = settings_load.load_settings(env).access
    assert access.area_roles["stagerollout"] == ("early_adopters", "sr")
    assert access.area_roles["unverified"] == ("qc", "sr", "admin")  # kept
    assert access.is_public("production") and not access.is_public("stagerollout")
    assert (access.cache_seconds, access.check_port) == (30.0, 9999)
    assert settings_load.load_settings(env | {"ROLLOUT_AREA_ROLES": ""}).access == (
        settings_model.AccessSettings(cache_seconds=30.0, check_port=9999)
    )


def test_area_roles_problems_are_reported_together(tmp_path: Path) -> None:
    file = tmp_path / "rollout.toml"
    file.write_text(
        'rt_url = "https://rt.example.org/"\nrt_token = "t"\n'
        '[area_roles]\nunverified = ["qc", "wizard"]\nattic = ["qc"]\n'
    )
    with pytest.raises(errors.ConfigError) as caught:
        settings_load.load_settings({"ROLLOUT_ACCESS_CHECK_PORT": "0"}, config_file=file)
    problems = "\n".join(caught.value.problems)
    assert "unverified names wizard, not a role" in problems
    assert "'attic' is not a kind of area" in problems
    assert "access_check_port" in problems


def test_receiver_connection_limits_are_read() -> None:
    assert settings_load.load_settings(BASE).receiver.limits == settings_model.IntakeLimits()
    settings = settings_load.load_settings(
        {**BASE, "ROLLOUT_RECEIVER_HEADER_TIMEOUT": "2.5", "ROLLOUT_RECEIVER_BODY_TIMEOUT": "8",
         "ROLLOUT_RECEIVER_MAX_HEADER_BYTES": "8192", "ROLLOUT_RECEIVER_MAX_CONNECTIONS": "500",
         "ROLLOUT_RECEIVER_MAX_CONNECTIONS_PER_CLIENT": "0",
         "ROLLOUT_RECEIVER_UNCAPPED_CLIENTS": "127.0.0.1, 10.1.0.0/16,::1",
         "ROLLOUT_RECEIVER_LOG_INTERVAL": "30"}
    )  # fmt: skip
    assert settings.receiver.limits == settings_model.IntakeLimits(
        header_timeout=2.5,
        body_timeout=8.0,
        max_header_bytes=8192,
        max_connections=500,
        max_connections_per_client=0,
        uncapped_clients=("127.0.0.1/32", "10.1.0.0/16", "::1/128"),
        log_interval=30.0,
    )


def test_uncapped_clients_from_a_settings_file_list(tmp_path: Path) -> None:
    file = tmp_path / "rollout.toml"
    file.write_text('receiver_uncapped_clients = ["192.0.2.7"]\n')
    settings = settings_load.load_settings(BASE, config_file=file)
    assert settings.receiver.limits.uncapped_clients == ("192.0.2.7/32",)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"ROLLOUT_RECEIVER_HEADER_TIMEOUT": "0"}, "receiver_header_timeout: must be greater"),
        ({"ROLLOUT_RECEIVER_MAX_HEADER_BYTES": "100"}, "receiver_max_header_bytes: at least 1024"),
        (
            {"ROLLOUT_RECEIVER_MAX_CONNECTIONS_PER_CLIENT": "2000"},
            r"receiver_max_connections_per_client \(2000\) is above receiver_max_connections",
        ),
        (
            {"ROLLOUT_RECEIVER_UNCAPPED_CLIENTS": "proxy.example.org"},
            "receiver_uncapped_clients: 'proxy.example.org' is not an address or network",
        ),
    ],
)
def test_bad_receiver_limits_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(errors.ConfigError, match=problem):
        settings_load.load_settings({**BASE, **env})
