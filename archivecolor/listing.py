"""Which files below a folder belong to the archive: hidden and system files do not.

A drive that passed through a Mac holds an AppleDouble "._NAME.jpg" beside every photo (and zip
files made there a __MACOSX folder of them); Synology NAS keep thumbnails in @eaDir folders;
Windows keeps $RECYCLE.BIN. None is a picture of the archive: colorizing them would fail on
every run, or colour thumbnails. They are left out and counted, never silently.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FOLDER_LINK = "link to a folder (not followed)"
SYSTEM_FOLDERS = frozenset({"@eaDir", "__MACOSX", "$RECYCLE.BIN", "System Volume Information", "#recycle", "#snapshot"})


def is_hidden_or_system(relative: Path) -> bool:
    """A dot-name (hidden; AppleDouble "._" files) or inside a system folder, anywhere on the path."""
    return any(part.startswith(".") or part in SYSTEM_FOLDERS for part in Path(relative).parts)


@dataclass
class Listing:
    files: list[Path]  # sorted
    hidden: int = 0  # hidden or system files with a wanted suffix, left out
    others: Counter = field(default_factory=Counter)  # other files of the archive, by suffix: not read
    # entries with a wanted suffix that are no file to read (a link loop, a dangling link, a FIFO, a
    # socket, a device): path -> why; each is one failed item, never a stop of the whole run
    unusable: dict = field(default_factory=dict)

    def others_line(self, kind: str) -> str | None:
        """'not images archivecolor reads, left as they are: 3 × .pdf, 2 × .gif', or None."""
        if not self.others:
            return None
        counts = ", ".join(f"{n} × {suffix or '(no suffix)'}" for suffix, n in self.others.most_common(6))
        more = len(self.others) - 6
        return f"not {kind} archivecolor reads, left as they are: {counts}" + (f" and {more} more kinds" if more > 0 else "")


def archive_files(root: Path, extensions) -> Listing:
    """Files below `root` whose suffix is in `extensions`; hidden and system files left out and
    counted; the archive's other files counted by suffix, so that none is passed over silently."""
    root = Path(root)
    listing = Listing([])
    for path in root.rglob("*"):
        kind, why = entry_kind(path)
        if kind == "folder":
            continue
        if kind == "folder link":  # not followed (links can loop, or list a folder twice)
            if not is_hidden_or_system(path.relative_to(root)):
                listing.others[FOLDER_LINK] += 1
            continue
        suffix = path.suffix.lower()
        if is_hidden_or_system(path.relative_to(root)):
            listing.hidden += suffix in extensions
        elif suffix not in extensions:
            listing.others[suffix] += 1
        elif kind == "file":
            listing.files.append(path)
        else:
            listing.unusable[path] = why
    listing.files.sort()
    listing.unusable = dict(sorted(listing.unusable.items()))
    return listing


def entry_kind(path: Path) -> tuple[str, str]:
    """("file" | "folder" | "folder link" | "unusable", why): what a listed entry is, never raising.

    A link is followed once: to a file it is that file; a loop, or a link to nothing, is unusable,
    as are FIFOs (reading one would wait forever), sockets and device files.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return "unusable", f"cannot be looked at ({exc.strerror})"
    link = stat.S_ISLNK(mode)
    if link:
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "unusable", "a symbolic link loop (the link leads back to itself): nothing to read"
            if exc.errno == errno.ENOENT:
                return "unusable", f"a symbolic link to nothing ({os.readlink(path)} does not exist)"
            return "unusable", f"a symbolic link that cannot be followed ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return ("folder link" if link else "folder"), ""
    if stat.S_ISREG(mode):
        return "file", ""
    what = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device file"
    return "unusable", f"{what}, not a file: nothing to read"
