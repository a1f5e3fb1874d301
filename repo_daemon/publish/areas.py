"""The areas clients see, as one value: ``Area``, made only through constructors that check it
(``unverified/<short>/<version>``, ``stagerollout/<major>``, ``<production path>/base|updates``
or a flat ``<production path>``, or an existing area's relative path), with its path and its
one-component key.

Pure: it names areas and never touches the disk; ``repository`` turns an ``Area`` into a path
below the root. A refused name raises ``errors.PathRefused``.
"""

from __future__ import annotations

from dataclasses import dataclass

from repo_daemon.publish import errors, names

_INCREMENTAL = {"incremental": "updates", "nonincremental": "base"}


@dataclass(frozen=True)
class Area:
    """One area, checked once when made: every ``/``-separated component of ``path`` is a safe
    path component (``names.check_component``). Use the constructors below rather than
    ``Area(path)``; each checks what its kind of area must look like."""

    path: str  # relative to the repository root, e.g. "unverified/foo/1.0.0"

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise errors.PathRefused("area", self.path, "empty")
        for part in self.path.split("/"):
            names.check_component("area component", part)

    @classmethod
    def unverified(cls, short_name: str, version: str) -> Area:
        """``unverified/<short>/<version>``: one release, waiting for QC."""
        short = names.check_component("short name", short_name)
        return cls(f"unverified/{short}/{names.check_version(version)}")

    @classmethod
    def stagerollout(cls, major: str) -> Area:
        """``stagerollout/<major>``: the releases of ``major`` in staged rollout."""
        return cls(f"stagerollout/{names.check_component('major release', major)}")

    @classmethod
    def production(cls, production_path: str, release_type: str, *, flat: bool = False) -> Area:
        """``<production_path>/base`` (NonIncremental) or ``/updates`` (Incremental); with
        ``flat``, ``<production_path>`` itself, whatever the release type."""
        base = cls.parse(production_path)
        norm = release_type.replace("-", "").replace("_", "").replace(" ", "").lower()
        if norm not in _INCREMENTAL:
            raise errors.PathRefused(
                "release type", release_type, "expected Incremental or NonIncremental"
            )
        return base if flat else cls(f"{base.path}/{_INCREMENTAL[norm]}")

    @classmethod
    def parse(cls, text: object) -> Area:
        """The area at relative path ``text`` (one already published, a directory name read
        back from disk); ``PathRefused`` unless every component is safe."""
        if not isinstance(text, str):
            raise errors.PathRefused("area", text, "not a string")
        return cls(text)

    @property
    def key(self) -> str:
        """The one-component name of the area for its snapshots and lock (``/`` becomes
        ``~``, which no component holds, so a key names exactly one area)."""
        return "~".join(self.path.split("/"))

    @property
    def kind(self) -> str:
        """``unverified``, ``stagerollout`` or ``production`` (any other path is a production
        area: their paths are configured)."""
        top = self.path.split("/", 1)[0]
        return top if top in ("unverified", "stagerollout") else "production"

    @property
    def depth(self) -> int:
        """How many directories the area's symlink lies below the root."""
        return self.path.count("/")

    def __str__(self) -> str:
        return self.path
