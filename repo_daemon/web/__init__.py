"""The repository side's HTTP endpoints (FastAPI): the tree-access check nginx asks before
serving a protected area (``access_check``), and the audit feed's API (``events_api``, read by
the people ``events_access`` admits)."""
