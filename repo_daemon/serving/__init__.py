"""Serving the published trees: one ``policy`` (what is served, content types, caching), the
shipped ``nginx`` and ``rsyncd`` configurations, and the embedded ``static`` server.
"""
