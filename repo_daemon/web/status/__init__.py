"""The status pages (``/status``, ``/status/releases/{ticket}``, ``/status/metrics``):
server-rendered HTML for the people of ``ROLLOUT_STATUS_ROLES``, mounted on the receiver by
``repo_daemon.daemon.assemble``. ``pages`` is the router, ``views`` and ``metrics_page`` read
what the pages show, ``plots`` draws the SVG plots and ``display`` formats times; the
templates and the stylesheet ship in the package. Nothing here writes to the store.
"""
