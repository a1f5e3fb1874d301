"""Reading the outbound webhooks' settings (``webhook_*``, ``subscriptions_api_roles`` and the
``[[subscriptions]]`` declared in the settings file), every problem collected and named by its
setting (docs/notifications.md).

Part of ``load``: pure parsing of values already read; it connects to nothing and stores
nothing (declared subscriptions are written to the database by ``bridge.store.subscriptions``).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bridge import secrets as bridge_secrets
from bridge.settings import model, readers
from bridge.store import events

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EMERGENCY = {"yes": True, "true": True, "no": False, "false": False}


def duration(value: Any) -> float | None:
    """Seconds from ``90``, ``5s``, ``5m``, ``2h`` or ``3d``; None if it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value >= 0 else None
    match = _DURATION.match(str(value))
    return float(match[1]) * _UNITS[match[2]] if match else None


def webhooks_from(
    raw: Mapping[str, Any], roles: tuple[str, ...], problems: list[str]
) -> model.WebhookSettings:
    """The webhook settings, with defaults for what is not set."""
    defaults = model.WebhookSettings()
    return model.WebhookSettings(
        allow_cidrs=cidrs(raw.get("webhook_allow_cidrs"), problems),
        retry_schedule=schedule(raw.get("webhook_retry_schedule"), problems),
        jitter=min(1.0, readers.number("webhook_jitter", raw, 0.1, problems, allow_zero=True)),
        timeout=_seconds("webhook_timeout", raw, defaults.timeout, problems),
        response_cap=int(readers.number("webhook_response_cap", raw, 4096, problems)),
        disable_after=_seconds("webhook_disable_after", raw, defaults.disable_after, problems),
        disable_min_failures=int(
            readers.number("webhook_disable_min_failures", raw, 5, problems, allow_zero=True)
        ),
        secret_overlap=_seconds("webhook_secret_overlap", raw, defaults.secret_overlap, problems),
        workers=max(1, int(readers.number("webhook_workers", raw, 8, problems))),
        batch=max(1, int(readers.number("webhook_batch", raw, 64, problems))),
        poll_interval=_seconds("webhook_poll_interval", raw, defaults.poll_interval, problems),
        lease_seconds=_seconds("webhook_lease_seconds", raw, defaults.lease_seconds, problems),
        retention_days=readers.number("delivery_retention_days", raw, 30.0, problems),
        api_roles=_api_roles(raw, roles, problems),
        declared=declared(raw.get("subscriptions"), problems),
    )


def _seconds(name: str, raw: Mapping[str, Any], default: float, problems: list[str]) -> float:
    value = raw.get(name)
    if value is None or value == "":
        return default
    seconds = duration(value)
    if seconds is None or seconds <= 0:
        problems.append(f"{name}: {value!r} is not a duration (such as 15, 15s, 5m, 2h, 5d)")
        return default
    return seconds


def cidrs(value: Any, problems: list[str]) -> tuple[str, ...]:
    """``webhook_allow_cidrs``: networks (``127.0.0.0/8,10.1.2.0/24`` or a list)."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    result: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            result.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            problems.append(f"webhook_allow_cidrs: {item!r} is not a network (such as 10.0.0.0/8)")
    return tuple(result)


def schedule(value: Any, problems: list[str]) -> tuple[float, ...]:
    """``webhook_retry_schedule``: the delay before each attempt (``0,5s,5m,30m,2h``)."""
    if value is None or value == "":
        return model.DEFAULT_RETRY_SCHEDULE
    items = value if isinstance(value, list) else str(value).split(",")
    delays = [duration(i) for i in items if str(i).strip()]
    if not delays or any(d is None for d in delays):
        problems.append(
            f"webhook_retry_schedule: {value!r} is not a list of durations (such as 0,5s,5m,2h)"
        )
        return model.DEFAULT_RETRY_SCHEDULE
    return tuple(d for d in delays if d is not None)


def _api_roles(
    raw: Mapping[str, Any], roles: tuple[str, ...], problems: list[str]
) -> tuple[str, ...]:
    value = raw.get("subscriptions_api_roles")
    if value is None:
        return ("admin",)
    names = readers.names(value, "subscriptions_api_roles", problems)
    known = {model.ANYONE, *roles}
    if unknown := sorted(set(names) - known):
        problems.append(
            f"subscriptions_api_roles: {', '.join(unknown)} is not a role (known: "
            f"{', '.join(sorted(known))})"
        )
    return names


def kind_problems(patterns: tuple[str, ...], where: str) -> list[str]:
    """What is wrong with event-kind patterns (each must match a kind of docs/events.md)."""
    known = [k.value for k in events.EventKind]
    if not patterns:
        return [f"{where}: name at least one kind of event (or *)"]
    return [
        f"{where}: {p!r} matches no kind of event (see docs/events.md)"
        for p in patterns
        if not fnmatch.filter(known, p)
    ]


def url_problems(url: str, where: str) -> list[str]:
    """What is wrong with an endpoint URL (http or https, a host, no credentials in it)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return [f"{where}: {url!r} is not a URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{where}: {url!r} is not an http:// or https:// URL with a host"]
    if parts.username or parts.password:
        return [f"{where}: the URL carries credentials; the secret signs deliveries instead"]
    if len(url) > 2000:
        return [f"{where}: the URL is longer than 2000 characters"]
    return []


def _list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))


def declared(value: Any, problems: list[str]) -> tuple[model.DeclaredSubscription, ...]:
    """``[[subscriptions]]`` of the settings file: name, url, secret (or secret_file), and
    optionally description, kinds, major_releases, areas, target_states, emergency,
    github_signature, enabled."""
    if value is None or value == "":
        return ()
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        problems.append("subscriptions: declare them as [[subscriptions]] tables in the file")
        return ()
    result: list[model.DeclaredSubscription] = []
    seen: set[str] = set()
    for n, table in enumerate(value, start=1):
        name = str(table.get("name") or "")
        where = f"subscriptions[{n}] {name!r}" if name else f"subscriptions[{n}]"
        found: list[str] = []
        if not NAME.match(name):
            found.append(f"{where}: name must be 1-100 letters, digits, '.', '_' or '-'")
        elif name in seen:
            found.append(f"{where}: the name is declared twice")
        seen.add(name)
        url = str(table.get("url") or "")
        found += url_problems(url, where)
        secret = readers.read_secret("secret", table, found)
        if secret is None and not any("secret" in p for p in found):
            found.append(f"{where}: give its secret (secret or secret_file)")
        elif secret is not None:
            found += [
                p.replace("hook_secret:", "secret:", 1)
                for p in bridge_secrets.hook_secret_problems(secret)
            ]
        kinds = _list(table.get("kinds", "*"))
        found += kind_problems(kinds, where)
        emergency = table.get("emergency")
        if emergency is not None and not isinstance(emergency, bool):
            emergency = EMERGENCY.get(str(emergency).lower(), "bad")
            if emergency == "bad":
                found.append(f"{where}: emergency is true or false")
        if found or secret is None or isinstance(emergency, str):
            problems.extend(p if p.startswith(where) else f"{where}: {p}" for p in found)
            continue
        result.append(
            model.DeclaredSubscription(
                name=name,
                url=url,
                secret=secret,
                description=str(table.get("description") or ""),
                kinds=kinds,
                major_releases=_list(table.get("major_releases")),
                areas=_list(table.get("areas")),
                target_states=_list(table.get("target_states")),
                emergency=emergency,
                github_signature=readers.flag(table.get("github_signature")),
                enabled=table.get("enabled", True) is not False,
            )
        )
    return tuple(result)
