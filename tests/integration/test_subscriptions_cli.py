"""``rollout subscriptions`` and ``rollout deliveries`` on real databases (SQLite and
PostgreSQL): the secret printed once, a real loopback endpoint pinged (enabled on 2xx only,
verified with the official standardwebhooks library), declared subscriptions refused, the
listing's figures, a delivery's attempts, redelivery, recovery with its confirmation, and the
cron check's exit status."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database, tables
from repo_daemon import cli
from repo_daemon.cli import webhooks_view
from tests.support import delivery_story, paths

HAS_OUTBOUND = importlib.util.find_spec("repo_daemon.deliveries.outbound") is not None
needs_outbound = pytest.mark.skipif(
    not HAS_OUTBOUND, reason="repo_daemon.deliveries.outbound (h-out's sender) is not merged yet"
)
SECRET = re.compile(r"^secret: (whsec_\S+)$", re.M)


class Endpoint:
    """A real HTTP endpoint on loopback answering ``status`` and keeping what it was sent."""

    def __init__(self) -> None:
        self.status = 204
        self.received: list[tuple[dict[str, str], bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                endpoint.received.append((dict(self.headers.items()), body))
                self.send_response(endpoint.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.close()


@pytest.fixture
def engine(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[sa.Engine]:
    for name in [k for k in os.environ if k.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROLLOUT_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8")
    monkeypatch.setenv("SUDO_USER", "operator1")
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def story(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> delivery_story.Story:
    told = delivery_story.write(engine)
    monkeypatch.setattr(webhooks_view, "now", told.clock)
    return told


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    got = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert got == status, (argv, out, err)
    return out + err


def _actors(engine: sa.Engine, kind: str) -> list[str]:
    log = tables.event_log
    with engine.connect() as conn:
        return list(conn.execute(sa.select(log.c.actor).where(log.c.kind == kind)).scalars())


@needs_outbound
def test_add_prints_the_secret_once_pings_and_enables_on_2xx_only(
    engine: sa.Engine, endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    import standardwebhooks

    out = run(capsys, "subscriptions", "add", "mirror", "--url", endpoint.url,
              "--kind", "release_*", "--major-release", "UMD-5", "--by", "ada")  # fmt: skip
    match = SECRET.search(out)
    assert match is not None and "will not be shown again" in out
    assert "answered 204" in out and "mirror is enabled" in out
    ((headers, body),) = endpoint.received
    ping = standardwebhooks.Webhook(match.group(1)).verify(body, headers)
    assert ping["type"] == "ping" and ping["data"] == {"subscription": "mirror"}
    assert _actors(engine, "subscription_enabled") == ["ada"]
    shown = run(capsys, "subscriptions", "show", "mirror")
    listed = run(capsys, "subscriptions", "list", "--json")
    assert match.group(1) not in shown + listed
    assert json.loads(listed)[0]["filters"]["major_releases"] == ["UMD-5"]

    endpoint.status = 500
    out = run(capsys, "subscriptions", "add", "down", "--url", endpoint.url, status=1)
    assert SECRET.search(out) is not None
    assert "answered 500" in out and "down stays disabled" in out
    assert "waiting for a ping to be answered" in run(capsys, "subscriptions", "list")
    out = run(capsys, "subscriptions", "enable", "down", status=1)
    assert "answered 500" in out
    endpoint.status = 200
    assert "enabled it" in run(capsys, "subscriptions", "ping", "down")
    assert "disabled" not in run(capsys, "subscriptions", "show", "down").split("state:")[1][:20]


@needs_outbound
def test_a_refused_destination_is_said_and_nothing_is_enabled(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROLLOUT_WEBHOOK_ALLOW_CIDRS")
    out = run(capsys, "subscriptions", "add", "local", "--url", "http://127.0.0.1:9/h", status=1)
    assert "destination" in out and "local stays disabled" in out


def test_no_ping_edit_rotate_disable_enable_remove(
    story: delivery_story.Story, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "subscriptions", "add", "chat", "--url", "https://chat.example.org/x",
              "--no-ping", "--emergency", "yes")  # fmt: skip
    first = SECRET.search(out)
    assert first is not None and "not pinged (--no-ping): chat is enabled" in out
    out = run(capsys, "subscriptions", "edit", "chat", "--kind", "release_failed",
              "--description", "the chat room")  # fmt: skip
    assert out == "chat: changed description, kinds\n"
    assert run(capsys, "subscriptions", "edit", "chat") == "chat: nothing changed\n"
    bad = run(capsys, "subscriptions", "edit", "chat", "--url", "ftp://x", status=2)
    assert "not an http:// or https:// URL" in bad
    out = run(capsys, "subscriptions", "rotate-secret", "chat", "--overlap", "2h")
    second = SECRET.search(out)
    assert second is not None and second.group(1) != first.group(1)
    assert "the old secret signs too until 2026-12-06 14:03 UTC" in out
    assert "not a duration" in run(
        capsys, "subscriptions", "rotate-secret", "chat", "--overlap", "soon", status=2
    )
    assert run(capsys, "subscriptions", "disable", "mirror", "--reason", "moving") == (
        "mirror disabled; 1 deliveries wait for it\n"
    )
    assert "disabled: moving" in run(capsys, "subscriptions", "list")
    assert run(capsys, "subscriptions", "enable", "mirror", "--no-ping") == (
        "mirror enabled (not pinged)\n"
    )
    assert _actors(engine, "subscription_disabled") == ["operator1"]
    out = run(capsys, "subscriptions", "remove", "ci", status=1)  # no terminal to ask on
    assert "its deliveries go with it (1 not sent yet, 2 failed)" in out and "add --yes" in out
    assert "removed ci and 3 deliveries" in run(capsys, "subscriptions", "remove", "ci", "--yes")
    assert "no subscription is named 'ci'" in run(capsys, "subscriptions", "show", "ci", status=1)


def test_declared_subscriptions_are_refused_with_the_reason(
    story: delivery_story.Story, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with engine.begin() as conn:
        conn.execute(tables.subscriptions.update().values(declared=True))
    for argv in (("edit", "ci", "--description", "x"), ("rotate-secret", "ci"),
                 ("remove", "ci", "--yes")):  # fmt: skip
        out = run(capsys, "subscriptions", *argv, status=1)
        assert "is declared in the settings file; change it there" in out, argv
    assert "yes, in the settings file" in run(capsys, "subscriptions", "show", "ci")


def test_list_and_show_give_the_figures_and_the_recent_deliveries(
    story: delivery_story.Story, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run(capsys, "subscriptions", "list").splitlines()
    assert lines[0].split() == ["NAME", "STATE", "FAILING", "PENDING", "OLDEST", "LAST",
                                "SUCCESS", "URL"]  # fmt: skip
    ci = next(line for line in lines if line.startswith("ci "))
    assert "since 2026-12-06 12:01 (0 % of budget)" in ci and " 1  1m " in ci
    story.clock.advance(3 * 86400)  # 60 % of the default 5-day budget
    with engine.begin() as conn:
        conn.execute(tables.subscriptions.update().where(
            tables.subscriptions.c.name == "ci").values(warned=50))  # fmt: skip
    ci = next(r for r in json.loads(run(capsys, "subscriptions", "list", "--json"))
              if r["name"] == "ci")  # fmt: skip
    assert (ci["budget_percent"], ci["warned"], ci["pending"], ci["failed"]) == (60.0, 50, 1, 2)
    assert "(60 % of budget, warned 50 %)" in run(capsys, "subscriptions", "list")
    shown = run(capsys, "subscriptions", "show", "mirror")
    assert "1 waiting (oldest 3d00h), 0 failed, 0 delivered in the last 24 h" in shown
    assert shown.count("  mirror  ") == 3 and "https://mirror.example.org/hook" in shown


def test_deliveries_list_show_redeliver(
    story: delivery_story.Story, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "deliveries", "list", "--subscription", "ci", "--status", "failed")
    assert [line.split()[0] for line in out.splitlines()] == ["ID", "4", "2"]
    out = run(capsys, "deliveries", "list", "--limit", "2")
    assert out.splitlines()[-1] == "(more: --before 5)"
    page = json.loads(run(capsys, "deliveries", "list", "--before", "5", "--json", "--limit", "3"))
    assert [d["id"] for d in page["deliveries"]] == [4, 3, 2] and page["next_before"] == 2
    assert "no deliveries" in run(capsys, "deliveries", "list", "--ticket", "99")
    assert "is not a time" in run(capsys, "deliveries", "list", "--since", "soon", status=2)
    shown = run(capsys, "deliveries", "show", "2")
    assert "delivery 2 to ci: job_queued, webhook-id evt_3" in shown
    assert "refused: connection refused" in shown and "> webhook-signature: v1,<redacted>" in shown
    assert (
        json.loads(run(capsys, "deliveries", "show", "1", "--json"))["attempt_log"][0]["status"]
        == 204
    )
    assert "no delivery has id 99" in run(capsys, "deliveries", "show", "99", status=1)
    out = run(capsys, "deliveries", "redeliver", "2")
    assert out == "delivery 2 to ci queued again (webhook-id evt_3); it was failed\n"


def test_recover_says_how_many_first_asks_and_can_be_cancelled(
    story: delivery_story.Story, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("deliveries", "recover", "--subscription", "ci", "--since", "1d")
    out = run(capsys, *base, "--dry-run")
    assert out == "2 failed deliveries to ci since 2026-12-05 12:03 UTC would be sent again\n"
    out = run(capsys, *base, status=1)  # no terminal: refused, nothing done
    assert "would be sent again" in out and "add --yes" in out
    assert _actors(engine, "deliveries_requeued") == []
    out = run(capsys, *base, "--yes", "--by", "ada")
    recovery = re.search(r"recovery (\d+): 2 deliveries queued again", out)
    assert recovery is not None
    assert run(capsys, "deliveries", "cancel", recovery.group(1)) == (
        f"recovery {recovery.group(1)} cancelled; 2 deliveries not sent go back to failed\n"
    )
    assert _actors(engine, "deliveries_requeued") == ["ada"]
    assert "0 failed deliveries" in run(capsys, "deliveries", "recover",
                                        "--subscription", "mirror", "--since", "1d")  # fmt: skip


def test_check_exits_1_with_one_line_per_problem(
    story: delivery_story.Story, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "deliveries", "check", status=1)
    assert out.splitlines() == [
        "ci: 2 deliveries failed for good in the last 7d (send them again: rollout deliveries "
        "recover --subscription ci --since 7d)"
    ]
    story.clock.advance(8 * 86400)  # out of the window; failing for 160 % of the budget
    out = run(capsys, "deliveries", "check", status=1)
    assert out.startswith("ci: failing since 2026-12-06 12:01 UTC, 160 % of its budget")
    # Disabled by the bridge (410) is a problem; by an operator it is not.
    story.subs.disable("ci", reason="the endpoint answered 410 Gone", actor="rollout-bridge")
    story.subs.disable("mirror", reason="moving", actor="ops")
    out = run(capsys, "deliveries", "check", status=1)
    assert out.splitlines() == [
        "ci: disabled since 2026-12-14 12:03 UTC: the endpoint answered 410 Gone; 1 deliveries "
        "wait (fix the endpoint, then rollout subscriptions enable ci)"
    ]
    story.subs.enable("ci", actor="ops", how="operator")
    assert run(capsys, "deliveries", "check", "--window", "30d", status=1).count("\n") == 1
    assert run(capsys, "deliveries", "check") == "all endpoints healthy\n"
    assert "not a duration" in run(capsys, "deliveries", "check", "--window", "x", status=2)
    assert story.clock() - delivery_story.T0 > timedelta(days=8)


# -- docs/notifications.md stays true -------------------------------------------------------------

DOC = (paths.ROOT / "docs" / "notifications.md").read_text()


def _section(name: str) -> str:
    return DOC.split(f"<!-- section: {name} -->", 1)[1].split(f"<!-- end section: {name} -->")[0]


def _sessions() -> list[tuple[list[str], str]]:
    """(argv, expected output) of every `$ rollout ...` in the console blocks of the two
    sections, in order."""
    found = []
    for name in ("subscriptions", "redelivery"):
        for block in re.findall(r"```console\n(.*?)```", _section(name), flags=re.S):
            for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                found.append((shlex.split(command)[1:], output))
    return found


def _masked(text: str) -> str:
    return re.sub(r"whsec_\S+", "whsec_<secret>", text)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_docs_sessions_print_what_the_page_shows(
    story: delivery_story.Story, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = _sessions()
    assert len(sessions) == 12
    for argv, expected in sessions:
        status = 1 if argv[:2] == ["deliveries", "check"] else 0
        assert cli.main(argv) == status, argv
        assert _masked(capsys.readouterr().out) == _masked(expected), argv
