"""Build a tree-layout area BY HAND, exactly as the spec (docs of issue 19, "tree" layout) lays
it out, so serving and mirror tests do not depend on the publish core that writes it:

- ``<root>/.pool/<sha256>``: one pool file per payload file (0444);
- ``<root>/.trees/<K>/<path>``: the payload, hard links to the pool files;
- ``<root>/.snapshots/<K>/<snap>/``: the metadata snapshot (real files, no links, sealed);
- the metadata links in the tree (``el9/x86_64/repodata -> ../../.meta/el9/x86_64/repodata``);
- ``<root>/.trees/<K>/.meta -> ../../.snapshots/<K>/<snap>`` (the switch);
- ``<root>/<A> -> "../" * depth + ".trees/<K>"``.

Test support only: it checks nothing and never calls ``repo_daemon.publish``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

TREES = ".trees"
SNAPSHOTS = ".snapshots"
POOL = ".pool"
META = ".meta"


def area_key(area: str) -> str:
    """``production/7/updates`` -> ``production~7~updates``."""
    return area.strip("/").replace("/", "~")


def tree_dir(root: Path, area: str) -> Path:
    """``<root>/.trees/<K>``."""
    return root / TREES / area_key(area)


def snapshot_dir(root: Path, area: str, snapshot_name: str) -> Path:
    """``<root>/.snapshots/<K>/<snapshot_name>``."""
    return root / SNAPSHOTS / area_key(area) / snapshot_name


def metadata_link_target(rel: str) -> str:
    """The target of the metadata link at tree path ``rel``: ``"../" * depth + ".meta/" + rel``."""
    return "../" * rel.count("/") + f"{META}/{rel}"


def _write_pool(root: Path, data: bytes) -> Path:
    pool = root / POOL
    pool.mkdir(parents=True, exist_ok=True)
    target = pool / hashlib.sha256(data).hexdigest()
    if not target.exists():
        target.write_bytes(data)
        target.chmod(0o444)
    return target


def _seal(directory: Path) -> None:
    for dirpath, dirnames, _ in os.walk(directory, topdown=False):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o555)
    directory.chmod(0o555)


def _symlink_swap(link: Path, target: str) -> None:
    swap = link.with_name(f"{link.name}.swap-{secrets.token_hex(4)}")
    swap.symlink_to(target)
    swap.replace(link)


def _metadata_links(tree: Path, snap: Path, rel: str = "") -> None:
    """For every entry of the snapshot (top-down): recurse where the tree has a real payload
    directory, else link ``tree/R -> ../…/.meta/R`` (left alone when already that link)."""
    for entry in sorted(p.name for p in (snap / rel if rel else snap).iterdir()):
        sub = f"{rel}/{entry}" if rel else entry
        where = tree / sub
        if where.is_dir() and not where.is_symlink():
            _metadata_links(tree, snap, sub)
            continue
        if where.is_symlink():
            if str(where.readlink()) == metadata_link_target(sub):
                continue
            where.unlink()
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(metadata_link_target(sub))


def build_tree_area(
    root: Path,
    area: str,
    payload: Mapping[str, bytes],
    metadata: Mapping[str, bytes],
    snapshot_name: str,
) -> None:
    """Add ``payload`` (tree path -> bytes, linked from the pool) to the tree of ``area``, write
    the sealed metadata snapshot ``snapshot_name`` holding ``metadata`` (path -> bytes; add
    ``index.json``, ``.rollout-serial``, ``.rollout-manifest.json`` yourself if you want them),
    make its metadata links, point ``.meta`` at it and (once) the area at the tree. Call it again
    with another ``snapshot_name`` to add a second snapshot (and payload), then ``switch``."""
    key = area_key(area)
    tree = tree_dir(root, area)
    tree.mkdir(parents=True, exist_ok=True)
    for rel, data in payload.items():
        target = tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        pooled = _write_pool(root, data)
        if not target.exists():
            os.link(pooled, target)
    snap = snapshot_dir(root, area, snapshot_name)
    snap.parent.mkdir(parents=True, exist_ok=True)
    building = snap.with_name(f".building-{snapshot_name}")
    for rel, data in metadata.items():
        target = building / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o444)
    building.mkdir(exist_ok=True)
    building.rename(snap)
    _seal(snap)
    link = root / area
    if not link.is_symlink():
        switch(root, area, snapshot_name)
        link.parent.mkdir(parents=True, exist_ok=True)
        _symlink_swap(link, "../" * area.count("/") + f"{TREES}/{key}")


def switch(root: Path, area: str, snapshot_name: str) -> None:
    """Make the metadata links ``snapshot_name`` needs, then rename a fresh
    ``.meta.swap-<hex>`` onto ``.trees/<K>/.meta`` (the spec's switch)."""
    key = area_key(area)
    tree = tree_dir(root, area)
    snap = snapshot_dir(root, area, snapshot_name)
    _metadata_links(tree, snap)
    _symlink_swap(tree / META, f"../../{SNAPSHOTS}/{key}/{snapshot_name}")


def sample_metadata(area: str, snapshot_name: str, *, repomd: bytes) -> dict[str, bytes]:
    """A small metadata snapshot for ``area``: ``el9/x86_64/repodata/repomd.xml`` (``repomd``),
    ``index.json``, ``.rollout-serial`` and a format-2 ``.rollout-manifest.json``."""
    key = area_key(area)
    manifest = {
        "format": 2,
        "layout": "tree",
        "area": area,
        "snapshot": snapshot_name,
        "created": "2026-12-06T00:00:00Z",
        "releases": [],
        "links": [
            "el9/x86_64/repodata",
            "index.json",
            ".rollout-serial",
            ".rollout-manifest.json",
        ],
    }
    return {
        "el9/x86_64/repodata/repomd.xml": repomd,
        "index.json": json.dumps({"area": area, "layout": "tree"}).encode(),
        ".rollout-serial": f"{key}/{snapshot_name}\n".encode(),
        ".rollout-manifest.json": json.dumps(manifest).encode(),
    }
