"""Serving the published trees: the shipped nginx and rsyncd configurations and the embedded static
server.
"""
