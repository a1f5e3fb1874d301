"""The shipped rsyncd.conf, as text: one read-only module of the whole root (a real rsync
daemon: tests/integration/test_mirror_rsync.py)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from repo_daemon.serving import rsyncd

ROOT = Path("/srv/rollout/repo")


def _module(conf: str, name: str) -> dict[str, str]:
    section = conf.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.strip().split(" = ", 1) for line in section.splitlines() if " = " in line)
    return {key: value for key, value in pairs}


def test_rsyncd_has_one_read_only_module_for_the_whole_root(tmp_path: Path) -> None:
    conf = rsyncd.render_rsyncd(
        ROOT, port=8873, address="192.0.2.1", run_dir=tmp_path, log_file=tmp_path / "log"
    )
    assert re.findall(r"^\[(\S+)\]$", conf, re.M) == [
        "repo", "repo-unverified", "repo-stagerollout"
    ]  # fmt: skip
    module = _module(conf, "repo")
    assert module["path"] == "/srv/rollout/repo"
    assert module["read only"] == "yes"
    assert module["use chroot"] == "yes"
    assert module["munge symlinks"] == "no"
    assert module["exclude"].split() == [
        "/.pool/", "/.locks/", "/.releases/", ".building-*", ".deleting-*", ".*.swap-*",
        "/.metadata-cache/",
        "/unverified/***", "/.snapshots/unverified~*/***", "/.trees/unverified~*/***",
        "/stagerollout/***", "/.snapshots/stagerollout~*/***", "/.trees/stagerollout~*/***",
    ]  # fmt: skip
    head = conf.split("[repo]")[0]
    for line in ("port = 8873", "address = 192.0.2.1", f"pid file = {tmp_path}/rsyncd.pid",
                 f"lock file = {tmp_path}/rsyncd.lock", f"log file = {tmp_path}/log",
                 "uid = nobody", "gid = nogroup", "max connections = 20"):  # fmt: skip
        assert f"{line}\n" in head, line
    # The daemon never dereferences a symlink into a transfer (a planted one would reach the
    # pool); mirrors pull with --delete, which the client sends: refusing it breaks them.
    refused = module["refuse options"].split()
    assert refused == ["copy-links", "copy-dirlinks", "copy-unsafe-links"]
    assert "delete" not in module["refuse options"]


def test_rsyncd_without_chroot_or_account_switch(tmp_path: Path) -> None:
    conf = rsyncd.render_rsyncd(
        ROOT, port=8873, module="mirror", uid=None, gid=None, use_chroot=False, run_dir=tmp_path
    )
    assert _module(conf, "mirror")["use chroot"] == "no"
    assert "uid =" not in conf
    assert "gid =" not in conf
    assert "syslog facility = daemon" in conf


@pytest.mark.parametrize(
    "kwargs", [{"module": "a b"}, {"module": "x]"}, {"port": 0}, {"uid": "root\nx"}]
)
def test_rsyncd_refuses_unsafe_values(kwargs: dict[str, object]) -> None:
    arguments: dict[str, object] = {"port": 873, **kwargs}
    with pytest.raises(ValueError):
        rsyncd.render_rsyncd(ROOT, **arguments)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- content types


def test_protected_areas_have_modules_of_their_own_with_per_role_secrets(tmp_path: Path) -> None:
    conf = rsyncd.render_rsyncd(
        ROOT,
        port=873,
        protected={"unverified": ("qc", "admin")},
        secrets_file=Path("/etc/rollout/rsync.secrets"),
    )
    assert re.findall(r"^\[(\S+)\]$", conf, re.M) == ["repo", "repo-unverified"]
    module = _module(conf, "repo-unverified")
    assert module["auth users"] == "qc, admin"
    assert module["secrets file"] == "/etc/rollout/rsync.secrets"
    assert module["strict modes"] == "yes" and module["read only"] == "yes"
    assert module["filter"].startswith("- /.pool/ - /.locks/ - /.releases/ - .building-*")
    assert module["include"].split() == [
        "/unverified/***", "/.snapshots/", "/.snapshots/unverified~*/***",
        "/.trees/", "/.trees/unverified~*/***",
    ]  # fmt: skip
    assert module["exclude"] == "*"
    assert "/stagerollout/***" not in _module(conf, "repo")["exclude"]
    open_all = rsyncd.render_rsyncd(ROOT, port=873, protected={})
    assert re.findall(r"^\[(\S+)\]$", open_all, re.M) == ["repo"]
    with pytest.raises(ValueError, match="production"):
        rsyncd.render_rsyncd(ROOT, port=873, protected={"production": ("qc",)})
    with pytest.raises(ValueError, match="rsync user"):
        rsyncd.render_rsyncd(ROOT, port=873, protected={"unverified": ("qc\nx = 1",)})


def test_the_tree_layouts_half_made_names_are_hidden_and_its_trees_offered() -> None:
    """``.trees/`` is not excluded from ``repo`` (mirrors copy a tree-layout area's payload from
    it) but a tree's ``.meta.swap-<hex>`` is, by the swap pattern, in every module, and so are
    the release entries; the protected kinds' trees are only in their own modules."""
    conf = rsyncd.render_rsyncd(ROOT, port=873)
    public = _module(conf, "repo")["exclude"].split()
    assert not any(p in ("/.trees/", "/.trees/***", ".meta", ".meta*") for p in public)
    swap = next(p for p in public if p.endswith(".swap-*"))
    assert fnmatch.fnmatchcase(".meta.swap-0a1b2c3d", swap)
    assert not fnmatch.fnmatchcase(".meta", swap)
    for name in ("repo-unverified", "repo-stagerollout"):
        hidden = _module(conf, name)["filter"].split()
        assert f"{swap}" in hidden and "/.releases/" in hidden, name
    assert "/.trees/stagerollout~*/***" in _module(conf, "repo-stagerollout")["include"].split()
