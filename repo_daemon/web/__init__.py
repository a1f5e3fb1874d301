"""The repository side's HTTP endpoints (FastAPI): the tree-access check nginx asks before
serving a protected area (``access_check``)."""
