"""Atomic file writes: a reader sees the old file or the new one, never half of one.

    with atomic_write(path, "wb") as f:      # write to a temporary file beside `path`,
        torch.save(state, f)                  # fsync it, then rename it over `path`
    write_json_atomic(path, data)

If writing fails (a full disk, a kill), the temporary file is removed and `path` keeps its
previous content. A full disk raises DiskFullError, whose message names the file.
"""

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path


class DiskFullError(OSError):
    """No space left while writing a file; the previous version of the file is kept."""


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Yield a file object for a temporary file beside `path`; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DiskFullError(errno.ENOSPC, f"no space left on the device while writing {path}; its previous "
                                              "version is kept. Free some space and run again") from error
        raise


def write_json_atomic(path, data):
    """Write `data` as JSON to `path` atomically."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2, default=str)


def read_json(path):
    """The JSON at `path`, or None when missing or unreadable (a run killed mid-write)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
