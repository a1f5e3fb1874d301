"""The release workflow: its definition as data (``model``, ``loader``), the pure decision
``engine``, and renderings of it as text and diagrams (``render``)."""
