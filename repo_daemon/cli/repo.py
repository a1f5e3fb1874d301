"""``rollout repo``: serve the repository's trees, answer nginx's access check for the
protected areas, print the nginx and rsyncd configurations for them, collect the pool's
garbage, roll an area back to a kept snapshot, and make the bridge's own signing key.

It only parses options and prints; serving and publishing are ``repo_daemon.serving`` and
``repo_daemon.publish``'s.
"""

from __future__ import annotations

from pathlib import Path

import click

from bridge.settings import model as settings_model
from repo_daemon.cli import root
from repo_daemon.serving import rsyncd as rsyncd_defaults


@click.group("repo")
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
    from repo_daemon.serving import access_parts
    from repo_daemon.serving import static as serving

    settings = root.load_settings(ctx, require_tracker=False)
    trees = settings.repository.root
    trees.mkdir(parents=True, exist_ok=True)
    parts = access_parts.build_guard(settings, with_tracker=_tracker_configured(settings))
    if parts.guard.policy.protected_kinds and parts.checker is None:
        click.echo(
            "no RT configured (ROLLOUT_RT_URL and credentials): "
            f"{', '.join(parts.guard.policy.protected_kinds)} areas are served to nobody",
            err=True,
        )
    click.echo(f"serving {trees.resolve()} at http://{host}:{port}/", err=True)
    try:
        serving.serve_static(trees.resolve(), host, port, guard=parts.guard)
    finally:
        parts.close()


@repo_group.command("access-check")
@click.option("--host", default=None, help="Address to listen on [ROLLOUT_ACCESS_CHECK_HOST].")
@click.option("--port", default=None, type=int, help="Port [ROLLOUT_ACCESS_CHECK_PORT, 8752].")
@click.pass_context
def repo_access_check(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Answer nginx's auth_request for the protected areas (unverified, stagerollout): who
    may read which area, checked against RT logins and groups (see docs/access.md). Runs
    until SIGTERM or Ctrl-C.
    """
    from repo_daemon.serving import access_parts
    from repo_daemon.web import access_check

    settings = root.load_settings(ctx, access_check_host=host, access_check_port=port)
    parts = access_parts.build_guard(settings)
    where = f"{settings.access.check_host}:{settings.access.check_port}"
    click.echo(f"access check on http://{where}/access-check", err=True)
    try:
        access_check.serve(parts, settings.access.check_host, settings.access.check_port)
    finally:
        parts.close()


def _tracker_configured(settings: settings_model.Settings) -> bool:
    tracker = settings.tracker
    return bool(tracker.url) and (
        tracker.token is not None or (tracker.user is not None and tracker.password is not None)
    )


@repo_group.command("nginx-conf")
@click.option("--listen", default="127.0.0.1:8751", show_default=True, help="nginx listen value.")
@click.option("--server-name", default="_", show_default=True, help="nginx server_name.")
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve HTTPS on --listen with this certificate (PEM, full chain; with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The certificate's private key (PEM; with --tls-cert).",
)
@click.option(
    "--http-redirect",
    "redirect_listen",
    metavar="LISTEN",
    help="Also listen on LISTEN with plain HTTP, only to redirect to HTTPS (e.g. 80).",
)
@click.option(
    "--access-check",
    default=None,
    help="HOST:PORT of `rollout repo access-check` [ROLLOUT_ACCESS_CHECK_HOST:…_PORT].",
)
@click.pass_context
def repo_nginx_conf(
    ctx: click.Context,
    listen: str,
    server_name: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    redirect_listen: str | None,
    access_check: str | None,
) -> None:
    """Print an nginx server block serving ROLLOUT_REPO_ROOT (see docs/serving.md), over HTTPS
    when given a certificate and key; the protected areas ask the access check first
    (docs/access.md)."""
    from repo_daemon.serving import access, nginx

    settings = root.load_settings(ctx, require_tracker=False)
    trees = settings.repository.root.resolve()
    check = access_check or f"{settings.access.check_host}:{settings.access.check_port}"
    protected = access.AccessPolicy.from_settings(settings).protected_kinds
    try:
        text = nginx.render_nginx(
            trees,
            listen=listen,
            server_name=server_name,
            tls_cert=tls_cert.absolute() if tls_cert else None,
            tls_key=tls_key.absolute() if tls_key else None,
            redirect_listen=redirect_listen,
            access_check=check,
            protected=protected,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(text, nl=False)


@repo_group.command("rsyncd-conf")
@click.option("--port", default=873, show_default=True, type=int, help="rsync daemon port.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--secrets-file",
    default=str(rsyncd_defaults.DEFAULT_SECRETS_FILE),
    show_default=True,
    help="rsyncd secrets file (role:secret lines) of the protected areas' modules.",
)
@click.pass_context
def repo_rsyncd_conf(ctx: click.Context, port: int, address: str, secrets_file: str) -> None:
    """Print an rsyncd.conf with a read-only module of the public trees, for mirrors (see
    docs/serving.md for the mirror command that always copies one consistent snapshot), and
    one module per protected kind of area, for the roles with a secret (docs/access.md)."""
    from repo_daemon.serving import access, rsyncd

    settings = root.load_settings(ctx, require_tracker=False)
    trees = settings.repository.root.resolve()
    policy = access.AccessPolicy.from_settings(settings)
    if "production" in policy.protected_kinds:
        raise click.UsageError(
            "production is protected (ROLLOUT_AREA_ROLES): rsync has no module for it; "
            "mirror it over HTTP with a login"
        )
    protected = {kind: policy.rsync_users(kind) for kind in policy.protected_kinds}
    click.echo(
        rsyncd.render_rsyncd(
            trees,
            port=port,
            address=address,
            protected=protected,
            secrets_file=Path(secrets_file),
        ),
        nl=False,
    )


@repo_group.command("gc")
@click.pass_context
def repo_gc(ctx: click.Context) -> None:
    """Remove pool files no snapshot uses and leftovers of interrupted publications.

    The daemon does this on its own every ROLLOUT_HOUSEKEEPING_INTERVAL seconds.
    """
    from repo_daemon.metadata import caches
    from repo_daemon.publish import locks
    from repo_daemon.publish import repository as publish

    settings = root.load_settings(ctx, require_tracker=False)
    repository = publish.Repository(
        settings.repository,
        area_locks=locks.chosen(settings),
        caches=caches.AreaCaches.of_root(settings.repository.root.resolve()),
    )
    report = repository.collect_garbage()
    click.echo(
        f"{report.snapshots} snapshots read; removed {report.pool_removed} pool files "
        f"({report.pool_removed_bytes:,} bytes) and {report.stale_removed} leftovers; "
        f"kept {report.pool_kept} pool files"
        + (
            f"; made {report.pool_repaired} writable pool files read-only"
            if report.pool_repaired
            else ""
        )
        + (
            f"; removed the metadata caches of {report.caches_removed} areas that are gone"
            if report.caches_removed
            else ""
        )
    )


@repo_group.command("rollback")
@click.argument("area")
@click.argument("snapshot")
@click.pass_context
def repo_rollback(ctx: click.Context, area: str, snapshot: str) -> None:
    """Make the kept SNAPSHOT of AREA live again (e.g. production/7/updates
    000041-20261206T101500Z; `ls <root>/.snapshots/production~7~updates/` lists them).

    Works in both layouts (ROLLOUT_AREA_LAYOUT): a full snapshot by swapping the area's
    symlink, a tree-layout one by relinking from the pool what the payload tree lacks and
    switching its metadata. The next publication starts from the snapshot rolled back to.
    """
    from repo_daemon.publish import areas, locks
    from repo_daemon.publish import repository as publish

    settings = root.load_settings(ctx, require_tracker=False)
    repository = publish.Repository(settings.repository, area_locks=locks.chosen(settings))
    before = repository.live_snapshot(areas.Area.parse(area.strip("/")))
    result = repository.rollback(areas.Area.parse(area.strip("/")), snapshot)
    if result.changed:
        click.echo(f"{result.area} now at snapshot {result.snapshot} (was {before})")
    else:
        click.echo(f"{result.area} is already at snapshot {result.snapshot}")


@repo_group.command("init-key")
@click.option(
    "--uid",
    default="Rollout bridge repository signing key",
    show_default=True,
    help="The new key's user id, e.g. 'Example repository <repo@example.org>'.",
)
@click.option(
    "--algorithm",
    type=click.Choice(["rsa4096", "rsa3072", "ed25519"]),
    default="rsa4096",
    show_default=True,
    help="rsa4096 works with every client; ed25519 with RHEL 8+ and Debian 10+.",
)
@click.pass_context
def repo_init_key(ctx: click.Context, uid: str, algorithm: str) -> None:
    """Make the bridge's own signing key, once, and print its fingerprint.

    Without ROLLOUT_SIGNING_KEY the daemon signs the trees with this key, in ROLLOUT_GNUPGHOME
    (default <data dir>/gnupg); it makes it on its first start when this was not run. Run
    again, it prints the same key: the bridge never makes a second one (docs/clients.md).
    """
    from repo_daemon.metadata import keys

    settings = root.load_settings(ctx, require_tracker=False)
    repo = settings.repository
    if repo.unsigned:
        raise click.ClickException(
            "signing_key is 'none' (unsigned trees): unset it to sign with the bridge's own key"
        )
    if repo.signing_key is not None:
        click.echo(
            f"the trees are signed with the configured key {repo.signing_key} "
            f"(GnuPG home {repo.gnupghome or 'gpg default'}); no key to make"
        )
        return
    own = keys.ensure_own_key(keys.own_home(settings), uid=uid, algorithm=algorithm)
    said = f"made now ({algorithm})" if own.created else "made earlier, kept"
    click.echo(f"fingerprint {own.fingerprint}\nGnuPG home  {own.home}\nkey         {said}")
    if own.created:
        click.echo(
            "Back the home up, and publish the fingerprint where sites can check it "
            "(docs/clients.md)."
        )
