"""The RT set-up as data, and the initialdata file rendered from it."""

from __future__ import annotations

from importlib import resources

from bridge import records, rt_setup
from bridge.rt_setup import initialdata


def test_shipped_initialdata_is_the_rendered_one() -> None:
    shipped = resources.files("bridge.rt_setup").joinpath("initialdata").read_text("utf-8")
    assert shipped == initialdata.render("sw-rel"), (
        "bridge/rt_setup/initialdata is stale: regenerate it with "
        "`rollout tracker initdata -o bridge/rt_setup/initialdata`"
    )


def test_rolloutprogress_offers_exactly_the_workflow_states() -> None:
    spec = {cf.name: cf for cf in rt_setup.CUSTOM_FIELDS}["RolloutProgress"]
    assert spec.values == tuple(s.label for s in records.RolloutState)
    assert len(spec.values) == 12
    assert spec.default == "Submitted"


def test_the_fields_and_groups_the_issue_names_are_there() -> None:
    names = {cf.name for cf in rt_setup.CUSTOM_FIELDS}
    assert names >= {
        "RolloutProgress", "EmergencyRelease", "ReleaseType", "AssociatedMajorRelease",
        "Sync-Protocol", "Sync-URL", "RepositoryURL", "QualityCriteria Verification Report",
        "StageRollout Report", "RolloutHistory",
    }  # fmt: skip
    groups = {g.name for g in rt_setup.GROUPS}
    assert groups >= {
        "sw-rel-qc", "sw-rel-sr", "sw-rel-production", "sw-rel-admin", "sw-rel-early-adopters"
    }  # fmt: skip


def test_queue_names_are_quoted_for_perl() -> None:
    text = initialdata.render("it's\\queue")
    assert "Name => 'it\\'s\\\\queue'" in text
