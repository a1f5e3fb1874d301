"""Which release an allowed request of a protected area fetched, and by whom, noted in memory
and written to the database in batches by a thread of its own (``FetchRecorder``), so a
download never waits for the database.

Which release: the area's manifest (``.rollout-manifest.json`` of the snapshot live at the
area, in either layout of the shared areas, read once per snapshot) says which releases it
holds; a request for one release's file counts for that release, any other request in the
area (metadata, listings) for every release in it. ``unverified/<short>/<version>/`` holds
exactly one. Only the first fetch per release and person is written (a seen-set in memory,
and the table's key across processes).
It serves nothing and decides nothing about access.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bridge.store import fetches as fetch_store
from repo_daemon.publish import manifest, release_entries
from repo_daemon.publish.errors import PublishFailed
from repo_daemon.serving import access

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0
MAX_SEEN = 200_000  # (release, person) pairs remembered; beyond, the table's key dedupes
_MANIFESTS = 64


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class FetchRecorder:
    """Notes first fetches below ``root`` and hands them to ``write`` (e.g.
    ``FetchStore.record_first``) from a background thread every
    ``flush_seconds``. ``close()`` writes what is left."""

    def __init__(
        self,
        root: Path,
        write: Callable[[list[fetch_store.Fetch]], object],
        *,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.root = root
        self.write = write
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.written = 0
        self._seen: set[tuple[int, str]] = set()
        self._pending: list[fetch_store.Fetch] = []
        self._manifests: dict[str, manifest.AreaManifest | None] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fetch-recorder", daemon=True)
        self._thread.start()

    def saw(self, person: access.Person, target: access.Target) -> None:
        """An allowed request of ``target`` by ``person``: note each release it fetched that
        this person had not fetched before. Cheap: a set lookup once the area is known."""
        if target.area is None:
            return
        tickets = self._releases(target)
        new = []
        with self._lock:
            for ticket in tickets:
                key = (ticket, person.name)
                if key in self._seen:
                    continue
                if len(self._seen) >= MAX_SEEN:
                    self._seen.clear()
                self._seen.add(key)
                new.append(ticket)
            if not new:
                return
            at = self.clock()
            self._pending += [
                fetch_store.Fetch(
                    ticket_id=ticket,
                    person=person.name,
                    teams=tuple(sorted(person.teams)),
                    area=target.area,
                    first_at=at,
                )
                for ticket in new
            ]

    def _releases(self, target: access.Target) -> tuple[int, ...]:
        assert target.area is not None
        found = self._manifest(target.area)
        if found is None:
            return ()
        inside = "/".join(target.parts[len(target.area.split("/")) :])
        for release in found.releases:
            if any(f.path == inside for f in release.files):
                return (release.ticket_id,)
        return tuple(r.ticket_id for r in found.releases)

    def _manifest(self, area: str) -> manifest.AreaManifest | None:
        """The manifest of the snapshot live at ``area`` now (read once per snapshot). In the
        tree layout the area's link is stable (its payload tree) and its manifest is a
        metadata link into the live metadata snapshot: the manifest's real path names the
        snapshot in both layouts."""
        try:
            snapshot = (self.root / area / manifest.MANIFEST_NAME).resolve(strict=True).parent
        except (OSError, RuntimeError):
            return None
        key = f"{area}\x00{snapshot}"
        with self._lock:
            if key in self._manifests:
                return self._manifests[key]
        try:
            read: manifest.AreaManifest | None = release_entries.read_any(self.root, area, snapshot)
        except (OSError, PublishFailed):
            read = None
        with self._lock:
            if len(self._manifests) >= _MANIFESTS:
                self._manifests.clear()
            self._manifests[key] = read
        return read

    def flush(self) -> None:
        """Write what is pending now (the thread does this every ``flush_seconds``)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self.write(batch)
        except Exception:
            # The database is away: the next flush tries again; a download never waits.
            logger.exception("could not record %d first fetches", len(batch))
            with self._lock:
                self._pending = (batch + self._pending)[-MAX_SEEN:]
            return
        self.written += len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()

    def wait_written(self, count: int, timeout: float = 10.0) -> bool:
        """Ask for a flush and wait until ``count`` fetches are written (for tests and
        shutdown)."""
        deadline = time.monotonic() + timeout
        while self.written < count and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        return self.written >= count
