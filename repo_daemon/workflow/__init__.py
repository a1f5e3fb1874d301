"""The release workflow: its definition as data (``model``, ``loader``), the pure decision
``engine``, renderings of it as text and diagrams (``render``), the action registry
(``actions``) with its handlers (``ticket_actions``, ``repository_actions``, which call
``steps``), and the ``processor`` that runs one queued change: gather (``gather``), decide,
act (handlers return ``effects``), apply (``ticket_plan``)."""
