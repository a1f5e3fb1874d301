"""Fetching a release's files from its provider into scratch (rsync, SFTP, HTTPS) and verifying
them: ``fetch`` (the entry points) -> ``urls`` (checks) -> ``rsync`` / ``sftp`` / ``https``
(one protocol each) into ``scratch``, reporting ``progress``; then ``verify``. Errors are in
``errors``, the options and result in ``records``.
"""
