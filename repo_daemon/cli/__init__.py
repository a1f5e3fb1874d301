"""The one ``rollout`` command. Each subcommand builds ``Settings`` and calls into the packages.

``main(argv) -> int`` returns 0 on success, 1 on failure, 2 on bad configuration or usage.
Errors are printed with their cause chain; ``--verbose`` adds tracebacks.

Over 500 lines for now: its split along these seams is on branch h-cli (one module per command
group), not merged yet (issue 12).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

import bridge
from bridge import errors, records, secrets
from bridge.intake import reconcile as reconcile_module
from bridge.rt_setup import apply, initialdata, sandbox
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from bridge.store import database
from bridge.store import queue as job_queue
from bridge.tracker.client import TrackerClient
from repo_daemon import errors as daemon_errors
from repo_daemon.daemon import assemble as service

logger = logging.getLogger(__name__)

DEFAULT_SANDBOX_DIR = Path(".rollout/sandbox")


def _settings(
    ctx: click.Context, *, require_tracker: bool = True, **overrides: Any
) -> settings_model.Settings:
    return settings_load.load_settings(
        config_file=ctx.obj.get("config_file"),
        overrides=overrides,
        require_tracker=require_tracker,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more and show tracebacks on errors.")
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (default: $ROLLOUT_CONFIG). Environment variables override it.",
)
@click.version_option(bridge.__version__, prog_name="rollout")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, config_file: Path | None) -> None:
    """Rollout bridge: RT release tickets in, package repository trees out.

    Settings come from ROLLOUT_* environment variables (ROLLOUT_RT_URL, ROLLOUT_RT_TOKEN or
    ROLLOUT_RT_USER + ROLLOUT_RT_PASSWORD, ROLLOUT_QUEUE, ...) and an optional TOML file;
    see docs/configuration.md.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("rt").setLevel(logging.WARNING)
        # APScheduler logs every run of every job (drain runs each second) at INFO.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("repo_daemon.daemon.scheduler.apscheduler").setLevel(logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["config_file"] = config_file


# -- tracker ------------------------------------------------------------------------------


@cli.group()
def tracker() -> None:
    """Set up and inspect the Request Tracker side."""


@tracker.command("init")
@click.option("--url", help="RT web root, e.g. https://rt.example.org/ (or ROLLOUT_RT_URL).")
@click.option("--user", help="RT administrator login (or ROLLOUT_RT_USER).")
@click.option("--queue", help="Release queue name (or ROLLOUT_QUEUE; default sw-rel).")
@click.pass_context
def tracker_init(ctx: click.Context, url: str | None, user: str | None, queue: str | None) -> None:
    """Create or update the queue, custom fields, groups, rights and scrip in a running RT.

    Idempotent: every item is read first and only created or changed when it differs, so it
    is safe to run again (e.g. after an upgrade of the bridge). Needs an RT administrator;
    the password comes from ROLLOUT_RT_PASSWORD or ROLLOUT_RT_PASSWORD_FILE. The scrip also
    needs $RolloutBridgeURL and $RolloutBridgeSecret in RT's site config (docs/tracker.md).
    """
    settings = _settings(ctx, rt_url=url, rt_user=user, queue=queue)
    report = apply.apply_setup(settings.tracker, settings.queue)
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
def tracker_initdata(queue: str, output: Path | None) -> None:
    """Print the set-up as an RT initialdata file.

    Load it into a new RT on the RT host with
    `rt-setup-database-5 --action insert --datafile FILE`. For an RT that may already have
    parts of the set-up, use `rollout tracker init` instead.
    """
    text = initialdata.render(queue)
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
    settings = _settings(ctx)
    with TrackerClient(settings.tracker) as client:
        ticket = client.get_ticket(ticket_id)
        click.echo(f"ticket {ticket.id}: {ticket.subject!r} in {ticket.queue}, {ticket.status}")
        click.echo(f"  RolloutProgress: {ticket.rollout_state.label}")
        for name, values in sorted(ticket.custom_fields.items()):
            click.echo(f"  {name}: {', '.join(values) or '-'}")
        click.echo(f"  Cc: {', '.join(w.name for w in ticket.cc) or '-'}")
        click.echo(f"  AdminCc: {', '.join(w.name for w in ticket.admin_cc) or '-'}")
        click.echo(f"  ({client.total_round_trips()} RT round trips)")


@tracker.group("sandbox")
def tracker_sandbox() -> None:
    """A throw-away RT 5 on loopback for development and the demo (Debian request-tracker5)."""


_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_SANDBOX_DIR,
    show_default=True,
    help="Folder holding the sandbox's database, config and logs.",
)


@tracker_sandbox.command("up")
@_dir_option
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
@_dir_option
def sandbox_down(directory: Path) -> None:
    """Stop the sandbox RT. Its database stays; `up` starts it again."""
    stopped = sandbox.Sandbox(directory).down()
    click.echo("sandbox RT stopped" if stopped else "sandbox RT was not running")


@tracker_sandbox.command("status")
@_dir_option
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


# -- the daemon and the receiver -----------------------------------------------------------

_processor_option = click.option(
    "--processor",
    "processor_spec",
    metavar="MODULE:ATTR",
    envvar="ROLLOUT_PROCESSOR",
    help="Process jobs with this processor instead of the default (or ROLLOUT_PROCESSOR): "
    "a factory called with (settings, queue), or an object with process(job). A hook for "
    "tests and extensions; see docs/operations.md.",
)
_reconcile_option = click.option(
    "--reconcile/--no-reconcile",
    "reconcile_changes",
    default=True,
    show_default=True,
    help="Look in RT's history for changes whose hook never came, at start and every "
    "ROLLOUT_RECONCILE_INTERVAL seconds. With several daemons, one reconciling is enough.",
)


def _processor_error(exc: daemon_errors.ProcessorNotFound) -> click.BadParameter:
    return click.BadParameter(str(exc), param_hint="'--processor'")


@cli.command("daemon")
@_processor_option
@_reconcile_option
@click.pass_context
def daemon(ctx: click.Context, processor_spec: str | None, reconcile_changes: bool) -> None:
    """Run the repo daemon in the foreground: drain the queue, reconcile, comment refusals.

    Migrates the database first. Several daemons may share one PostgreSQL queue. SIGTERM or
    SIGINT: the job in hand is finished, nothing more is claimed, and the daemon exits 0.
    """
    settings = _settings(ctx)
    try:
        service.run_daemon(
            settings, processor_spec=processor_spec, reconcile_changes=reconcile_changes
        )
    except daemon_errors.ProcessorNotFound as exc:
        raise _processor_error(exc) from exc


@cli.command("serve")
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run only the HTTP receiver of RT's hooks (until SIGTERM or SIGINT).

    Migrates the database first. Use it with one or more `rollout daemon` processes on the
    same database; `rollout run` does both in one process.
    """
    service.run_serve(_settings(ctx, require_tracker=False))


@cli.command("run")
@_processor_option
@_reconcile_option
@click.pass_context
def run(ctx: click.Context, processor_spec: str | None, reconcile_changes: bool) -> None:
    """Run the receiver and the daemon in one process (the embedded default).

    The scheduler runs in the background, the receiver in the foreground; the database is
    migrated first. SIGTERM or SIGINT stops both: the receiver answers the requests in flight,
    the daemon finishes the job in hand and claims nothing more; then it exits 0.
    """
    settings = _settings(ctx)
    try:
        service.run_all(
            settings, processor_spec=processor_spec, reconcile_changes=reconcile_changes
        )
    except daemon_errors.ProcessorNotFound as exc:
        raise _processor_error(exc) from exc


@cli.command("reconcile")
@click.option(
    "--since",
    type=click.IntRange(min=0),
    metavar="TXN",
    help="Backfill: queue every RolloutProgress change after RT transaction TXN (0 for all). "
    "Without it, start from the stored cursor (on the first run: from the newest change).",
)
@click.pass_context
def reconcile(ctx: click.Context, since: int | None) -> None:
    """Queue RolloutProgress changes in RT whose hook never reached the bridge, once.

    Asks RT for the changes on tickets of the release queue after the stored cursor and queues
    the missing ones as recovered. Changes queued already are not queued again.
    """
    settings = _settings(ctx)
    with service.opened(settings) as jobs, TrackerClient(settings.tracker) as client:
        reconciler = reconcile_module.Reconciler(jobs, client, settings.queue)
        for report in reconciler.run_until_done(since=since):
            click.echo(f"reconciliation: {report.summary()}")
            for job_id in report.queued:
                click.echo(f"  queued job {job_id}")


# -- the database ---------------------------------------------------------------------------


@cli.group("db")
def db() -> None:
    """Look after the bridge's database (the queue, the event log, the bridge's state)."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create the database schema, or bring it to the newest version. Safe to run again.

    `rollout daemon`, `serve` and `run` do this themselves at start.
    """
    settings = _settings(ctx, require_tracker=False)
    with service.opened(settings) as jobs:
        current = database.schema_is_current(jobs.engine)
    state = "at the newest schema" if current else "NOT at the newest schema"
    click.echo(f"database {secrets.redact_url(settings.database())} is {state}")
    if not current:
        raise click.exceptions.Exit(1)


# -- the queue ------------------------------------------------------------------------------


@cli.group("queue")
def queue_group() -> None:
    """Inspect the queue of RolloutProgress changes and retry failed or dead jobs."""


def _open_jobs(ctx: click.Context) -> job_queue.Queue:
    """The queue, for the operator commands: never migrates, says so when it should."""
    settings = _settings(ctx, require_tracker=False)
    jobs = service.open_queue(settings)
    ctx.call_on_close(jobs.engine.dispose)
    if not database.schema_is_current(jobs.engine):
        raise errors.BridgeError(
            f"the database {secrets.redact_url(settings.database())} has no current schema; "
            "run `rollout db upgrade` (or start the daemon)"
        )
    return jobs


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _change(job: records.Job) -> str:
    return f"{job.request.previous.label} → {job.request.current.label}"


def _job_json(job: records.Job) -> dict[str, Any]:
    r = job.request
    return {
        "id": job.id,
        "ticket_id": r.ticket_id,
        "transaction_id": r.transaction_id,
        "previous": r.previous.label,
        "current": r.current.label,
        "emergency": r.emergency,
        "actor": r.actor,
        "source": r.source.label,
        "status": job.status.label,
        "attempts": job.attempts,
        "scheduled_at": _iso(job.scheduled_at),
        "created_at": _iso(job.created_at),
        "locked_by": job.locked_by,
        "locked_until": _iso(job.locked_until),
        "finished_at": _iso(job.finished_at),
        "last_error": job.last_error,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _one_line(text: str | None, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@queue_group.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.label for s in records.JobStatus]),
    help="Only jobs in this state; repeat for several (default: all).",
)
@click.option("--ticket", type=int, help="Only the jobs of this ticket.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N jobs."
)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@click.pass_context
def queue_list(
    ctx: click.Context, states: tuple[str, ...], ticket: int | None, limit: int, as_json: bool
) -> None:
    """List jobs, newest first, with their state, tries and last error."""
    jobs = _open_jobs(ctx).list_jobs(
        statuses=[records.JobStatus.parse(s) for s in states], ticket_id=ticket, limit=limit
    )
    if as_json:
        click.echo(json.dumps([_job_json(j) for j in jobs], indent=2))
        return
    if not jobs:
        click.echo("no jobs")
        return
    header = ["ID", "TICKET", "TXN", "CHANGE", "STATUS", "TRIES", "SOURCE", "SCHEDULED (UTC)",
              "LAST ERROR"]  # fmt: skip
    rows = [
        [
            str(j.id),
            str(j.ticket_id),
            str(j.request.transaction_id),
            _change(j),
            j.status.label,
            str(j.attempts),
            j.request.source.label,
            _time(j.scheduled_at),
            _one_line(j.last_error),
        ]
        for j in jobs
    ]
    click.echo(_table(header, rows, right={0, 1, 2, 5}))


@queue_group.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the job and its events as JSON.")
@click.pass_context
def queue_show(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Show one job in full, with its events (oldest first)."""
    jobs = _open_jobs(ctx)
    job = jobs.get(job_id)
    if job is None:
        raise job_queue.JobNotFound(f"there is no job {job_id}")
    events = list(reversed(jobs.events(job_id=job_id, limit=10_000)))
    if as_json:
        listed = [
            {"id": e.id, "at": _iso(e.at), "kind": e.kind.value, "detail": e.detail} for e in events
        ]
        click.echo(json.dumps({**_job_json(job), "events": listed}, indent=2))
        return
    r = job.request
    lines = [
        f"job {job.id}: ticket {r.ticket_id}, {_change(job)}",
        f"  status:        {job.status.label} ({job.status.description})",
        f"  attempts:      {job.attempts}",
        f"  transaction:   {r.transaction_id} by {r.actor or '-'}, {r.source.label} "
        f"({r.source.description})",
        f"  emergency:     {'yes' if r.emergency else 'no'}",
        f"  created:       {_time(job.created_at)} UTC",
        f"  scheduled:     {_time(job.scheduled_at)} UTC",
        f"  locked by:     {job.locked_by or '-'}",
        f"  locked until:  {_time(job.locked_until)}" + (" UTC" if job.locked_until else ""),
        f"  finished:      {_time(job.finished_at)}" + (" UTC" if job.finished_at else ""),
        f"  last error:    {job.last_error or '-'}",
        "events:" if events else "events: none",
    ]
    lines += [f"  {_time(e.at)}  {e.kind.value}  {e.detail}".rstrip() for e in events]
    click.echo("\n".join(lines))


@queue_group.command("retry")
@click.argument("job_id", type=int)
@click.pass_context
def queue_retry(ctx: click.Context, job_id: int) -> None:
    """Queue a failed or dead job again, now, with a fresh count of tries.

    Fix what its last error names first (`rollout queue show ID`). Jobs in any other state
    cannot be retried (exit status 1).
    """
    jobs = _open_jobs(ctx)
    before = jobs.get(job_id)
    job = jobs.retry(job_id)
    was = before.status.label if before is not None else "?"
    click.echo(f"job {job.id} (ticket {job.ticket_id}, {_change(job)}) queued again; it was {was}")


@queue_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def queue_stats(ctx: click.Context, as_json: bool) -> None:
    """Count jobs per state, and how many are due and how long the oldest has waited."""
    stats = _open_jobs(ctx).stats()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    rows = [[s.label, str(stats[s.label])] for s in records.JobStatus]
    rows.append(["due now", str(stats["due"])])
    rows.append(["oldest due", f"{stats['oldest_due_seconds']:.0f} s"])
    click.echo(_table(["STATE", "JOBS"], rows, right={1}))


# -- the workflow ---------------------------------------------------------------------------


@cli.group("workflow")
def workflow_group() -> None:
    """Look at the release workflow definitions (schemas/workflows/)."""


@workflow_group.command("show")
@click.option(
    "--template",
    type=click.Choice(["staged", "direct"]),
    help="A shipped template (default: the configured default workflow, else staged).",
)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A definition file of your own, checked as the daemon would.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="Text for people, a Mermaid state diagram, or Graphviz dot.",
)
def workflow_show(template: str | None, path: Path | None, fmt: str) -> None:
    """Print a workflow: its states, its table of transitions, or a diagram of it.

    Checks the definition as the daemon does at start-up and exits 2 naming every problem.
    """
    from repo_daemon.workflow import loader, render

    if path is not None:
        definition = loader.load_file(path)
    else:
        definition = loader.load_template(template or "staged")
    click.echo(render.render(definition, fmt), nl=False)


# -- the repository's trees -----------------------------------------------------------------


@cli.group("repo")
def repo_group() -> None:
    """Serve and look after the repository's trees."""


@repo_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8751, show_default=True, type=int, help="Port to listen on.")
@click.pass_context
def repo_serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the trees (ROLLOUT_REPO_ROOT) over HTTP for apt, dnf and mirrors.

    For the embedded default and trying things out; in production use nginx (see
    docs/serving.md). Never serves outside the root or the repository's bookkeeping
    (.pool, .locks, .snapshots). Runs until SIGTERM or Ctrl-C.
    """
    from repo_daemon.serving import static as serving

    settings = _settings(ctx, require_tracker=False)
    root = settings.repository.root
    root.mkdir(parents=True, exist_ok=True)
    click.echo(f"serving {root.resolve()} at http://{host}:{port}/", err=True)
    serving.serve_static(root.resolve(), host, port)


@repo_group.command("nginx-conf")
@click.option("--listen", default="127.0.0.1:8751", show_default=True, help="nginx listen value.")
@click.option("--server-name", default="_", show_default=True, help="nginx server_name.")
@click.pass_context
def repo_nginx_conf(ctx: click.Context, listen: str, server_name: str) -> None:
    """Print an nginx server block serving ROLLOUT_REPO_ROOT (see docs/serving.md)."""
    from repo_daemon.serving import static as serving

    settings = _settings(ctx, require_tracker=False)
    root = settings.repository.root.resolve()
    click.echo(serving.render_nginx(root, listen=listen, server_name=server_name), nl=False)


@repo_group.command("rsyncd-conf")
@click.option("--port", default=873, show_default=True, type=int, help="rsync daemon port.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.pass_context
def repo_rsyncd_conf(ctx: click.Context, port: int, address: str) -> None:
    """Print an rsyncd.conf with a read-only module of the trees, for mirrors (see
    docs/serving.md for the mirror command that always copies one consistent snapshot)."""
    from repo_daemon.serving import static as serving

    settings = _settings(ctx, require_tracker=False)
    root = settings.repository.root.resolve()
    click.echo(serving.render_rsyncd(root, port=port, address=address), nl=False)


@repo_group.command("gc")
@click.pass_context
def repo_gc(ctx: click.Context) -> None:
    """Remove pool files no snapshot uses and leftovers of interrupted publications.

    The daemon does this on its own every ROLLOUT_HOUSEKEEPING_INTERVAL seconds.
    """
    from repo_daemon.publish import repository as publish

    settings = _settings(ctx, require_tracker=False)
    report = publish.Repository(settings.repository).collect_garbage()
    click.echo(
        f"{report.snapshots} snapshots read; removed {report.pool_removed} pool files "
        f"({report.pool_removed_bytes:,} bytes) and {report.stale_removed} leftovers; "
        f"kept {report.pool_kept} pool files"
    )


# -- releases -------------------------------------------------------------------------------


@cli.group("release")
def release_group() -> None:
    """Check release.xml files as the bridge will (for providers and release managers)."""


@release_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def release_validate(path: Path) -> None:
    """Validate a release.xml against schemas/release.xsd and the bridge's own checks.

    Prints a summary when it is valid (exit 0), or every problem with its line and element
    (exit 1). PATH may be - for standard input.
    """
    from repo_daemon.release_xml import parse as release

    if str(path) == "-":
        data = sys.stdin.buffer.read(release.MAX_RELEASE_XML_BYTES + 1)
        info = release.parse_release(data, source="standard input")
    else:
        info = release.validate_file(path)  # enforces the size limit, so reading is safe
        data = path.read_bytes()
    repositories = ", ".join(
        f"{r.identifier} ({r.type}, {r.relative_path or '.'})" for r in info.repositories
    )
    click.echo(f"{path}: valid")
    click.echo(f"  {info.short_name} {info.version} — {info.distribution_name}, {info.iso_date}")
    click.echo(
        f"  ReleaseType {info.release_type or '(from the ticket)'}, "
        f"MajorRelease {info.major_release or '(from the ticket)'}"
    )
    click.echo(f"  {len(info.packages)} packages, {info.total_size:,} bytes")
    click.echo(f"  repositories: {repositories}")
    click.echo(f"  sha256 of release.xml: {release.release_sha256(data)}")


@release_group.command("sync")
@click.argument("release_xml", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", help="Where to fetch from (default: release.xml's SynchURL).")
@click.option(
    "--protocol",
    type=click.Choice(["rsync", "sftp", "https"]),
    help="How to fetch (default: release.xml's SynchProtocol, else rsync).",
)
@click.pass_context
def release_sync(
    ctx: click.Context, release_xml: Path, dest: Path, url: str | None, protocol: str | None
) -> None:
    """Fetch a release's packages into DEST and verify them against its release.xml.

    Does exactly what the daemon does at Submitted → Unverified, with progress on the
    terminal: a provider or release manager can check a release before filing it. Exit 1
    with every difference listed when the files are not what release.xml says.
    """
    from repo_daemon.release_xml import parse as release
    from repo_daemon.sync import fetch as sync
    from repo_daemon.sync import progress as sync_progress
    from repo_daemon.workflow import steps as repository_work

    info = release.validate_file(release_xml)
    source = url or info.synch_url
    if not source:
        raise click.UsageError("release.xml has no SynchURL; give --url")
    settings = _settings(ctx, require_tracker=False)
    options = repository_work.sync_options_from(settings)

    def progress(done: int, total: int | None, rate: float) -> None:
        click.echo(
            f"\r  {sync_progress.format_progress(done, total, rate):<60}", nl=False, err=True
        )

    result = sync.sync_and_verify(
        protocol or info.synch_protocol, source, dest, info.packages,
        options=options, progress=progress,
    )  # fmt: skip
    click.echo("", err=True)
    click.echo(
        f"{info.short_name} {info.version}: {result.files} files, {result.bytes:,} bytes in "
        f"{result.seconds:.1f} s; every file matches release.xml"
    )


# -- demo ---------------------------------------------------------------------------------


@cli.command("demo")
@_dir_option
@click.option(
    "--exit", "stop_at_end", is_flag=True, help="Stop everything at the end instead of waiting."
)
def demo(directory: Path, stop_at_end: bool) -> None:
    """Walk a release from ticket to installed package, with nothing to configure.

    Starts a sandbox RT with the product's set-up (its database is kept in --dir and reused),
    a provider's rsync source with a sample release of real .rpm and .deb packages, the bridge
    (`rollout run`) and its trees over HTTP (`rollout repo serve`). Then files a ticket and
    moves it Submitted → Unverified → InVerification → StageRollout → Production, showing what
    the bridge did at each step, and installs the sample package from the production tree with
    apt-get into a throw-away root. Everything keeps running until Ctrl-C (unless --exit).
    Each run files a new ticket and starts the bridge's side afresh in --dir/demo.
    """
    from repo_daemon.demo import run as demo_run

    raise click.exceptions.Exit(demo_run.run_demo(directory, stop_at_end=stop_at_end))


# -- entry point --------------------------------------------------------------------------


def _cause_chain(exc: BaseException) -> str:
    lines = [f"error: {exc}"]
    seen = exc.__cause__
    while seen is not None:
        lines.append(f"  caused by {type(seen).__name__}: {seen}")
        seen = seen.__cause__
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rollout`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    try:
        # Without standalone mode, click returns the code of a click.exceptions.Exit.
        status = cli.main(args=args, prog_name="rollout", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2
    except (errors.ConfigError, daemon_errors.WorkflowInvalid) as exc:
        click.echo(_cause_chain(exc), err=True)
        return 2
    except (errors.BridgeError, daemon_errors.DaemonError) as exc:
        if verbose:
            traceback.print_exc()
        click.echo(_cause_chain(exc), err=True)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        if verbose:
            traceback.print_exc()
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        click.echo(f"error: the database failed: {' '.join(first)}", err=True)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
