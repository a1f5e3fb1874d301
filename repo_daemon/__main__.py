"""``python -m repo_daemon`` is the same as the ``rollout`` command."""

from __future__ import annotations

import sys

from repo_daemon.cli import main

sys.exit(main())
