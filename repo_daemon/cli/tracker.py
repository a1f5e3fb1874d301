"""``rollout tracker``: set up RT (applied, or rendered as initialdata), read a ticket as the
bridge sees it, and the throw-away sandbox RT.

It only parses options and prints; the work is ``bridge.rt_setup`` and ``bridge.tracker``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bridge.rt_setup import apply, initialdata, sandbox
from bridge.settings import model as settings_model
from bridge.tracker.client import TrackerClient
from repo_daemon.cli import root

DEFAULT_SANDBOX_DIR = Path(".rollout/sandbox")


@click.group()
def tracker() -> None:
    """Set up and inspect the Request Tracker side."""


@tracker.command("init")
@click.option("--url", help="RT web root, e.g. https://rt.example.org/ (or ROLLOUT_RT_URL).")
@click.option("--user", help="RT administrator login (or ROLLOUT_RT_USER).")
@click.option("--queue", help="Release queue name (or ROLLOUT_QUEUE; default sw-rel).")
@click.pass_context
def tracker_init(ctx: click.Context, url: str | None, user: str | None, queue: str | None) -> None:
    """Create or update the queue, custom fields, groups, rights and scrip in a running RT.

    The early-adopter teams of the settings (ROLLOUT_EARLY_ADOPTERS) each get their group, and
    the EarlyAdopters field offers exactly their names.

    Idempotent: every item is read first and only created or changed when it differs, so it
    is safe to run again (e.g. after an upgrade of the bridge). Needs an RT administrator;
    the password comes from ROLLOUT_RT_PASSWORD or ROLLOUT_RT_PASSWORD_FILE. The scrip also
    needs $RolloutBridgeURL and $RolloutBridgeSecret in RT's site config (docs/tracker.md).
    """
    settings = root.load_settings(ctx, rt_url=url, rt_user=user, queue=queue)
    report = apply.apply_setup(
        settings.tracker, settings.queue, teams=settings.workflow.early_adopters
    )
    click.echo(report.render())
    if not report.complete:
        raise click.exceptions.Exit(1)
    click.echo(
        "RT set-up " + ("updated." if report.changed else "already complete; nothing changed.")
    )


@tracker.command("initdata")
@click.option(
    "--queue", default=settings_model.DEFAULT_QUEUE, show_default=True, help="Queue name."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.pass_context
def tracker_initdata(ctx: click.Context, queue: str, output: Path | None) -> None:
    """Print the set-up as an RT initialdata file.

    Load it into a new RT on the RT host with
    `rt-setup-database-5 --action insert --datafile FILE`. For an RT that may already have
    parts of the set-up, use `rollout tracker init` instead. The early-adopter teams come
    from the settings (ROLLOUT_EARLY_ADOPTERS), when any are set.
    """
    settings = root.load_settings(ctx, require_tracker=False)
    text = initialdata.render(queue, settings.workflow.early_adopters)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@tracker.command("show")
@click.argument("ticket_id", type=int)
@click.pass_context
def tracker_show(ctx: click.Context, ticket_id: int) -> None:
    """Read one ticket as the bridge sees it (fields, watchers) and count the round trips."""
    settings = root.load_settings(ctx)
    with TrackerClient(settings.tracker) as client:
        ticket = client.get_ticket(ticket_id)
        click.echo(f"ticket {ticket.id}: {ticket.subject!r} in {ticket.queue}, {ticket.status}")
        click.echo(f"  RolloutProgress: {ticket.rollout_state.label}")
        for name, values in sorted(ticket.custom_fields.items()):
            if name == "RolloutProgress":  # shown above, parsed
                continue
            click.echo(f"  {name}: {', '.join(values) or '-'}")
        click.echo(f"  Cc: {', '.join(w.name for w in ticket.cc) or '-'}")
        click.echo(f"  AdminCc: {', '.join(w.name for w in ticket.admin_cc) or '-'}")
        click.echo(f"  ({client.total_round_trips()} RT round trips)")


@tracker.group("sandbox")
def tracker_sandbox() -> None:
    """A throw-away RT 5 on loopback for development and the demo (Debian request-tracker5)."""


sandbox_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SANDBOX_DIR,
    show_default=True,
    help="Folder holding the sandbox's database, config and logs.",
)


@tracker_sandbox.command("up")
@sandbox_dir_option
@click.option("--port", type=int, help="Loopback port for RT (default: a free one).")
@click.option(
    "--bridge-url",
    default="http://127.0.0.1:8750/hooks/rt",
    show_default=True,
    help="Where the scrip POSTs RolloutProgress changes.",
)
@click.option(
    "--queue",
    default=settings_model.DEFAULT_QUEUE,
    show_default=True,
    help="Release queue to create.",
)
def sandbox_up(directory: Path, port: int | None, bridge_url: str, queue: str) -> None:
    """Start the sandbox RT with the product's set-up (built on first use; ~10 s)."""
    info = sandbox.Sandbox(directory, port=port, bridge_url=bridge_url, queue=queue).up()
    _print_sandbox(info)


@tracker_sandbox.command("down")
@sandbox_dir_option
def sandbox_down(directory: Path) -> None:
    """Stop the sandbox RT. Its database stays; `up` starts it again."""
    stopped = sandbox.Sandbox(directory).down()
    click.echo("sandbox RT stopped" if stopped else "sandbox RT was not running")


@tracker_sandbox.command("status")
@sandbox_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def sandbox_status(directory: Path, as_json: bool) -> None:
    """Say whether the sandbox RT runs and where; exit 1 when it does not."""
    box = sandbox.Sandbox(directory)
    info = box.info()
    running = box.is_running()
    if as_json:
        state = {"running": running, **(info.__dict__ if info else {})}
        click.echo(json.dumps(state, indent=2))
    elif info is None:
        click.echo(f"no sandbox in {directory}")
    else:
        click.echo(f"sandbox RT {'running' if running else 'stopped'} at {info.web_url}")
    if not running:
        raise click.exceptions.Exit(1)


def _print_sandbox(info: sandbox.SandboxInfo) -> None:
    click.echo(
        "\n".join(
            [
                f"RT web:        {info.web_url}  (login {info.root_user} / {info.root_password})",
                f"REST2:         {info.rest_url}",
                f"queue:         {info.queue}",
                f"bridge user:   {info.bridge_user} (token in {info.bridge_token_file})",
                f"scrip posts:   {info.bridge_url} (secret in {info.hook_secret_file})",
                f"mail log:      {info.mail_log}",
                f"server log:    {info.server_log}",
            ]
        )
    )
