"""Writing a file atomically: readers see the old content or the new, never half of it.

The one way the bridge and the daemon replace a file in place (a temporary file in the same
folder, flushed to disk, then ``os.replace``), optionally readable by the owner only, for
secrets. It must not decide where files live or what they contain.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomically(path: Path, data: bytes | str, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8), creating its folder.

    ``private`` makes the file readable and writable by its owner only (0600) from the
    moment it exists; otherwise it gets the usual mode (0666 less the umask). A crash leaves
    either the old file or the new one, plus at most a stray ``.*.partial`` file.
    """
    content = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
