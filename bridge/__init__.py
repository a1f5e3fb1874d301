"""The tracker edge of the Rollout bridge: RT client, RT set-up, hook signing, shared records.

Nothing in this package may import ``repo_daemon``.
"""

from __future__ import annotations

__version__ = "0.1.0"
