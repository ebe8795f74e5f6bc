"""Writing result files so that a reader never sees half of one."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def current_umask() -> int:
    """The process's umask, read where the system shows it (Linux's /proc) rather than by setting
    it, which would briefly change it for every thread."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode open() gives a new file now: mkstemp makes files only their owner can read, and
    results get the mode a plain write would give them (under the umask of the moment, not of
    the import)."""
    return 0o666 & ~current_umask()


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Calls `write(f)` on a temporary file beside `path`, flushes it to the disk and renames it
    over `path`: readers see the previous file or the new one, never a part of one. On any failure
    (a full disk, Ctrl-C in the middle of `write`) the temporary file is removed and the previous
    file kept. An OSError is raised again naming `path` rather than the temporary file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), new_file_mode())
            write(f)
            f.flush()
            # without the sync a crash soon after the rename can leave an empty file in its place
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno is None:
            raise OSError(f"{path}: {err}") from err
        # OSError(errno, ...) picks the matching subclass (PermissionError, ...) again
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))
