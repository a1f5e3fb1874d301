"""A release's history read back from the event log: its timeline (``timeline``) and the text
people read (``render``). Pure: it reads events it is given and never the database or clock.
"""
