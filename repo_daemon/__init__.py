"""The repository side of the Rollout bridge: the ``rollout`` command (``cli``), the daemon that
drains the queue (``daemon``), the release workflow (``workflow``), and one package per domain
of the repository work: ``release_xml``, ``sync``, ``publish``, ``metadata``, ``serving``; plus
``demo``. May import ``bridge``; never the reverse."""

from __future__ import annotations
