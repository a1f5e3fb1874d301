"""The repository work of a transition, for one release: freeze release.xml and check it is
unchanged, sync and verify the packages, publish, promote, remove — each a call into
``release_xml``, ``sync`` and ``publish``, with the release's files kept where a resumed job
finds them. The handlers in ``repository_actions`` call it through ``RepositorySteps``.

Where things live (under the data directory, on the repository's filesystem so publication
can hard-link instead of copying): ``releases/<ticket>/release.xml`` (the frozen copy) and
``scratch/<ticket>/`` (the sync target, removed once published). It decides nothing: the
workflow's row says which actions run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bridge import errors as bridge_errors
from bridge import files
from bridge.settings import model as settings_model
from bridge.store import releases
from bridge.tracker.client import TrackerClient
from repo_daemon import errors
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import caches, keys
from repo_daemon.publish import areas, index, locks
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from repo_daemon.release_xml import parse as release_xml_parse
from repo_daemon.release_xml import safe_xml, ticket_fields
from repo_daemon.sync import allowlist as sync_allowlist
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import scratch as sync_scratch
from repo_daemon.workflow.gather import TicketView
from repo_daemon.workflow.repository_actions import Step

logger = logging.getLogger(__name__)

RELEASE_XML = "release.xml"


class RepositoryWork:
    """Carries out repository actions against the configured trees."""

    def __init__(
        self,
        settings: settings_model.Settings,
        store: releases.ReleaseStore,
        repository: publish.Repository,
        *,
        sync_options: sync_records.SyncOptions | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.repository = repository
        self.sync_options = sync_options or sync_options_from(settings)
        self.data_dir = settings.data_dir.resolve()

    # -- where things are ---------------------------------------------------------------

    def release_xml_path(self, ticket_id: int) -> Path:
        return self.data_dir / "releases" / str(int(ticket_id)) / RELEASE_XML

    def scratch(self, ticket_id: int) -> Path:
        return self.data_dir / "scratch" / str(int(ticket_id))

    def url_of(self, ticket_id: int) -> str | None:
        """The release's RepositoryURL as last published (for resumed jobs)."""
        found = self.store.get(ticket_id)
        if found is None or not found.repository_path:
            return None
        return self.url_of_area(found.repository_path)

    def url_of_area(self, path: str) -> str:
        """The public URL of the area at ``path``: what RepositoryURL shows, and what
        ``release_published`` and ``release_reached_production`` carry."""
        return self.settings.repository.base_url + path.strip("/") + "/"

    # -- release.xml ----------------------------------------------------------------------

    def freeze_release_xml(self, tracker: TrackerClient, ticket: TicketView) -> Step:
        """Download the ticket's newest release.xml and freeze it (bytes and SHA-256). A ticket
        without one is the provider's to fix (``TicketIncomplete``: they are told)."""
        try:
            attachment = tracker.download_attachment(ticket.id, RELEASE_XML)
        except bridge_errors.TrackerNotFound as exc:
            raise errors.TicketIncomplete(
                "the ticket has no release.xml attached; attach it to the ticket (by mail: "
                "answer with release.xml attached)",
                ticket_id=ticket.id,
            ) from exc
        data = attachment.content
        if len(data) > safe_xml.MAX_RELEASE_XML_BYTES:
            # Refused by the parser too; checked here so nothing that large is stored.
            release_xml_parse.parse_release(data)
        files.write_atomically(self.release_xml_path(ticket.id), data)
        sha = release_xml_parse.release_sha256(data)
        self.store.freeze_release_xml(ticket.id, sha256=sha, attachment_id=attachment.id)
        return Step(detail=f"froze release.xml (attachment {attachment.id}, sha256 {sha})")

    def check_release_xml_unchanged(self, tracker: TrackerClient, ticket: TicketView) -> Step:
        """Keep the frozen release.xml, and say so when the ticket's attachment changed since.
        A release that was never frozen (or whose copy is gone) is frozen now."""
        found = self.store.get(ticket.id)
        if (
            found is None
            or found.release_sha256 is None
            or not self.release_xml_path(ticket.id).exists()
        ):
            return self.freeze_release_xml(tracker, ticket)
        newest = tracker.newest_attachment_id(ticket.id, RELEASE_XML)
        if newest is not None and newest != found.release_attachment_id:
            return Step(
                detail=f"release.xml attachment {newest} is newer than the frozen one",
                note=(
                    f"Note: release.xml was changed on the ticket (attachment {newest}) after "
                    f"the release was accepted with attachment {found.release_attachment_id} "
                    f"(sha256 {found.release_sha256}). The bridge keeps using the accepted "
                    "one; to publish the new one, reject this release and file a new ticket."
                ),
            )
        return Step(detail=f"using the frozen release.xml (sha256 {found.release_sha256})")

    def read_release_xml(self, ticket: TicketView) -> release_model.ReleaseInfo:
        """The frozen release.xml, parsed and checked against the ticket's fields."""
        info = release_xml_parse.validate_file(self.release_xml_path(ticket.id))
        ticket_fields.check_against_ticket(
            info, release_type=ticket.release_type, major_release=ticket.major_release
        )
        return info

    # -- packages -------------------------------------------------------------------------

    def check_sync_source(self, ticket: TicketView) -> Step:
        """Whether the sync may fetch from the ticket's Sync-URL (protocol, URL, allowed
        host), before anything connects; raises ``SyncUrlRefused`` naming the allowed hosts."""
        if not ticket.sync_url:
            raise errors.TicketIncomplete("the ticket has no Sync-URL", ticket_id=ticket.id)
        name, where, _options = sync.check_source(
            ticket.sync_protocol, ticket.sync_url, self.sync_options
        )
        allowed = (
            f"allowed as {sync_allowlist.describe(where.entry)}"
            if where.entry is not None
            else "any host is allowed (no sync_hosts configured)"
        )
        return Step(
            detail=f"Sync-URL acceptable: {name} from {where.host} port {where.port}, {allowed}"
        )

    def sync_packages(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step:
        """Fetch the packages from Sync-URL into scratch and verify every file."""
        if not ticket.sync_url:
            raise errors.TicketIncomplete("the ticket has no Sync-URL", ticket_id=ticket.id)
        result = sync.sync_and_verify(
            ticket.sync_protocol,
            ticket.sync_url,
            self.scratch(ticket.id),
            info.packages,
            options=self.sync_options,
            log_extra={"ticket_id": ticket.id, "action": "sync_packages"},
            pool=self.repository.pool,  # files the pool holds are placed, not fetched
        )
        placed = (
            f" ({_files(result.placed_files)}, {result.placed_bytes} bytes already in the "
            f"pool; {_files(result.transferred_files)}, {result.transferred_bytes} bytes "
            "transferred)"
            if result.placed_files
            else ""
        )
        return Step(
            detail=f"synced and verified {result.files} files, {result.bytes} bytes in "
            f"{result.seconds:.1f} s{placed}"
        )

    # -- the trees ------------------------------------------------------------------------

    def _moved(
        self,
        ticket_id: int,
        area: publish.PublishedArea,
        what: str,
        info: release_model.ReleaseInfo,
    ) -> Step:
        published = {
            "detail": f"{what} {area.area.path}, snapshot {area.snapshot}",
            "snapshot": area.snapshot,
            "serial": serial_of(area),
            "url": self.url_of_area(area.area.path),
            "files": len(info.packages),
            "bytes": info.total_size,
            "changed": area.changed,
        }
        self.store.set_repository_path(ticket_id, area.area.path, published=published)
        state = "" if area.changed else " (already there)"
        return Step(detail=f"{what} {area.area.path}{state}")

    def publish_unverified(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step:
        area = self.repository.publish_unverified(ticket.id, info, self.scratch(ticket.id))
        sync_scratch.remove(self.scratch(ticket.id))
        return self._moved(ticket.id, area, "published to", info)

    def promote_to_stagerollout(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step:
        area = self.repository.promote_to_stagerollout(ticket.id, info, major_release)
        return self._moved(ticket.id, area, "promoted to", info)

    def promote_to_production(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step:
        # When neither the ticket nor release.xml says: the major release's default
        # (settings), else NonIncremental, as the process says.
        release_type = (
            ticket.release_type
            or info.release_type
            or self.settings.repository.release_type_for(major_release)
        )
        area = self.repository.promote_to_production(ticket.id, info, major_release, release_type)
        return self._moved(ticket.id, area, "promoted to", info)

    def remove_release(self, ticket: TicketView) -> Step:
        """Take the release out of every unverified and stagerollout area the bridge recorded
        publishing it into. It never re-reads the release's input (an invalid release.xml may
        be why it failed), so closing a release always works; production keeps it (a release
        there is withdrawn, not removed)."""
        sync_scratch.remove(self.scratch(ticket.id))
        recorded = [areas.Area.parse(p) for p in self.store.published_areas(ticket.id)]
        recorded += self._unverified_before_records(ticket.id, recorded)
        where = [a for a in recorded if a.kind != "production"]
        if not where:
            return Step(detail="not published outside production; nothing to remove")
        results = self.repository.remove_from(ticket.id, where)
        self.store.forget_areas(ticket.id, [a.path for a in where])
        left = [a.path for a in recorded if a.kind == "production"]
        self.store.set_repository_path(ticket.id, left[-1] if left else None)
        removed = [r.area.path for r in results if r.changed]
        return Step(detail=f"removed from {', '.join(removed) or 'nothing (not there)'}")

    def withdraw_release(self, ticket: TicketView) -> Step:
        """Take the release out of production, and out of any other area the bridge recorded
        publishing it into: each area's next snapshot goes without the files only this release
        brought (an area's files are the union of its releases', so a file a later release of
        the same packages also has stays). The snapshot before stays as it is, kept by
        retention for a rollback. Like closing, it reads only the bridge's records and the
        areas' manifests, never the release's input."""
        recorded = sorted(
            (areas.Area.parse(p) for p in self.store.published_areas(ticket.id)),
            key=lambda a: a.kind != "production",  # out of production first
        )
        if not recorded:
            self.store.set_repository_path(ticket.id, None)
            return Step(detail="not published anywhere; nothing to withdraw")
        before = {a.path: self.repository.live_snapshot(a) for a in recorded}
        results = self.repository.remove_from(ticket.id, recorded)
        self.store.forget_areas(
            ticket.id,
            [a.path for a in recorded],
            withdrawn_from=[a.path for a in recorded if a.kind == "production"],
        )
        self.store.set_repository_path(ticket.id, None)
        kept = self.settings.repository.keep_snapshots > 0
        lines = []
        for result in results:
            if result.area.kind != "production":
                continue
            previous = before[result.area.path]
            if not result.changed:
                lines.append(f"{result.area.path} did not hold it (nothing changed there)")
            elif previous and kept:
                lines.append(
                    f"{result.area.path} is now snapshot {result.snapshot}, without its files; "
                    f"the previous snapshot {previous} is kept unchanged for a rollback"
                )
            else:
                lines.append(
                    f"{result.area.path} is now snapshot {result.snapshot}, without its files"
                )
        where = ", ".join(r.area.path for r in results if r.changed) or "nothing (not there)"
        if not lines:
            return Step(detail=f"withdrew from {where}; it was not in production")
        return Step(
            detail=f"withdrew from {where}",
            note="Withdrawn from production: " + "; ".join(lines) + ".",
        )

    def _unverified_before_records(
        self, ticket_id: int, recorded: list[areas.Area]
    ) -> list[areas.Area]:
        """A release promoted before the bridge recorded every area (migration 0005) has its
        ``unverified/`` area only in its release.xml: read it there if it still can be."""
        if not recorded or any(a.kind == "unverified" for a in recorded):
            return []
        try:
            info = release_xml_parse.validate_file(self.release_xml_path(ticket_id))
            return [areas.Area.unverified(info.short_name, info.version)]
        except (errors.DaemonError, OSError) as exc:
            logger.warning(
                "ticket %s: its unverified area is not recorded and release.xml cannot tell "
                "it (%s); only the recorded areas are cleaned",
                ticket_id,
                exc,
                extra={"ticket_id": ticket_id, "action": "remove_release"},
            )
            return []


def serial_of(area: publish.PublishedArea) -> str | None:
    """The serial of ``area``'s live snapshot, as its ``.rollout-serial`` says it
    (``index.Index.serial``: ``<area-key>/<snapshot>``); None when the area was removed."""
    return f"{area.area.key}/{area.snapshot}" if area.snapshot else None


def repository(settings: settings_model.Settings) -> publish.Repository:
    """The repository's trees, with yum/apt metadata built into every snapshot before it
    goes live: signed with the configured key or the bridge's own (made on the first start),
    unless unsigned trees were chosen (``keys.signer``)."""
    repo = settings.repository
    step = metadata.metadata_step(
        repo.root.resolve(),
        repo.base_url,
        signer=keys.signer(settings),
        incremental=repo.metadata_incremental,  # caches in <root>/.metadata-cache/<area>
    )
    # Metadata first, then the mirror index (index.json/html), which lists it too.
    return publish.Repository(
        repo,
        metadata=index.compose(step, index.write_index),
        area_locks=locks.chosen(settings),
        caches=caches.AreaCaches.of_root(repo.root.resolve()),
    )


def sync_options_from(settings: settings_model.Settings) -> sync_records.SyncOptions:
    """The sync's options from the repository settings."""
    repo = settings.repository
    return sync_records.SyncOptions(
        timeout=repo.sync_timeout,
        connect_timeout=repo.sync_connect_timeout,
        deadline_min=repo.sync_deadline_min,
        min_rate=repo.sync_min_rate,
        max_bytes=repo.max_release_bytes,
        rsync_password_file=repo.rsync_password_file,
        sftp_user=repo.sftp_user,
        sftp_key_file=repo.sftp_key_file,
        sftp_known_hosts=repo.sftp_known_hosts,
        sftp_allow_unknown_hosts=repo.sftp_allow_unknown_hosts,
        https_ca_file=repo.https_ca_file,
        allow_http=repo.sync_allow_http,
        sync_hosts=repo.sync_hosts,
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
