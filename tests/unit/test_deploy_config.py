"""The configuration layout under /etc/rollout/ stays true: the example files in deploy/etc/
load through the real settings loader with the credentials the shipped units hand over, every
variable in them is a documented setting, and docs/operations.md shows what is shipped; the
units run `rollout` commands that exist, as the rollout user, sandboxed, stopped gently.
systemd's own checks of the units are in tests/integration/test_systemd_units.py."""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path

import pytest

from bridge.settings import load
from repo_daemon import cli
from tests.support import paths
from tests.support import unit_files as uf

OPERATIONS = (paths.DOCS / "operations.md").read_text(encoding="utf-8")
CONFIGURATION = (paths.DOCS / "configuration.md").read_text(encoding="utf-8")
# The secrets a unit hands over, as a test writes them.
FAKE_CREDENTIALS = {
    "hook-secret": "whsec_" + base64.b64encode(b"deploy-test-secret-24byt").decode(),
    "rt-token": "1-42-0123456789abcdef",
    "database-url": "postgresql://rollout:pw@db.example.org/rollout",
}
# Settings that are secrets: never in rollout.env (their ..._FILE comes from the units).
SECRET_SETTINGS = ("RT_TOKEN", "RT_PASSWORD", "HOOK_SECRET", "DATABASE_URL")
ROLLOUT_UNITS = [
    u for u in uf.shipped_units() if (u.value("ExecStart") or "").startswith(uf.SHIPPED_ROLLOUT)
]


def _moved(value: str, tmp_path: Path) -> str:
    """A path of the layout moved below ``tmp_path`` (the test cannot write /etc or /srv)."""
    for prefix in ("/etc/rollout", "/var/lib/rollout", "/srv/rollout"):
        value = value.replace(prefix, str(tmp_path) + prefix)
    return value


def _settings_env(unit: uf.UnitFile, tmp_path: Path) -> dict[str, str]:
    """The environment a unit's process gets: its own ``Environment=``, then its
    ``EnvironmentFile=`` files (which win, as in systemd), its credentials written."""
    creds = tmp_path / "run" / "credentials" / unit.name
    creds.mkdir(parents=True, exist_ok=True)
    for ident in unit.credentials():
        (creds / ident).write_text(FAKE_CREDENTIALS[ident] + "\n")
    env = unit.environment(credentials_dir=str(creds), instance="1")
    for file in unit.values("EnvironmentFile"):
        path = uf.ETC / Path(file.lstrip("-").replace("%i", "1")).name
        if file.startswith("-") and not path.exists():
            continue
        env.update(uf.read_env_file(path))
    return {key: _moved(value, tmp_path) for key, value in env.items()}


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """/etc/rollout with the shipped rollout.toml, below ``tmp_path``."""
    etc = tmp_path / "etc" / "rollout"
    etc.mkdir(parents=True)
    (etc / "rollout.toml").write_text((uf.ETC / "rollout.toml").read_text())
    return tmp_path


def test_the_documented_rollout_env_is_the_shipped_one() -> None:
    shipped = (uf.ETC / "rollout.env").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(# /etc/rollout/rollout.env:.*?)```", OPERATIONS, flags=re.S)
    assert blocks == [shipped]


def test_every_variable_in_the_examples_and_units_is_a_documented_setting() -> None:
    names = set()
    for path in sorted(uf.ETC.glob("*.env")):
        names |= set(uf.read_env_file(path))
    for unit in ROLLOUT_UNITS:
        names |= set(unit.environment(credentials_dir="/run/c", instance="1"))
    names.discard("PYTHONDONTWRITEBYTECODE")
    assert names and all(n.startswith("ROLLOUT_") for n in names), names
    undocumented = [n for n in sorted(names) if not re.search(rf"[`$]{n}\b", CONFIGURATION)]
    assert undocumented == [], "not in docs/configuration.md"


def test_rollout_env_holds_no_secret_and_nothing_a_unit_sets_itself() -> None:
    shared = set(uf.read_env_file(uf.ETC / "rollout.env"))
    set_by_units = set()
    for unit in ROLLOUT_UNITS:
        set_by_units |= set(unit.environment(credentials_dir="/run/c", instance="1"))
    secret = {f"ROLLOUT_{s}{suffix}" for s in SECRET_SETTINGS for suffix in ("", "_FILE")}
    # EnvironmentFile= wins over Environment=: a credential path set there would be ignored.
    assert shared & (set_by_units | secret) == set()
    # Daemons of one host must keep distinct names in the queue's leases.
    assert "ROLLOUT_WORKER_NAME" not in shared


@pytest.mark.parametrize("unit", ROLLOUT_UNITS, ids=lambda u: u.name)
def test_each_unit_s_environment_loads_into_valid_settings(unit: uf.UnitFile, layout: Path) -> None:
    env = _settings_env(unit, layout)
    command = unit.value("ExecStart") or ""
    # `rollout serve` and `db upgrade` never call RT; the others need it.
    needs_tracker = not re.search(r"rollout (serve|db upgrade)\b", command)
    settings = load.load_settings(env, require_tracker=needs_tracker)

    assert settings.data_dir == layout / "var/lib/rollout"
    assert settings.repository.root == layout / "srv/rollout/repo"
    assert settings.repository.gnupghome == layout / "var/lib/rollout/gnupg"
    assert settings.repository.base_url == "https://repo.example.org/"
    assert settings.workflow.major_releases == ("UMD-5", "UMD-6", "CAs")
    assert settings.repository.flat_production == frozenset({"CAs"})
    assert settings.database_url is not None
    assert settings.database_url.reveal() == FAKE_CREDENTIALS["database-url"]
    if "hook-secret" in unit.credentials():
        assert settings.receiver.hook_secret is not None
        assert settings.receiver.hook_secret.reveal() == FAKE_CREDENTIALS["hook-secret"]
        shared = uf.read_env_file(uf.ETC / "rollout.env")
        assert settings.receiver.host == shared["ROLLOUT_LISTEN_HOST"]
        assert settings.receiver.port == 8750
    if "rt-token" in unit.credentials():
        assert settings.tracker.token is not None
        assert settings.tracker.token.reveal() == FAKE_CREDENTIALS["rt-token"]
        assert settings.tracker.url == "https://rt.example.org/"
    if unit.name == "rollout-daemon@.service":
        assert settings.daemon.metrics_port == 9751  # daemon-1.env, read after rollout.env
    assert settings.daemon.worker_name == ""  # hostname:pid, never shared


def test_the_layout_listing_names_every_shipped_file() -> None:
    listing = OPERATIONS[OPERATIONS.index("What an operator installs is in `deploy/`:") :]
    listing = listing[: listing.index("```\n\n")]
    shipped = [p for p in uf.DEPLOY.rglob("*") if p.is_file()]
    assert shipped
    missing = [
        str(p.relative_to(uf.DEPLOY))
        for p in shipped
        if p.name not in listing and str(p.relative_to(uf.DEPLOY)) not in listing
    ]
    assert missing == []


def test_the_daemon_template_is_the_daemon_unit_plus_its_instance_file() -> None:
    plain = uf.read_unit(uf.UNITS / "rollout-daemon.service")
    template = uf.read_unit(uf.UNITS / "rollout-daemon@.service")

    def without_names(unit: uf.UnitFile) -> list[tuple[str, str, str]]:
        return [line for line in unit.lines if line[1] != "Description"]

    extra = [line for line in without_names(template) if line not in without_names(plain)]
    assert extra == [("Service", "EnvironmentFile", "-/etc/rollout/daemon-%i.env")]
    assert [line for line in without_names(template) if line not in extra] == without_names(plain)


def test_every_credential_a_unit_loads_is_one_of_the_documented_files() -> None:
    for unit in uf.shipped_units():
        for ident, path in unit.credentials().items():
            assert path == f"/etc/rollout/credentials/{ident}", unit.name
            assert f"    {ident} " in OPERATIONS, f"{ident} is not in the /etc/rollout listing"


def test_every_exec_start_is_a_command_rollout_accepts() -> None:
    commands = []
    for unit in uf.shipped_units():
        command = unit.value("ExecStart") or ""
        if command.startswith(uf.SHIPPED_ROLLOUT):
            commands.append(command.split()[1:])
    assert len(commands) == 6

    for args in commands:
        assert cli.main([*args, "--help"]) == 0, args


def test_every_rollout_unit_runs_as_the_rollout_user_in_its_sandbox() -> None:
    for unit in uf.shipped_units():
        if not (unit.value("ExecStart") or "").startswith(uf.SHIPPED_ROLLOUT):
            continue
        assert (unit.value("User"), unit.value("Group")) == ("rollout", "rollout"), unit.name
        assert unit.values("EnvironmentFile")[0] == "/etc/rollout/rollout.env", unit.name
        for key, value in {
            "NoNewPrivileges": "yes",
            "CapabilityBoundingSet": "",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "RestrictNamespaces": "yes",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        }.items():
            assert unit.value(key) == value, f"{unit.name}: {key}"
        assert "@system-service" in unit.values("SystemCallFilter"), unit.name
        if unit.value("Type") != "oneshot":
            assert unit.value("Restart") == "on-failure", unit.name


def test_the_daemon_waits_for_its_longest_job_before_it_is_killed() -> None:
    """SIGTERM lets the jobs in hand finish: the stop timeout outlasts the shortest sync
    deadline (ROLLOUT_SYNC_DEADLINE_MIN's default, 900 s), and only the daemon gets SIGTERM."""
    for name in ("rollout-daemon.service", "rollout-daemon@.service"):
        unit = uf.read_unit(uf.UNITS / name)
        assert unit.value("KillSignal") == "SIGTERM"
        assert unit.value("KillMode") == "mixed"
        assert unit.value("TimeoutStopSec") == "30min"
    defaults = load.load_settings({}, require_tracker=False)
    assert 30 * 60 > defaults.repository.sync_deadline_min == 900


def _deployment_sections() -> str:
    start = OPERATIONS.index("## Installing on a host")
    return OPERATIONS[start : OPERATIONS.index("## Processors in tests")]


def _commands_shown() -> list[list[str]]:
    """Every ``rollout …`` command of the deployment sections: code-block lines (continued
    with ``\\``, up to a redirection or pipe) and inline code."""
    text = _deployment_sections()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("rollout "):
                found.append(shlex.split(re.split(r"[>|]", line)[0])[1:])
    for inline in re.findall(r"`(rollout [a-z][^`]*)`", text):
        found.append(shlex.split(inline.replace("…", ""))[1:])
    return found


def test_every_rollout_command_the_deployment_sections_show_exists() -> None:
    commands = _commands_shown()
    assert commands[0][:4] == ["repo", "nginx-conf", "--listen", "443"]
    assert len(commands) > 8

    refused = [args for args in commands if cli.main([*args, "--help"]) != 0]

    assert refused == []
