"""``rollout release validate|sync``: check a release.xml, and fetch and verify a release's
packages, exactly as the daemon would. What it prints from the provider (names, paths,
server output, errors) is escaped (``bridge.printable``): nothing reaches the terminal raw.

It publishes nothing and never touches the queue or RT.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge import printable
from repo_daemon.cli import root


@click.group("release")
def release_group() -> None:
    """Check release.xml files as the bridge will, and show a release's history (for
    providers and release managers)."""


@release_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def release_validate(path: Path) -> None:
    """Validate a release.xml against schemas/release.xsd and the bridge's own checks.

    Prints a summary when it is valid (exit 0), or every problem with its line and element
    (exit 1). PATH may be - for standard input.
    """
    from repo_daemon.release_xml import parse as release_xml_parse
    from repo_daemon.release_xml import safe_xml

    if str(path) == "-":
        data = sys.stdin.buffer.read(safe_xml.MAX_RELEASE_XML_BYTES + 1)
        info = release_xml_parse.parse_release(data, source="standard input")
    else:
        info = release_xml_parse.validate_file(path)  # enforces the size limit, so reading is safe
        data = path.read_bytes()
    repositories = ", ".join(
        f"{r.identifier} ({r.type}, {r.relative_path or '.'})" for r in info.repositories
    )
    lines = [
        f"{path}: valid",
        f"  {info.short_name} {info.version} — {info.distribution_name}, {info.iso_date}",
        f"  ReleaseType {info.release_type or '(from the ticket)'}, "
        f"MajorRelease {info.major_release or '(from the ticket)'}",
        f"  {len(info.packages)} packages, {info.total_size:,} bytes",
        f"  repositories: {repositories}",
        f"  sha256 of release.xml: {release_xml_parse.release_sha256(data)}",
    ]
    for line in lines:  # the provider's words, shown escaped (bridge.printable)
        click.echo(printable.escape(line))


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
    from repo_daemon.release_xml import parse as release_xml_parse
    from repo_daemon.sync import fetch as sync
    from repo_daemon.sync import progress as sync_progress
    from repo_daemon.workflow import steps as repository_work

    info = release_xml_parse.validate_file(release_xml)
    source = url or info.synch_url
    if not source:
        raise click.UsageError("release.xml has no SynchURL; give --url")
    settings = root.load_settings(ctx, require_tracker=False)
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
        printable.escape(
            f"{info.short_name} {info.version}: {result.files} files, {result.bytes:,} bytes "
            f"in {result.seconds:.1f} s; every file matches release.xml"
        )
    )
