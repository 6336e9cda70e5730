"""Which files below a folder belong to the archive: hidden and system files do not.

A drive that passed through a Mac holds an AppleDouble "._NAME.jpg" beside every photo (and zip
files made there a __MACOSX folder of them); Synology NAS keep thumbnails in @eaDir folders;
Windows keeps $RECYCLE.BIN. None is a picture of the archive: colorizing them would fail on
every run, or colour thumbnails. They are left out and counted, never silently.
"""

from __future__ import annotations

from pathlib import Path

SYSTEM_FOLDERS = frozenset({"@eaDir", "__MACOSX", "$RECYCLE.BIN", "System Volume Information", "#recycle", "#snapshot"})


def is_hidden_or_system(relative: Path) -> bool:
    """A dot-name (hidden; AppleDouble "._" files) or inside a system folder, anywhere on the path."""
    return any(part.startswith(".") or part in SYSTEM_FOLDERS for part in Path(relative).parts)


def archive_files(root: Path, extensions) -> tuple[list[Path], int]:
    """Files below `root` whose suffix is in `extensions`, sorted; and how many hidden or system
    files with those suffixes were left out."""
    root = Path(root)
    kept, left_out = [], 0
    for path in root.rglob("*"):
        if path.suffix.lower() not in extensions or not (path.is_file() or path.is_symlink()):
            continue
        if is_hidden_or_system(path.relative_to(root)):
            left_out += 1
        else:
            kept.append(path)
    return sorted(kept), left_out
