"""Talking to RT: ``http`` (the session, retries and error mapping, shared by the client and
the set-up in ``rt_setup``), ``client`` (the ticket operations the bridge needs, over REST2),
``history`` (RT's history for reconciliation) and ``protocol`` (the ``Tracker`` seam the rest
is written against)."""
