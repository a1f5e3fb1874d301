"""A real rsync daemon on loopback for the tests and benchmarks: the demo's provider source
(``repo_daemon.demo.rsync_source``) under the name the tests use."""

from __future__ import annotations

from repo_daemon.demo.rsync_source import RsyncDaemon

__all__ = ["RsyncDaemon"]
