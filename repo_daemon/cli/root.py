"""The root of the ``rollout`` command: the ``cli`` click group (``--verbose``, ``--config``),
loading ``Settings`` for the subcommands, and ``main(argv) -> int``.

``main`` returns 0 on success, 1 on failure, 2 on bad configuration or usage; errors are printed
with their cause chain and ``--verbose`` adds tracebacks. It defines no subcommand: each command
group has its own module, and ``repo_daemon.cli`` adds them to the group.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

import bridge
from bridge import errors, printable, secrets
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from bridge.store import database
from repo_daemon import errors as daemon_errors

logger = logging.getLogger(__name__)


def load_settings(
    ctx: click.Context, *, require_tracker: bool = True, **overrides: Any
) -> settings_model.Settings:
    """The settings for a subcommand: ``--config``, the environment, then ``overrides`` (the
    subcommand's flags; ``None`` values are ignored). Raises ``ConfigError`` listing every
    problem."""
    return settings_load.load_settings(
        config_file=ctx.obj.get("config_file"),
        overrides=overrides,
        require_tracker=require_tracker,
    )


def open_engine(ctx: click.Context) -> sa.Engine:
    """The configured database for a command that only reads it (disposed of when the command
    ends); a ``BridgeError`` when its schema is not current (it never migrates)."""
    settings = load_settings(ctx, require_tracker=False)
    engine = database.create_engine(settings.database())
    ctx.call_on_close(engine.dispose)
    if not database.schema_is_current(engine):
        raise errors.BridgeError(
            f"the database {secrets.redact_url(settings.database())} has no current schema; "
            "run `rollout db upgrade` (or start the daemon)"
        )
    return engine


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
    for handler in logging.getLogger().handlers:  # no log line forged or hidden from outside
        if not any(isinstance(f, printable.EscapingFilter) for f in handler.filters):
            handler.addFilter(printable.EscapingFilter())
    if not verbose:
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("rt").setLevel(logging.WARNING)
        # APScheduler logs every run of every job (drain runs each second) at INFO.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("repo_daemon.daemon.scheduler.apscheduler").setLevel(logging.WARNING)
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["config_file"] = config_file


def cause_chain(exc: BaseException) -> str:
    """``error: <exc>`` and one ``caused by`` line per ``__cause__``, escaped
    (``bridge.printable.text``)."""
    lines = [f"error: {exc}"]
    seen = exc.__cause__
    while seen is not None:
        lines.append(f"  caused by {type(seen).__name__}: {seen}")
        seen = seen.__cause__
    # Messages quote provider names and servers: nothing in them may act on the terminal.
    return printable.text("\n".join(lines))


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
        click.echo(cause_chain(exc), err=True)
        return 2
    except (errors.BridgeError, daemon_errors.DaemonError) as exc:
        if verbose:
            traceback.print_exc()
        click.echo(cause_chain(exc), err=True)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        if verbose:
            traceback.print_exc()
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        click.echo(f"error: the database failed: {' '.join(first)}", err=True)
        return 1
    return status if isinstance(status, int) else 0
