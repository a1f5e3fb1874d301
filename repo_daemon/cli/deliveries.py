"""``rollout deliveries list|show|redeliver|recover|cancel|check``: the webhook deliveries of
the bridge's database, their attempts, sending them again, and a health check for cron
(docs/notifications.md).

It reads through ``bridge.store.delivery_reads`` and changes things only through
``DeliveryStore`` (``redeliver``, ``recover``, ``cancel_recovery``); it sends nothing itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from bridge import printable
from bridge.settings import webhooks as webhook_settings
from bridge.store import deliveries, delivery_reads, event_feed
from bridge.store import events as eventlog
from repo_daemon.cli import subscriptions as subs_cli
from repo_daemon.cli import webhooks_view as view

BODY_SHOWN = 300  # characters of an answer's body that ``show`` prints


@click.group("deliveries")
def deliveries_group() -> None:
    """Webhook deliveries: what was sent where, each attempt, sending again, health."""


def _store(ctx: click.Context) -> deliveries.DeliveryStore:
    store, _settings = view.open_store(ctx)
    return deliveries.DeliveryStore(store.engine, clock=view.now)


def _time(option: str, value: str) -> datetime:
    try:
        return event_feed.parse_time(value, now=view.now())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@deliveries_group.command("list")
@click.option("--subscription", help="Only the deliveries to this subscription.")
@click.option("--status", type=click.Choice(delivery_reads.STATUSES), help="Only in this state.")
@click.option("--ticket", type=click.IntRange(min=1), help="Only those about this RT ticket.")
@click.option("--since", metavar="TIME", help="Made at or after TIME (2026-12-06, 8h, 2d).")
@click.option("--before", type=click.IntRange(min=1), help="Ids below this (the next page).")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N."
)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.pass_context
def list_deliveries(
    ctx: click.Context,
    subscription: str | None,
    status: str | None,
    ticket: int | None,
    since: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Deliveries, newest first, with their state, tries and last answer."""
    filters = delivery_reads.Filters(
        subscription=subscription,
        status=status,
        ticket_id=ticket,
        since=None if since is None else _time("--since", since),
    )
    store = _store(ctx)
    found = delivery_reads.page(store.engine, filters, before=before, limit=limit)
    if as_json:
        body = {
            "deliveries": [d.as_dict() for d in found.deliveries],
            "next_before": found.next_before,
        }
        click.echo(json.dumps(body, indent=2))
        return
    if not found.deliveries:
        click.echo("no deliveries")
        return
    click.echo(view.delivery_table(found.deliveries))
    if found.next_before is not None:
        click.echo(f"(more: --before {found.next_before})")


@deliveries_group.command("show")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print it, body and attempts, as JSON.")
@click.pass_context
def show(ctx: click.Context, delivery_id: int, as_json: bool) -> None:
    """One delivery: where, what, its state, and every attempt (headers redacted)."""
    detail = delivery_reads.get(_store(ctx).engine, delivery_id)
    if as_json:
        click.echo(json.dumps(detail.as_dict(), indent=2))
        return
    d = detail.delivery
    ticket = "-" if d.ticket_id is None else f"{d.ticket_id} (event {d.seq} of the release)"
    lines = [
        f"delivery {d.id} to {d.subscription}: {d.kind}, webhook-id {d.webhook_id}",
        f"  event:         {d.event_id}",
        f"  ticket:        {ticket}",
        f"  status:        {d.status}"
        + (f", next attempt {view.when(d.next_attempt_at)}" if d.status == "pending" else ""),
        f"  attempts:      {d.attempts} in this round, {len(detail.attempts)} kept",
        f"  created:       {view.when(d.created_at)}",
        f"  finished:      {view.when(d.finished_at)}",
    ]
    if d.recovery_id is not None:
        lines.append(f"  recovery:      {d.recovery_id}")
    lines.append("attempts:" if detail.attempts else "attempts: none yet")
    for a in detail.attempts:
        answer = "-" if a.status is None else str(a.status)
        error = f", {a.error_class}: {a.error}" if a.error_class else ""
        lines.append(
            f"  {a.attempt}. {a.at:%Y-%m-%d %H:%M:%S}  {answer}  {a.duration_ms:.0f} ms  "
            f"by {a.worker}{printable.escape(error)}"
        )
        for name, value in sorted(a.request_headers.items()):
            lines.append(f"       > {name}: {printable.escape(value)}")
        body = a.response_body
        if body:
            cut = body[:BODY_SHOWN] + ("…" if len(body) > BODY_SHOWN else "")
            lines.append(f"       < {printable.escape(cut)}")
    click.echo("\n".join(lines))


@deliveries_group.command("redeliver")
@click.argument("delivery_id", type=int)
@subs_cli._BY
@click.pass_context
def redeliver(ctx: click.Context, delivery_id: int, actor: str | None) -> None:
    """Send delivery DELIVERY_ID again, now, with the same webhook-id."""
    store = _store(ctx)
    before = delivery_reads.get(store.engine, delivery_id).delivery
    store.redeliver(delivery_id, actor=view.login(actor))
    if before.status == "sending":
        click.echo(f"delivery {delivery_id} is being sent now; left as it is")
        return
    click.echo(
        f"delivery {delivery_id} to {before.subscription} queued again "
        f"(webhook-id {before.webhook_id}); it was {before.status}"
    )


@deliveries_group.command("recover")
@click.option("--subscription", required=True, help="The subscription whose deliveries failed.")
@click.option("--since", required=True, metavar="TIME", help="Failed deliveries made since.")
@click.option("--dry-run", is_flag=True, help="Only say how many it would send again.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@subs_cli._BY
@click.pass_context
def recover(
    ctx: click.Context,
    subscription: str,
    since: str,
    dry_run: bool,
    yes: bool,
    actor: str | None,
) -> None:
    """Send again every delivery to SUBSCRIPTION made since TIME that failed for good.

    It says how many first; without --yes it asks (on a terminal; elsewhere it refuses).
    The recovery can be cancelled while some wait: rollout deliveries cancel ID.
    """
    store = _store(ctx)
    start = _time("--since", since)
    count, _none = store.recover(subscription, since=start, actor="-", dry_run=True)
    click.echo(
        f"{count} failed deliveries to {subscription} since {view.when(start)} UTC "
        "would be sent again"
    )
    if dry_run or count == 0:
        return
    if not yes:
        subs_cli.confirm_or_refuse(f"send {count} deliveries again?")
    count, recovery = store.recover(
        subscription, since=start, actor=view.login(actor), dry_run=False
    )
    if recovery is None:
        click.echo("none left to send again (another recovery took them)")
        return
    click.echo(
        f"recovery {recovery}: {count} deliveries queued again "
        f"(cancel: rollout deliveries cancel {recovery})"
    )


@deliveries_group.command("cancel")
@click.argument("recovery_id", type=int)
@subs_cli._BY
@click.pass_context
def cancel(ctx: click.Context, recovery_id: int, actor: str | None) -> None:
    """Cancel recovery RECOVERY_ID: its deliveries not sent yet go back to failed."""
    count = _store(ctx).cancel_recovery(recovery_id, actor=view.login(actor))
    click.echo(f"recovery {recovery_id} cancelled; {count} deliveries not sent go back to failed")


@deliveries_group.command("check")
@click.option(
    "--window",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Deliveries failed for good within this long count (90s, 30m, 12h, 7d).",
)
@click.pass_context
def check(ctx: click.Context, window: str) -> None:
    """For cron: exit status 1 and one line per problem, 0 and "all endpoints healthy".

    A problem is a subscription disabled by the bridge (410 Gone, or failing past its
    budget), one past half its failure budget, or deliveries failed for good within --window
    and not sent again.
    """
    seconds = webhook_settings.duration(window)
    if seconds is None:
        raise click.BadParameter(f"{window!r} is not a duration (90s, 30m, 12h, 7d)")
    store, settings = view.open_store(ctx)
    at = view.now()
    figures = delivery_reads.figures(
        store.engine,
        now=at,
        disable_after=settings.webhooks.disable_after,
        failed_since=at - timedelta(seconds=seconds),
    )
    by = delivery_reads.disabled_by(store.engine)
    problems = []
    for sub in store.all():
        f = figures[sub.name]
        automatic = by.get(sub.name, eventlog.BRIDGE_ACTOR if sub.failing_since else "")
        if not sub.enabled and automatic == eventlog.BRIDGE_ACTOR:
            problems.append(
                f"{sub.name}: disabled since {view.when(sub.disabled_at)} UTC: "
                f"{printable.escape(sub.disabled_reason or '-')}; {f.pending} deliveries wait "
                f"(fix the endpoint, then rollout subscriptions enable {sub.name})"
            )
        elif sub.enabled and f.budget_percent is not None and f.budget_percent >= 50:
            problems.append(
                f"{sub.name}: failing since {view.when(sub.failing_since)} UTC, "
                f"{f.budget_percent:g} % of its budget before it is disabled; last error: "
                f"{printable.escape(sub.last_error or '-')}"
            )
        if f.failed:
            problems.append(
                f"{sub.name}: {f.failed} deliveries failed for good in the last {window} "
                f"(send them again: rollout deliveries recover --subscription {sub.name} "
                f"--since {window})"
            )
    if problems:
        click.echo("\n".join(problems))
        ctx.exit(1)
    click.echo("all endpoints healthy")
