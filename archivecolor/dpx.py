"""DPX (SMPTE 268M), the film scanners' frame format, read through FFmpeg's decoder (PyAV).

FFmpeg unpacks every bit depth (8, 10, 12, 16) and packing a scanner writes. The header is read
here for what the decoder does not hand over: the transfer (printing density and logarithmic
scans hold film densities, not display tones) and the descriptive fields worth carrying.
DPX is only read; its colour frames are written as 16-bit TIFF (imageio.COLOUR_OUTPUT).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

MAGICS = (b"SDPX", b"XPDS")  # big-endian, little-endian
LOG_TRANSFERS = {1: "printing density", 3: "logarithmic"}  # SMPTE 268M transfer characteristic codes
_PROJECT, _COPYRIGHT, _TRANSFER = (260, 200), (460, 200), 801  # file header fields; element 0's transfer byte


class DpxError(Exception):
    """A DPX file that cannot be read; str() is one line."""


@dataclass
class DpxPicture:
    pixels: np.ndarray  # (H, W) grey or (H, W, 3|4) RGB(A), uint8 or uint16 (10/12-bit scaled to 16)
    project: str | None
    copyright: str | None
    transfer: int | None  # SMPTE 268M code; see LOG_TRANSFERS

    @property
    def is_log(self) -> bool:
        return self.transfer in LOG_TRANSFERS


def _text(data: bytes, field: tuple[int, int]) -> str | None:
    start, size = field
    value = data[start : start + size].split(b"\x00", 1)[0].decode("latin-1").strip()
    return value or None


def read(data: bytes) -> DpxPicture:
    import av

    try:
        with av.open(io.BytesIO(data), format="dpx_pipe") as container:
            frame = next(container.decode(video=0))
            components = frame.format.components
            colour = [c for c in components if not c.is_alpha]
            grey, alpha = len(colour) == 1, len(colour) < len(components)
            deep = max(c.bits for c in components) > 8
            if grey:  # a film scan has no alpha; a grey one's is left out
                pixels = frame.to_ndarray(format="gray16le" if deep else "gray")
            else:
                pixels = frame.to_ndarray(format=("rgba64le" if alpha else "rgb48le") if deep else ("rgba" if alpha else "rgb24"))
    except StopIteration:
        raise DpxError("DPX holds no picture") from None
    except Exception as exc:
        raise DpxError(f"not a decodable DPX file ({getattr(exc, 'strerror', None) or exc})") from None
    transfer = data[_TRANSFER] if len(data) > _TRANSFER else None
    return DpxPicture(np.ascontiguousarray(pixels), _text(data, _PROJECT), _text(data, _COPYRIGHT), transfer)


def size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the image information header (the first 784 bytes); None if not DPX."""
    if head[:4] not in MAGICS or len(head) < 780:
        return None
    order = "big" if head[:4] == b"SDPX" else "little"
    return int.from_bytes(head[772:776], order), int.from_bytes(head[776:780], order)


def log_encoding(path) -> str | None:
    """'printing density' or 'logarithmic' where a DPX file's header says its code values are film
    densities rather than display tones; None otherwise (or where it cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_TRANSFER + 1)
    except OSError:
        return None
    if head[:4] not in MAGICS or len(head) <= _TRANSFER:
        return None
    return LOG_TRANSFERS.get(head[_TRANSFER])
