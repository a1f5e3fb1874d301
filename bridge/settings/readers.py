"""The readers every section of the settings shares: a secret (from a value or a file), a
number, a flag, a path, ``key=value`` pairs and a list of names, each adding what is wrong to
the problem list instead of raising.

Pure parsing of values already read: it reads no environment and connects to nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge import secrets


def read_secret(name: str, raw: Mapping[str, Any], problems: list[str]) -> secrets.Secret | None:
    """A secret from ``name`` or from the file named by ``name_file``; never both."""
    value, path = raw.get(name), raw.get(f"{name}_file")
    if value and path:
        problems.append(f"{name} and {name}_file are both set; use one")
        return None
    if path:
        try:
            text = Path(str(path)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{name}_file {path}: cannot read ({exc.strerror})")
            return None
        if not text:
            problems.append(f"{name}_file {path} is empty")
            return None
        return secrets.Secret(text)
    return secrets.Secret(str(value)) if value else None


def number(
    name: str,
    raw: Mapping[str, Any],
    default: float,
    problems: list[str],
    *,
    allow_zero: bool = False,
) -> float:
    value = raw.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: {value!r} is not a number")
        return default
    if number < 0 or (number == 0 and not allow_zero):
        limit = "0 or more" if allow_zero else "greater than 0"
        problems.append(f"{name}: must be {limit}, got {value!r}")
        return default
    return number


def flag(value: Any) -> bool:
    return str(value or "false").strip().lower() in ("1", "true", "yes", "on")


def path(name: str, raw: Mapping[str, Any], problems: list[str]) -> Path | None:
    """An existing, readable file named by setting ``name``, or None when unset."""
    value = raw.get(name)
    if not value:
        return None
    path = Path(str(value))
    if not path.is_file():
        problems.append(f"{name}: {path} is not a readable file")
    return path


def pairs(value: Any, name: str, problems: list[str]) -> dict[str, str]:
    """A mapping from a TOML table or from ``key=value,key=value`` (environment)."""
    if isinstance(value, Mapping):
        return {
            str(k): "+".join(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in value.items()
        }
    result: dict[str, str] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"{name}: {item.strip()!r} is not KEY=VALUE")
            continue
        result[key.strip()] = val.strip()
    return result


def names(value: Any, name: str, problems: list[str]) -> tuple[str, ...]:
    """A list of names from a TOML array or from ``a,b,c`` (environment), without repeats."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    names = [str(item).strip() for item in items]
    if any(not n or any(c.isspace() or c in "/\\" for c in n) for n in names):
        problems.append(f"{name}: {value!r} is not a list of names (no spaces or slashes)")
        return ()
    return tuple(dict.fromkeys(names))
