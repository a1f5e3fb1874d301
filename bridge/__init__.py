"""The tracker edge of the Rollout bridge and the kernel both sides share.

``settings`` (the frozen ``Settings`` and loading them), ``store`` (the database: queue, event
log, release records, migrations), ``intake`` (RT's signed hooks, the receiver, reconciliation,
refusal comments), ``tracker`` (talking to RT), ``rt_setup`` (what the product needs in RT, and
the sandbox RT); beside them ``records``, ``errors``, ``secrets``, ``files``, ``processes`` and
``testing`` (in-memory fakes for tests).

Nothing in this package may import ``repo_daemon``.
"""

from __future__ import annotations

__version__ = "0.1.0"
