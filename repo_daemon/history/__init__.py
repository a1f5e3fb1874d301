"""What happened, for people and programs: the event log's exports (``exports``)."""
