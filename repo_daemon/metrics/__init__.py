"""The provisioning metrics (docs/metrics.md): the records they are made of (``report``), the
rules and statistics (``rules``, ``period``, ``stats``, all pure), the computation from the
bridge's records (``compute``) and their renderings (``render``)."""
