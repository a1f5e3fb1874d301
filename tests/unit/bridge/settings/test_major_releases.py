"""The registry of major releases in the settings: the ``[major_releases.<name>]`` tables, the
older flat form that keeps loading, flat production paths, default release types, and every
path checked at load with the setting named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import errors
from bridge.settings import load as settings_load
from bridge.settings import major_releases
from bridge.settings import model as settings_model

ENV = {"ROLLOUT_RT_URL": "http://rt.example/"}

REGISTRY = """
[major_releases.UMD-5]
release_type = "Incremental"

[major_releases.CAs]
production_path = "production/CAs/"
flat = true
workflow = "direct"
"""


def _load(tmp_path: Path, text: str, **env: str) -> settings_model.Settings:
    config = tmp_path / "bridge.toml"
    config.write_text(text)
    return settings_load.load_settings({**ENV, **env}, config_file=config, require_tracker=False)


def _problems(tmp_path: Path, text: str, **env: str) -> list[str]:
    with pytest.raises(errors.ConfigError) as caught:
        _load(tmp_path, text, **env)
    return caught.value.problems


def test_the_registry_table_gives_each_major_release_its_settings(tmp_path: Path) -> None:
    settings = _load(tmp_path, REGISTRY)
    assert settings.workflow.major_releases == ("UMD-5", "CAs")
    assert settings.workflow.workflow_for("CAs") == "direct"
    assert settings.workflow.workflow_for("UMD-5") == "staged"
    repo = settings.repository
    assert repo.production_path("CAs") == "production/CAs"
    assert repo.is_flat("CAs") and not repo.is_flat("UMD-5")
    assert repo.production_path("UMD-5") == "production/UMD-5"
    assert repo.release_type_for("UMD-5") == "Incremental"
    assert repo.release_type_for("CAs") == "NonIncremental"  # the process's default
    assert repo.release_type_for(None) == "NonIncremental"


def test_the_older_form_keeps_loading(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        'major_releases = ["UMD-5", "CAs"]\n[workflows]\nCAs = "direct"\n'
        '[production_paths]\nCAs = "production/CAs"\n',
    )
    assert settings.workflow.major_releases == ("UMD-5", "CAs")
    assert settings.workflow.workflow_for("CAs") == "direct"
    assert settings.repository.production_path("CAs") == "production/CAs"
    assert not settings.repository.is_flat("CAs")  # base/ and updates/, as before


def test_the_environment_says_the_same_with_flat_variables() -> None:
    settings = settings_load.load_settings(
        {
            **ENV,
            "ROLLOUT_MAJOR_RELEASES": "UMD-5,CAs",
            "ROLLOUT_PRODUCTION_PATHS": "CAs=production/CAs",
            "ROLLOUT_FLAT_PRODUCTION": "CAs",
            "ROLLOUT_RELEASE_TYPES": "UMD-5=Incremental",
            "ROLLOUT_WORKFLOWS": "CAs=direct",
        },
        require_tracker=False,
    )
    repo = settings.repository
    assert repo.is_flat("CAs") and repo.production_path("CAs") == "production/CAs"
    assert repo.release_type_for("UMD-5") == "Incremental"
    assert settings.workflow.workflow_for("CAs") == "direct"


def test_a_flat_setting_wins_over_the_tables_value(tmp_path: Path) -> None:
    settings = _load(tmp_path, REGISTRY, ROLLOUT_PRODUCTION_PATHS="CAs=trust/anchors")
    assert settings.repository.production_path("CAs") == "trust/anchors"
    assert settings.repository.is_flat("CAs")


@pytest.mark.parametrize(
    ("text", "env", "problem"),
    [
        ('[major_releases.CAs]\nproduction_path = "/srv/CAs"\n', {},
         "major_releases.CAs.production_path = '/srv/CAs': must be relative to repo_root, not "
         "absolute"),
        ('[major_releases.CAs]\nproduction_path = "production/../../etc"\n', {},
         "major_releases.CAs.production_path = 'production/../../etc': must not contain '..' "
         "or '.'"),
        ("", {"ROLLOUT_PRODUCTION_PATHS": "CAs=x/../y"},
         "production_paths: CAs = 'x/../y': must not contain '..' or '.'"),
        ('[major_releases.CAs]\nproduction_path = "stagerollout/CAs"\n', {},
         "major_releases.CAs.production_path = 'stagerollout/CAs': must not lie in "
         "stagerollout/"),
        ("", {"ROLLOUT_PRODUCTION_PATHS": "CAs=unverified"},
         "production_paths: CAs = 'unverified': must not lie in unverified/"),
        ('[major_releases.CAs]\nproduction_path = "production/.hidden"\n', {},
         "major_releases.CAs.production_path = 'production/.hidden': must be a relative path "
         "of names"),
        ('[major_releases.CAs]\nproduction_path = "production/a b"\n', {},
         "major_releases.CAs.production_path = 'production/a b': must be a relative path of "
         "names of letters, digits"),
        ('[major_releases.CAs]\nproduction_path = "production"\nflat = true\n'
         "[major_releases.UMD-5]\n", {},
         "the production area production/UMD-5/base of UMD-5 and production of CAs lie inside "
         "one another"),
        ('[major_releases.A]\nproduction_path = "p/x"\n[major_releases.B]\n'
         'production_path = "p/x"\nflat = true\n', {},
         "major_releases.B.production_path = 'p/x': the production area p/x of B and p/x/base "
         "of A lie inside one another"),
        ('[major_releases.CAs]\nflat = "yes"\n', {}, "major_releases.CAs.flat: 'yes' is not "
         "true or false"),
        ('[major_releases.CAs]\nworkflow = "fast"\n', {},
         "major_releases.CAs.workflow: 'fast' is not a template (staged, direct)"),
        ('[major_releases.CAs]\nrelease_type = "Minor"\n', {},
         "major_releases.CAs.release_type: 'Minor' is not a release type (Incremental, "
         "NonIncremental)"),
        ('[major_releases.CAs]\npath = "x"\n', {},
         "major_releases.CAs: unknown keys path (production_path, flat, workflow, "
         "release_type)"),
        ("[major_releases]\nCAs = 1\n", {},
         "major_releases.CAs: write a table with production_path, flat, workflow, release_type"),
        (REGISTRY, {"ROLLOUT_FLAT_PRODUCTION": "UMD-6"},
         "flat_production: UMD-6 is not among major_releases"),
        ("", {"ROLLOUT_RELEASE_TYPES": "UMD-5=Big"},
         "release_types: UMD-5 = 'Big' is not a release type (Incremental, NonIncremental)"),
    ],
    ids=[
        "absolute", "dot-dot", "dot-dot-old-form", "in-stagerollout", "is-unverified", "hidden",
        "space", "flat-holds-another", "same-path", "flat-not-bool", "unknown-workflow",
        "unknown-release-type", "unknown-key", "not-a-table", "flat-unknown-major",
        "release-types-value",
    ],
)  # fmt: skip
def test_a_bad_registry_is_refused_naming_the_setting(
    tmp_path: Path, text: str, env: dict[str, str], problem: str
) -> None:
    problems = _problems(tmp_path, text, **env)
    assert any(problem in p for p in problems), problems


def test_every_registry_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        '[major_releases.A]\nproduction_path = "/abs"\nworkflow = "fast"\n'
        '[major_releases.B]\nrelease_type = "Minor"\n'
    )
    assert len(_problems(tmp_path, text)) == 3


def test_areas_of_a_flat_and_a_split_major_release() -> None:
    flat = major_releases.MajorRelease(name="CAs", production_path="production/CAs", flat=True)
    split = major_releases.MajorRelease(name="7", production_path="el/7")
    assert flat.production_areas == ("production/CAs",)
    assert split.production_areas == ("el/7/base", "el/7/updates")


def test_siblings_do_not_overlap(tmp_path: Path) -> None:
    # production/CAs (flat) beside production/UMD-5/base|updates: one parent, no overlap.
    settings = _load(tmp_path, REGISTRY)
    assert settings.repository.is_flat("CAs")
    text = (
        '[major_releases.A]\nproduction_path = "p/ab"\n'
        '[major_releases.B]\nproduction_path = "p/a"\nflat = true\n'
    )
    assert _load(tmp_path, text).repository.production_path("B") == "p/a"
