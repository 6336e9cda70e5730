"""DPX (SMPTE 268M), the film scanners' frame format: read through FFmpeg's decoder (PyAV), written here.

FFmpeg unpacks every bit depth (8, 10, 12, 16) and packing a scanner writes. The header is read
here for what the decoder does not hand over: the transfer (printing density and logarithmic
scans hold film densities, not display tones) and the descriptive fields worth carrying.

A colorized frame goes back out as DPX, because a restorer's conform and grading tools find a
reel by what its header carries: the film and television headers (keycode, frame position,
timecode) and the orientation header are copied byte for byte from the source frame, in the
source's byte order, at the source's depth (10-bit, the scanners' usual, as RGB packed in
32-bit words, method A; 12 and 16 bits one sample per 16-bit word).
"""

from __future__ import annotations

import io
import math
import struct
import time
from dataclasses import dataclass

import numpy as np

MAGICS = (b"SDPX", b"XPDS")  # big-endian, little-endian
LOG_TRANSFERS = {1: "printing density", 3: "logarithmic"}  # SMPTE 268M transfer characteristic codes
_PROJECT, _COPYRIGHT, _TRANSFER = (260, 200), (460, 200), 801  # file header fields; element 0's transfer byte
_OFFSET, _FILE_SIZE, _DITTO, _GENERIC_SIZE, _INDUSTRY_SIZE, _USER_SIZE = 4, 16, 20, 24, 28, 32
_FILE_NAME, _TIMESTAMP, _CREATOR, _ENCRYPTION = (36, 100), (136, 24), (160, 100), 660
_ORIENTATION, _ELEMENTS, _WIDTH, _HEIGHT = 768, 770, 772, 776
_ELEMENT = 780  # image element 0: sign, reference low/high code and quantity, descriptor, transfer, ...
_REF_LOW, _REF_HIGH, _DESCRIPTOR, _BIT_SIZE, _PACKING, _ENCODING, _DATA_OFFSET = 784, 792, 800, 803, 804, 806, 808
_OTHER_ELEMENTS = (852, 1408)  # elements 1-7 and the image header's reserved bytes
_FILM_FRAME_RATE = 1724  # film header: frames per second of the original film (R32)
GENERIC_HEADER, INDUSTRY_HEADER = 1664, 384  # file + image + orientation headers; film + television headers
RGB, RGBA = 50, 51  # SMPTE 268M image element descriptors
UNDEFINED_U32 = 0xFFFFFFFF


class DpxError(Exception):
    """A DPX file that cannot be read; str() is one line."""


@dataclass
class DpxPicture:
    pixels: np.ndarray  # (H, W) grey or (H, W, 3|4) RGB(A), uint8 or uint16 (10/12-bit scaled to 16)
    project: str | None
    copyright: str | None
    transfer: int | None  # SMPTE 268M code; see LOG_TRANSFERS
    header: bytes = b""  # the file's headers (up to the film and television ones), for encode()

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
    header = data[: GENERIC_HEADER + INDUSTRY_HEADER]
    return DpxPicture(np.ascontiguousarray(pixels), _text(data, _PROJECT), _text(data, _COPYRIGHT), transfer, header)


def _order(header: bytes) -> str:
    return "little" if header[:4] == b"XPDS" else "big"


def _industry_headers(source: bytes) -> bytes | None:
    """The source's film and television headers, where it has them."""
    order = _order(source)
    if len(source) < GENERIC_HEADER + INDUSTRY_HEADER or int.from_bytes(source[_INDUSTRY_SIZE : _INDUSTRY_SIZE + 4], order) < INDUSTRY_HEADER:
        return None
    if int.from_bytes(source[_OFFSET : _OFFSET + 4], order) < GENERIC_HEADER + INDUSTRY_HEADER:
        return None
    return source[GENERIC_HEADER : GENERIC_HEADER + INDUSTRY_HEADER]


def _put_text(header: bytearray, field: tuple[int, int], text: str | None) -> None:
    start, size = field
    header[start : start + size] = (text or "").encode("latin-1", "replace")[:size].ljust(size, b"\x00")


def _pack(pixels: np.ndarray, bits: int, order: str) -> bytes:
    """RGB(A) samples at `bits` (10: three per 32-bit word, method A; 12 and 16: one per 16-bit word)."""
    endian = "<" if order == "little" else ">"
    if bits == 10:
        samples = pixels.astype(np.uint32)
        words = (samples[..., 0] << 22) | (samples[..., 1] << 12) | (samples[..., 2] << 2)
        return words.astype(endian + "u4").tobytes()
    if bits == 12:  # one sample per 16-bit word, in its top 12 bits (method A)
        return (pixels.astype(np.uint16) << 4).astype(endian + "u2").tobytes()
    return pixels.astype(endian + "u2").tobytes()


def encode(pixels: np.ndarray, source: bytes | None = None, creator: str = "", project: str | None = None,
           copyright: str | None = None) -> bytes:
    """(H, W, 3|4) RGB(A) uint8/uint16 -> a DPX file; `source` is the header of the frame it came from.

    The depth follows the source (10, 12 or 16 bits; an 8-bit scan is written at 10); without a
    source, 8-bit pixels are written at 10 bits and 16-bit ones at 16. Alpha is written at 16.
    """
    h, w, channels = pixels.shape
    source = source if source and source[:4] in MAGICS and len(source) >= GENERIC_HEADER else None
    order = _order(source) if source else "big"
    source_bits = source[_BIT_SIZE] if source else (8 if pixels.dtype == np.uint8 else 16)
    bits = 16 if channels == 4 else 10 if source_bits <= 10 else 12 if source_bits == 12 else 16
    peak = (1 << bits) - 1
    scale = peak / np.iinfo(pixels.dtype).max
    samples = pixels if scale == 1 else np.floor(pixels.astype(np.float64) * scale + 0.5)
    industry = _industry_headers(source) if source else None
    offset = GENERIC_HEADER + (INDUSTRY_HEADER if industry else 0)

    header = bytearray(offset)
    if source:  # orientation, transfer, colorimetry, reference codes, orientation header: as the source's
        source_offset = int.from_bytes(source[_OFFSET : _OFFSET + 4], order)
        kept = min(GENERIC_HEADER, source_offset) if source_offset >= _OTHER_ELEMENTS[0] else _OTHER_ELEMENTS[0]
        header[:kept] = source[:kept]  # never the source's pixels, where its header was short
        header[_OTHER_ELEMENTS[0] : _OTHER_ELEMENTS[1]] = bytes(_OTHER_ELEMENTS[1] - _OTHER_ELEMENTS[0])
        if industry:
            header[GENERIC_HEADER:] = industry
    else:
        header[_ORIENTATION : _ORIENTATION + 2] = bytes(2)  # left to right, top to bottom
        header[_TRANSFER], header[_TRANSFER + 1] = 4, 4  # unspecified video, as FFmpeg's encoder writes
        for field in (_REF_LOW, _REF_HIGH):
            header[field : field + 4] = UNDEFINED_U32.to_bytes(4, order)

    def put(at: int, value: int, size: int = 4) -> None:
        header[at : at + size] = value.to_bytes(size, order)

    header[:4] = b"SDPX" if order == "big" else b"XPDS"
    put(_OFFSET, offset)
    header[8:16] = b"V2.0\x00\x00\x00\x00"
    put(_DITTO, 1)  # this file's header is not the same as the one before it in the reel
    put(_GENERIC_SIZE, GENERIC_HEADER)
    put(_INDUSTRY_SIZE, INDUSTRY_HEADER if industry else 0)
    put(_USER_SIZE, 0)
    _put_text(header, _FILE_NAME, None)
    _put_text(header, _TIMESTAMP, time.strftime("%Y:%m:%d:%H:%M:%S%z"))
    _put_text(header, _CREATOR, creator)
    _put_text(header, _PROJECT, project if project is not None else (_text(source, _PROJECT) if source else None))
    _put_text(header, _COPYRIGHT, copyright if copyright is not None else (_text(source, _COPYRIGHT) if source else None))
    put(_ENCRYPTION, UNDEFINED_U32)
    put(_ELEMENTS, 1, 2)
    put(_WIDTH, w)
    put(_HEIGHT, h)
    put(_ELEMENT, 0)  # unsigned samples
    for field in (_REF_LOW, _REF_HIGH):  # reference codes in the new depth's units
        code = int.from_bytes(header[field : field + 4], order)
        if code != UNDEFINED_U32 and source_bits != bits:
            put(field, round(code * peak / ((1 << source_bits) - 1)))
    header[_DESCRIPTOR] = RGB if channels == 3 else RGBA
    header[_BIT_SIZE] = bits
    put(_PACKING, 0 if bits == 16 else 1, 2)  # 10- and 12-bit: filled words, method A
    put(_ENCODING, 0, 2)
    put(_DATA_OFFSET, offset)
    put(_DATA_OFFSET + 4, 0)  # no end-of-line padding
    put(_DATA_OFFSET + 8, 0)  # no end-of-image padding
    body = _pack(samples, bits, order)
    put(_FILE_SIZE, offset + len(body))
    return bytes(header) + body


def size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the image information header (the first 784 bytes); None if not DPX."""
    if head[:4] not in MAGICS or len(head) < 780:
        return None
    order = "big" if head[:4] == b"SDPX" else "little"
    return int.from_bytes(head[772:776], order), int.from_bytes(head[776:780], order)


def frame_rate(path) -> float | None:
    """The frame rate a DPX frame's film header records, where it has that header and a sensible rate."""
    try:
        with open(path, "rb") as f:
            head = f.read(_FILM_FRAME_RATE + 4)
    except OSError:
        return None
    if len(head) < _FILM_FRAME_RATE + 4 or head[:4] not in MAGICS:
        return None
    order = _order(head)
    if int.from_bytes(head[_INDUSTRY_SIZE : _INDUSTRY_SIZE + 4], order) in (0, UNDEFINED_U32):
        return None
    (rate,) = struct.unpack(("<" if order == "little" else ">") + "f", head[_FILM_FRAME_RATE : _FILM_FRAME_RATE + 4])
    return float(rate) if math.isfinite(rate) and 1 <= rate <= 300 else None


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
