"""The demo's pure parts: its folder, the bridge's settings it writes, reading RolloutHistory,
and never signalling a process that is not its own."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bridge import records, secrets
from bridge.rt_setup import sandbox
from bridge.settings import load as settings_load
from bridge.store import releases
from repo_daemon.demo import layout, run, services, ticket_view
from repo_daemon.demo.errors import DemoFailed
from repo_daemon.workflow import ticket_plan as ticket


def _info(root: Path) -> sandbox.SandboxInfo:
    (root / "bridge-token").write_text("1-2-secret-token\n")
    (root / "hook-secret").write_text("whsec_" + "A" * 32 + "\n")
    return sandbox.SandboxInfo(
        root=str(root), web_url="http://127.0.0.1:1234/", port=1234, pid=1, queue="sw-rel",
        bridge_url="http://127.0.0.1:2345/hooks/rt", root_user="root", root_password="password",
        bridge_user="rollout-bridge", bridge_token_file=str(root / "bridge-token"),
        hook_secret_file=str(root / "hook-secret"), mail_log=str(root / "mail.log"),
        server_log=str(root / "rt-server.log"),
    )  # fmt: skip


def test_each_run_starts_afresh_but_never_wipes_a_folder_it_did_not_make(tmp_path: Path) -> None:
    place = layout.Layout(tmp_path)
    place.make_fresh()
    (place.repo_root / "left-over").write_text("x")
    place.make_fresh()
    assert not (place.repo_root / "left-over").exists()
    assert place.data_dir.is_dir() and place.logs.is_dir()

    foreign = layout.Layout(tmp_path / "home")
    (foreign.work / "precious").mkdir(parents=True)
    with pytest.raises(DemoFailed, match="was not made by the demo"):
        foreign.make_fresh()
    assert (foreign.work / "precious").is_dir()


def test_one_demo_at_a_time_in_a_folder(tmp_path: Path) -> None:
    place = layout.Layout(tmp_path)
    busy = pytest.raises(DemoFailed, match=f"another demo is running .*pid {os.getpid()}")
    with place.locked(), busy, layout.Layout(tmp_path).locked():
        pass
    with place.locked():  # free again
        pass


def test_the_settings_file_and_the_environment_say_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = layout.Layout(tmp_path)
    place.make_fresh()
    settings = layout.bridge_settings(
        _info(tmp_path), place, listen_port=2345, repo_url="http://127.0.0.1:3456/",
        package_key="C" * 40,
    )  # fmt: skip
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", "postgresql://someone@elsewhere/db")
    env = layout.environment(settings)
    assert "ROLLOUT_DATABASE_URL" not in env  # the caller's settings never leak in
    assert env["ROLLOUT_RT_BRIDGE_USER"] == "rollout-bridge"
    assert "1-2-secret-token" not in str(env) and "1-2-secret-token" not in str(settings)

    layout.write_settings_file(place.settings_file, settings)
    from_file = settings_load.load_settings({}, config_file=place.settings_file)
    from_env = settings_load.load_settings(
        {k: v for k, v in env.items() if k.startswith("ROLLOUT_")}
    )
    assert from_file == from_env
    assert from_file.tracker.token == secrets.Secret("1-2-secret-token")
    assert from_file.receiver.port == 2345
    assert from_file.repository.root == place.repo_root
    # Signed: the bridge's own key, kept in --dir between runs; the provider's key published.
    assert from_file.repository.signing_key is None and not from_file.repository.unsigned
    assert from_file.repository.gnupghome == place.gnupg == tmp_path / "gnupg"
    assert from_file.repository.package_keys == ("C" * 40,)
    assert from_file.database() == f"sqlite:///{place.data_dir / 'bridge.sqlite'}"


def test_rollout_history_is_read_back_as_states() -> None:
    start = datetime(2024, 5, 17, 10, 0, 0)
    spans = [
        releases.StateSpan(
            state=records.RolloutState.parse(label),
            entered_at=start + timedelta(seconds=n),
            left_at=start + timedelta(seconds=n + 1),
            transaction_id=n,
            actor="root",
        )
        for n, label in enumerate(["Submitted", "Unverified", "InVerification"])
    ]
    pending = records.RolloutState.parse("StageRollout")
    text = ticket.history_text(spans, start + timedelta(seconds=9), pending=pending)
    assert ticket_view.history_states(text) == (
        "Submitted", "Unverified", "InVerification", "StageRollout",
    )  # fmt: skip
    assert ticket_view.history_states(None) == ()


def test_a_comment_is_shown_in_two_lines_at_most() -> None:
    short = run._first_lines("RolloutProgress: A → B. Fine.\n\nPublished 2 files.", 2)
    assert short == "RolloutProgress: A → B. Fine.\nPublished 2 files."
    long = run._first_lines("word " * 60, 2, width=40)
    assert len(long.splitlines()) == 2 and long.endswith("…")
    assert run._first_lines("", 2) == "(no comment)"


def test_a_leftover_is_only_stopped_when_it_carries_the_marker(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this very process: must survive
    assert services.stop_leftover(pid_file, "ROLLOUT_DATA_DIR=/no/such/demo") is False
    pid_file.write_text("not a pid\n")
    assert services.stop_leftover(pid_file, "anything") is False
    assert services.stop_leftover(tmp_path / "missing.pid", "anything") is False
