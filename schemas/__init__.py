"""Schemas shipped with the product (release.xsd, workflow definitions), as package data."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def path(name: str) -> Traversable:
    """The shipped schema file ``name``."""
    return resources.files(__name__).joinpath(name)
