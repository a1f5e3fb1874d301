"""Bounded label values for Prometheus, pure: a major release is one the settings name or
``other``; an area is its kind (``unverified``), ``stagerollout/<major>`` or the production
area of a configured major release (``production/<major>/base|updates``, or
``production/<major>`` when flat), with ``other`` standing for the rest.

However many releases, versions or tickets there are, the label values are fixed by the
settings. It reads nothing and never names a ticket or a release's version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.settings import model as settings_model

OTHER = "other"
UNVERIFIED = "unverified"
STAGEROLLOUT = "stagerollout"
PRODUCTION = "production"


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """The label values the settings allow: the configured ``major_releases`` and the
    production areas' paths (relative to the repository root) → their label."""

    major_releases: frozenset[str]
    production_areas: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: settings_model.Settings) -> Bounds:
        """The bounds of ``settings``: the registry of major releases and where each one's
        production areas are (``RepositorySettings.production_path``)."""
        repository = settings.repository
        majors = frozenset(settings.workflow.major_releases)
        areas: dict[str, str] = {}
        for major in sorted(majors):
            path = repository.production_path(major).strip("/")
            if repository.is_flat(major):
                areas[path] = f"{PRODUCTION}/{major}"
            else:
                areas[f"{path}/base"] = f"{PRODUCTION}/{major}/base"
                areas[f"{path}/updates"] = f"{PRODUCTION}/{major}/updates"
        return cls(major_releases=majors, production_areas=areas)

    def major_release(self, name: str | None) -> str:
        """``name`` when the settings know it, else ``other`` (also for none)."""
        return name if name is not None and name in self.major_releases else OTHER

    def area(self, path: str) -> str:
        """The label of the area at ``path`` (as ``release_areas`` records it)."""
        path = path.strip("/")
        top, _, rest = path.partition("/")
        if top == UNVERIFIED:
            return UNVERIFIED
        if top == STAGEROLLOUT:
            return f"{STAGEROLLOUT}/{self.major_release(rest or None)}"
        return self.production_areas.get(path, f"{PRODUCTION}/{OTHER}")

    def areas(self) -> tuple[str, ...]:
        """Every label ``area`` can give."""
        stage = (f"{STAGEROLLOUT}/{m}" for m in (*sorted(self.major_releases), OTHER))
        production = (*self.production_areas.values(), f"{PRODUCTION}/{OTHER}")
        return (UNVERIFIED, *stage, *production)
