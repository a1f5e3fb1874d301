"""Fetching a release's files from its provider into scratch (rsync, SFTP, HTTPS) and verifying
them.
"""
