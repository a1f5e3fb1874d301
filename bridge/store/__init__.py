"""The bridge's database: the queue of changes, the event log, the records of releases, and their
migrations.
"""
