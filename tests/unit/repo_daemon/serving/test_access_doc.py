"""docs/access.md stays true: its roles table is the shipped default, its nginx excerpt is what
``rollout repo nginx-conf`` renders, its settings are the loader's, and its example
``ROLLOUT_AREA_ROLES`` and settings table load to the same rules."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bridge.settings import load as settings_load
from bridge.settings import model
from repo_daemon.serving import nginx
from tests.support import paths

DOC = (paths.ROOT / "docs" / "access.md").read_text()


def test_the_roles_table_is_the_default() -> None:
    found = {}
    for kind, readers in re.findall(r"^\| `?(\w+)[^|]*\| ([^|]*) \| `\w+=…` \|$", DOC, re.M):
        found[kind] = tuple(re.findall(r"`(\w+)`", readers))
    assert found == dict(model.DEFAULT_AREA_ROLES)


def test_the_nginx_excerpt_is_rendered() -> None:
    excerpt = re.search(r"```nginx\n(location = .*?\n\})\n", DOC, re.S)
    assert excerpt is not None
    rendered = nginx.render_nginx(Path("/srv/repo"))
    block = "\n".join(("    " + line) if line else line for line in excerpt.group(1).splitlines())
    assert block in rendered


def test_the_examples_load_to_the_same_rules() -> None:
    table = re.search(r"```toml\n(.*?)```", DOC, re.S)
    variable = re.search(r'ROLLOUT_AREA_ROLES="([^"]+)"', DOC)
    assert table is not None and variable is not None
    base = {"ROLLOUT_RT_URL": "https://rt.example.org/", "ROLLOUT_RT_TOKEN": "t"}
    from_env = settings_load.load_settings(base | {"ROLLOUT_AREA_ROLES": variable.group(1)})
    from_file = settings_load.load_settings(
        base, overrides={"area_roles": tomllib.loads(table.group(1))["area_roles"]}
    )
    assert from_env.access.area_roles == from_file.access.area_roles
    assert from_env.access.area_roles["unverified"] == ("qc", "admin")


def test_every_access_setting_is_documented() -> None:
    configuration = (paths.ROOT / "docs" / "configuration.md").read_text()
    from bridge.settings import access

    names = re.findall(r'"(access_\w+|area_roles)"', Path(access.__file__).read_text())
    assert "area_roles" in names and len(names) > 5
    for name in names:
        assert f"ROLLOUT_{name.upper()}" in configuration, name
        assert f"ROLLOUT_{name.upper()}" in DOC, name
