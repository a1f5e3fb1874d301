"""The RT set-up as data, and the initialdata file rendered from it."""

from __future__ import annotations

import re
from importlib import resources

from bridge import records, rt_setup
from bridge.rt_setup import early_adopters, initialdata
from bridge.settings.model import EarlyAdopterTeam
from tests.support import paths


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


def _editors(
    grants: list[rt_setup.Grant], right: str = rt_setup.MODIFY_FIELD
) -> dict[str, set[str]]:
    """Field name -> who has ``right`` on it (roles as ``role Requestor``)."""
    found: dict[str, set[str]] = {}
    for grant in grants:
        if grant.target == rt_setup.FIELD and right in grant.rights:
            found.setdefault(grant.field or "", set()).add(grant.who)
    return found


RELEASE_FIELDS = ("Sync-URL", "Sync-Protocol", "AssociatedMajorRelease", "ReleaseType")
# What the shipped set-up grants (the settings' default early adopters: one global team).
SHIPPED = rt_setup.grants(early_adopters.groups(), early_adopters.custom_fields())


def test_each_field_is_changed_by_exactly_its_roles() -> None:
    bridge, admin, requestor = "sw-rel-bridge", "sw-rel-admin", "role Requestor"
    expected = {
        "RolloutProgress": {"sw-rel-qc", "sw-rel-sr", admin, bridge},
        "QualityCriteria Verification Report": {"sw-rel-qc", admin},
        "StageRollout Report": {"sw-rel-sr", admin},
        "EarlyAdopters": {"sw-rel-sr", bridge, "sw-rel-early-adopters"},
        "Closing Reason": {"sw-rel-qc", "sw-rel-sr", admin},
        "EmergencyRelease": {admin, bridge},
        "RepositoryURL": {bridge},
        "RolloutHistory": {bridge},
        **{name: {admin, bridge, requestor} for name in RELEASE_FIELDS},
    }
    assert _editors(SHIPPED) == expected


def test_providers_file_releases_and_set_only_their_fields_when_filing() -> None:
    grants = SHIPPED
    on_queue = {g.who: set(g.rights) for g in grants if g.target == rt_setup.QUEUE}
    assert on_queue["sw-rel-providers"] == {"SeeQueue", "CreateTicket"}
    initial = _editors(grants, rt_setup.SET_INITIAL_FIELD)
    assert initial == {name: {"sw-rel-providers"} for name in RELEASE_FIELDS}
    # REST2 drops a field the filer may not see: they see the fields they set.
    assert _editors(grants, "SeeCustomField") == initial
    # As Requestor, on their own tickets: see them, the fields, and answer.
    assert on_queue["role Requestor"] == {"ShowTicket", "SeeCustomField", "ReplyToTicket"}


def test_nobody_changes_fields_through_the_queue_and_the_old_grant_is_retired() -> None:
    for grant in SHIPPED:
        if grant.target == rt_setup.QUEUE:
            assert rt_setup.MODIFY_FIELD not in grant.rights, grant.who
    retired = {g.name: g.retired for g in early_adopters.groups() if g.retired}
    assert retired == {
        name: (rt_setup.MODIFY_FIELD,)
        for name in (
            "sw-rel-qc", "sw-rel-sr", "sw-rel-admin", "sw-rel-bridge", "sw-rel-early-adopters"
        )
    }  # fmt: skip


def test_early_adopter_teams_change_earlyadopters_and_no_other_field() -> None:
    teams = (
        EarlyAdopterTeam(name="desy", ngi="NGI_DE", group="ea-desy", major_releases=("UMD-5",)),
        EarlyAdopterTeam(name="infn", ngi="NGI_IT", group="ea-infn", major_releases=()),
    )
    grants = rt_setup.grants(early_adopters.groups(teams), early_adopters.custom_fields(teams))
    editors = _editors(grants)
    assert editors["EarlyAdopters"] == {"sw-rel-sr", "sw-rel-bridge", "ea-desy", "ea-infn"}
    assert [f for f, who in editors.items() if "ea-desy" in who] == ["EarlyAdopters"]
    on_queue = {g.who: g for g in grants if g.target == rt_setup.QUEUE}
    assert set(on_queue["ea-desy"].rights) == {"SeeQueue", "ShowTicket", "SeeCustomField"}
    assert on_queue["ea-desy"].retired == (rt_setup.MODIFY_FIELD,)  # as a team it once had it
    text = initialdata.render("sw-rel", teams)
    assert (
        "{ GroupDomain => 'UserDefined', GroupId => 'ea-infn', CF => 'EarlyAdopters', "
        "Queue => 'sw-rel',\n      Right => ['ModifyCustomField'] }," in text
    )


def test_roles_render_as_rts_role_groups() -> None:
    text = initialdata.render("sw-rel")
    # On the queue: the queue's own Requestor role group; on a field: RT's global one.
    assert (
        "{ GroupDomain => 'RT::Queue-Role', GroupType => 'Requestor', Queue => 'sw-rel',\n"
        "      Right => ['ShowTicket', 'SeeCustomField', 'ReplyToTicket'] }," in text
    )
    assert (
        "{ GroupDomain => 'RT::System-Role', GroupType => 'Requestor', CF => 'Sync-URL', "
        "Queue => 'sw-rel',\n      Right => ['ModifyCustomField'] }," in text
    )
    assert (
        "{ GroupDomain => 'UserDefined', GroupId => 'sw-rel-bridge',\n"
        "      Right => ['SeeGroup'] }," in text
    )


def test_docs_list_each_fields_editors() -> None:
    """docs/tracker.md's table of who changes which field is the data's."""
    doc = (paths.ROOT / "docs" / "tracker.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|$", doc, flags=re.M)
    grants = SHIPPED
    editors, initial = _editors(grants), _editors(grants, rt_setup.SET_INITIAL_FIELD)

    def names(cell: str, prefix: str = "") -> set[str]:
        return {prefix + n.strip() for n in cell.split(",") if n.strip()}

    shown = {
        field: (names(groups) | names(roles, "role "), names(filing))
        for field, groups, roles, filing in rows
    }
    assert shown == {
        cf.name: (editors.get(cf.name, set()), initial.get(cf.name, set()))
        for cf in early_adopters.custom_fields()
    }
