"""What `video` was given: films, reels of numbered frames, and what it refuses or leaves out,
with where each output goes. Decided here, said by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..listing import Listing, archive_files
from .naming import VIDEO_EXTENSIONS, default_output, is_colorized_output, output_suffix


@dataclass
class VideoInputs:
    films: list = field(default_factory=list)  # (source, target) per film
    sequences: list = field(default_factory=list)  # (FrameSequence, target folder) per reel of numbered frames
    refused: list = field(default_factory=list)  # (path, why): named, not coloured, and the exit code says so
    left_out: Listing = field(default_factory=lambda: Listing([]))  # hidden and system files, other kinds of file
    ours: int = 0  # films an earlier run of archivecolor made (left out of folders)
    # film or reel folder -> its path below the folder it was found in (its name, if given itself)
    names: dict = field(default_factory=dict)


def find_inputs(inputs: list[Path], out: Path | None, codec: str) -> VideoInputs:
    """Films and reels below `inputs`, each with its output: with `out` a file (one film) that
    file, with `out` a folder the inputs' trees mirrored in it, else NAME-colorized.EXT beside each
    film (NAME-colorized/ beside each reel). Raises ValueError where a reel's output cannot be placed."""
    from .sequence import find_sequences, reel_of, sequence_output

    found, names, reels, given = VideoInputs(), [], [], []
    for item in inputs:
        if not item.is_dir() and (reel := reel_of(item)):
            found.refused.append((item, f"one frame of {reel.folder} ({len(reel.frames)} frames): `archivecolor video "
                                        f"{reel.folder}` colours the reel"))
            continue
        if not item.is_dir():  # named by the user: always taken
            found.films.append(item)
            names.append(Path(item.name))
            continue
        listing = archive_files(item, VIDEO_EXTENSIONS)  # a folder: its films, less this tool's own outputs
        if not listing.files:
            sequences, not_reels = find_sequences(item)
            found.refused += [(numbered.folder, f"{len(numbered.frames)} numbered pictures, not a film scanner's reel (DPX, "
                               f"or frames numbered with 5+ digits): colour them with `archivecolor folder {numbered.folder}`")
                              for numbered in not_reels]
            if sequences or not_reels:
                reels += sequences
                given += [item] * len(sequences)
                continue
        found.left_out.hidden += listing.hidden
        found.left_out.others += listing.others
        found.refused += list(listing.unusable.items())  # a link loop, a FIFO named like a film …
        for film in listing.files:
            if is_colorized_output(film):
                found.ours += 1
            else:
                found.films.append(film)
                names.append(film.relative_to(item))
    found.sequences = [(reel, sequence_output(reel, out, len(inputs) == 1, len(reels) == 1, folder)) for reel, folder in zip(reels, given)]
    if out is not None and len(found.films) == 1 and not reels and out.suffix != "":
        targets = [out]
    elif out is not None:
        targets = [out / name.parent / (name.stem + output_suffix(film, codec)) for film, name in zip(found.films, names)]
    else:
        targets = [default_output(film, codec) for film in found.films]
    found.names = dict(zip(found.films, names))
    found.names.update({reel.folder: Path(reel.folder.name) if reel.folder == folder else reel.folder.relative_to(folder)
                        for reel, folder in zip(reels, given)})
    found.films = list(zip(found.films, targets))
    return found


def hints_of_films(hints_path: Path, films: list, names: dict) -> tuple[dict, list]:
    """Each film's or reel's hints file (`hints_path` a file for one of them, or a folder mirroring
    the inputs: HINTS/sub/reel.hints.json for sub/reel.mp4, HINTS/sub/reel1.hints.json for the reel
    folder sub/reel1/), and the files in such a folder that belong to none, each (path, why).
    `films`: the films' paths and the reels' folders. Raises ValueError for one file given with several."""
    from ..hints import HINTS_SUFFIX

    if hints_path.is_file():
        if len(films) != 1:
            raise ValueError(f"--hints {hints_path} is one film's file, and {len(films)} films were given: name one film, or "
                             "give a folder of hints files that mirrors the inputs")
        return {films[0]: hints_path}, []
    wanted = {film: hints_path / names[film].parent / ((names[film].name if film.is_dir() else names[film].stem) + HINTS_SUFFIX)
              for film in films}
    hints = {film: path for film, path in wanted.items() if path.is_file()}
    taken = {path.resolve() for path in hints.values()}
    orphans = [(path, f"a hints file with no film beside it (--hints mirrors the inputs: "
                      f"{path.relative_to(hints_path).as_posix().removesuffix(HINTS_SUFFIX)}.* not found)")
               for path in sorted(hints_path.rglob("*" + HINTS_SUFFIX)) if path.resolve() not in taken]
    return hints, orphans
