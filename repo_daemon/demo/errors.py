"""Errors of the demo. Each message says what to look at or what to do next.

Hierarchy::

    repo_daemon.errors.DaemonError
    └── DemoFailed             a step of the demo failed
        ├── ServiceFailed      a process the demo starts did not come up (its log is named)
        ├── StepTimedOut       the bridge did not finish a change in time
        └── InstallFailed      apt-get or dnf could not install the sample package
"""

from __future__ import annotations

from repo_daemon.errors import DaemonError


class DemoFailed(DaemonError):
    """A step of the demo failed."""


class ServiceFailed(DemoFailed):
    """A process the demo starts (RT, rsync, the bridge, the tree server) did not come up."""


class StepTimedOut(DemoFailed):
    """The bridge did not process a change of RolloutProgress within the deadline."""


class InstallFailed(DemoFailed):
    """apt-get or dnf did not install the sample package from the production tree."""
