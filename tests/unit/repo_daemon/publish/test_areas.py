"""The ``Area`` value: each constructor makes the relative path it always made, the key joins
its components with ``~``, and every hostile name is refused with ``PathRefused``."""

from __future__ import annotations

import dataclasses

import pytest

from repo_daemon.publish import areas, errors

VALID: dict[str, tuple[areas.Area, str, str]] = {
    "unverified": (
        areas.Area.unverified("foo", "1.0.0"),
        "unverified/foo/1.0.0",
        "unverified~foo~1.0.0",
    ),
    "stagerollout": (areas.Area.stagerollout("7"), "stagerollout/7", "stagerollout~7"),
    "production-incremental": (
        areas.Area.production("production/7", "Incremental"),
        "production/7/updates",
        "production~7~updates",
    ),
    "production-nonincremental": (
        areas.Area.production("el/7-prod", "Non-Incremental"),
        "el/7-prod/base",
        "el~7-prod~base",
    ),
    "production-type-spelling": (
        areas.Area.production("production/7", "non_incremental"),
        "production/7/base",
        "production~7~base",
    ),
    "production-flat-incremental": (
        areas.Area.production("production/CAs", "Incremental", flat=True),
        "production/CAs",
        "production~CAs",
    ),
    "production-flat-nonincremental": (
        areas.Area.production("production/CAs", "NonIncremental", flat=True),
        "production/CAs",
        "production~CAs",
    ),
    "parse": (
        areas.Area.parse("production/7/updates"),
        "production/7/updates",
        "production~7~updates",
    ),
}


@pytest.mark.parametrize(("area", "path", "key"), list(VALID.values()), ids=list(VALID))
def test_constructors_make_the_paths_and_keys_of_today(
    area: areas.Area, path: str, key: str
) -> None:
    assert area.path == path
    assert str(area) == path
    assert area.key == key
    assert area.depth == path.count("/")


def test_parse_of_a_path_gives_back_the_same_area() -> None:
    made = areas.Area.unverified("foo", "1.0.0")
    assert areas.Area.parse(made.path) == made
    assert areas.Area.parse(made.key.replace("~", "/")) == made


def test_an_area_is_immutable() -> None:
    area = areas.Area.stagerollout("7")
    with pytest.raises(dataclasses.FrozenInstanceError):
        area.path = "../../etc"  # type: ignore[misc]


HOSTILE = {
    "short-dotdot": lambda: areas.Area.unverified("..", "1.0.0"),
    "short-slash": lambda: areas.Area.unverified("a/b", "1.0.0"),
    "short-hidden": lambda: areas.Area.unverified(".git", "1.0.0"),
    "short-empty": lambda: areas.Area.unverified("", "1.0.0"),
    "short-tilde": lambda: areas.Area.unverified("a~b", "1.0.0"),
    "short-too-long": lambda: areas.Area.unverified("a" * 129, "1.0.0"),
    "version-words": lambda: areas.Area.unverified("foo", "latest"),
    "version-dotdot": lambda: areas.Area.unverified("foo", "../1.0.0"),
    "major-slash": lambda: areas.Area.stagerollout("7/x"),
    "major-dotdot": lambda: areas.Area.stagerollout(".."),
    "major-absolute": lambda: areas.Area.stagerollout("/7"),
    "production-path-dotdot": lambda: areas.Area.production("../outside", "Incremental"),
    "production-path-absolute": lambda: areas.Area.production("/srv/x", "Incremental"),
    "release-type": lambda: areas.Area.production("production/7", "../Sideways"),
    "parse-empty": lambda: areas.Area.parse(""),
    "parse-absolute": lambda: areas.Area.parse("/etc"),
    "parse-empty-component": lambda: areas.Area.parse("a//b"),
    "parse-backslash": lambda: areas.Area.parse("a\\b"),
    "parse-nul": lambda: areas.Area.parse("a\x00b"),
    "parse-not-a-string": lambda: areas.Area.parse(7),
    "direct": lambda: areas.Area("unverified/../x"),
}


@pytest.mark.parametrize("make", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_names_are_refused(make: object) -> None:
    assert callable(make)
    with pytest.raises(errors.PathRefused) as caught:
        make()
    assert not caught.value.transient
