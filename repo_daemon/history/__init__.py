"""What happened, for people and programs, read back from the event log: a release's timeline
(``timeline``, ``changes``, ``records``), the text people read (``render``) and the log's
exports (``exports``). Pure: it works on the events it is given, never the database or clock.
"""
