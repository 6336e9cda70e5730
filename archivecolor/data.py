"""Training data: a folder tree of colour images -> (L, ab) crops in network scaling.

Knows nothing of models. The folder is scanned once (readable? colour?) and the result
kept in the run folder, so a resumed run sees the very same file list.
"""

from __future__ import annotations

import functools
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .lab import GREY_LEVEL_THRESHOLD, chroma_level, normalize_ab, normalize_l, srgb_to_lab  # noqa: F401 (chroma_level: data's own users)
from .listing import entry_kind, is_hidden_or_system

TRAIN_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".jp2")


def find_images(root: Path, extensions=TRAIN_EXTENSIONS) -> list[Path]:
    """Every image file below `root`, recursive, in a stable (sorted) order; hidden and system
    files (AppleDouble "._" files, @eaDir thumbnails…) left out.

    Links to folders are followed, once each (a training tree links photo sets in, as
    ../shared/tools/training-photos.sh does); `folder` never follows them, since an archive's links
    could loop or list a box twice. A link back up the tree is not followed again."""
    root = Path(root)
    files, seen = [], set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort(key=lambda name: (os.path.islink(os.path.join(folder, name)), name))  # real folders before links to them
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() in extensions and not is_hidden_or_system(path.relative_to(root)) and entry_kind(path)[0] == "file":
                files.append(path)
    return sorted(files)


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image to (H, W, 3) RGB uint8/uint16, EXIF orientation applied.

    Reads the bytes ourselves (np.fromfile) so that any file name works, then lets OpenCV
    decode them. Raises ValueError with a reason a user can act on.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ValueError("empty file (0 bytes)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ValueError("not a decodable image (corrupt, truncated or unsupported format)")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported sample type {image.dtype}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass
class ScanResult:
    usable: list[str] = field(default_factory=list)  # colour images, paths relative to the root
    grey: list[str] = field(default_factory=list)  # near-grey: skipped, no ab target
    failed: dict[str, str] = field(default_factory=dict)  # unreadable: path -> reason

    def to_json(self) -> str:
        return json.dumps({"usable": self.usable, "grey": self.grey, "failed": self.failed}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ScanResult":
        d = json.loads(text)
        return cls(usable=d["usable"], grey=d["grey"], failed=d["failed"])


def _classify(path: Path) -> tuple[str, str]:
    try:
        rgb = read_rgb(path)
    except (ValueError, OSError) as exc:
        return "failed", str(exc)
    if min(rgb.shape[:2]) < 8:
        return "failed", f"too small ({rgb.shape[1]}×{rgb.shape[0]})"
    if chroma_level(rgb) < GREY_LEVEL_THRESHOLD:
        return "grey", ""
    return "usable", ""


def scan_folder(root: Path, progress=None, workers: int = 4) -> ScanResult:
    """Decode every image once: keep the colour ones, count the grey, report the unreadable."""
    root = Path(root)
    paths = find_images(root)
    result = ScanResult()
    with ThreadPoolExecutor(workers) as pool:  # cv2 releases the GIL while decoding
        for path, (kind, reason) in zip(paths, pool.map(_classify, paths)):
            rel = path.relative_to(root).as_posix()
            if kind == "usable":
                result.usable.append(rel)
            elif kind == "grey":
                result.grey.append(rel)
            else:
                result.failed[rel] = reason
            if progress is not None:
                progress()
    return result


def split_train_val(files: list[str], val_fraction: float, max_val: int, seed: int,
                    photo_of=None) -> tuple[list[str], list[str]]:
    """A held-out validation split that depends only on the file names and the seed.

    `photo_of(name)` names the photo a file shows (see linked_photo): a photo that a training mix
    links several times (train/balanced_mix.py) is validated once and not trained on, instead of
    being validated on while trained on. Without links the split is what it always was.
    """
    photo_of = photo_of or (lambda name: name)

    def key(name: str) -> int:
        return zlib.crc32(f"{seed}:{photo_of(name)}".encode())

    ranked = sorted(files, key=key)
    n_val = min(max_val, int(round(len(files) * val_fraction)))
    if len(files) >= 2:
        n_val = max(1, n_val)
    val, held = [], set()
    for name in ranked:
        if len(val) == n_val:
            break
        if photo_of(name) not in held:
            held.add(photo_of(name))
            val.append(name)
    chosen = set(val)
    return [f for f in files if photo_of(f) not in held], [f for f in files if f in chosen]


def linked_photo(root: Path):
    """photo_of for split_train_val: a symbolic link stands for its target (named by its last
    folder and file name, so the split does not depend on where the data lies), a file for itself."""
    root = Path(root)

    def photo_of(name: str) -> str:
        path = root / name
        if not path.is_symlink():
            return name
        target = path.resolve()
        return f"link:{target.parent.name}/{target.name}"

    return functools.lru_cache(maxsize=None)(photo_of)


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if abs(scale - 1.0) < 1e-6:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def rgb_to_network(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) RGB -> L (1, H, W) and ab (2, H, W), float32, network scaling."""
    lab = srgb_to_lab(rgb)
    l_net = normalize_l(lab[..., 0])[None]
    ab_net = normalize_ab(lab[..., 1:]).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(l_net)), torch.from_numpy(np.ascontiguousarray(ab_net))


class ColorizationDataset(Dataset):
    """Colour images -> (L, ab) crops of `crop`², optionally from images scaled to `resize` short side.

    Training crops are random (position, horizontal flip) but reproducible: each sample's
    randomness derives from (seed, epoch, index), so a resumed run sees identical batches. An
    index past the end is the same image in a later pass of a long epoch, with other crops.
    With `resize_max`, each training crop comes from the image scaled to a short side drawn from
    [resize, resize_max] (multi-scale), so the network sees things at the sizes it may be rendered
    at; validation stays at the middle of that range, one fixed scale comparable across epochs.
    """

    def __init__(self, root: Path, files: list[str], crop: int, resize: int | None, train: bool, seed: int = 0,
                 resize_max: int | None = None):
        self.root = Path(root)
        self.files = list(files)
        self.crop = crop
        self.resize = resize
        self.resize_max = resize_max if resize and resize_max and resize_max > resize else None
        self.train = train
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, short_side: int | None = None) -> np.ndarray:
        rgb = read_rgb(self.root / self.files[index])
        short = short_side or self.resize or min(rgb.shape[:2])
        return resize_short_side(rgb, max(short, self.crop))

    def short_side(self, index: int, repeat: int) -> int | None:
        """The short side this sample is cropped from: the fixed `resize`, or with a range a draw of
        its own (a stream apart from the crop's, so fixed-size runs keep their crops)."""
        if self.resize_max is None:
            return self.resize
        if not self.train:
            return (self.resize + self.resize_max) // 2
        rng = np.random.default_rng([self.seed, self.epoch, index, repeat, 1])
        return int(rng.integers(self.resize, self.resize_max + 1))

    def __getitem__(self, index: int):
        repeat, index = divmod(index, len(self.files))  # an epoch longer than one pass: the image again, new crop
        rgb = self.load(index, self.short_side(index, repeat))
        h, w = rgb.shape[:2]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index] + ([repeat] if repeat else []))
            top = int(rng.integers(0, h - self.crop + 1))
            left = int(rng.integers(0, w - self.crop + 1))
            flip = bool(rng.integers(0, 2))
        else:
            top, left, flip = (h - self.crop) // 2, (w - self.crop) // 2, False
        rgb = rgb[top : top + self.crop, left : left + self.crop]
        if flip:
            rgb = rgb[:, ::-1]
        return rgb_to_network(np.ascontiguousarray(rgb))
