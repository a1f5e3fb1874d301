"""The repository side of the Rollout bridge: the ``rollout`` command, and (in later work) the
scheduler, the workflow engine and the repository actions. May import ``bridge``; never the
reverse."""

from __future__ import annotations
