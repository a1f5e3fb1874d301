"""``rollout demo``: show the product working against a sandbox RT, with nothing to configure.

Today it brings up the sandbox RT with the product's set-up, files a sample release as a
technology provider would, moves its ``RolloutProgress`` as a release manager would, shows the
signed change the RT scrip sends to the bridge's address (verified with the hook secret), and
reads the ticket back through the bridge's own tracker client. Later work makes it walk a release
all the way to an installed package. It owns the demo's narration only: RT handling lives in
``bridge.sandbox`` and ``bridge.tracker``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge import errors, sandbox
from bridge.config import Secret, TrackerSettings
from bridge.tracker import TrackerClient

SAMPLE_RELEASE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<Release>
  <DistributionName>Demo Storage Element</DistributionName>
  <DistributionShortName>demo-se</DistributionShortName>
  <MajorVersion>1</MajorVersion><MinorVersion>0</MinorVersion><RevisionVersion>0</RevisionVersion>
</Release>
"""


@dataclass(frozen=True)
class _Hook:
    headers: dict[str, str]
    body: bytes


class HookCatcher:
    """A loopback endpoint standing in for the bridge's receiver: it keeps what RT posts."""

    def __init__(self) -> None:
        self.received: queue.Queue[_Hook] = queue.Queue()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), 65536)
                body = self.rfile.read(length)
                received.put(_Hook({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/rt"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> _Hook | None:
        """The next POST, or None when none came within ``timeout`` seconds."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _step(title: str) -> Callable[[], float]:
    click.secho(f"\n▸ {title}", bold=True)
    started = time.monotonic()
    return lambda: time.monotonic() - started


def _done(elapsed: Callable[[], float], text: str) -> None:
    click.echo(f"  {text} ", nl=False)
    click.secho(f"({elapsed():.1f} s)", dim=True)


def run_demo(directory: Path, *, stop_at_end: bool) -> int:
    """Run the demo in ``directory``; returns the exit status. Raises ``BridgeError``."""
    click.secho("Rollout bridge demo", bold=True)
    logging.getLogger("bridge").setLevel(logging.WARNING)  # the narration says what happens
    catcher = HookCatcher()
    box = sandbox.Sandbox(directory, bridge_url=catcher.url)
    try:
        elapsed = _step("Starting a sandbox RT 5 with the product's queue, fields and scrip")
        if box.is_running():
            box.down()  # restart so the scrip posts to this run's endpoint
        info = box.up()
        _done(elapsed, f"RT answers at {info.web_url}")

        manager = TrackerClient(
            TrackerSettings(
                url=info.web_url, user=info.root_user, password=Secret(info.root_password)
            )
        )
        bridge_client = TrackerClient(
            TrackerSettings(url=info.web_url, token=Secret(info.bridge_token()))
        )
        with manager, bridge_client:
            elapsed = _step("A technology provider files a release with release.xml")
            ticket_id = manager.create_ticket(
                info.queue,
                "Release of Demo Storage Element 1.0.0",
                "Please publish demo-se 1.0.0.",
                custom_fields={
                    "AssociatedMajorRelease": "DEMO-1",
                    "ReleaseType": "NonIncremental",
                    "Sync-URL": "rsync://127.0.0.1/demo/demo-se/1.0.0/",
                },
                requestors=["provider@example.org"],
                attachments=[("release.xml", SAMPLE_RELEASE_XML, "application/xml")],
            )
            _done(elapsed, f"ticket {ticket_id}: {info.web_url}Ticket/Display.html?id={ticket_id}")

            elapsed = _step("A release manager sets RolloutProgress to Unverified")
            manager.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
            hook = catcher.wait(timeout=20)
            if hook is None:
                raise errors.BridgeError(
                    f"RT's scrip sent nothing to {catcher.url} within 20 s; look at "
                    f"{info.server_log} for 'Rollout bridge' lines"
                )
            try:
                Webhook(info.hook_secret()).verify(hook.body, hook.headers)
                verdict = "signature verified"
            except WebhookVerificationError as exc:
                verdict = f"SIGNATURE DID NOT VERIFY ({exc})"
            body = json.loads(hook.body)
            _done(elapsed, f"the scrip posted to the bridge, {verdict}:")
            click.echo(f"    webhook-id {hook.headers.get('webhook-id')}  {json.dumps(body)}")

            elapsed = _step("The bridge reads the ticket with its own account")
            ticket = bridge_client.get_ticket(ticket_id)
            attachment = bridge_client.download_attachment(ticket_id, "release.xml")
            _done(elapsed, f"{bridge_client.total_round_trips()} RT round trips:")
            for name in ("RolloutProgress", "AssociatedMajorRelease", "Sync-Protocol", "Sync-URL"):
                click.echo(f"    {name}: {ticket.field(name) or '-'}")
            exact = "byte-exact" if attachment.content == SAMPLE_RELEASE_XML else "NOT byte-exact"
            click.echo(f"    release.xml: {len(attachment.content)} bytes, {exact}")
    finally:
        catcher.close()

    click.secho("\nWhere to look", bold=True)
    click.echo(
        "\n".join(
            [
                f"  RT web:      {info.web_url}  (login {info.root_user} / {info.root_password})",
                f"  queue:       {info.queue}  (fields, groups and scrip in place)",
                f"  mail log:    {info.mail_log}",
                f"  server log:  {info.server_log}",
                f"  bridge:      ROLLOUT_RT_URL={info.web_url} "
                f"ROLLOUT_RT_TOKEN_FILE={info.bridge_token_file} rollout tracker show {ticket_id}",
            ]
        )
    )
    if stop_at_end:
        box.down()
        click.echo("\nsandbox RT stopped (--exit).")
    else:
        click.echo(
            f"\nRT keeps running. Stop it with: rollout tracker sandbox down --dir {directory}"
        )
    return 0
