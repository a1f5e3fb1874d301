"""Reading the access sections of the settings: who may read each kind of area and the feed
(``GET /api/events``), the login check's limits, and the receiver's connection limits.

Part of ``load``: it adds what is wrong to the problem list and connects to nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from bridge.settings import model, readers


def access_from(
    raw: Mapping[str, Any], workflow: model.WorkflowSettings, problems: list[str]
) -> model.AccessSettings:
    """Who may read each kind of area (``area_roles``: ``kind=role+role,…`` or a table of
    lists) and the limits of the login check (docs/access.md)."""
    known = {model.ANYONE, model.EARLY_ADOPTERS, *workflow.roles}
    area_roles = dict(model.DEFAULT_AREA_ROLES)
    for kind, roles in readers.pairs(raw.get("area_roles") or {}, "area_roles", problems).items():
        names = tuple(dict.fromkeys(r for r in roles.replace(" ", "").split("+") if r))
        if kind not in model.AREA_KINDS:
            problems.append(
                f"area_roles: {kind!r} is not a kind of area ({', '.join(model.AREA_KINDS)})"
            )
        elif unknown := sorted(set(names) - known):
            problems.append(
                f"area_roles: {kind} names {', '.join(unknown)}, not a role (known: "
                f"{', '.join(sorted(known))})"
            )
        else:
            area_roles[kind] = names  # empty: nobody (areas of that kind are not served)
    port = readers.number("access_check_port", raw, 8752, problems)
    if not 0 < port < 65536 or port != int(port):
        problems.append(f"access_check_port: {raw.get('access_check_port')!r} is not a TCP port")
    return model.AccessSettings(
        events_api_roles=events_api_roles(raw, workflow, problems),
        status_roles=roles_setting(
            "status_roles", model.AccessSettings.status_roles, raw, workflow, problems
        ),
        metrics_roles=roles_setting(
            "metrics_roles", model.AccessSettings.metrics_roles, raw, workflow, problems
        ),
        area_roles=area_roles,
        cache_seconds=readers.number("access_cache_seconds", raw, 60.0, problems),
        stale_seconds=readers.number(
            "access_stale_seconds", raw, 6 * 3600.0, problems, allow_zero=True
        ),
        groups_seconds=readers.number("access_groups_seconds", raw, 300.0, problems),
        rt_calls_per_second=readers.number("access_rt_calls_per_second", raw, 5.0, problems),
        rt_burst=max(1, int(readers.number("access_rt_burst", raw, 20, problems))),
        cache_entries=max(1, int(readers.number("access_cache_entries", raw, 10000, problems))),
        check_host=str(raw.get("access_check_host") or "127.0.0.1"),
        check_port=int(port),
    )


def events_api_roles(
    raw: Mapping[str, Any], workflow: model.WorkflowSettings, problems: list[str]
) -> tuple[str, ...]:
    """Who may read ``GET /api/events`` (``events_api_roles``: ``admin,qc`` or a list; an
    empty list in the file: nobody; ``anyone``: no login asked)."""
    return roles_setting(
        "events_api_roles", model.AccessSettings.events_api_roles, raw, workflow, problems
    )


def roles_setting(
    key: str,
    default: tuple[str, ...],
    raw: Mapping[str, Any],
    workflow: model.WorkflowSettings,
    problems: list[str],
) -> tuple[str, ...]:
    """A setting naming who may read something: workflow roles as ``admin,qc`` or a list (an
    empty list in the file: nobody), or ``anyone`` (no login asked); ``default`` when unset."""
    value = raw.get(key)
    if value is None or value == "":
        return default
    names = readers.names(value, key, problems)
    known = {model.ANYONE, *workflow.roles}
    if unknown := sorted(set(names) - known):
        problems.append(
            f"{key}: {', '.join(unknown)} is not a role (known: {', '.join(sorted(known))})"
        )
    return names


def intake_limits_from(raw: Mapping[str, Any], problems: list[str]) -> model.IntakeLimits:
    """The receiver's connection limits (``ROLLOUT_RECEIVER_*``)."""
    default = model.IntakeLimits()

    def number(key: str, fallback: float, **kw: Any) -> float:
        return readers.number(f"receiver_{key}", raw, fallback, problems, **kw)

    header_bytes = int(number("max_header_bytes", default.max_header_bytes))
    if header_bytes < 1024:
        problems.append(f"receiver_max_header_bytes: at least 1024, got {header_bytes}")
    connections = int(number("max_connections", default.max_connections))
    per_client = int(
        number("max_connections_per_client", default.max_connections_per_client, allow_zero=True)
    )
    if per_client > connections:
        problems.append(
            f"receiver_max_connections_per_client ({per_client}) is above "
            f"receiver_max_connections ({connections}): one client could take them all"
        )
    listed = raw.get("receiver_uncapped_clients") or ()
    items = listed if isinstance(listed, (list, tuple)) else str(listed).split(",")
    uncapped: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            uncapped.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            problems.append(f"receiver_uncapped_clients: {item!r} is not an address or network")
    return model.IntakeLimits(
        header_timeout=number("header_timeout", default.header_timeout),
        body_timeout=number("body_timeout", default.body_timeout),
        max_header_bytes=header_bytes,
        max_connections=connections,
        max_connections_per_client=per_client,
        uncapped_clients=tuple(dict.fromkeys(uncapped)),
        log_interval=number("log_interval", default.log_interval),
    )
