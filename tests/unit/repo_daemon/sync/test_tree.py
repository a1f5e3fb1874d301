"""Walking and deleting what a provider put in scratch, whatever it is: names that are not
UTF-8, hidden characters, names and paths beyond the limits, and trees far deeper than
Python's recursion limit or PATH_MAX, each refused by name (escaped), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repo_daemon.release_xml import limits
from repo_daemon.sync import errors, scratch, tree, verify


def _deep(top: Path, levels: int, name: str = "d") -> None:
    """``levels`` nested directories below ``top`` made by descriptors (no PATH_MAX limit)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("leaf.rpm", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)


def test_names_are_read_as_bytes_and_refused_escaped(tmp_path: Path) -> None:
    top = tmp_path / "t"
    top.mkdir()
    (top / "ok.rpm").write_bytes(b"x")
    os.mkdir(os.fsencode(top) + b"/caf\xe9")  # noqa: PTH102  (a name that is not UTF-8)
    (Path(os.fsdecode(os.fsencode(top) + b"/caf\xe9")) / "inside.rpm").write_bytes(b"x")
    (top / "esc\x1b[2J.rpm").write_bytes(b"x")
    (top / "rlo\u202egpj.rpm").write_bytes(b"x")
    (top / ("n" * 250)).write_bytes(b"x")
    listing = tree.walk(top)
    assert [e.path for e in listing.entries] == ["ok.rpm"]
    shown = [r.describe() for r in listing.refused]
    assert shown == [
        "caf\\xe9 (its name is not valid UTF-8)",
        "esc\\x1b[2J.rpm (its name contains a control character (U+001B))",
        "n" * 250 + " (its name is 250 bytes long (a name has at most 249))",
        "rlo\\u202egpj.rpm (its name contains a bidirectional control (U+202E RIGHT-TO-LEFT "
        "OVERRIDE))",
    ]
    with pytest.raises(errors.SyncRefused) as caught:
        scratch.check_tree(top)
    assert "caf\\xe9 (its name is not valid UTF-8)" in str(caught.value)
    str(caught.value).encode("utf-8")  # representable: it can be recorded and commented
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)


@pytest.mark.parametrize("levels", [33, 990, 2500])
def test_a_tree_deeper_than_the_limit_is_refused_and_removed(tmp_path: Path, levels: int) -> None:
    top = tmp_path / "t"
    top.mkdir()
    _deep(top, levels)
    listing = tree.walk(top)
    assert len(listing.entries) == limits.MAX_DEPTH  # directories 1 to 32 deep
    assert [r.reason for r in listing.refused] == ["it lies 33 levels deep (at most 32)"]
    with pytest.raises(verify.ChecksumMismatch, match="name not accepted"):
        verify.verify(top, [])
    scratch.remove(top)
    assert not top.exists()


def test_a_path_longer_than_path_max_is_walked_refused_and_removed(tmp_path: Path) -> None:
    top = tmp_path / "t"
    top.mkdir()
    _deep(top, 20, name="p" * 240)  # 4,820 bytes below top
    listing = tree.walk(top)
    assert listing.refused[0].reason == "its path is 3132 bytes long (at most 3072)"
    tree.remove_tree(top)
    assert not top.exists()


def test_prune_removes_leftovers_of_any_name_or_depth(tmp_path: Path) -> None:
    top = tmp_path / "t"
    (top / "el9").mkdir(parents=True)
    (top / "el9" / "keep.rpm").write_bytes(b"k")
    (top / "el9" / "stale.rpm").write_bytes(b"s")
    (top / "bad\x1b").mkdir()
    _deep(top / "bad\x1b", 1500)
    (top / "el9" / "link.rpm").symlink_to("/etc/passwd")
    scratch.prune(top, {"el9/keep.rpm"})
    assert sorted(p.name for p in top.rglob("*")) == ["el9", "keep.rpm"]


def test_a_scratch_directory_too_long_for_the_limits_is_the_operators(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="choose a shorter data_dir") as caught:
        scratch.prepare_dest(
            tmp_path / ("d" * 200) / ("d" * 200) / ("d" * 200) / ("d" * 200) / ("d" * 200)
        )
    assert not getattr(caught.value, "provider_can_fix", True)
    assert not getattr(caught.value, "transient", True)


def test_the_fast_path_for_ascii_names_agrees_with_the_rule_for_every_ascii_character() -> None:
    from bridge import printable
    from repo_daemon.release_xml import limits

    for code in range(128):
        char = chr(code)
        assert bool(limits.hidden_characters(f"a{char}b")) == printable.is_hidden(char), code
