"""``rollout subscriptions add|list|show|edit|rotate-secret|disable|enable|remove|ping``: the
webhook subscriptions of the bridge's database, kept by hand (docs/notifications.md).

A secret is printed once, by ``add`` and ``rotate-secret``, and never again. A new endpoint,
and a disabled one being enabled, is pinged and must answer 2xx first (unless ``--no-ping``).
It keeps nothing itself (``bridge.store.subscription_store`` does) and never migrates the
database.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from bridge import printable
from bridge.settings import model as settings_model
from bridge.settings import webhooks as webhook_settings
from bridge.store import delivery_reads, subscription_store
from bridge.store.subscriptions import (
    Filters,
    Subscription,
    SubscriptionDeclared,
    SubscriptionInvalid,
)
from repo_daemon.cli import webhooks_view as view
from repo_daemon.deliveries import ping as pinging

RECENT = 10  # deliveries shown by ``show``
F = TypeVar("F", bound=Callable[..., Any])


def _spec(
    url: str,
    description: str,
    kinds: Sequence[str],
    majors: Sequence[str],
    areas: Sequence[str],
    targets: Sequence[str],
    emergency: str | None,
    github: bool,
) -> subscription_store.Spec:
    return subscription_store.Spec(
        url=url,
        description=description,
        kinds=tuple(dict.fromkeys(kinds)) or ("*",),
        filters=Filters(
            major_releases=tuple(dict.fromkeys(majors)),
            areas=tuple(dict.fromkeys(areas)),
            target_states=tuple(dict.fromkeys(targets)),
            emergency=None if emergency in (None, "any") else emergency == "yes",
        ),
        github_signature=github,
    )


def _usage(exc: SubscriptionInvalid) -> click.UsageError:
    return click.UsageError("; ".join(exc.problems))


_BY = click.option(
    "--by", "actor", default=None, help="Who does it, for the event log (default: your login)."
)


def _spec_options(for_edit: bool) -> Callable[[F], F]:
    def wrap(command: F) -> F:
        keep = " (given: replaces the list)" if for_edit else ""
        for option in reversed(
            [
                click.option(
                    "--url", required=not for_edit, help="The endpoint (http:// or https://)."
                ),
                click.option("--description", help="What it is for, for people."),
                click.option(
                    "--kind",
                    "kinds",
                    multiple=True,
                    metavar="PATTERN",
                    help="Event kinds it wants, * wildcards (default: *)" + keep + ".",
                ),
                click.option(
                    "--major-release",
                    "majors",
                    multiple=True,
                    help="Only releases of this major release" + keep + ".",
                ),
                click.option(
                    "--area",
                    "areas",
                    multiple=True,
                    metavar="PATTERN",
                    help="Only events about an area matching (production/*)" + keep + ".",
                ),
                click.option(
                    "--target-state",
                    "targets",
                    multiple=True,
                    metavar="STATE",
                    help="Only releases moving to this state" + keep + ".",
                ),
                click.option(
                    "--emergency",
                    type=click.Choice(["yes", "no", "any"]),
                    help="Only emergency releases, only others, or any (the default).",
                ),
                click.option(
                    "--github-signature/--no-github-signature",
                    "github",
                    default=None,
                    help="Also sign with GitHub's X-Hub-Signature-256.",
                ),
            ]
        ):
            command = option(command)
        return command

    return wrap


@click.group("subscriptions")
def subscriptions_group() -> None:
    """Webhook subscriptions: the systems told of events, signed (docs/notifications.md)."""


def _print_secret(name: str, secret: str) -> None:
    click.echo(f"secret: {secret}")
    click.echo(
        "  it will not be shown again: keep it in the receiver's settings now "
        f"(`rollout subscriptions rotate-secret {name}` makes a new one)"
    )


def _ping_line(name: str, result: pinging.PingResult, sub: Subscription) -> str:
    if result.ok:
        return f"ping {sub.url}: {result.describe()}; {name} is enabled"
    return (
        f"ping {sub.url}: {printable.escape(result.describe())}; {name} stays disabled "
        f"({sub.disabled_reason}); fix the endpoint, then `rollout subscriptions enable {name}`"
    )


def _ping(
    ctx: click.Context,
    store: subscription_store.SubscriptionStore,
    settings: settings_model.Settings,
    name: str,
    actor: str,
) -> tuple[pinging.PingResult, Subscription]:
    sender = pinging.sender_for(settings)
    ctx.call_on_close(sender.close)
    return pinging.ping_and_enable(store, name, sender=sender, actor=actor)


@subscriptions_group.command("add")
@click.argument("name")
@_spec_options(for_edit=False)
@click.option("--no-ping", is_flag=True, help="Enable it at once, without pinging it first.")
@_BY
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    url: str,
    description: str | None,
    kinds: tuple[str, ...],
    majors: tuple[str, ...],
    areas: tuple[str, ...],
    targets: tuple[str, ...],
    emergency: str | None,
    github: bool | None,
    no_ping: bool,
    actor: str | None,
) -> None:
    """Add subscription NAME; print its secret (once); ping it and enable it on a 2xx.

    Without an answer 2xx it stays disabled (exit status 1): fix the endpoint and run
    `rollout subscriptions enable NAME`.
    """
    store, settings = view.open_store(ctx)
    spec = _spec(url, description or "", kinds, majors, areas, targets, emergency, bool(github))
    try:
        sub, secret = store.add(name, spec, actor=view.login(actor), enabled=no_ping)
    except SubscriptionInvalid as exc:
        raise _usage(exc) from None
    click.echo(f"added subscription {name} ({sub.url})")
    _print_secret(name, secret)
    if no_ping:
        click.echo(f"not pinged (--no-ping): {name} is enabled")
        return
    result, sub = _ping(ctx, store, settings, name, view.login(actor))
    click.echo(_ping_line(name, result, sub))
    if not result.ok:
        ctx.exit(1)


@subscriptions_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the subscriptions as JSON.")
@click.pass_context
def list_subscriptions(ctx: click.Context, as_json: bool) -> None:
    """One line each: state, failing spell, what waits, last success, endpoint."""
    store, settings = view.open_store(ctx)
    subs = store.all()
    at = view.now()
    figures = delivery_reads.figures(
        store.engine, now=at, disable_after=settings.webhooks.disable_after
    )
    if as_json:
        listed = [{**s.as_dict(), **figures[s.name].as_dict(at)} for s in subs]
        click.echo(json.dumps(listed, indent=2))
        return
    if not subs:
        click.echo("no subscriptions (add one: rollout subscriptions add NAME --url URL)")
        return
    header = ["NAME", "STATE", "FAILING", "PENDING", "OLDEST", "LAST SUCCESS", "URL"]
    rows = []
    for s in subs:
        f = figures[s.name]
        rows.append(
            [
                s.name,
                view.state(s),
                view.failing(s, f),
                str(f.pending),
                view.age(f.oldest_pending_age(at)),
                view.when(s.last_success_at),
                printable.escape(s.url),
            ]
        )
    click.echo(view.table(header, rows, right={3}))


@subscriptions_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Everything about subscription NAME but its secret, and its recent deliveries."""
    store, settings = view.open_store(ctx)
    sub = store.get(name)
    at = view.now()
    f = delivery_reads.figures(store.engine, now=at, disable_after=settings.webhooks.disable_after)[
        name
    ]
    recent = delivery_reads.page(
        store.engine, delivery_reads.Filters(subscription=name), limit=RECENT
    ).deliveries
    recoveries = delivery_reads.recoveries(store.engine, name)
    if as_json:
        body = {
            **sub.as_dict(),
            **f.as_dict(at),
            "recent_deliveries": [d.as_dict() for d in recent],
            "recoveries": [r.as_dict() for r in recoveries],
        }
        click.echo(json.dumps(body, indent=2))
        return
    signatures = "Standard Webhooks" + (" and X-Hub-Signature-256" if sub.github_signature else "")
    if sub.previous_secret is not None and sub.previous_until and at < sub.previous_until:
        signatures += f" (the previous secret signs too until {view.when(sub.previous_until)} UTC)"
    lines = [
        f"subscription {sub.name}",
        f"  url:           {printable.escape(sub.url)}",
        f"  description:   {printable.escape(sub.description) or '-'}",
        f"  kinds:         {', '.join(sub.kinds)}",
        f"  filters:       {printable.escape(view.filters_text(sub.filters))}",
        f"  signed with:   {signatures}",
        f"  state:         {view.state(sub, 200)}"
        + (f" (since {view.when(sub.disabled_at)} UTC)" if not sub.enabled else ""),
        "  declared:      "
        + ("yes, in the settings file (read-only here)" if sub.declared else "no"),
        f"  failing:       {view.failing(sub, f)}"
        + (f", {sub.failures} failed attempts" if sub.failing_since else ""),
        f"  last error:    {printable.escape(sub.last_error or '-')}",
        f"  last success:  {view.when(sub.last_success_at)}",
        f"  deliveries:    {f.pending} waiting (oldest {view.age(f.oldest_pending_age(at))}), "
        f"{f.failed} failed, {f.delivered_24h} delivered in the last 24 h",
        f"  created:       {view.when(sub.created_at)}, changed {view.when(sub.updated_at)}",
    ]
    for r in recoveries:
        cancelled = f", cancelled {view.when(r.cancelled_at)}" if r.cancelled_at else ""
        lines.append(
            f"  recovery {r.id}:    {r.count} since {view.when(r.since)} by {r.asked_by} "
            f"at {view.when(r.at)}, {r.waiting} waiting{cancelled}"
        )
    if recent:
        lines.append("recent deliveries (rollout deliveries show ID):")
        lines += ["  " + line for line in view.delivery_table(recent).splitlines()]
    else:
        lines.append("no deliveries")
    click.echo("\n".join(lines))


@subscriptions_group.command("edit")
@click.argument("name")
@_spec_options(for_edit=True)
@_BY
@click.pass_context
def edit(
    ctx: click.Context,
    name: str,
    url: str | None,
    description: str | None,
    kinds: tuple[str, ...],
    majors: tuple[str, ...],
    areas: tuple[str, ...],
    targets: tuple[str, ...],
    emergency: str | None,
    github: bool | None,
    actor: str | None,
) -> None:
    """Change subscription NAME: what is given replaces what it had; the rest stays."""
    store, _settings = view.open_store(ctx)
    old = store.get(name)
    f = old.filters
    emergency_now = None if f.emergency is None else ("yes" if f.emergency else "no")
    spec = _spec(
        url or old.url,
        old.description if description is None else description,
        kinds or old.kinds,
        majors or f.major_releases,
        areas or f.areas,
        targets or f.target_states,
        emergency_now if emergency is None else emergency,
        old.github_signature if github is None else github,
    )
    try:
        new = store.edit(name, spec, actor=view.login(actor))
    except SubscriptionInvalid as exc:
        raise _usage(exc) from None
    changed = [k for k, v in new.as_dict().items() if k != "updated_at" and old.as_dict()[k] != v]
    click.echo(f"{name}: " + (f"changed {', '.join(changed)}" if changed else "nothing changed"))


@subscriptions_group.command("rotate-secret")
@click.argument("name")
@click.option(
    "--overlap",
    metavar="DURATION",
    help="How long the old secret keeps signing beside the new one: 90s, 30m, 12h, 2d "
    "(default: ROLLOUT_WEBHOOK_SECRET_OVERLAP, 1d); 0 stops it at once.",
)
@_BY
@click.pass_context
def rotate_secret(ctx: click.Context, name: str, overlap: str | None, actor: str | None) -> None:
    """A new secret for NAME, printed once; the old one signs beside it for the overlap."""
    store, settings = view.open_store(ctx)
    if store.get(name).declared:  # its secret is the settings file's
        raise SubscriptionDeclared(name)
    seconds = settings.webhooks.secret_overlap
    if overlap is not None:
        parsed = webhook_settings.duration(overlap)
        if parsed is None:
            raise click.BadParameter(f"{overlap!r} is not a duration (90s, 30m, 12h, 2d)")
        seconds = parsed
    sub, secret = store.rotate_secret(name, actor=view.login(actor), overlap=seconds)
    click.echo(f"new secret for {name}")
    _print_secret(name, secret)
    if sub.previous_until is not None:
        click.echo(f"the old secret signs too until {view.when(sub.previous_until)} UTC")
    else:
        click.echo("the old secret no longer signs")


@subscriptions_group.command("disable")
@click.argument("name")
@click.option(
    "--reason",
    default="disabled by an operator",
    show_default=True,
    help="Why, for the listing and the event log.",
)
@_BY
@click.pass_context
def disable(ctx: click.Context, name: str, reason: str, actor: str | None) -> None:
    """Stop deliveries to NAME; they wait, and new ones gather, until it is enabled."""
    store, _settings = view.open_store(ctx)
    was = store.get(name)
    sub = store.disable(name, reason=reason, actor=view.login(actor))
    if not was.enabled:
        click.echo(f"{name} was disabled already ({sub.disabled_reason})")
        return
    pending = delivery_reads.figures(store.engine, now=view.now(), disable_after=1)[name].pending
    click.echo(f"{name} disabled; {pending} deliveries wait for it")


@subscriptions_group.command("enable")
@click.argument("name")
@click.option("--no-ping", is_flag=True, help="Enable it without pinging it first.")
@_BY
@click.pass_context
def enable(ctx: click.Context, name: str, no_ping: bool, actor: str | None) -> None:
    """Enable NAME after a ping answered 2xx (exit status 1 otherwise); what waited goes out."""
    store, settings = view.open_store(ctx)
    if no_ping:
        was = store.get(name)
        store.enable(name, actor=view.login(actor), how="operator")
        click.echo(f"{name} " + ("was enabled already" if was.enabled else "enabled (not pinged)"))
        return
    result, sub = _ping(ctx, store, settings, name, view.login(actor))
    click.echo(_ping_line(name, result, sub))
    if not result.ok:
        ctx.exit(1)


@subscriptions_group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_BY
@click.pass_context
def remove(ctx: click.Context, name: str, yes: bool, actor: str | None) -> None:
    """Remove NAME with its deliveries (also those never sent) and their attempts."""
    store, _settings = view.open_store(ctx)
    sub = store.get(name)
    counted = delivery_reads.figures(store.engine, now=view.now(), disable_after=1)[name]
    click.echo(
        f"{name}: its deliveries go with it ({counted.pending} not sent yet, "
        f"{counted.failed} failed)"
    )
    if not yes:
        confirm_or_refuse(f"remove subscription {sub.name}?")
    gone = store.remove(name, actor=view.login(actor))
    click.echo(f"removed {name} and {gone} deliveries")


def confirm_or_refuse(question: str) -> None:
    """Ask on a terminal; refuse (exit status 1) when nobody can answer."""
    if not sys.stdin.isatty():
        click.echo("not confirmed: no terminal to ask on; add --yes", err=True)
        raise click.exceptions.Exit(1)
    if not click.confirm(question, default=False):
        click.echo("nothing done")
        raise click.exceptions.Exit(1)


@subscriptions_group.command("ping")
@click.argument("name")
@_BY
@click.pass_context
def ping_command(ctx: click.Context, name: str, actor: str | None) -> None:
    """Send NAME a signed ping; a disabled NAME that answers 2xx is enabled (exit 1: no 2xx)."""
    store, settings = view.open_store(ctx)
    was = store.get(name)
    result, sub = _ping(ctx, store, settings, name, view.login(actor))
    if result.ok:
        enabled = "; enabled it" if not was.enabled else ""
        click.echo(f"ping {sub.url}: {result.describe()}{enabled}")
        return
    click.echo(f"ping {sub.url}: {printable.escape(result.describe())}")
    ctx.exit(1)
