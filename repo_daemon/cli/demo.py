"""``rollout demo``: walk a release from ticket to installed package on a sandbox RT.

It only parses options; the walk is ``repo_daemon.demo.run``'s.
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_daemon.cli import tracker


@click.command("demo")
@tracker.sandbox_dir_option
@click.option(
    "--exit", "stop_at_end", is_flag=True, help="Stop everything at the end instead of waiting."
)
def demo(directory: Path, stop_at_end: bool) -> None:
    """Walk a release from ticket to installed package, with nothing to configure.

    Starts a sandbox RT with the product's set-up (its database is kept in --dir and reused),
    a provider's rsync source with a sample release of real .rpm (signed) and .deb packages,
    the repository's signing key (`rollout repo init-key`, kept in --dir), the bridge
    (`rollout run`) and its trees over HTTP (`rollout repo serve`). Then files a ticket and
    moves it Submitted → Unverified → InVerification → StageRollout → Production, showing what
    the bridge did at each step, and installs the sample package from the signed production
    tree with apt-get and with dnf into throw-away roots, checking signatures. Everything keeps
    running until Ctrl-C (unless --exit). Each run files a new ticket and starts the bridge's
    side afresh in --dir/demo.
    """
    from repo_daemon.demo import run as demo_run

    raise click.exceptions.Exit(demo_run.run_demo(directory, stop_at_end=stop_at_end))
