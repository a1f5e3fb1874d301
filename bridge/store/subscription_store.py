"""Keeping webhook subscriptions: add, edit, rotate the secret, disable, enable, remove, and the
ones declared in the settings file kept in step. Each change writes its event
(``subscription_changed``, ``subscription_disabled``, ``subscription_enabled``) in its
transaction; secrets never go into an event, a log or an error.

It sends nothing (pinging is ``repo_daemon.deliveries``'s) and it does not judge failures
(``delivery_health``); it only records what they decided.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge import secrets
from bridge.settings import model
from bridge.settings import webhooks as webhook_settings
from bridge.store import event_log, subscriptions, tables
from bridge.store import events as eventlog
from bridge.store.subscriptions import Filters, Subscription

K = eventlog.EventKind
_EDITABLE = ("url", "description", "kinds", "filters", "github_signature")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """What a subscription is asked to be (add or edit)."""

    url: str
    description: str = ""
    kinds: tuple[str, ...] = ("*",)
    filters: Filters = field(default_factory=Filters)
    github_signature: bool = False

    def problems(self) -> list[str]:
        found = webhook_settings.url_problems(self.url, "url")
        found += webhook_settings.kind_problems(self.kinds, "kinds")
        return found


class SubscriptionStore:
    """The subscriptions in one database."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def all(self) -> list[Subscription]:
        t = tables.subscriptions
        with self.engine.connect() as conn:
            return [subscriptions.of_row(r) for r in conn.execute(sa.select(t).order_by(t.c.name))]

    def get(self, name: str) -> Subscription:
        with self.engine.connect() as conn:
            return self._get(conn, name)

    def _get(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Subscription:
        t = tables.subscriptions
        stmt = sa.select(t).where(t.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise subscriptions.SubscriptionNotFound(name)
        return subscriptions.of_row(row)

    def add(
        self,
        name: str,
        spec: Spec,
        *,
        actor: str,
        enabled: bool,
        secret: str | None = None,
        declared: bool = False,
    ) -> tuple[Subscription, str]:
        """Add a subscription; returns it and its secret (generated unless given), which is
        shown once. ``enabled=False`` until a ping has been answered."""
        problems = spec.problems()
        if not webhook_settings.NAME.match(name):
            problems.insert(0, "name: 1-100 letters, digits, '.', '_' or '-'")
        if problems:
            raise subscriptions.SubscriptionInvalid(problems)
        secret = secret or new_secret()
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(tables.subscriptions.c.id).where(tables.subscriptions.c.name == name)
            ).first():
                raise subscriptions.SubscriptionExists(name)
            conn.execute(
                tables.subscriptions.insert().values(
                    name=name,
                    **_columns(spec),
                    secret=secret,
                    enabled=enabled,
                    disabled_reason=None if enabled else "waiting for a ping to be answered",
                    disabled_at=None if enabled else now,
                    declared=declared,
                    created_at=now,
                    updated_at=now,
                    failures=0,
                    warned=0,
                )
            )
            change = "declared" if declared else "added"
            self._event(conn, K.SUBSCRIPTION_CHANGED, name, actor, change=change, fields=[])
            return self._get(conn, name), secret

    def edit(
        self, name: str, spec: Spec, *, actor: str, settings_file: bool = False
    ) -> Subscription:
        """Change what a subscription is; declared ones only from the settings file."""
        if problems := spec.problems():
            raise subscriptions.SubscriptionInvalid(problems)
        with self.engine.begin() as conn:
            old = self._get(conn, name, lock=True)
            if old.declared and not settings_file:
                raise subscriptions.SubscriptionDeclared(name)
            new = _columns(spec)
            was = _columns(
                Spec(
                    url=old.url,
                    description=old.description,
                    kinds=old.kinds,
                    filters=old.filters,
                    github_signature=old.github_signature,
                )
            )
            changed = [k for k in _EDITABLE if new[k] != was[k]]
            if changed:
                t = tables.subscriptions
                conn.execute(
                    t.update().where(t.c.name == name).values(**new, updated_at=self.clock())
                )
                self._event(
                    conn, K.SUBSCRIPTION_CHANGED, name, actor, change="edited", fields=changed
                )
            return self._get(conn, name)

    def rotate_secret(
        self,
        name: str,
        *,
        actor: str,
        overlap: float,
        secret: str | None = None,
        settings_file: bool = False,
    ) -> tuple[Subscription, str]:
        """A new secret; the old one keeps signing beside it for ``overlap`` seconds. A
        declared subscription's secret changes only with the settings file."""
        secret = secret or new_secret()
        now = self.clock()
        with self.engine.begin() as conn:
            old = self._get(conn, name, lock=True)
            if old.declared and not settings_file:
                raise subscriptions.SubscriptionDeclared(name)
            t = tables.subscriptions
            conn.execute(
                t.update()
                .where(t.c.name == name)
                .values(
                    secret=secret,
                    previous_secret=old.secret.reveal() if overlap > 0 else None,
                    previous_until=now + timedelta(seconds=overlap) if overlap > 0 else None,
                    updated_at=now,
                )
            )
            self._event(
                conn,
                K.SUBSCRIPTION_CHANGED,
                name,
                actor,
                change="secret_rotated",
                fields=["secret"],
            )
            return self._get(conn, name), secret

    def disable(self, name: str, *, reason: str, actor: str) -> Subscription:
        """Stop deliveries to it; they wait (and new ones gather) until it is enabled."""
        with self.engine.begin() as conn:
            return self.disable_in(conn, name, reason=reason, actor=actor)

    def disable_in(
        self, conn: sa.Connection, name: str, *, reason: str, actor: str
    ) -> Subscription:
        """``disable`` in the caller's transaction."""
        old = self._get(conn, name, lock=True)
        if not old.enabled:
            return old
        t = tables.subscriptions
        conn.execute(
            t.update()
            .where(t.c.name == name)
            .values(enabled=False, disabled_reason=reason, disabled_at=self.clock())
        )
        pending = open_deliveries(conn, old.id)
        self._event(conn, K.SUBSCRIPTION_DISABLED, name, actor, reason=reason, pending=pending)
        return self._get(conn, name)

    def enable(self, name: str, *, actor: str, how: str) -> Subscription:
        """Deliveries to it resume, oldest first; its failing spell starts afresh."""
        with self.engine.begin() as conn:
            old = self._get(conn, name, lock=True)
            if old.enabled:
                return old
            t = tables.subscriptions
            conn.execute(
                t.update()
                .where(t.c.name == name)
                .values(
                    enabled=True,
                    disabled_reason=None,
                    disabled_at=None,
                    failing_since=None,
                    failures=0,
                    warned=0,
                    updated_at=self.clock(),
                )
            )
            # What waited is due now (not at the end of a backoff from before).
            d = tables.deliveries
            conn.execute(
                d.update()
                .where(d.c.subscription_id == old.id, d.c.status == "pending")
                .values(next_attempt_at=self.clock())
            )
            self._event(conn, K.SUBSCRIPTION_ENABLED, name, actor, how=how)
            return self._get(conn, name)

    def remove(self, name: str, *, actor: str, settings_file: bool = False) -> int:
        """Remove it with its deliveries and their attempts; returns how many deliveries
        (some perhaps never sent) went with it."""
        with self.engine.begin() as conn:
            old = self._get(conn, name, lock=True)
            if old.declared and not settings_file:
                raise subscriptions.SubscriptionDeclared(name)
            d, a = tables.deliveries, tables.delivery_attempts
            ids = sa.select(d.c.id).where(d.c.subscription_id == old.id).scalar_subquery()
            conn.execute(a.delete().where(a.c.delivery_id.in_(ids)))
            gone = conn.execute(d.delete().where(d.c.subscription_id == old.id)).rowcount
            for table in (tables.delivery_notices, tables.delivery_recoveries):
                conn.execute(table.delete().where(table.c.subscription_id == old.id))
            conn.execute(tables.subscriptions.delete().where(tables.subscriptions.c.id == old.id))
            self._event(conn, K.SUBSCRIPTION_CHANGED, name, actor, change="removed", fields=[])
            return int(gone or 0)

    def sync_declared(
        self, declared: Sequence[model.DeclaredSubscription], *, actor: str
    ) -> list[str]:
        """Keep the subscriptions of the settings file in the database: add the new ones,
        edit the changed ones, remove the ones no longer declared (by the file only). Returns
        what it did, one line each (names only)."""
        done: list[str] = []
        known = {s.name: s for s in self.all()}
        for item in declared:
            spec = Spec(
                url=item.url,
                description=item.description,
                kinds=item.kinds,
                filters=Filters(
                    major_releases=item.major_releases,
                    areas=item.areas,
                    target_states=item.target_states,
                    emergency=item.emergency,
                ),
                github_signature=item.github_signature,
            )
            old = known.pop(item.name, None)
            if old is None:
                self.add(
                    item.name,
                    spec,
                    actor=actor,
                    enabled=item.enabled,
                    secret=item.secret.reveal(),
                    declared=True,
                )
                done.append(f"added {item.name}")
                continue
            if not old.declared:
                done.append(f"{item.name}: a subscription added by hand has that name; kept it")
                continue
            if self.edit(item.name, spec, actor=actor, settings_file=True) != old:
                done.append(f"edited {item.name}")
            if old.secret.reveal() != item.secret.reveal():
                self.rotate_secret(
                    item.name,
                    actor=actor,
                    overlap=0,
                    secret=item.secret.reveal(),
                    settings_file=True,
                )
                done.append(f"new secret for {item.name}")
            if (
                item.enabled
                and not old.enabled
                and old.disabled_reason == "disabled in the settings file"
            ):
                self.enable(item.name, actor=actor, how="operator")
            elif not item.enabled and old.enabled:
                self.disable(item.name, reason="disabled in the settings file", actor=actor)
        for name, old in known.items():
            if old.declared:
                self.remove(name, actor=actor, settings_file=True)
                done.append(f"removed {name} (no longer declared)")
        return done

    def _event(
        self, conn: sa.Connection, kind: eventlog.EventKind, name: str, actor: str, **data: Any
    ) -> None:
        detail = {
            K.SUBSCRIPTION_CHANGED: f"subscription {name} {data.get('change')}",
            K.SUBSCRIPTION_DISABLED: f"subscription {name} disabled: {data.get('reason')}",
            K.SUBSCRIPTION_ENABLED: f"subscription {name} enabled ({data.get('how')})",
        }.get(kind, f"subscription {name}")
        event_log.append(
            conn,
            [
                event_log.draft(
                    kind,
                    ticket_id=None,
                    actor=actor,
                    cause=eventlog.Cause.OPERATOR,
                    data={"detail": detail, "subscription": name, **data},
                )
            ],
            now=self.clock(),
        )


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64 (Standard Webhooks)."""
    return secrets.HOOK_SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def _columns(spec: Spec) -> dict[str, Any]:
    return {
        "url": spec.url,
        "description": spec.description,
        "kinds": json.dumps(list(spec.kinds)),
        "filters": spec.filters.as_json(),
        "github_signature": spec.github_signature,
    }


def open_deliveries(conn: sa.Connection, subscription_id: int) -> int:
    """How many deliveries wait for (or are being sent to) the subscription."""
    d = tables.deliveries
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                d.c.subscription_id == subscription_id, d.c.status.in_(("pending", "sending"))
            )
        ).scalar_one()
    )
