"""Which files below a folder belong to the archive: hidden and system files do not.

A drive that passed through a Mac holds an AppleDouble "._NAME.jpg" beside every photo (and zip
files made there a __MACOSX folder of them); Synology NAS keep thumbnails in @eaDir folders;
Windows keeps $RECYCLE.BIN. None is a picture of the archive: colorizing them would fail on
every run, or colour thumbnails. They are left out and counted, never silently.
"""

from __future__ import annotations

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
        if not (path.is_file() or path.is_symlink()):
            continue
        if path.is_dir():  # a link to a folder: not followed (links can loop, or list a folder twice)
            if not is_hidden_or_system(path.relative_to(root)):
                listing.others[FOLDER_LINK] += 1
            continue
        suffix = path.suffix.lower()
        if is_hidden_or_system(path.relative_to(root)):
            listing.hidden += suffix in extensions
        elif suffix in extensions:
            listing.files.append(path)
        else:
            listing.others[suffix] += 1
    listing.files.sort()
    return listing
