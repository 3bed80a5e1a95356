"""Writing a file users edit (config.toml) so that it is never left half-written.

``write_atomic`` writes a temporary file in the same folder, flushes it to disk, gives it the
old file's permissions (and owner, where this process may), then renames it over the old one:
a reader sees the old text or the new, never a mixture, whatever happens in between.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path``'s contents with ``text`` (UTF-8) in one rename; OSError if it cannot be done."""
    target = Path(os.path.realpath(path))  # a symlinked config.toml keeps its link; the file it names changes
    old = target.stat()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, stat.S_IMODE(old.st_mode))
        with contextlib.suppress(PermissionError):  # only root may give a file away; the mode is what matters
            os.chown(temporary, old.st_uid, old.st_gid)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk with the folder's entry
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
