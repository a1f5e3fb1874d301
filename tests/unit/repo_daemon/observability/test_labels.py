"""Label values stay bounded by the settings, however many releases, versions and tickets."""

from __future__ import annotations

from bridge.settings import model as settings_model
from repo_daemon.observability import labels


def bounds(**repository: object) -> labels.Bounds:
    return labels.Bounds.from_settings(
        settings_model.Settings(
            tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
            workflow=settings_model.WorkflowSettings(major_releases=("UMD-4", "UMD-5", "CAs")),
            repository=settings_model.RepositorySettings(**repository),  # type: ignore[arg-type]
        )
    )


def test_every_unverified_area_is_one_label() -> None:
    found = bounds()
    assert {found.area(f"unverified/thing-{n}/1.{n}.0") for n in range(500)} == {"unverified"}


def test_stagerollout_areas_are_labelled_by_known_major_release_or_other() -> None:
    found = bounds()
    assert found.area("stagerollout/UMD-5") == "stagerollout/UMD-5"
    assert found.area("stagerollout/UMD-99") == "stagerollout/other"


def test_production_areas_by_their_configured_paths() -> None:
    found = bounds(
        production_paths={"UMD-5": "prod/umd5", "CAs": "trust/cas"},
        flat_production=frozenset({"CAs"}),
    )
    assert found.area("production/UMD-4/base") == "production/UMD-4/base"
    assert found.area("production/UMD-4/updates") == "production/UMD-4/updates"
    assert found.area("prod/umd5/updates") == "production/UMD-5/updates"
    assert found.area("trust/cas") == "production/CAs"
    # Where no configured major release publishes: one value.
    assert found.area("production/UMD-5/base") == "production/other"
    assert found.area("production/UMD-77/base") == "production/other"


def test_major_releases_not_configured_are_other() -> None:
    found = bounds()
    assert [found.major_release(m) for m in ("UMD-4", "UMD-6", None, "")] == [
        "UMD-4", "other", "other", "other",
    ]  # fmt: skip


def test_areas_lists_every_value_area_can_give() -> None:
    found = bounds()
    paths = [
        "unverified/a/1", "stagerollout/UMD-4", "stagerollout/X", "production/UMD-5/base",
        "production/CAs/updates", "production/Y/base", "elsewhere",
    ]  # fmt: skip
    assert {found.area(p) for p in paths} <= set(found.areas())
    assert len(found.areas()) == 1 + 4 + 3 * 2 + 1
