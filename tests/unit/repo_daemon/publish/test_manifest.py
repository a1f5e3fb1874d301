"""The snapshot manifest, pure: the union of an area's files, conflicts between releases, and
``.rollout-manifest.json`` written and read back."""

from __future__ import annotations

import json

import pytest

from repo_daemon.publish import errors, manifest

SHA_A = "a" * 64
SHA_B = "b" * 64


def entry(ticket: int, version: str, *files: tuple[str, str]) -> manifest.ReleaseEntry:
    return manifest.ReleaseEntry(
        ticket_id=ticket,
        short_name="Demo",
        version=version,
        files=tuple(manifest.FileEntry(path=p, size=1, sha256=s) for p, s in files),
    )


def test_union_keeps_one_entry_per_path_sorted() -> None:
    first = entry(1, "1.0.0", ("rpms/b.rpm", SHA_B), ("rpms/a.rpm", SHA_A))
    second = entry(2, "1.0.1", ("rpms/a.rpm", SHA_A))
    union = manifest.union_files([first, second], area="stagerollout/7")
    assert [f.path for f in union] == ["rpms/a.rpm", "rpms/b.rpm"]


def test_union_lists_every_conflict() -> None:
    first = entry(1, "1.0.0", ("rpms/a.rpm", SHA_A), ("rpms", SHA_A))
    second = entry(2, "1.0.1", ("rpms/a.rpm", SHA_B))
    with pytest.raises(errors.PathConflict) as caught:
        manifest.union_files([first, second], area="stagerollout/7")
    assert len(caught.value.conflicts) == 2
    assert caught.value.area == "stagerollout/7"


def test_the_same_release_from_another_ticket_is_a_conflict() -> None:
    held = manifest.AreaManifest(area="stagerollout/7").with_release(entry(1, "1.0.0"))
    with pytest.raises(errors.PathConflict, match="already here from ticket #1"):
        held.with_release(entry(2, "1.0.0"))


def test_a_ticket_replaces_what_it_brought_before() -> None:
    held = manifest.AreaManifest(area="stagerollout/7").with_release(
        entry(1, "1.0.0", ("a.rpm", SHA_A))
    )
    again = held.with_release(entry(1, "1.0.0", ("b.rpm", SHA_B)))
    assert [f.path for f in again.files()] == ["b.rpm"]
    assert again.without_ticket(1).releases == ()


def test_json_round_trip_keeps_everything() -> None:
    held = manifest.AreaManifest(
        area="production/7/updates",
        releases=(entry(1, "1.0.0", ("rpms/a.rpm", SHA_A)), entry(2, "1.0.1", ("b.rpm", SHA_B))),
    )
    data = held.to_json(snapshot="000001-20261124T101500Z", created="2026-11-24T10:15:00+00:00")
    document = json.loads(data)
    assert document["format"] == manifest.MANIFEST_FORMAT
    assert [f["path"] for f in document["files"]] == ["b.rpm", "rpms/a.rpm"]
    back = manifest.AreaManifest.from_json(data, area="production/7/updates")
    assert back == held


@pytest.mark.parametrize(
    "data",
    [b"not json", b'{"format": 2}', b'{"format": 1, "area": "stagerollout/8", "releases": []}'],
    ids=["garbage", "other-format", "other-area"],
)
def test_a_manifest_that_is_not_one_is_refused(data: bytes) -> None:
    with pytest.raises(errors.SnapshotInvalid, match="manifest unreadable"):
        manifest.AreaManifest.from_json(data, area="stagerollout/7")


def test_a_hostile_path_in_a_manifest_is_refused() -> None:
    held = manifest.AreaManifest(area="stagerollout/7", releases=(entry(1, "1.0.0", ("a", SHA_A)),))
    data = held.to_json(snapshot="000001-20261124T101500Z", created="x").replace(
        b'"path": "a"', b'"path": "../a"'
    )
    with pytest.raises(errors.SnapshotInvalid, match="manifest: package path"):
        manifest.AreaManifest.from_json(data, area="stagerollout/7")
