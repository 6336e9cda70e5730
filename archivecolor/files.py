"""The ground floor for files: atomic writes, temporaries beside their target, hashes, and the
output errors that stop a whole run (a full disk) rather than fail one file.

No torch, no numpy: every module that writes a file imports this, so `--help`, `--dry-run` and
the onnxruntime path need not import a network library to write one.
"""

from __future__ import annotations

import errno
import functools
import glob
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def temporary_beside(target: Path):
    """A hidden temporary name beside `target` (same filesystem, so a rename is atomic) with the
    usual file mode, not mkstemp's 0600; removed unless it was renamed into place."""
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{fitting_name(target.name)}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


NAME_MAX = 255  # bytes in one file name on the filesystems archives live on (ext4, XFS, APFS, NTFS)
_TEMPORARY_EXTRA = len(".") + len(".") + 8 + len(".part")  # dot, dot, mkstemp's 8 random characters, .part


def fitting_name(name: str) -> str:
    """`name`, shortened (whole UTF-8 characters) so that its temporary's name fits NAME_MAX bytes."""
    room = NAME_MAX - _TEMPORARY_EXTRA
    data = os.fsencode(name)
    if len(data) <= room:
        return name
    return os.fsdecode(data[:room].decode("utf-8", "ignore").encode("utf-8"))


def remove_temporaries_of(target: Path) -> int:
    """Delete the temporaries a killed run left beside `target` (never finished files); returns how
    many. Call it only while holding the lock on `target`'s job, or it may take a running job's file."""
    target = Path(target)
    removed = 0
    for stale in target.parent.glob(f".{glob.escape(fitting_name(target.name))}.*.part"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: never a half file under `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with temporary_beside(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The file's SHA-256, hashed once per process for the same file unchanged (a run names its
    weights' hash in its look, its report and every output's mark)."""
    stat = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FolderInUse(ValueError):
    """Another archivecolor process holds this folder (two runs on one output would write files twice)."""


class FolderLock:
    """An open lock file under flock: held until close() (or the process's end, however it ends)."""

    def __init__(self, handle, path: Path, remove: bool):
        self.handle, self.path, self.remove = handle, path, remove

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.handle.closed:
            return
        if self.remove:  # unlinked while still locked: a process that opened it meanwhile sees it gone and retries
            self.path.unlink(missing_ok=True)
        self.handle.close()


def hold_folder(folder: Path, what: str, lock_name: str = ".archivecolor.lock", remove: bool = True) -> FolderLock:
    """Lock `folder` for this process and write our PID into the lock file; FolderInUse names the
    holder's PID when another process has it. With `remove`, the lock file goes when released,
    so a finished output folder holds only outputs."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_name
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise FolderInUse(f"{folder} is in use by another {what}{f' (PID {holder})' if holder else ''}: "
                              "wait for it to finish or stop it, or choose another output folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # we locked a file its holder had just removed: lock the one there now
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return FolderLock(handle, path, remove)


# Output errors that every later file would meet too: a full disk, a spent quota, a read-only mount.
STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class OutputUnwritable(Exception):
    """The output folder takes no more files (disk full, quota, read-only): the run stops, resumable."""


def stops_the_run(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in STOPPING_ERRNOS


def write_failure(exc: BaseException) -> str:
    """'No space left on device', without the errno and path the error line already says."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
