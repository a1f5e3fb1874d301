"""Reading the shipped deployment files (``deploy/``) as systemd and the services read them:
unit files as (section, key, value) lines, environment files as ``KEY=VALUE``.

Parsing only: it runs nothing (the checks with systemd's own tools are in
tests/integration/test_systemd_units.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support import paths

DEPLOY = paths.ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ETC = DEPLOY / "etc" / "rollout"
# Where the shipped units expect the bridge's virtualenv.
SHIPPED_ROLLOUT = "/opt/rollout/bin/rollout"


@dataclass(frozen=True, kw_only=True)
class UnitFile:
    """One unit file's settings, in order; a key may repeat (systemd adds them up)."""

    name: str
    lines: tuple[tuple[str, str, str], ...]

    def values(self, key: str, section: str = "Service") -> list[str]:
        return [v for s, k, v in self.lines if s == section and k == key]

    def value(self, key: str, section: str = "Service") -> str | None:
        found = self.values(key, section)
        return found[-1] if found else None

    def environment(self, *, credentials_dir: str, instance: str = "") -> dict[str, str]:
        """The variables of ``Environment=`` lines, ``%d`` and ``%i`` filled in (systemd's
        quoting is not used by the shipped units: space-separated assignments)."""
        env: dict[str, str] = {}
        for line in self.values("Environment"):
            line = line.replace("%d", credentials_dir).replace("%i", instance)
            for item in line.split():
                key, _, value = item.partition("=")
                env[key] = value
        return env

    def credentials(self) -> dict[str, str]:
        """``LoadCredential=ID:PATH`` as {ID: PATH}."""
        found: dict[str, str] = {}
        for value in self.values("LoadCredential"):
            ident, _, path = value.partition(":")
            found[ident] = path
        return found


def read_unit(path: Path) -> UnitFile:
    section = ""
    lines: list[tuple[str, str, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if match := re.fullmatch(r"\[(\w+)\]", line):
            section = match.group(1)
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {raw!r} is not KEY=VALUE"
        lines.append((section, key.strip(), value.strip()))
    return UnitFile(name=path.name, lines=tuple(lines))


def shipped_units() -> list[UnitFile]:
    return [read_unit(p) for p in sorted(UNITS.glob("*.service"))]


def read_env_file(path: Path) -> dict[str, str]:
    """An ``EnvironmentFile=``: ``KEY=VALUE`` lines, ``#`` comments; no quoting is used."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}: {raw!r}"
        assert not value.startswith(("'", '"')), f"{path.name}: {key} is quoted"
        env[key] = value
    return env
