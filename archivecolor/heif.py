"""HEIC/HEIF stills (what iPhones and many phones and cameras save), read through pillow-heif.

Families photograph old prints with their phones, so an archive handed over today holds
`.HEIC` files beside the scans. libheif applies the file's rotation and mirroring (the HEIF
way; its EXIF orientation is informational), so pixels come out upright. They are only read:
colorized HEIC sources are written as JPEG (see imageio.COLOUR_OUTPUT).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

# ftyp brands of HEVC-coded HEIF; "mif1"/"msf1" are generic and count only with "heic" among the
# compatible brands (AVIF files carry them too, and this reader has no AV1 decoder)
HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
MISSING = 'HEIC/HEIF needs the pillow-heif package: pip install "archivecolor[heif]"'


class HeifError(Exception):
    """A HEIF file that cannot be read; str() is one line."""


@dataclass
class HeifPicture:
    pixels: np.ndarray  # (H, W) grey or (H, W, 3|4) RGB(A), uint8 or uint16 (10/12-bit scaled to 16)
    exif: bytes | None
    xmp: bytes | None
    icc: bytes | None


def is_heif(data: bytes) -> bool:
    """An ISO base media file whose brands say HEVC-coded HEIF."""
    if data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    major, compatible = data[8:12], {data[i : i + 4] for i in range(16, min(size, 64), 4)}
    return major in HEVC_BRANDS or (major in (b"mif1", b"msf1") and bool(compatible & HEVC_BRANDS))


def available() -> bool:
    """Whether pillow-heif is installed (the `heif` extra)."""
    import importlib.util

    return importlib.util.find_spec("pillow_heif") is not None


def _open(source):
    try:
        import pillow_heif
    except ImportError:
        raise HeifError(MISSING) from None
    try:
        return pillow_heif.open_heif(source, convert_hdr_to_8bit=False)
    except Exception as exc:
        raise HeifError(f"not a readable HEIF file ({exc})") from None


def read(data: bytes) -> list[HeifPicture]:
    """Every top-level picture (a burst holds several; thumbnails and depth maps are not pictures)."""
    pictures = []
    for index, image in enumerate(_open(io.BytesIO(data))):
        try:
            pixels = np.asarray(image)
        except Exception as exc:
            raise HeifError(f"picture {index + 1} cannot be decoded ({exc})") from None
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        info = image.info
        exif = info.get("exif") or None
        if exif and exif.startswith(b"Exif\x00\x00"):
            exif = exif[6:]
        pictures.append(HeifPicture(np.ascontiguousarray(pixels), exif, info.get("xmp") or None, info.get("icc_profile") or None))
    return pictures


def header(path) -> tuple[int, int]:
    """(pixels of all pictures, pictures) without decoding them."""
    heif = _open(str(path))
    return sum(w * h for w, h in (image.size for image in heif)), len(heif)
